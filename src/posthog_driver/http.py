"""The request pipeline: every HTTP call the driver makes goes through `RequestPipeline.send`.

One attempt passes, in order: a query concurrency slot (query endpoint only), the circuit
breaker, the endpoint's rate-limit bucket, then the one shared `httpx.AsyncClient`. The breaker
comes after the slot so that calls queued for a slot while it was closed are not sent once it
has opened, and before the bucket so that a rejected call spends no rate budget. The answer is
mapped to data or a typed error in `_request`, the only place foreign exceptions are
translated. Around the attempt, `backoff` retries 408, 429, 500, 502, 503, 504, timeouts and
network failures:

    delay(n) = full_jitter(min(retry_max_delay, retry_base_delay * 2**n))

A `Retry-After` (seconds or an HTTP date) on a 429 or 503 pauses the whole bucket, so every
request of that endpoint class in this process waits, not only the one that saw it; the backoff
delay is then 0. A wait above `max_retry_after` is not slept: the call raises at once
(`RateLimitError`, or `ServerError` for a 503, with `retry_after` set), and so does every call
of that bucket until the pause is over.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Generator
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
import backoff
import httpx
from pydantic import SecretStr

from posthog_driver._version import __version__
from posthog_driver.breaker import CircuitBreaker
from posthog_driver.errors import (
    DriverError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    error_from_response,
)
from posthog_driver.limits import RateLimits
from posthog_driver.logging import get_logger, redact
from posthog_driver.settings import DriverSettings

__all__ = ["Endpoint", "RequestPipeline"]

Endpoint = Literal["query", "api"]

USER_AGENT = f"posthog-driver/{__version__} (+python; httpx/{httpx.__version__})"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_RETRYABLE = (RateLimitError, RequestTimeoutError, ServerError, TransportError)

log = get_logger()


def ms_since(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading), rounded for logs."""
    return round((time.perf_counter() - started) * 1000, 1)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None if absent
    or unreadable. Dates in the past give 0."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        current = datetime.now(UTC).timestamp() if now is None else now
        seconds = when.timestamp() - current
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class RequestPipeline:
    """Sends requests for one driver through breaker, slots, limits, client and retries.

    A client passed in is used as it is and never closed here; otherwise one is created, with
    the settings' timeout and connection limits, and closed by `aclose()`. Auth and User-Agent
    go on each request, so a caller's client is not changed.
    """

    def __init__(self, settings: DriverSettings, client: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._owns_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
            follow_redirects=False,
        )
        self.breaker = CircuitBreaker(
            threshold=settings.breaker_threshold, reset_seconds=settings.breaker_reset_seconds
        )
        self.limits = RateLimits(
            query=[(settings.query_rate_per_minute, 60.0), (settings.query_rate_per_hour, 3600.0)],
            api=[(settings.api_rate_per_minute, 60.0), (settings.api_rate_per_hour, 3600.0)],
        )
        self._auth = _BearerAuth(settings.api_key)
        self._had_cancellation = False
        # Created on first use: anyio primitives want a running event loop.
        self._query_slots: anyio.CapacityLimiter | None = None
        self._with_retries = backoff.on_exception(
            _retry_delays,
            _RETRYABLE,
            max_tries=settings.max_retries + 1,
            jitter=backoff.full_jitter,
            giveup=self._give_up,
            on_backoff=_log_retry,
            logger=None,  # our own `retrying` event says it, without backoff's free-text lines
            base=settings.retry_base_delay,
            cap=settings.retry_max_delay,
        )(self._attempt)

    @property
    def query_slots(self) -> anyio.CapacityLimiter:
        """The limiter that keeps at most `max_concurrent_queries` queries in flight."""
        if self._query_slots is None:
            self._query_slots = anyio.CapacityLimiter(self._settings.max_concurrent_queries)
        return self._query_slots

    async def aclose(self) -> None:
        """Close the HTTP client if this pipeline created it."""
        if self._owns_client:
            await self.client.aclose()

    async def send(
        self,
        method: str,
        url: str,
        *,
        endpoint: Endpoint,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """Send one logical request (with retries) and return the decoded JSON body.

        `url` is a path below the host (`/api/projects/1/query/`) or an absolute URL on it
        (a `next` link). Raises only `DriverError` subclasses.
        """
        if url.startswith("/"):
            url = self._settings.host + url
        return await self._with_retries(
            method, url, endpoint=endpoint, body=json, params=params, state={"attempts": 0}
        )

    def _give_up(self, exc: Exception) -> bool:
        if not isinstance(exc, _RETRYABLE):
            return True
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after > self._settings.max_retry_after:
            return True  # PostHog asked for a longer wait than we are willing to sleep
        # Network failures and timeouts have no status; of the statuses, only the transient ones.
        return exc.status_code is not None and exc.status_code not in RETRY_STATUSES

    async def _attempt(
        self,
        method: str,
        url: str,
        *,
        endpoint: Endpoint,
        body: Any,
        params: dict[str, str] | None,
        state: dict[str, int],
    ) -> Any:
        state["attempts"] += 1
        bucket = self.limits.for_endpoint(endpoint)
        self.breaker.reject_if_open()  # fail at once rather than queue for a slot first
        paused_for = bucket.paused_for
        if paused_for > self._settings.max_retry_after:
            # An earlier Retry-After paused this bucket for longer than we wait: fail now and
            # send nothing. (An open breaker answered first above: it says more.)
            raise RateLimitError(
                f"PostHog asked to wait {paused_for:.0f} s (Retry-After) before more requests "
                f"to this endpoint, longer than POSTHOG_MAX_RETRY_AFTER "
                f"({self._settings.max_retry_after:g} s); retry later.",
                retry_after=paused_for,
            )
        # The breaker admits only once a slot is ours: a call that queued for a slot while the
        # breaker was closed must not be sent after it opened.
        async with self._slot(endpoint), self.breaker.admit():
            await bucket.acquire()
            started = time.perf_counter()
            response = await self._request(method, url, body, params)
            if response.is_success:
                data = _decode(response)
                log.debug(
                    "request_done",
                    endpoint=endpoint,
                    method=method,
                    status_code=response.status_code,
                    elapsed_ms=ms_since(started),
                    attempt=state["attempts"],
                )
                return data
            raise self._failure(response, endpoint)

    def _slot(self, endpoint: Endpoint) -> AbstractAsyncContextManager[Any]:
        return self.query_slots if endpoint == "query" else nullcontext()

    async def _request(
        self, method: str, url: str, body: Any, params: dict[str, str] | None
    ) -> httpx.Response:
        if self._had_cancellation:
            self._had_cancellation = False
            await reclaim_orphaned_connections(self.client)
        # The one place foreign exceptions become ours; most specific first.
        try:
            return await self.client.request(
                method, url, json=body, params=params, headers=_HEADERS, auth=self._auth
            )
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, httpx.CookieConflict) as exc:
            raise self._translate(_scrubbed(exc)) from exc
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                # Cleaned up before the next request, when httpcore has settled its own state.
                self._had_cancellation = True
            if not isinstance(exc, RuntimeError):
                raise
            # httpx: "Cannot send a request, as the client has been closed."
            raise DriverError(
                f"The HTTP client is closed ({exc}); the driver was closed while this call was "
                "running, or the http_client passed in was closed. Use an open driver."
            ) from None

    def _translate(self, exc: Exception) -> DriverError:
        if isinstance(exc, httpx.TimeoutException):
            return RequestTimeoutError(
                f"No answer from {self._settings.host} within {self._settings.timeout:g} s "
                f"({type(exc).__name__}); narrow the query or raise POSTHOG_TIMEOUT."
            )
        if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError):
            return TransportError(
                f"Could not reach {self._settings.host} ({type(exc).__name__}: {exc}); "
                "check POSTHOG_HOST and the network."
            )
        return DriverError(
            f"The request to {self._settings.host} failed ({type(exc).__name__}: {exc}); "
            "check POSTHOG_HOST."
        )

    def _failure(self, response: httpx.Response, endpoint: Endpoint) -> DriverError:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None and response.status_code in (429, 503):
            # Even a wait longer than we will sleep pauses the bucket: other calls then fail at
            # once instead of collecting more 429s.
            self.limits.for_endpoint(endpoint).pause(retry_after)
        return error_from_response(response.status_code, response.text, retry_after=retry_after)


