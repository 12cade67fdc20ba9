"""The request pipeline: every HTTP call the driver makes goes through `RequestPipeline.send`.

Every call runs inside its **deadline** (`call_deadline(seconds)`, set by each public method
from its `timeout=`), and each attempt passes, in order:

1. the endpoint class's circuit breaker, checked early (an open breaker fails at once);
2. a query slot (query endpoint only), waited for at most `max_retry_after` and the deadline;
3. the endpoint class's rate windows (sliding logs, see `_limits`), the same bound;
4. the breaker's admission (after the slot: calls queued while it closed are not sent once it
   opened), then the one shared `httpx2.AsyncClient`, under the deadline.

An attempt the deadline cuts short is a `RequestTimeoutError` and counts for the breaker like
any timeout; an attempt cancelled from outside counts as nothing. Only outages count: network
failures, timeouts, 502/503 and 5xx without PostHog's error body (`is_outage`). Each endpoint
class has its own breaker, so failing queries do not block discovery. The answer is mapped to
data or a typed error here, the only place foreign exceptions are translated. Around the
attempt, `backoff` retries 408, 429, outage 5xx, timeouts and network failures, never past
the deadline:

    delay(n) = full_jitter(min(retry_max_delay, retry_base_delay * 2**n))

A query's own failure (400, or a 500/504 with PostHog's error body: ClickHouse's time or
memory limit) is a `QueryError` and is not retried. A `Retry-After` (seconds or an HTTP date,
clamped to a day) on a 429 or 503 pauses the whole endpoint class; a call whose wait would
pass `max_retry_after` or its deadline fails at once instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import time
from collections.abc import AsyncIterator, Generator, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

import anyio
import backoff
import httpx2
from pydantic import SecretStr

from posthog_driver._breaker import CircuitBreaker
from posthog_driver._errors import (
    DriverError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    SharedLimitsError,
    TransportError,
    error_from_response,
)
from posthog_driver._limits import RateLimit, RateLimits, WaitTooLong
from posthog_driver._logging import get_logger, redact
from posthog_driver._settings import DriverSettings
from posthog_driver._shared import SharedLimits
from posthog_driver._shared._breaker import SharedBreaker
from posthog_driver._shared._slots import SharedSlots
from posthog_driver._shared._windows import SharedWindows
from posthog_driver._version import __version__

__all__ = ["Endpoint", "QueryFlight", "RequestPipeline", "call_deadline", "remaining"]

Endpoint = Literal["query", "schema", "api"]
"""What a request is, for the pipeline: a HogQL `query` (query windows, a query slot, the query
breaker); the `schema` query (a POST to /query/, so the query windows, but no ClickHouse work:
no slot, and the API breaker, so discovery keeps working through a query outage); any other
`api` call (API windows and breaker)."""


def _windows(endpoint: Endpoint) -> Literal["query", "api"]:
    return "api" if endpoint == "api" else "query"


def _breaker(endpoint: Endpoint) -> Literal["query", "api"]:
    return "query" if endpoint == "query" else "api"


USER_AGENT = f"posthog-driver/{__version__} (+python; httpx2/{httpx2.__version__})"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_RETRYABLE = (RateLimitError, RequestTimeoutError, ServerError, TransportError)
_FOREIGN_ERRORS = (httpx2.HTTPError, httpx2.InvalidURL, httpx2.StreamError, httpx2.CookieConflict)
MAX_RETRY_AFTER_HEADER = 86_400.0  # a day: longer (or absurd) values are read as a day
CANCEL_TIMEOUT = 2.0  # the best-effort DELETE of a cancelled query waits no longer

# The current call's deadline on anyio's clock (inf: none). Set by `call_deadline`; copied into
# tasks a call starts, so a fan-out shares its caller's deadline.
_deadline: ContextVar[float] = ContextVar("posthog_driver_deadline", default=math.inf)
# Set while an async-mode query holds its query slot for its whole run: its requests take none.
_slot_held: ContextVar[bool] = ContextVar("posthog_driver_slot_held", default=False)


class QueryFlight:
    """Where one query's POST stands, so that only a query PostHog may be running is cancelled:
    `on_the_wire` while its request is sent and unanswered, `running` once PostHog accepted it
    in async mode and until a poll says it ended."""

    __slots__ = ("on_the_wire", "running")

    def __init__(self) -> None:
        self.on_the_wire = False
        self.running = False

    @property
    def maybe_running(self) -> bool:
        return self.on_the_wire or self.running


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
    if math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER_HEADER, max(0.0, seconds))


@contextlib.contextmanager
def call_deadline(seconds: float) -> Iterator[float]:
    """Run the block within `seconds` (and within any deadline already in force).

    Requests under it time out at the deadline (as `RequestTimeoutError`, counted by the
    breaker); waits end early; anything else still running at the deadline is cancelled and
    the block raises `RequestTimeoutError`. Yields the absolute deadline.
    """
    now = anyio.current_time()
    outer = _deadline.get()
    deadline = min(outer, now + seconds)
    token = _deadline.set(deadline)
    try:
        # A backstop a little later than the deadline: requests and waits end by themselves
        # at the deadline, with a clearer error; this catches whatever else is still awaited.
        with anyio.CancelScope(deadline=deadline + 0.25) as scope:
            yield deadline
    finally:
        _deadline.reset(token)
    if scope.cancelled_caught:  # the deadline in force (this call's, or its caller's) passed
        raise RequestTimeoutError(_DEADLINE_MESSAGE.format(seconds=deadline - now))


_DEADLINE_MESSAGE = (
    "The call did not finish within its deadline of {seconds:.3g} s (timeout=, or "
    "POSTHOG_CALL_TIMEOUT); narrow the query or give it a longer timeout."
)


def remaining() -> float:
    """Seconds left before the current call's deadline (inf without one; 0 once passed)."""
    return max(0.0, _deadline.get() - anyio.current_time())


