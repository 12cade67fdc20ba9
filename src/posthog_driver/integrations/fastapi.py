"""FastAPI: one `AsyncDriver` per app, handed to handlers, and driver errors as HTTP answers.

```python
from fastapi import FastAPI
from posthog_driver.integrations.fastapi import PostHogDriver, add_error_handlers, posthog_lifespan

app = FastAPI(lifespan=posthog_lifespan())        # opens the driver at start-up, closes it after
add_error_handlers(app)

@app.get("/objects")
async def objects(driver: PostHogDriver) -> list[str]:
    return await driver.list_objects()
```

Errors map to answers as follows; bodies are `{"detail": ..., "code": ...}` and never hold the
key, PostHog's host or other internals:

- `ValidationError`, `QueryError`: 400, the caller's input or HogQL is wrong (PostHog's
  detail is kept so the caller can fix it);
- `NotFoundError` for an unknown object: 404, with `suggestions` (close matches);
- `RateLimitError`: 429, with `Retry-After` (seconds, rounded up) when PostHog gave one;
- `CircuitOpenError`: 503 with `Retry-After` (when the breaker lets a probe through);
- `ServerError`, `TransportError`, `RequestTimeoutError`: 503, PostHog unavailable or slow;
- `AuthenticationError`, `PermissionDeniedError`: 502. It is the *server's* PostHog key that
  was refused, an upstream fault: a 401/403 would tell the caller to fix credentials they
  never sent. The same goes for a 404 from PostHog itself (a wrong project id): 502;
- `ConfigError`: 500; any other `DriverError` (an unexpected answer): 502.

Needs the `fastapi` extra: `pip install "posthog-driver[fastapi]"`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

import httpx2

try:
    from fastapi import Depends, FastAPI, Request
    from fastapi.responses import JSONResponse
except ImportError as exc:
    raise ImportError(
        'The FastAPI integration needs fastapi: pip install "posthog-driver[fastapi]"'
    ) from exc

from posthog_driver._driver import AsyncDriver
from posthog_driver._errors import (
    AuthenticationError,
    CircuitOpenError,
    ConfigError,
    DriverError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    ValidationError,
)
from posthog_driver._logging import get_logger, redact
from posthog_driver._settings import DriverSettings

__all__ = [
    "STATE_KEY",
    "PostHogDriver",
    "add_error_handlers",
    "error_response",
    "get_driver",
    "posthog_lifespan",
]

STATE_KEY = "posthog_driver"
"""Where the lifespan puts the driver in the app's lifespan state (`request.state`)."""

log = get_logger()

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[dict[str, Any]]]


def posthog_lifespan(
    settings: DriverSettings | None = None, *, http_client: httpx2.AsyncClient | None = None
) -> Lifespan:
    """A lifespan that opens one driver for the app and closes it at shutdown.

    `settings` default to `DriverSettings.from_env()` (read at start-up); `http_client` is passed to
    the driver (and then not closed by it). To combine with your own
    lifespan, enter it inside yours and pass its state on:

    ```python
    @asynccontextmanager
    async def lifespan(app):
        async with posthog_lifespan()(app) as state:
            yield {**state, "other": ...}
    ```
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        driver = AsyncDriver(
            settings if settings is not None else DriverSettings.from_env(), http_client=http_client
        )
        async with driver:
            yield {STATE_KEY: driver}

    return lifespan


def get_driver(request: Request) -> AsyncDriver:
    """The app's driver (a FastAPI dependency); needs `posthog_lifespan` on the app."""
    driver = getattr(request.state, STATE_KEY, None)
    if driver is None:
        raise RuntimeError(
            "No PostHog driver in the app's state: create the app with "
            "FastAPI(lifespan=posthog_lifespan())."
        )
    return driver  # type: ignore[no-any-return]


PostHogDriver = Annotated[AsyncDriver, Depends(get_driver)]
"""Type a handler parameter with this to receive the app's driver."""


def add_error_handlers(app: FastAPI) -> None:
    """Answer every `DriverError` a handler lets escape with the status in the table above."""

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DriverError)
        return error_response(exc)

    app.add_exception_handler(DriverError, handle)


def error_response(exc: DriverError) -> JSONResponse:
    """The HTTP answer for `exc`: status, a body safe to show a caller, and `Retry-After`."""
    status, code, detail = _classify(exc)
    body: dict[str, Any] = {"detail": redact(detail), "code": code}
    headers: dict[str, str] = {}
    if isinstance(exc, NotFoundError) and exc.suggestions:
        body["suggestions"] = exc.suggestions
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, RateLimitError | CircuitOpenError) and retry_after is not None:
        seconds = max(1, math.ceil(retry_after))
        headers["Retry-After"] = str(seconds)
        body["retry_after"] = seconds
    log.info("driver_error_answered", error=type(exc).__name__, status=status)
    return JSONResponse(body, status_code=status, headers=headers)


def _classify(exc: DriverError) -> tuple[int, str, str]:
    """(status, code, detail); only caller-caused errors keep the driver's own words."""
    if isinstance(exc, QueryError):
        return 400, "hogql_error", exc.detail or exc.message
    if isinstance(exc, ValidationError):
        return 400, "invalid_input", exc.message
    if isinstance(exc, NotFoundError):
        # An unknown object name is the caller's; a 404 from PostHog itself means our project
        # setting is wrong, and its message would name the project: keep that one generic.
        if exc.status_code is None:
            return 404, "not_found", exc.message
        return 502, "upstream_misconfigured", "The analytics backend is misconfigured."
    if isinstance(exc, RateLimitError):
        return 429, "rate_limited", "Too many analytics queries; retry later."
    if isinstance(exc, CircuitOpenError):
        return 503, "unavailable", "The analytics backend is failing; retry later."
    if isinstance(exc, ServerError | TransportError | RequestTimeoutError):
        return 503, "unavailable", "The analytics backend is unavailable; retry later."
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return 502, "upstream_auth", "The analytics backend refused this service's credentials."
    if isinstance(exc, ConfigError):
        return 500, "misconfigured", "The analytics service is misconfigured."
    return 502, "upstream_error", "The analytics backend gave an unexpected answer."