class _BearerAuth(httpx.Auth):
    """Puts the key on each request, so no plain copy of it lives in our frames' locals."""

    def __init__(self, key: SecretStr) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Bearer " + self._key.get_secret_value()
        yield request


_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}


async def reclaim_orphaned_connections(client: httpx.AsyncClient) -> int:
    """Drop the pool connections no request owns but that still count as busy; return how many.

    Works around encode/httpcore#1093 (open; fixed in the httpx2 fork). Cancelled requests
    can leave two kinds of connection behind in httpcore's pool: one created for the request
    that never connected (neither idle, closed nor usable), and, rarely, one whose HTTP/1.1
    state stays ACTIVE after its response was abandoned. Either holds a pool slot for good;
    enough of them and every later request ends in PoolTimeout (measured here after a few
    cancellation storms). Every connection in use is owned by a request in the pool's queue, so
    a busy connection that none owns is an orphan: it is closed and dropped. This reaches into
    httpcore's private state, so it does nothing when that state is not shaped as expected.
    """
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    connections = getattr(pool, "_connections", None)
    requests = getattr(pool, "_requests", None)
    if not isinstance(connections, list) or not isinstance(requests, list):
        return 0
    owned = {id(getattr(request, "connection", None)) for request in requests}
    orphans = [
        connection
        for connection in connections
        if id(connection) not in owned and not (connection.is_idle() or connection.is_closed())
    ]
    for connection in orphans:
        connections.remove(connection)
        with anyio.CancelScope(shield=True):
            await connection.aclose()
    return len(orphans)


def _scrubbed(exc: Exception) -> Exception:
    """The exception with any key-shaped text redacted from its message.

    It stays chained (`from exc`) for debugging, and a chained traceback prints its message:
    a transport or proxy that quotes the request's headers must not leak the key through it.
    """
    exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
    return exc


async def _log_retry(details: Any) -> None:
    exc = details["exception"]
    log.info(
        "retrying",
        endpoint=details["kwargs"]["endpoint"],
        attempt=details["tries"],
        wait_s=round(details["wait"], 3),
        error=type(exc).__name__,
        status_code=getattr(exc, "status_code", None),
        retry_after=getattr(exc, "retry_after", None),
    )


def _retry_delays(base: float, cap: float) -> Generator[float, Exception | None, None]:
    """backoff's wait generator: exponential, but 0 after a `Retry-After` (the bucket waits)."""
    attempt = 0
    exc = yield 0.0  # backoff primes the generator and discards this value
    while True:
        paused = getattr(exc, "retry_after", None) is not None
        delay = 0.0 if paused else min(cap, base * 2**attempt)
        attempt += 1
        exc = yield delay


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        excerpt = " ".join(response.text.split())[:200]
        raise DriverError(
            f"PostHog answered {response.status_code} with a body that is not JSON "
            f"({excerpt!r}); check that POSTHOG_HOST is PostHog's app host "
            "(e.g. https://us.posthog.com), not a proxy page or the ingestion host.",
            status_code=response.status_code,
        ) from None
