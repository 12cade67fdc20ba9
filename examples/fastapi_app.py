"""A FastAPI back end over PostHog: one driver for the app, driver errors as HTTP answers.

Run it against the local server (in one shell `uv run posthog-driver serve-local`, then paste
the `export POSTHOG_...` lines it prints into another):

    uv run uvicorn --factory examples.fastapi_app:create_app --port 8000
    curl localhost:8000/objects
    curl localhost:8000/top-events?days=30
    curl -X POST localhost:8000/query -H 'content-type: application/json' \
         -d '{"hogql": "SELECT count() AS n FROM events WHERE event = {ev}",
              "values": {"ev": "$pageview"}}'
"""

from __future__ import annotations

from typing import Any

import httpx2
from fastapi import FastAPI
from pydantic import BaseModel, Field

from posthog_driver import DriverSettings, FieldInfo
from posthog_driver.integrations.fastapi import PostHogDriver, add_error_handlers, posthog_lifespan


class QueryIn(BaseModel):
    """A HogQL query and the constants for its `{placeholders}`."""

    hogql: str = Field(examples=["SELECT event, count() AS n FROM events GROUP BY event LIMIT 5"])
    values: dict[str, Any] | None = None


def create_app(
    settings: DriverSettings | None = None, *, http_client: httpx2.AsyncClient | None = None
) -> FastAPI:
    """The app; `settings` default to the `POSTHOG_*` environment, read at start-up."""
    app = FastAPI(
        title="PostHog analytics API",
        lifespan=posthog_lifespan(settings, http_client=http_client),
    )
    add_error_handlers(app)

    @app.get("/health")
    async def health(driver: PostHogDriver) -> dict[str, bool]:
        return {"posthog": await driver.health_check()}

    @app.get("/objects")
    async def objects(driver: PostHogDriver) -> list[str]:
        return await driver.list_objects()

    @app.get("/objects/{name}/fields")
    async def fields(name: str, driver: PostHogDriver) -> dict[str, FieldInfo]:
        return await driver.get_fields(name)

    @app.post("/query")
    async def query(body: QueryIn, driver: PostHogDriver) -> list[dict[str, Any]]:
        return await driver.query(body.hogql, body.values)

    @app.get("/top-events")
    async def top_events(
        driver: PostHogDriver, days: int = 7, limit: int = 10
    ) -> list[dict[str, Any]]:
        # Constants go in `values`: PostHog binds them, nothing is pasted into the HogQL.
        return await driver.query(
            "SELECT event, count() AS n FROM events "
            "WHERE timestamp > now() - toIntervalDay({days}) "
            "GROUP BY event ORDER BY n DESC LIMIT {limit}",
            values={"days": days, "limit": limit},
        )

    return app