class RequestPipeline:
    """Sends requests for one driver through breakers, slots, limits, client and retries.

    A client passed in is used as it is and never closed here; otherwise one is
    created, with the settings' timeouts and connection limits, and closed by `aclose()`. Auth
    and User-Agent go on each request, so a caller's client is not changed.
    """

    def __init__(self, settings: DriverSettings, client: httpx2.AsyncClient | None = None) -> None:
        self._settings = settings
        self._owns_client = client is None
        self.client = client or httpx2.AsyncClient(
            timeout=self._timeout(settings.timeout),
            limits=httpx2.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
            follow_redirects=False,
        )
        self.breakers = {
            endpoint: CircuitBreaker(
                threshold=settings.breaker_threshold, reset_seconds=settings.breaker_reset_seconds
            )
            for endpoint in ("query", "api")
        }
        self.limits = RateLimits(
            query=[(settings.query_rate_per_minute, 60.0), (settings.query_rate_per_hour, 3600.0)],
            api=[(settings.api_rate_per_minute, 60.0), (settings.api_rate_per_hour, 3600.0)],
        )
        self._auth = _BearerAuth(settings.api_key)
        # With POSTHOG_REDIS_URL, Redis decides windows, pauses, slots and breakers for every
        # process that shares it; the objects above then stand in when it cannot answer.
        self.shared = (
            SharedLimits(settings, self.limits, self.breakers)
            if settings.redis_url is not None
            else None
        )
        # Best-effort DELETEs of cancelled queries, sent in the background so a caller's
        # deadline is not overrun by them; `aclose()` waits for them (briefly).
        self._cancels: set[asyncio.Task[None]] = set()
        # Created on first use: anyio primitives want a running event loop.
        self._query_slots: anyio.CapacityLimiter | None = None
        self._with_retries = backoff.on_exception(
            _retry_delays,
            _RETRYABLE,
            max_tries=settings.max_retries + 1,
            max_time=remaining,  # read at the start of each call: never back off past it
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

    @property
    def query_slots_in_use(self) -> int:
        """How many queries hold a slot right now."""
        return 0 if self._query_slots is None else int(self._query_slots.borrowed_tokens)

    async def aclose(self) -> None:
        """Let pending cancels finish (at most `CANCEL_TIMEOUT`), then close the HTTP client if
        this pipeline created it."""
        if self._cancels:
            with anyio.CancelScope(shield=True):
                await asyncio.wait(set(self._cancels), timeout=CANCEL_TIMEOUT)
        if self._owns_client:
            await self.client.aclose()
        if self.shared is not None:
            await self.shared.aclose()

    @contextlib.asynccontextmanager
    async def query_slot(self) -> AsyncIterator[None]:
        """Hold a query slot around several requests (an async-mode query's POST and polls):
        PostHog runs the query all that time, so it counts against the concurrency limit."""
        async with self._slot("query"):
            token = _slot_held.set(True)
            try:
                yield
            finally:
                _slot_held.reset(token)

    async def send(
        self,
        method: str,
        url: str,
        *,
        endpoint: Endpoint,
        json: Any = None,
        params: dict[str, str] | None = None,
        flight: QueryFlight | None = None,
    ) -> Any:
        """Send one logical request (with retries) within the call's deadline; return the JSON.

        `url` is a path below the host (`/api/projects/1/query/`) or an absolute URL on it
        (a `next` link); `flight` is told while the request is on the wire. Raises only
        `DriverError` subclasses.
        """
        if url.startswith("/"):
            url = self._settings.host + url
        state = {"attempts": 0}
        started = time.monotonic()
        try:
            return await self._with_retries(
                method,
                url,
                endpoint=endpoint,
                body=json,
                params=params,
                flight=flight or QueryFlight(),
                state=state,
            )
        except (RequestTimeoutError, TransportError) as exc:
            if state["attempts"] > 1:  # each message speaks of one attempt: say the whole
                exc.message += (
                    f" (after {state['attempts']} attempts over {time.monotonic() - started:.0f} s)"
                )
                exc.args = (exc.message,)
            raise

    async def probe(self, path: str, timeout: float) -> bool:
        """One GET, no retries, outside breakers and windows: does it answer 200 in time?"""
        with contextlib.suppress(DriverError), anyio.move_on_after(timeout):
            response = await self._request(
                "GET", self._settings.host + path, None, None, self._timeout(timeout)
            )
            return response.status_code == 200
        return False

    def cancel_query(self, path: str) -> None:
        """Best effort: `DELETE` a query PostHog may still be running, in the background.

        The caller goes on at once (its deadline is not overrun); the request is sent outside
        retries and breakers, within `CANCEL_TIMEOUT`, and skipped when the API windows have no
        room (PostHog would answer 429). `aclose()` waits for it.
        """
        task = asyncio.get_running_loop().create_task(self._send_cancel(path))
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def _send_cancel(self, path: str) -> None:
        with anyio.move_on_after(CANCEL_TIMEOUT):
            try:
                await self.windows("api").acquire(max_wait=0)
            except (WaitTooLong, SharedLimitsError):
                log.info("query_cancel_skipped", reason="rate_limit")
                return
            url = self._settings.host + path
            try:
                response = await self._request(
                    "DELETE", url, None, None, self._timeout(CANCEL_TIMEOUT)
                )
            except Exception as exc:  # noqa: BLE001 - best effort: never replaces the real error
                log.info("query_cancel_failed", error=type(exc).__name__)
                return
            log.info("query_cancel_sent", status_code=response.status_code)

    def _give_up(self, exc: Exception) -> bool:
        if not isinstance(exc, _RETRYABLE) or remaining() <= 0:
            return True
        if isinstance(exc.__cause__, WaitTooLong):
            return True  # a wait that would pass its bound: nothing was sent, and waiting is it
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
        flight: QueryFlight,
        state: dict[str, int],
    ) -> Any:
        state["attempts"] += 1
        breaker = self.breaker(_breaker(endpoint))
        bucket = self.windows(_windows(endpoint))
        breaker.reject_if_open()  # fail at once rather than queue for a slot first
        async with self._slot(endpoint):
            breaker.reject_if_open()  # again: an open breaker must not spend the windows' room
            await self._admission(bucket)
            if remaining() <= 0:  # the caller's deadline passed while waiting: send nothing
                raise RequestTimeoutError(
                    "The call's deadline (timeout=, or POSTHOG_CALL_TIMEOUT) passed before its "
                    "next request could be sent; nothing was sent. Allow the call more time."
                ) from WaitTooLong(0.0, paused=False)
            # The breaker admits only once a slot and room are ours: a call that queued while
            # it was closed must not be sent after it opened.
            async with breaker.admit():
                started = time.perf_counter()
                flight.on_the_wire = True
                response = await self._request_by_deadline(method, url, body, params)
                flight.on_the_wire = False
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
                raise await self._failure(response, endpoint)

    def breaker(self, name: Literal["query", "api"]) -> CircuitBreaker | SharedBreaker:
        """The breaker that decides for an endpoint class: the fleet's, with Redis."""
        return self.breakers[name] if self.shared is None else self.shared.breakers[name]

    def windows(self, name: Literal["query", "api"]) -> RateLimit | SharedWindows:
        """The rate windows that admit an endpoint class's requests: the fleet's, with Redis."""
        if self.shared is None:
            return self.limits.for_endpoint(name)
        return self.shared.windows[name]

    @contextlib.asynccontextmanager
    async def _slot(self, endpoint: Endpoint) -> AsyncIterator[None]:
        if endpoint != "query" or _slot_held.get():
            yield
            return
        bound = self._wait_bound()
        acquired = False
        with anyio.move_on_after(bound):
            await self.query_slots.acquire()
            acquired = True
        if not acquired:
            raise self._waited_too_long(
                bound,
                f"all {self._settings.max_concurrent_queries} query slots "
                "(POSTHOG_MAX_CONCURRENT_QUERIES) stayed busy",
            ) from WaitTooLong(bound, paused=False)
        try:
            if self.shared is None:
                yield
            else:
                async with self._shared_slot(self.shared.slots):
                    yield
        finally:
            self.query_slots.release()

    @contextlib.asynccontextmanager
    async def _shared_slot(self, slots: SharedSlots) -> AsyncIterator[None]:
        """One of the fleet's query slots, after this process's own."""
        holder = slots.new_holder()
        bound = self._wait_bound()
        try:
            try:
                await slots.acquire(holder, bound)
            except WaitTooLong as exc:
                raise self._waited_too_long(
                    bound,
                    f"all {slots.count} query slots shared through POSTHOG_REDIS_URL stayed "
                    "busy (other workers' queries)",
                ) from exc
            yield
        finally:
            await slots.release(holder)

    async def _admission(self, bucket: RateLimit | SharedWindows) -> None:
        bound = self._wait_bound()
        try:
            await bucket.acquire(max_wait=bound)
        except WaitTooLong as exc:
            reason = (
                f"PostHog asked to wait {exc.seconds:.0f} s (Retry-After) before more requests "
                "to this endpoint"
                if exc.paused
                else f"the {bucket.name} rate windows have no room for {exc.seconds:.0f} s"
            )
            raise self._waited_too_long(exc.seconds, reason) from exc

    def _wait_bound(self) -> float:
        return min(self._settings.max_retry_after, remaining())

    def _waited_too_long(self, seconds: float, reason: str) -> DriverError:
        """The error for a wait that would pass the deadline or `max_retry_after`."""
        if remaining() <= self._settings.max_retry_after:
            return RequestTimeoutError(
                f"{reason}; waiting longer would pass the call's deadline (timeout=, or "
                "POSTHOG_CALL_TIMEOUT). Nothing was sent; retry later or allow more time."
            )
        return RateLimitError(
            f"{reason}, longer than POSTHOG_MAX_RETRY_AFTER "
            f"({self._settings.max_retry_after:g} s). Nothing was sent; retry later.",
            retry_after=seconds,
        )

    async def _request_by_deadline(
        self, method: str, url: str, body: Any, params: dict[str, str] | None
    ) -> httpx2.Response:
        # httpx's timeouts bound each read, not the whole answer: a body that trickles in
        # could run on past `timeout` (and past a shared probe's lease). The attempt as a whole
        # gets `timeout`, or what is left of the call's deadline if that is less.
        left = remaining()
        seconds = min(self._settings.timeout, left)
        with anyio.CancelScope(deadline=anyio.current_time() + seconds) as scope:
            return await self._request(method, url, body, params, self._timeout(seconds))
        assert scope.cancelled_caught
        if seconds < self._settings.timeout:
            raise RequestTimeoutError(
                f"No answer from {self._settings.host} before the call's deadline (timeout=, or "
                "POSTHOG_CALL_TIMEOUT); narrow the query or allow more time."
            )
        raise RequestTimeoutError(
            f"No complete answer from {self._settings.host} within "
            f"{self._settings.timeout:g} s; narrow the query or raise POSTHOG_TIMEOUT."
        )

    def _timeout(self, seconds: float) -> httpx2.Timeout:
        seconds = max(seconds, 0.001)
        return httpx2.Timeout(seconds, connect=min(self._settings.connect_timeout, seconds))

    async def _request(
        self,
        method: str,
        url: str,
        body: Any,
        params: dict[str, str] | None,
        timeout: httpx2.Timeout,
    ) -> httpx2.Response:
        # The one place foreign exceptions become ours; most specific first.
        try:
            return await self.client.request(
                method,
                url,
                json=body,
                params=params,
                headers=_HEADERS,
                auth=self._auth,
                timeout=timeout,
            )
        except _FOREIGN_ERRORS as exc:
            raise self._translate(_scrubbed(exc)) from exc
        except RuntimeError as exc:
            # httpx2: "Cannot send a request, as the client has been closed."
            raise DriverError(
                f"The HTTP client is closed ({exc}); the driver was closed while this call was "
                "running, or the http_client passed in was closed. Use an open driver."
            ) from None

    def _translate(self, exc: Exception) -> DriverError:
        if isinstance(exc, httpx2.ConnectTimeout):
            return RequestTimeoutError(
                f"Could not connect to {self._settings.host} within "
                f"{self._settings.connect_timeout:g} s (POSTHOG_CONNECT_TIMEOUT); check "
                "POSTHOG_HOST and the network."
            )
        if isinstance(exc, httpx2.TimeoutException):
            return RequestTimeoutError(
                f"No answer from {self._settings.host} within {self._settings.timeout:g} s "
                f"({type(exc).__name__}); narrow the query or raise POSTHOG_TIMEOUT."
            )
        if isinstance(exc, httpx2.NetworkError | httpx2.RemoteProtocolError | httpx2.ProxyError):
            return TransportError(
                f"Could not reach {self._settings.host} ({type(exc).__name__}: {exc}); "
                "check POSTHOG_HOST and the network."
            )
        return DriverError(
            f"The request to {self._settings.host} failed ({type(exc).__name__}: {exc}); "
            "check POSTHOG_HOST."
        )

    async def _failure(self, response: httpx2.Response, endpoint: Endpoint) -> DriverError:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is not None and response.status_code in (429, 503):
            # Even a wait longer than we will sleep pauses the class: other calls then fail
            # at once instead of collecting more 429s. With Redis, every worker's calls.
            windows = self.windows(_windows(endpoint))
            if isinstance(windows, SharedWindows):
                await windows.pause(retry_after)
            else:
                windows.pause(retry_after)
        return error_from_response(
            response.status_code,
            response.text,
            retry_after=retry_after,
            query=endpoint == "query",
        )


class _BearerAuth(httpx2.Auth):
    """Puts the key on each request, so no plain copy of it lives in our frames' locals."""

    def __init__(self, key: SecretStr) -> None:
        self._key = key

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = "Bearer " + self._key.get_secret_value()
        yield request


_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}


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


def _decode(response: httpx2.Response) -> Any:
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
