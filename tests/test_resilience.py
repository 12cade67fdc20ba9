"""The resilience core under PostHog's real behaviour: one test per fault a review reproduced.

Each test names the observation it pins (issue "The resilience core holds under real PostHog
behaviour"). Real servers on 127.0.0.1 where the behaviour is a server's (a host that accepts
and never answers, a refused port, the local PostHog server's async mode and cancel); respx
for exact HTTP edge cases. No assertion is about wall-clock time: `fail_after` only stops a
regression from hanging the suite.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from structlog.testing import capture_logs

from posthog_driver import (
    AsyncDriver,
    CircuitOpenError,
    DriverError,
    DriverSettings,
    QueryError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    ValidationError,
)
from tests import respx2
from tests.conftest import FAKE_KEY
from tests.posthog_bodies import (
    EVENT_DEFS_URL,
    HOST,
    PROJECT,
    PROJECT_URL,
    QUERY_URL,
    error_body,
    hogql_response,
)

OK = hogql_response(["n"], ["UInt64"], [[1]])
SCHEMA = {"tables": {"events": {"type": "posthog", "name": "events", "fields": {}}}}


@pytest.fixture
def mock() -> Iterator[Any]:
    with respx2.mock(assert_all_called=False) as router:
        router.delete(url__regex=rf"{QUERY_URL}\w+/$").respond(200, json={"message": "ok"})
        yield router


class SilentHost:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> SilentHost:
        async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            self._writers.append(writer)

        self._server = await asyncio.start_server(hold, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(host: str = HOST, **overrides: Any) -> DriverSettings:
    values: dict[str, Any] = {
        "api_key": FAKE_KEY,
        "project_id": PROJECT,
        "host": host,
        "retry_base_delay": 0.0,
        "retry_max_delay": 0.0,
        **overrides,
    }
    return DriverSettings(**values)


def _sent_query_id(request: httpx.Request) -> str:
    return str(json.loads(request.content)["client_query_id"])


# 1. A call queued for a slot must not sleep through a long Retry-After while holding it --------


async def test_a_call_queued_behind_a_long_retry_after_fails_at_once_and_frees_the_slot(mock):
    answer_first = anyio.Event()

    async def throttled(request: httpx.Request) -> httpx.Response:
        await answer_first.wait()
        return httpx.Response(429, headers={"Retry-After": "3600"})

    route = mock.post(QUERY_URL).mock(side_effect=throttled)
    outcomes: list[BaseException] = []

    async def one(driver: AsyncDriver) -> None:
        try:
            await driver.query("SELECT 1")
        except DriverError as exc:
            outcomes.append(exc)

    settings = _settings(max_concurrent_queries=1, max_retry_after=5)
    async with AsyncDriver(settings) as driver:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(one, driver)
                group.start_soon(one, driver)  # queued for the only slot
                await anyio.wait_all_tasks_blocked()
                answer_first.set()
        status = driver.status()
    assert [type(o) for o in outcomes] == [RateLimitError, RateLimitError]
    assert route.call_count == 1  # the queued call sent nothing
    assert all(o.retry_after is not None and o.retry_after > 3500 for o in outcomes)
    assert status.query_slots_in_use == 0
    assert status.limits["query"].paused_for > 3500


def test_retry_after_is_clamped_to_a_day():
    from posthog_driver._http import parse_retry_after  # noqa: PLC0415 - the parser's edge

    assert parse_retry_after("1e30") == 86_400.0
    assert parse_retry_after("inf") == 86_400.0
    assert parse_retry_after("nan") is None


# 2. health_check(): one short attempt, never feeding the breaker ------------------------------


async def test_health_check_against_a_silent_host_is_one_short_attempt():
    async with SilentHost() as host:
        async with AsyncDriver(_settings(host.url, max_retries=5)) as driver:
            with anyio.fail_after(10):
                assert await driver.health_check(timeout=0.2) is False
            status = driver.status()
        assert host.connections == 1  # no retries
    assert status.breakers["api"].failures == 0


async def test_health_checks_against_a_refused_port_never_open_the_breaker():
    settings = _settings(f"http://127.0.0.1:{_closed_port()}", breaker_threshold=1, max_retries=0)
    async with AsyncDriver(settings) as driver:
        assert await driver.health_check() is False
        assert await driver.health_check() is False
        assert driver.status().breakers["api"].state == "closed"
        with pytest.raises(TransportError):  # real traffic still reaches the network
            await driver.list_objects()


async def test_health_check_is_false_at_once_while_a_breaker_is_open(mock):
    mock.post(QUERY_URL).respond(503, text="<html>maintenance</html>")
    project = mock.get(PROJECT_URL).respond(200, json={"id": int(PROJECT)})
    async with AsyncDriver(_settings(breaker_threshold=1, max_retries=0)) as driver:
        with pytest.raises(ServerError):
            await driver.query("SELECT 1")
        assert await driver.health_check() is False
    assert project.call_count == 0


# 3. One load per key, and every waiter gets its outcome ---------------------------------------


async def test_concurrent_discovery_of_a_failing_schema_loads_it_once(mock):
    async def slow_failure(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(0.05)  # a real round trip: the other callers arrive meanwhile
        return httpx.Response(503, text="down")

    route = mock.post(QUERY_URL).mock(side_effect=slow_failure)
    outcomes: list[type[BaseException]] = []

    async def one(driver: AsyncDriver) -> None:
        try:
            await driver.list_objects()
        except DriverError as exc:
            outcomes.append(type(exc))

    settings = _settings(max_retries=0, breaker_threshold=100)
    async with AsyncDriver(settings) as driver, anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(one, driver)
    assert route.call_count == 1
    assert outcomes == [ServerError] * 6


# 4. A query's own error is not an outage ------------------------------------------------------


@pytest.mark.parametrize("status", [500, 504])
async def test_a_querys_own_5xx_is_a_query_error_not_retried_and_not_counted(mock, status):
    body = error_body("server_error", "query_timeout", "Query exceeded the maximum execution time")
    route = mock.post(QUERY_URL).respond(status, json=body)
    async with AsyncDriver(_settings(breaker_threshold=2)) as driver:
        for _ in range(3):
            with pytest.raises(QueryError) as caught:
                await driver.query("SELECT slow")
        breaker = driver.status().breakers["query"]
    assert route.call_count == 3  # one attempt each: sending it again fails the same way
    assert caught.value.status_code == status
    assert caught.value.detail == body["detail"]
    assert (breaker.state, breaker.failures) == ("closed", 0)


async def test_a_query_outage_does_not_block_discovery(mock):
    def answer(request: httpx.Request) -> httpx.Response:
        kind = json.loads(request.content)["query"]["kind"]
        if kind == "DatabaseSchemaQuery":
            return httpx.Response(200, json=SCHEMA)
        return httpx.Response(502, text="<html>bad gateway</html>")

    mock.post(QUERY_URL).mock(side_effect=answer)
    mock.get(EVENT_DEFS_URL).respond(200, json={"results": [], "next": None})
    mock.get(url__regex=rf"{HOST}/api/projects/{PROJECT}/property_definitions/.*").respond(
        200, json={"results": [], "next": None}
    )
    async with AsyncDriver(_settings(breaker_threshold=2, max_retries=0)) as driver:
        for _ in range(2):
            with pytest.raises(ServerError):
                await driver.query("SELECT 1")
        with pytest.raises(CircuitOpenError):
            await driver.query("SELECT 1")
        assert await driver.list_objects() == ["events"]
        assert await driver.get_fields("events") == {}
        status = driver.status()
    assert status.breakers["query"].state == "open"
    assert status.breakers["api"].state == "closed"


# 5. Deadlines: per call, counted like any timeout; connect fails fast ------------------------


async def test_calls_with_a_deadline_against_a_hung_host_time_out_and_open_the_breaker():
    async with SilentHost() as host:
        settings = _settings(host.url, breaker_threshold=5, max_concurrent_queries=10)
        async with AsyncDriver(settings) as driver:
            outcomes: list[BaseException] = []

            async def one() -> None:
                try:
                    await driver.query("SELECT 1", timeout=0.3)
                except DriverError as exc:
                    outcomes.append(exc)

            with anyio.fail_after(10):
                async with anyio.create_task_group() as group:
                    for _ in range(10):
                        group.start_soon(one)
            breaker = driver.status().breakers["query"]
    assert [type(o) for o in outcomes] == [RequestTimeoutError] * 10
    assert "deadline" in str(outcomes[0])
    assert breaker.state == "open"
    assert breaker.failures >= 5


async def test_the_connect_timeout_is_short_and_separate_from_the_read_timeout():
    seen: list[dict[str, float]] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.extensions["timeout"])
        return httpx2.Response(200, json=OK)

    settings = _settings(timeout=60, connect_timeout=2)
    async with (
        httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as client,
        AsyncDriver(settings, http_client=client) as driver,
    ):
        await driver.query("SELECT 1")
        await driver.query("SELECT 1", timeout=1)
    assert seen[0]["connect"] == 2.0
    assert seen[0]["read"] == 60.0
    assert seen[1]["connect"] <= 1.0  # never past the call's own deadline
    assert seen[1]["read"] <= 1.0


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "soon", True])
async def test_a_timeout_that_is_not_a_positive_number_is_refused(mock, timeout):
    async with AsyncDriver(_settings()) as driver:
        with pytest.raises(ValidationError, match="timeout"):
            await driver.query("SELECT 1", timeout=timeout)


async def test_a_deadline_covers_the_retries_too(mock):
    route = mock.post(QUERY_URL).respond(503, text="down")
    settings = _settings(
        max_retries=20, retry_base_delay=0.05, retry_max_delay=0.05, breaker_threshold=100
    )
    async with AsyncDriver(settings) as driver:
        with anyio.fail_after(10), pytest.raises((RequestTimeoutError, ServerError)):
            await driver.query("SELECT 1", timeout=0.3)
    assert 1 <= route.call_count < 21


# 6. Cancelled or timed-out queries are cancelled at PostHog -----------------------------------


async def test_a_query_past_its_deadline_is_cancelled_at_posthog_by_its_own_id(mock):
    posted: list[str] = []

    async def hang(request: httpx.Request) -> httpx.Response:
        posted.append(_sent_query_id(request))
        await anyio.sleep(30)
        return httpx.Response(200, json=OK)  # pragma: no cover - the deadline comes first

    mock.post(QUERY_URL).mock(side_effect=hang)
    async with AsyncDriver(_settings()) as driver:
        with pytest.raises(RequestTimeoutError):
            await driver.query("SELECT 1", timeout=0.2)
    [query_id] = posted
    deletes = [c.request for c in mock.calls if c.request.method == "DELETE"]
    assert [d.url.path for d in deletes] == [f"/api/projects/{PROJECT}/query/{query_id}/"]


async def test_a_cancelled_query_is_cancelled_at_posthog_and_not_counted(mock):
    sent = anyio.Event()
    posted: list[str] = []

    async def hang(request: httpx.Request) -> httpx.Response:
        posted.append(_sent_query_id(request))
        sent.set()
        await anyio.sleep(30)
        return httpx.Response(200, json=OK)  # pragma: no cover - cancelled first

    mock.post(QUERY_URL).mock(side_effect=hang)
    async with AsyncDriver(_settings(breaker_threshold=1)) as driver:
        async with anyio.create_task_group() as group:
            group.start_soon(driver.query, "SELECT 1")
            await sent.wait()
            group.cancel_scope.cancel()
        status = driver.status()
    [query_id] = posted
    deletes = [c.request.url.path for c in mock.calls if c.request.method == "DELETE"]
    assert deletes == [f"/api/projects/{PROJECT}/query/{query_id}/"]
    assert status.breakers["query"].failures == 0
    assert status.query_slots_in_use == 0


@pytest.fixture(scope="module")
def one_slot_server() -> Iterator[Any]:
    """A local server that runs one query at a time, for as long as 30 s."""
    from posthog_local import LocalServer, ServerOptions  # noqa: PLC0415 - needs the extra

    options = ServerOptions(events=2_000, seed=3, max_concurrent_queries=1, query_timeout=30)
    with LocalServer(options) as server:
        yield server


def _local(server: Any) -> AsyncDriver:
    settings = DriverSettings(
        host=server.url, api_key=server.api_key, project_id=server.project_id, max_retries=0
    )
    return AsyncDriver(settings)


LONG = "SELECT count() FROM numbers(100000000000)"


async def test_async_mode_answers_as_blocking_mode_and_reports_progress(one_slot_server):
    progress: list[dict[str, Any]] = []
    query = "SELECT event, count() AS n FROM events GROUP BY event ORDER BY event"
    async with _local(one_slot_server) as driver:
        polled = await driver.query(query, on_progress=progress.append)
        blocking = await driver.query(query, mode="blocking")
    assert polled == blocking
    assert polled.columns == ["event", "n"]
    assert progress  # called while it ran


async def test_an_async_query_past_its_deadline_is_cancelled_and_frees_posthogs_slot(
    one_slot_server,
):
    # The server runs one query at a time and would let this one run for 30 s: only the
    # driver's DELETE stops it, so the next query gets the slot instead of a 429.
    async with _local(one_slot_server) as driver:
        with anyio.fail_after(20), pytest.raises(RequestTimeoutError):
            await driver.query(LONG, mode="async", timeout=1)
        assert await driver.query("SELECT 1 AS one") == [{"one": 1}]


async def test_an_async_query_error_is_a_query_error_with_posthogs_message(one_slot_server):
    async with _local(one_slot_server) as driver:
        with pytest.raises(QueryError) as caught:
            await driver.query("SELECT nope FROM events", mode="async")
    assert "nope" in str(caught.value)


# 7. The rate windows: PostHog's allowance as a burst, never more -----------------------------


async def test_the_whole_minute_allowance_goes_out_as_a_burst_then_the_window_holds(mock):
    route = mock.post(QUERY_URL).respond(200, json=OK)
    settings = _settings(query_rate_per_minute=50, max_retry_after=1, max_concurrent_queries=50)
    async with AsyncDriver(settings) as driver:
        async with anyio.create_task_group() as group:
            for _ in range(49):
                group.start_soon(driver.query, "SELECT 1")
        with pytest.raises(RateLimitError, match="rate windows have no room"):
            await driver.query("SELECT 1")
        window = driver.status().limits["query"].windows[0]
    assert route.call_count == 49  # 50 less 2% headroom
    assert (window.used, window.limit, window.seconds) == (49, 49, 60.0)


# 10. Runtime honesty: asyncio only, said plainly ----------------------------------------------


def test_outside_asyncio_a_call_says_the_driver_needs_asyncio():
    driver = AsyncDriver(_settings())
    call = driver.query("SELECT 1")
    with pytest.raises(DriverError, match="runs on asyncio only"):
        call.send(None)  # driven by something that is not asyncio's event loop
    call.close()


# The public status snapshot and what query() tells about truncation --------------------------


async def test_status_is_a_read_only_snapshot(mock):
    mock.post(QUERY_URL).respond(200, json=OK)
    async with AsyncDriver(_settings()) as driver:
        before = driver.status()
        await driver.query("SELECT 1")
        after = driver.status()
    assert before.state == "open"
    assert before.limits["query"].windows[0].used == 0
    assert after.limits["query"].windows[0].used == 1
    assert after.breakers["query"].state == "closed"
    assert after.query_slots == 3
    with pytest.raises(AttributeError):
        after.state = "closed"  # type: ignore[misc]


async def test_query_says_when_posthog_cut_the_answer(mock):
    rows = [[i] for i in range(100)]
    mock.post(QUERY_URL).respond(
        200, json={**hogql_response(["n"], ["UInt64"], rows), "hasMore": True}
    )
    async with AsyncDriver(_settings()) as driver:
        answer = await driver.query("SELECT number AS n FROM numbers(1000)")
    assert len(answer) == 100
    assert answer.has_more is True
    assert answer.columns == ["n"]
    assert answer[0] == {"n": 0}


# Found by review: waits, deadlines and cancels at their edges ----------------------------------


async def test_a_wait_for_a_busy_slot_is_not_retried_and_cancels_nothing(mock):
    release = anyio.Event()
    posted: list[str] = []

    async def busy(request: httpx.Request) -> httpx.Response:
        posted.append(_sent_query_id(request))
        await release.wait()
        return httpx.Response(200, json=OK)

    mock.post(QUERY_URL).mock(side_effect=busy)
    settings = _settings(max_concurrent_queries=1, max_retry_after=0.2)
    failures: list[DriverError] = []

    async def second(driver: AsyncDriver) -> None:
        try:
            await driver.query("SELECT 2")
        except DriverError as exc:
            failures.append(exc)
        release.set()

    with capture_logs() as logs:
        async with AsyncDriver(settings) as driver, anyio.create_task_group() as group:
            group.start_soon(driver.query, "SELECT 1")
            await anyio.wait_all_tasks_blocked()
            group.start_soon(second, driver)
    assert [type(f) for f in failures] == [RateLimitError]
    assert "query slots" in str(failures[0])
    assert not [e for e in logs if e["event"] == "retrying"]  # waiting again is the same wait
    deletes = [c.request.url.path for c in mock.calls if c.request.method == "DELETE"]
    assert deletes == []  # the second query was never sent, the first one answered
    assert len(posted) == 1


async def test_a_deadline_passing_in_a_queue_is_not_a_breaker_failure(mock):
    release = anyio.Event()

    async def busy(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json=OK)

    mock.post(QUERY_URL).mock(side_effect=busy)
    settings = _settings(max_concurrent_queries=1, breaker_threshold=1)
    async with AsyncDriver(settings) as driver, anyio.create_task_group() as group:
        group.start_soon(driver.query, "SELECT 1")
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(RequestTimeoutError):
            await driver.query("SELECT 2", timeout=0.2)  # waits for the slot, sends nothing
        assert driver.status().breakers["query"].failures == 0
        release.set()


async def test_a_shared_load_cut_by_one_callers_deadline_is_loaded_again_for_the_others(mock):
    loads = 0

    async def slow_schema(request: httpx.Request) -> httpx.Response:
        nonlocal loads
        loads += 1
        await anyio.sleep(0.4)
        return httpx.Response(200, json=SCHEMA)

    mock.post(QUERY_URL).mock(side_effect=slow_schema)
    outcomes: dict[str, Any] = {}

    async def one(name: str, timeout: float) -> None:
        try:
            outcomes[name] = await driver.list_objects(timeout=timeout)
        except DriverError as exc:
            outcomes[name] = type(exc)

    async with AsyncDriver(_settings()) as driver, anyio.create_task_group() as group:
        group.start_soon(one, "hurried", 0.1)
        await anyio.wait_all_tasks_blocked()
        group.start_soon(one, "patient", 30)
    assert outcomes == {"hurried": RequestTimeoutError, "patient": ["events"]}
    assert loads == 2


async def test_the_cancel_of_a_late_query_does_not_hold_its_caller(mock):
    async def hang(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(30)
        return httpx.Response(200)  # pragma: no cover - never reached

    mock.post(QUERY_URL).mock(side_effect=hang)
    mock.delete(url__regex=rf"{QUERY_URL}\w+/$").mock(side_effect=hang)  # PostHog slow too
    async with AsyncDriver(_settings()) as driver:
        # the DELETE runs in the background (up to 2 s); the caller gets its error at once
        with anyio.fail_after(1.5), pytest.raises(RequestTimeoutError):
            await driver.query("SELECT 1", timeout=0.2)


def _async_answers(mock: Any, poll: httpx.Response) -> None:
    running = {"query_status": {"id": "q9", "complete": False, "error": False}}
    mock.post(QUERY_URL).respond(202, json=running)
    mock.get(f"{QUERY_URL}q9/").mock(return_value=poll)


async def test_an_async_query_whose_poll_fails_is_cancelled_at_posthog(mock):
    _async_answers(mock, httpx.Response(503, text="unavailable"))
    async with AsyncDriver(_settings(max_retries=0)) as driver:
        with pytest.raises(ServerError):
            await driver.query("SELECT 1", mode="async")
    deletes = [c.request.url.path for c in mock.calls if c.request.method == "DELETE"]
    assert len(deletes) == 1


async def test_an_async_query_whose_progress_callback_raises_is_cancelled_at_posthog(mock):
    _async_answers(mock, httpx.Response(202, json={"query_status": {"complete": False}}))

    def broken(progress: dict[str, Any]) -> None:
        raise ValueError("the caller's own bug")

    async with AsyncDriver(_settings()) as driver:
        with pytest.raises(ValueError, match="own bug"):
            await driver.query("SELECT 1", on_progress=broken)
    deletes = [c.request.url.path for c in mock.calls if c.request.method == "DELETE"]
    assert len(deletes) == 1


async def test_a_failed_async_query_is_not_cancelled_again(mock):
    failed = {"query_status": {"complete": True, "error": True, "error_message": "bad column"}}
    _async_answers(mock, httpx.Response(400, json=failed))
    async with AsyncDriver(_settings()) as driver:
        with pytest.raises(QueryError, match="bad column"):
            await driver.query("SELECT 1", mode="async")
    assert not [c for c in mock.calls if c.request.method == "DELETE"]


async def test_async_queries_keep_to_max_concurrent_queries_for_their_whole_run(one_slot_server):
    # The server runs one query at a time and answers 429 to a second; the driver, allowed one
    # query too, must hold its slot while PostHog runs the first, not only while posting it.
    settings = DriverSettings(
        host=one_slot_server.url,
        api_key=one_slot_server.api_key,
        project_id=one_slot_server.project_id,
        max_retries=0,
        max_concurrent_queries=1,
    )
    query = "SELECT count() AS n FROM events"
    async with AsyncDriver(settings) as driver:
        first, second = await asyncio.gather(
            driver.query(query, mode="async"), driver.query(query, mode="async")
        )
    assert first == second
    assert first[0]["n"] > 0


@pytest.mark.parametrize("timeout", ["1", [1], -1])
async def test_health_check_never_raises_even_on_a_bad_timeout(mock, timeout):
    mock.get(PROJECT_URL).respond(200, json={"id": int(PROJECT)})
    async with AsyncDriver(_settings()) as driver:
        assert await driver.health_check(timeout=timeout) is False


async def test_a_timeout_after_retries_says_how_many_attempts_it_took():
    # observed by a newcomer: "within 60 s" after 246 s and 4 attempts; now the whole is said
    async with SilentHost() as host:
        settings = _settings(host.url, max_retries=2, timeout=0.2, breaker_threshold=10)
        async with AsyncDriver(settings) as driver:
            with pytest.raises(RequestTimeoutError) as caught:
                await driver.query("SELECT 1")
    assert "within 0.2 s" in str(caught.value)
    assert "after 3 attempts over" in str(caught.value)  # the first and max_retries=2 more
    assert "after 3 attempts" in repr(caught.value)
