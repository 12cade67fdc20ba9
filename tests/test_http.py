"""The request pipeline: mapping, retries, Retry-After, breaker and slots, seen through respx."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import time
from typing import Any

import anyio
import httpcore2
import httpx
import httpx2
import pytest
from structlog.testing import capture_logs

from posthog_driver import (
    AsyncDriver,
    AuthenticationError,
    CircuitOpenError,
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
from posthog_driver._http import USER_AGENT, _retry_delays, parse_retry_after
from tests import respx2
from tests.conftest import FAKE_KEY
from tests.posthog_bodies import PROJECT_URL, QUERY_URL, error_body, hogql_response

OK = hogql_response(["n"], ["UInt64"], [[1]])


@pytest.fixture
def mock() -> Any:
    with respx2.mock(assert_all_called=False) as router:
        yield router


async def test_every_request_carries_the_bearer_key_and_a_user_agent(mock, make_settings):
    route = mock.post(QUERY_URL).respond(200, json=OK)
    async with AsyncDriver(make_settings()) as driver:
        await driver.query("SELECT 1")
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {FAKE_KEY}"
    assert request.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("posthog-driver/")


async def test_the_query_body_is_a_valid_posthog_query_request(mock, make_settings, posthog_schema):
    route = mock.post(QUERY_URL).respond(200, json=OK)
    async with AsyncDriver(make_settings()) as driver:
        await driver.query("SELECT {x}", values={"x": [1, "a", None, {"k": True}]})
    for call in route.calls:
        posthog_schema("QueryRequest", __import__("json").loads(call.request.content))
    first = __import__("json").loads(route.calls[0].request.content)
    assert first["query"] == {
        "kind": "HogQLQuery",
        "query": "SELECT {x}",
        "values": {"x": [1, "a", None, {"k": True}]},
    }


@pytest.mark.parametrize(
    ("status", "body", "error", "fragment"),
    [
        (
            400,
            error_body("validation_error", "hogql_syntax_error", "expected identifier"),
            QueryError,
            "expected identifier",
        ),
        (
            401,
            error_body("authentication_error", "authentication_failed", "key is invalid."),
            AuthenticationError,
            "POSTHOG_API_KEY",
        ),
        (
            403,
            error_body("authentication_error", "permission_denied", "no access to project"),
            PermissionDeniedError,
            "POSTHOG_PROJECT_ID",
        ),
        (404, error_body("invalid_request", "not_found", "Not found."), NotFoundError, "404"),
    ],
)
async def test_client_errors_map_to_their_type_and_are_never_retried(  # noqa: PLR0917
    mock, make_settings, status, body, error, fragment
):
    route = mock.post(QUERY_URL).respond(status, json=body)
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(error) as caught:
            await driver.query("SELECT 1")
    assert route.call_count == 1
    assert caught.value.status_code == status
    assert caught.value.code == body["code"]
    assert caught.value.detail == body["detail"]
    assert fragment in str(caught.value)


async def test_403_names_the_missing_scope(mock, make_settings):
    detail = "API key missing required scope 'query:read'"
    mock.post(QUERY_URL).respond(
        403, json=error_body("authentication_error", "permission_denied", detail)
    )
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(PermissionDeniedError) as caught:
            await driver.query("SELECT 1")
    assert caught.value.missing_scope == "query:read"
    assert "'query:read' scope" in str(caught.value)


async def test_an_html_error_page_still_gives_a_typed_error_with_an_excerpt(mock, make_settings):
    mock.post(QUERY_URL).respond(400, text="<html><body>Bad gateway config</body></html>")
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(QueryError) as caught:
            await driver.query("SELECT 1")
    assert caught.value.status_code == 400
    assert caught.value.detail is None
    assert "Bad gateway config" in str(caught.value)


async def test_an_unexpected_status_gives_a_driver_error_with_the_status(mock, make_settings):
    mock.post(QUERY_URL).respond(402, json=error_body("quota", "quota_exceeded", "Quota reached"))
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(DriverError) as caught:
            await driver.query("SELECT 1")
    assert caught.value.status_code == 402
    assert "Quota reached" in str(caught.value)


async def test_a_200_that_is_not_json_gives_a_driver_error(mock, make_settings):
    mock.post(QUERY_URL).respond(200, text="<html>login</html>")
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(DriverError, match="not JSON") as caught:
            await driver.query("SELECT 1")
    assert caught.value.status_code == 200


@pytest.mark.parametrize("body", [{"unexpected": 1}, [1, 2], {"results": [1, 2]}])
async def test_a_200_of_the_wrong_shape_gives_a_driver_error(mock, make_settings, body):
    mock.post(QUERY_URL).respond(200, json=body)
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(DriverError, match="unexpected shape"):
            await driver.query("SELECT 1")


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_transient_statuses_are_retried_until_success(mock, make_settings, status):
    route = mock.post(QUERY_URL)
    route.side_effect = [
        httpx.Response(status),
        httpx.Response(status),
        httpx.Response(200, json=OK),
    ]
    async with AsyncDriver(make_settings()) as driver:
        rows = await driver.query("SELECT 1")
    assert rows == [{"n": 1}]
    assert route.call_count == 3


async def test_retries_stop_after_max_retries(mock, make_settings):
    route = mock.post(QUERY_URL).respond(503)
    async with AsyncDriver(make_settings(max_retries=2)) as driver:
        with pytest.raises(ServerError) as caught:
            await driver.query("SELECT 1")
    assert route.call_count == 3
    assert caught.value.status_code == 503


async def test_501_is_not_retried(mock, make_settings):
    route = mock.post(QUERY_URL).respond(501)
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(ServerError, match="check that POSTHOG_HOST is PostHog's app host"):
            await driver.query("SELECT 1")
    assert route.call_count == 1


async def test_network_failures_are_retried_then_raised_as_transport_error(mock, make_settings):
    route = mock.post(QUERY_URL).mock(side_effect=httpx.ConnectError("connection refused"))
    async with AsyncDriver(make_settings(max_retries=1)) as driver:
        with pytest.raises(TransportError, match="POSTHOG_HOST") as caught:
            await driver.query("SELECT 1")
    assert route.call_count == 2
    assert caught.value.status_code is None


async def test_timeouts_are_retried_then_raised_as_request_timeout_error(mock, make_settings):
    route = mock.post(QUERY_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    async with AsyncDriver(make_settings(max_retries=1)) as driver:
        with pytest.raises(RequestTimeoutError, match="POSTHOG_TIMEOUT"):
            await driver.query("SELECT 1")
    assert route.call_count == 2


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


_HTTPX_ERRORS = sorted(
    {
        c
        for base in (httpx2.HTTPError, httpx2.InvalidURL, httpx2.CookieConflict, httpx2.StreamError)
        for c in [base, *_all_subclasses(base)]
        if c.__module__.startswith("httpx2")
    },
    key=lambda c: c.__name__,
)


@pytest.mark.parametrize("exc_class", _HTTPX_ERRORS, ids=lambda c: c.__name__)
async def test_no_httpx_exception_escapes(make_settings, exc_class):
    def boom(request: httpx2.Request) -> httpx2.Response:
        response = httpx2.Response(500, request=request)
        for args, kwargs in (
            (("boom",), {"request": request, "response": response}),
            (("boom",), {"request": request}),
            (("boom",), {}),
            ((), {}),
        ):
            try:
                error = exc_class(*args, **kwargs)
            except TypeError:
                continue
            raise error
        raise AssertionError(f"cannot build {exc_class}")  # pragma: no cover

    async with (
        httpx2.AsyncClient(transport=httpx2.MockTransport(boom)) as client,
        AsyncDriver(make_settings(max_retries=1), http_client=client) as driver,
    ):
        with pytest.raises(DriverError):
            await driver.query("SELECT 1")


def test_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now=1792567670.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now=1792567700.0) == 0.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None


def test_backoff_delays_double_up_to_the_cap_and_are_zero_after_a_retry_after():
    delays = _retry_delays(base=0.5, cap=3.0)
    next(delays)
    assert [delays.send(ServerError("x")) for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert delays.send(RateLimitError("x", retry_after=2.0)) == 0.0


async def test_backoff_waits_are_logged_with_their_length(mock, make_settings):
    route = mock.post(QUERY_URL)
    route.side_effect = [httpx.Response(500), httpx.Response(500), httpx.Response(200, json=OK)]
    settings = make_settings(retry_base_delay=0.001, retry_max_delay=0.002)
    with capture_logs() as logs:
        async with AsyncDriver(settings) as driver:
            await driver.query("SELECT 1")
    retries = [e for e in logs if e["event"] == "retrying"]
    assert [e["attempt"] for e in retries] == [1, 2]
    assert all(0 <= e["wait_s"] <= 0.002 for e in retries)
    assert retries[0] | {"wait_s": 0} == {
        "event": "retrying",
        "log_level": "info",
        "endpoint": "query",
        "attempt": 1,
        "wait_s": 0,
        "error": "ServerError",
        "status_code": 500,
        "retry_after": None,
    }


async def test_a_retry_after_above_the_cap_raises_at_once(mock, make_settings):
    route = mock.post(QUERY_URL).respond(
        429,
        headers={"Retry-After": "120"},
        json=error_body("throttled_error", "throttled", "Expected available in 120 seconds."),
    )
    async with AsyncDriver(make_settings(max_retry_after=60)) as driver:
        with pytest.raises(RateLimitError) as caught:
            await driver.query("SELECT 1")
    assert route.call_count == 1
    assert caught.value.retry_after == 120.0
    assert caught.value.status_code == 429
    assert "retry in 120 s" in str(caught.value)


async def test_a_429_pauses_the_whole_bucket_not_only_its_request(mock, make_settings):
    arrivals: list[tuple[str, float]] = []
    first = True

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal first
        arrivals.append((request.url.path, time.monotonic()))
        if first:
            first = False
            return httpx.Response(429, headers={"Retry-After": "0.3"})
        return httpx.Response(200, json=OK)

    mock.post(QUERY_URL).mock(side_effect=answer)
    mock.get(PROJECT_URL).mock(side_effect=answer)
    async with AsyncDriver(make_settings()) as driver, anyio.create_task_group() as group:
        group.start_soon(driver.query, "SELECT 1")
        with anyio.fail_after(2):
            while driver.status().limits["query"].paused_for == 0:  # noqa: ASYNC110 - no event
                await anyio.sleep(0.001)
        assert driver.status().limits["api"].paused_for == 0
        group.start_soon(driver.query, "SELECT 2")
        assert await driver.health_check()  # another bucket: not paused
    throttled_at = arrivals[0][1]
    later_queries = [t for path, t in arrivals[1:] if path.endswith("/query/")]
    assert len(later_queries) == 2
    assert all(t >= throttled_at + 0.3 for t in later_queries)


async def test_the_breaker_opens_after_consecutive_failures_and_rejects_without_sending(
    mock, make_settings
):
    route = mock.post(QUERY_URL).respond(500)
    async with AsyncDriver(make_settings(max_retries=0, breaker_threshold=3)) as driver:
        for _ in range(3):
            with pytest.raises(ServerError):
                await driver.query("SELECT 1")
        with pytest.raises(CircuitOpenError) as caught:
            await driver.query("SELECT 1")
    assert route.call_count == 3
    assert 0 < caught.value.retry_after <= 30


async def test_client_errors_never_open_the_breaker(mock, make_settings):
    route = mock.post(QUERY_URL).respond(400, json=error_body("validation_error", "x", "bad"))
    async with AsyncDriver(make_settings(breaker_threshold=2)) as driver:
        for _ in range(4):
            with pytest.raises(QueryError):
                await driver.query("SELECT nope")
    assert route.call_count == 4


async def test_no_more_than_max_concurrent_queries_are_in_flight(mock, make_settings):
    in_flight = peak = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(200, json=OK)

    mock.post(QUERY_URL).mock(side_effect=answer)
    async with AsyncDriver(make_settings(max_concurrent_queries=2)) as driver:
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(driver.query, "SELECT 1")
        assert driver.status().query_slots_in_use == 0
    assert peak == 2


async def test_a_cancelled_query_releases_its_slot_and_is_not_a_breaker_failure(
    mock, make_settings
):
    started = anyio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        await anyio.sleep(10)
        return httpx.Response(200, json=OK)  # pragma: no cover - cancelled first

    mock.post(QUERY_URL).mock(side_effect=hang)
    async with AsyncDriver(make_settings(max_concurrent_queries=1, breaker_threshold=1)) as driver:
        async with anyio.create_task_group() as group:
            group.start_soon(driver.query, "SELECT 1")
            await started.wait()
            group.cancel_scope.cancel()
        assert driver.status().query_slots_in_use == 0
        assert driver.status().breakers["query"].failures == 0
        mock.post(QUERY_URL).respond(200, json=OK)
        assert await driver.query("SELECT 1") == [{"n": 1}]


async def test_a_client_passed_in_is_used_and_left_open(mock, make_settings):
    mock.post(QUERY_URL).respond(200, json=OK)
    sent: list[httpx2.Request] = []

    async def seen(request: httpx2.Request) -> None:
        sent.append(request)

    async with httpx2.AsyncClient(event_hooks={"request": [seen]}) as client:
        async with AsyncDriver(make_settings(), http_client=client) as driver:
            await driver.query("SELECT 1")
        assert not client.is_closed
    assert [r.url.path for r in sent] == ["/api/projects/4242/query/"]


async def test_the_driver_closes_the_client_it_made(make_settings, monkeypatch):
    closed: list[httpx2.AsyncClient] = []
    close = httpx2.AsyncClient.aclose

    async def recording_close(self: httpx2.AsyncClient) -> None:
        closed.append(self)
        await close(self)

    monkeypatch.setattr(httpx2.AsyncClient, "aclose", recording_close)
    async with AsyncDriver(make_settings()):
        pass
    assert len(closed) == 1
    assert closed[0].is_closed


async def test_a_503_with_a_long_retry_after_is_a_breaker_failure_and_not_retried(
    mock, make_settings
):
    route = mock.post(QUERY_URL).respond(503, headers={"Retry-After": "3600"})
    async with AsyncDriver(make_settings(breaker_threshold=1, max_retry_after=10)) as driver:
        with pytest.raises(ServerError) as caught:
            await driver.query("SELECT 1")
        assert driver.status().breakers["query"].failures == 1
        with pytest.raises(CircuitOpenError):
            await driver.query("SELECT 1")
    assert route.call_count == 1
    assert caught.value.retry_after == 3600.0


async def test_a_503_with_a_short_retry_after_pauses_the_bucket_then_retries(mock, make_settings):
    route = mock.post(QUERY_URL)
    route.side_effect = [
        httpx.Response(503, headers={"Retry-After": "0.05"}),
        httpx.Response(200, json=OK),
    ]
    with capture_logs() as logs:
        async with AsyncDriver(make_settings(retry_base_delay=5.0)) as driver:
            assert await driver.query("SELECT 1") == [{"n": 1}]
    retry = next(e for e in logs if e["event"] == "retrying")
    assert retry["wait_s"] == 0  # the bucket's pause did the waiting, not a 5 s backoff
    assert retry["retry_after"] == 0.05
    assert any(e["event"] == "bucket_paused" for e in logs)


async def test_a_429_longer_than_the_cap_pauses_the_bucket_and_fails_later_calls_at_once(
    mock, make_settings
):
    route = mock.post(QUERY_URL).respond(429, headers={"Retry-After": "600"})
    mock.get(PROJECT_URL).respond(200, json={"id": 1})
    async with AsyncDriver(make_settings(max_retry_after=5)) as driver:
        with pytest.raises(RateLimitError):
            await driver.query("SELECT 1")
        assert driver.status().limits["query"].paused_for > 590
        with pytest.raises(RateLimitError) as caught:
            await driver.query("SELECT 2")
        assert await driver.health_check() is True  # the other bucket is not paused
    assert route.call_count == 1
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 590
    assert "POSTHOG_MAX_RETRY_AFTER" in str(caught.value)


async def test_a_retry_after_http_date_is_honoured_through_the_pipeline(mock, make_settings):
    when = email.utils.formatdate(time.time() + 3600, usegmt=True)
    mock.post(QUERY_URL).respond(429, headers={"Retry-After": when})
    async with AsyncDriver(make_settings(max_retry_after=60)) as driver:
        with pytest.raises(RateLimitError) as caught:
            await driver.query("SELECT 1")
    assert caught.value.retry_after is not None
    assert 3500 < caught.value.retry_after <= 3600


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000])
async def test_absurdly_nested_json_gives_a_typed_error(mock, make_settings, body):
    mock.post(QUERY_URL).mock(
        side_effect=[httpx.Response(200, content=body), httpx.Response(400, content=body)]
    )
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(DriverError):
            await driver.query("SELECT 1")
        with pytest.raises(QueryError):
            await driver.query("SELECT 1")


async def test_calls_queued_for_a_slot_are_not_sent_once_the_breaker_opened(mock, make_settings):
    async def failing(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(0.01)
        return httpx.Response(500)

    route = mock.post(QUERY_URL).mock(side_effect=failing)
    settings = make_settings(max_retries=0, breaker_threshold=3, max_concurrent_queries=1)
    outcomes: list[str] = []

    async def one() -> None:
        try:
            await driver.query("SELECT 1")
        except DriverError as exc:
            outcomes.append(type(exc).__name__)

    async with AsyncDriver(settings) as driver, anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(one)
    assert route.call_count == 3
    assert outcomes.count("ServerError") == 3
    assert outcomes.count("CircuitOpenError") == 17


class GatedBackend(httpcore2.AsyncNetworkBackend):
    """Connects for real, but holds every connect (or every read) until the gate opens."""

    def __init__(self, hold: str) -> None:
        self.hold = hold  # "connect" or "read"
        self.gate = anyio.Event()
        self.held = 0
        self._real = httpcore2.AnyIOBackend()

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        if self.hold == "connect" and not self.gate.is_set():
            self.held += 1
            await self.gate.wait()
        stream = await self._real.connect_tcp(*args, **kwargs)
        return GatedStream(stream, self) if self.hold == "read" else stream

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class GatedStream(httpcore2.AsyncNetworkStream):
    def __init__(self, stream: httpcore2.AsyncNetworkStream, backend: GatedBackend) -> None:
        self._stream, self._backend = stream, backend

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if not self._backend.gate.is_set():
            self._backend.held += 1
            await self._backend.gate.wait()
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


@pytest.mark.parametrize("hold", ["connect", "read"])
async def test_a_cancellation_storm_leaves_no_connection_stuck(local_server, hold):
    # encode/httpcore#1093: with httpcore 1.x, requests cancelled while connecting (or while
    # waiting for their answer) left connections that no request owned but that still counted
    # as busy; enough of them and every later request ended in PoolTimeout. httpx2 has the fix.
    backend = GatedBackend(hold)
    transport = httpx2.AsyncHTTPTransport()
    transport._pool = httpcore2.AsyncConnectionPool(  # keep none: every request connects
        max_connections=2, max_keepalive_connections=0, network_backend=backend
    )
    settings = DriverSettings(
        host=local_server.url, api_key=local_server.api_key, project_id=local_server.project_id
    )
    async with (
        httpx2.AsyncClient(transport=transport) as client,
        AsyncDriver(settings, http_client=client) as driver,
    ):
        for _ in range(3):
            backend.gate = anyio.Event()
            backend.held = 0
            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(driver.health_check)
                with anyio.fail_after(5):
                    while backend.held < 2:  # noqa: ASYNC110 - the pool's two slots are held
                        await anyio.sleep(0.001)
                group.cancel_scope.cancel()  # every call is blocked: no timing involved
            backend.gate.set()
            with anyio.fail_after(10):
                assert await driver.health_check() is True
        pool = transport._pool
        assert all(c.is_idle() or c.is_closed() for c in pool.connections)
        assert not pool._requests


async def test_an_answer_that_trickles_in_is_cut_at_the_timeout(make_settings):
    """httpx's timeouts bound each read; a body sent a byte at a time never trips them. The
    attempt as a whole is bounded by `timeout`, so it cannot outlive a probe's lease either."""
    body = json.dumps(hogql_response(["x"], ["Int64"], [[1]])).encode()
    requests: list[bytes] = []
    done = asyncio.Event()

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            requests.append((await reader.readuntil(b"\r\n\r\n")).split(b" ")[0])
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode())
            for byte in body:  # one byte every 0.1 s: seconds in all, each read well in time
                if done.is_set():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)
        writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = make_settings(host=f"http://127.0.0.1:{port}", timeout=0.5, max_retries=0)
    try:
        with anyio.fail_after(30):  # a hang guard, not a timing assertion
            async with AsyncDriver(settings) as driver:
                with pytest.raises(RequestTimeoutError, match="POSTHOG_TIMEOUT"):
                    await driver.query("SELECT 1")
    finally:
        done.set()
        server.close()
        await asyncio.sleep(0.3)  # the handlers see `done` and end
    assert requests[0] == b"POST"  # one attempt (then, maybe, the best-effort DELETE)
    assert requests.count(b"POST") == 1
