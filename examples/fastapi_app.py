"""A FastAPI back end over PostHog: one driver for the app, driver errors as HTTP answers.

Every data route runs HogQL with this service's PostHog key, and `/query` runs the caller's
own HogQL: they all require `Authorization: Bearer $APP_API_TOKEN` (your callers' credential,
not the PostHog key). Put your real authentication here (OAuth, an API gateway); the point is
that nothing reaches the driver without it. `/health` stays open for probes.

Run it against the local server (in one shell `uv run posthog-driver serve-local`, then paste
the `export POSTHOG_...` lines it prints into another):

    export APP_API_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')
    uv run uvicorn --factory examples.fastapi_app:create_app --port 8000
    curl -H "Authorization: Bearer $APP_API_TOKEN" localhost:8000/objects
    curl -H "Authorization: Bearer $APP_API_TOKEN" localhost:8000/top-events?days=30
    curl -X POST localhost:8000/query -H "Authorization: Bearer $APP_API_TOKEN" \
         -H 'content-type: application/json' \
         -d '{"hogql": "SELECT count() AS n FROM events WHERE event = {ev}",
              "values": {"ev": "$pageview"}}'
"""

from __future__ import annotations

import hmac
import os
import sys
from typing import Annotated, Any

import httpx2
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from posthog_driver import ConfigError, DriverSettings, FieldInfo
from posthog_driver.integrations.fastapi import PostHogDriver, add_error_handlers, posthog_lifespan


class QueryIn(BaseModel):
    """A HogQL query and the constants for its `{placeholders}`."""

    hogql: str = Field(examples=["SELECT event, count() AS n FROM events GROUP BY event LIMIT 5"])
    values: dict[str, Any] | None = None


HOW_TO_AUTHORIZE = (
    "Set APP_API_TOKEN (at least 16 characters) to the token callers must send: every route "
    "runs HogQL with this service's PostHog key."
)
USAGE = """This is an app for uvicorn, not a script. Run it with:
    export APP_API_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')
    uv run uvicorn --factory examples.fastapi_app:create_app --port 8000
(with POSTHOG_HOST, POSTHOG_API_KEY and POSTHOG_PROJECT_ID set, e.g. from serve-local)."""

BEARER = HTTPBearer(auto_error=False)  # module level: FastAPI reads the annotation below by name


def bearer_token(expected: str) -> Any:
    """A dependency that lets a request through only with `Authorization: Bearer <expected>`."""

    async def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(401, "Send Authorization: Bearer <token>.",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    return Depends(check)


def create_app(
    settings: DriverSettings | None = None,
    *,
    http_client: httpx2.AsyncClient | None = None,
    api_token: str | None = None,
) -> FastAPI:
    """The app; `settings` default to the `POSTHOG_*` environment, read at start-up, and
    `api_token` (what callers must send) to `APP_API_TOKEN`."""
    token = api_token or os.environ.get("APP_API_TOKEN")
    if not token or len(token) < 16:
        if settings is None and api_token is None:
            # Everything from the environment: a server starting (`uvicorn --factory`). One
            # line and exit 2, not a traceback; uvicorn lets SystemExit through as it is.
            print(f"error: {HOW_TO_AUTHORIZE}", file=sys.stderr)
            raise SystemExit(2)
        raise RuntimeError(HOW_TO_AUTHORIZE)
    if settings is None:
        try:  # read now, so missing POSTHOG_* settings are one line too, not uvicorn's traceback
            settings = DriverSettings.from_env()
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    app = FastAPI(
        title="PostHog analytics API",
        lifespan=posthog_lifespan(settings, http_client=http_client),
    )
    add_error_handlers(app)
    authorized = [bearer_token(token)]

    @app.get("/health")
    async def health(driver: PostHogDriver) -> dict[str, bool]:
        return {"posthog": await driver.health_check()}

    @app.get("/objects", dependencies=authorized)
    async def objects(driver: PostHogDriver) -> list[str]:
        return await driver.list_objects()

    @app.get("/objects/{name}/fields", dependencies=authorized)
    async def fields(name: str, driver: PostHogDriver) -> dict[str, FieldInfo]:
        return await driver.get_fields(name)

    @app.post("/query", dependencies=authorized)
    async def query(body: QueryIn, driver: PostHogDriver) -> list[dict[str, Any]]:
        return await driver.query(body.hogql, body.values)

    @app.get("/top-events", dependencies=authorized)
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


if __name__ == "__main__":
    sys.exit(USAGE)  # run as a script: say how to serve it, exit 1
