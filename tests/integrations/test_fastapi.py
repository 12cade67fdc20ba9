"""The FastAPI example app through `httpx.ASGITransport`, with its lifespan, on the local server."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from posthog_driver import (
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    DriverError,
    DriverSettings,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
)
from posthog_driver.integrations.fastapi import add_error_handlers, get_driver, posthog_lifespan

EXAMPLE = Path(__file__).parents[2] / "examples" / "fastapi_app.py"


def load_example() -> Callable[..., FastAPI]:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: FastAPI resolves the example's string annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.create_app  # type: ignore[no-any-return]


create_app = load_example()
APP_TOKEN = "app-token-0123456789abcdef"
AUTHORIZED = {"Authorization": f"Bearer {APP_TOKEN}"}


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, and a client that talks to it in-process."""
    async with app.router.lifespan_context(app) as state:
        app.state.lifespan_state = state

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://app", headers=AUTHORIZED
        ) as client:
            yield client


@pytest.fixture
def settings(local_server: Any) -> DriverSettings:
    return DriverSettings(
        host=local_server.url, api_key=local_server.api_key, project_id=local_server.project_id
    )


async def test_the_lifespan_opens_one_driver_and_closes_it(settings: DriverSettings) -> None:
    app = create_app(settings, api_token=APP_TOKEN)
    async with serving(app) as client:
        driver = app.state.lifespan_state["posthog_driver"]
        assert (await client.get("/health")).json() == {"posthog": True}
        assert "state=open" in repr(driver)
    assert "state=closed" in repr(driver)


async def test_handlers_get_the_driver_and_answer(settings: DriverSettings) -> None:
    async with serving(create_app(settings, api_token=APP_TOKEN)) as client:
        objects = await client.get("/objects")
        fields = await client.get("/objects/events/fields")
        rows = await client.post(
            "/query",
            json={
                "hogql": "SELECT count() AS n FROM events WHERE event = {ev}",
                "values": {"ev": "$pageview"},
            },
        )
        top = await client.get("/top-events", params={"days": 3650, "limit": 3})
    assert objects.status_code == 200
    assert "events" in objects.json()
    assert fields.json()["timestamp"]["type"] == "datetime"
    assert rows.json()[0]["n"] > 0
    assert top.status_code == 200
    assert 0 < len(top.json()) <= 3
    assert set(top.json()[0]) == {"event", "n"}


async def test_a_hogql_error_is_a_400_with_posthogs_detail(settings: DriverSettings) -> None:
    async with serving(create_app(settings, api_token=APP_TOKEN)) as client:
        answer = await client.post("/query", json={"hogql": "SELECT nope FROM events"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "hogql_error"
    assert "nope" in answer.json()["detail"]


async def test_input_refused_by_the_driver_is_a_400(settings: DriverSettings) -> None:
    async with serving(create_app(settings, api_token=APP_TOKEN)) as client:
        answer = await client.post("/query", json={"hogql": "  "})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_input"


async def test_an_unknown_object_is_a_404_with_suggestions(settings: DriverSettings) -> None:
    async with serving(create_app(settings, api_token=APP_TOKEN)) as client:
        answer = await client.get("/objects/event/fields")
    assert answer.status_code == 404
    assert answer.json()["suggestions"][0] == "events"


async def test_the_servers_refused_key_is_a_502_without_the_key(
    settings: DriverSettings, local_server: Any
) -> None:
    wrong = settings.model_copy(update={"api_key": settings.api_key.__class__("phx_wrongwrong")})
    async with serving(create_app(wrong, api_token=APP_TOKEN)) as client:
        answer = await client.get("/objects")
    assert answer.status_code == 502
    assert answer.json() == {
        "detail": "The analytics backend refused this service's credentials.",
        "code": "upstream_auth",
    }
    assert local_server.api_key not in answer.text
    assert "phx_wrongwrong" not in answer.text


async def test_an_unreachable_posthog_is_a_503_without_its_address() -> None:
    unreachable = DriverSettings(
        host="http://127.0.0.1:9", api_key="phx_unreachable", project_id="1", max_retries=0
    )
    async with serving(create_app(unreachable, api_token=APP_TOKEN)) as client:
        answer = await client.get("/objects")
    assert answer.status_code == 503
    assert answer.json()["code"] == "unavailable"
    assert "127.0.0.1" not in answer.text


@pytest.mark.parametrize(
    ("error", "status", "code", "retry_after"),
    [
        (RateLimitError("429 from PostHog", retry_after=2.2), 429, "rate_limited", "3"),
        (RateLimitError("429 from PostHog"), 429, "rate_limited", None),
        (CircuitOpenError("open", retry_after=12), 503, "unavailable", "12"),
        (ServerError("PostHog 502 at https://internal"), 503, "unavailable", None),
        (TransportError("Could not reach https://internal"), 503, "unavailable", None),
        (RequestTimeoutError("timed out"), 503, "unavailable", None),
        (AuthenticationError("401"), 502, "upstream_auth", None),
        (PermissionDeniedError("403 missing query:read"), 502, "upstream_auth", None),
        (NotFoundError("404 project 99", status_code=404), 502, "upstream_misconfigured", None),
        (ConfigError("POSTHOG_API_KEY is missing"), 500, "misconfigured", None),
        (DriverError("odd answer from https://internal"), 502, "upstream_error", None),
        (QueryError("400", detail="Unknown table x"), 400, "hogql_error", None),
    ],
)
async def test_each_driver_error_maps_to_its_http_answer(
    error: DriverError, status: int, code: str, retry_after: str | None
) -> None:
    app = FastAPI()
    add_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    async with serving(app) as client:
        answer = await client.get("/boom")
    assert answer.status_code == status
    assert answer.json()["code"] == code
    assert answer.headers.get("Retry-After") == retry_after
    assert "internal" not in answer.text
    assert "POSTHOG_API_KEY" not in answer.text


async def test_a_key_in_an_error_message_never_reaches_the_body() -> None:
    key = "phx_SECRETSECRET0123456789abcdefghij"
    app = FastAPI()
    add_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise QueryError("400", detail=f"token {key} rejected")

    async with serving(app) as client:
        answer = await client.get("/boom")
    assert answer.status_code == 400
    assert key not in answer.text


def test_the_dependency_explains_a_missing_lifespan() -> None:
    request = type("R", (), {"state": type("S", (), {})()})()
    with pytest.raises(RuntimeError, match="posthog_lifespan"):
        get_driver(request)  # type: ignore[arg-type]


async def test_the_lifespan_reads_settings_from_the_environment(
    local_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_server.env().items():
        monkeypatch.setenv(name, value)
    app = FastAPI(lifespan=posthog_lifespan())
    async with app.router.lifespan_context(app) as state:
        assert await state["posthog_driver"].health_check()


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", APP_TOKEN])
async def test_routes_that_run_hogql_need_the_token(
    settings: DriverSettings, header: str | None
) -> None:
    async with serving(create_app(settings, api_token=APP_TOKEN)) as client:
        headers = {"Authorization": header} if header else {}
        client.headers.pop("Authorization")
        answers = [
            await client.post("/query", json={"hogql": "SELECT 1"}, headers=headers),
            await client.get("/objects", headers=headers),
            await client.get("/top-events", headers=headers),
        ]
        health = await client.get("/health")
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert health.status_code == 200


def test_the_app_refuses_to_start_without_a_token(settings: DriverSettings) -> None:
    with pytest.raises(RuntimeError, match="APP_API_TOKEN"):
        create_app(settings)
