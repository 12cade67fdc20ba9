"""Mixed faults and a cancellation storm against the local server: every call ends cleanly."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from posthog_driver import AsyncDriver, CircuitOpenError, DriverError, DriverSettings
from tests.reliability.conftest import Tally, leaks, tasks_left

pytestmark = pytest.mark.reliability

# Answers that do not depend on when the data was generated (the dataset ends "now").
QUERIES: list[tuple[str, dict[str, Any] | None]] = [
    ("SELECT event, count() AS n FROM events GROUP BY event ORDER BY event", None),
    ("SELECT count() AS n FROM events WHERE event = {ev}", {"ev": "$pageview"}),
    (
        "SELECT properties.$browser AS browser, count() AS n FROM events "
        "GROUP BY browser ORDER BY browser",
        None,
    ),
    ("SELECT count(DISTINCT person_id) AS people FROM events", None),
]
EVENTS, SEED = 20_000, 7


def _settings(srv: Any, **overrides: Any) -> DriverSettings:
    values: dict[str, Any] = {
        "host": srv.url,
        "api_key": srv.api_key,
        "project_id": srv.project_id,
        "retry_base_delay": 0.0,
        "retry_max_delay": 0.0,
        "query_rate_per_minute": 1_000_000,
        "query_rate_per_hour": 1_000_000,
        "api_rate_per_minute": 1_000_000,
        "api_rate_per_hour": 1_000_000,
        "timeout": 20.0,
        **overrides,
    }
    return DriverSettings(**values)


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[Any]:
    """A 20,000-event dataset behind 20% 503s, 5% drops, 5% 429s and 0-20 ms latency."""
    from posthog_local import LocalServer, ServerOptions  # noqa: PLC0415

    options = ServerOptions(
        events=EVENTS,
        seed=SEED,
        fault_5xx_rate=0.2,
        fault_drop_rate=0.05,
        fault_429_rate=0.05,
        retry_after=1,
        latency_ms=(0, 20),
    )
    with LocalServer(options) as server:
        yield server


async def _answers(srv: Any) -> list[list[dict[str, Any]]]:
    """Each query's answer, retried past any injected fault (the data is the same either way)."""
    async with AsyncDriver(_settings(srv, max_retries=20, breaker_threshold=100)) as driver:
        return [await driver.query(q, v) for q, v in QUERIES]


async def test_mixed_faults_end_as_correct_rows_or_typed_errors(
    faulty_server: Any, soak: bool, tally: Tally, captured_logs: list[dict[str, Any]]
) -> None:
    # The dataset ends at the server's start time, so the fault-free answer comes from this
    # server, through a driver that retries past every fault.
    expected = await _answers(faulty_server)
    captured_logs.clear()
    total, callers = (2000, 50) if soak else (200, 50)
    rng = random.Random(5)
    plan = [rng.randrange(len(QUERIES)) for _ in range(total)]
    wrong: list[int] = []
    settings = _settings(
        faulty_server, max_retries=3, breaker_reset_seconds=0.5, max_concurrent_queries=8
    )
    async with AsyncDriver(settings) as driver:

        async def caller() -> None:
            while plan:
                which = plan.pop()
                query, values = QUERIES[which]
                try:
                    rows = await driver.query(query, values)
                except CircuitOpenError as exc:
                    # A well-behaved caller waits as told; one that does not would burn the
                    # whole plan in the instant the breaker is open.
                    tally.record(exc)
                    await asyncio.sleep(exc.retry_after)
                    continue
                except Exception as exc:  # noqa: BLE001 - sorting typed from untyped is the point
                    tally.record(exc)
                    continue
                tally.record(rows)
                if rows != expected[which]:
                    wrong.append(which)

        await asyncio.gather(*(caller() for _ in range(callers)))
        left = leaks(driver)
    tally.leaks = len(left) + len(tasks_left())
    tally.attempts_from(captured_logs)

    assert tally.untyped == []
    assert tally.calls == total
    assert tally.successes > 0
    assert wrong == []
    assert tally.max_attempts <= settings.max_retries + 1
    assert left == []
    assert tasks_left() == []
    assert not any(faulty_server.api_key in text for text in tally.texts)


async def test_cancellation_storm_leaves_nothing_behind(
    local_server: Any, soak: bool, tally: Tally, captured_logs: list[dict[str, Any]]
) -> None:
    total = 500 if soak else 100
    rng = random.Random(11)
    expected = await _answers(local_server)
    # Default slots (3): most cancelled calls wait for a slot, some hold one, some are on the wire.
    async with (
        httpx2.AsyncClient() as client,
        AsyncDriver(_settings(local_server), http_client=client) as driver,
    ):
        tasks = [
            asyncio.create_task(driver.query(*QUERIES[i % len(QUERIES)])) for i in range(total)
        ]
        for task in tasks:
            asyncio.get_running_loop().call_later(rng.uniform(0.0, 0.5), task.cancel)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = sum(isinstance(o, asyncio.CancelledError) for o in outcomes)
        tally.scenario += f" ({cancelled} of {total} cancelled)"
        for outcome in outcomes:
            if not isinstance(outcome, asyncio.CancelledError):
                tally.record(outcome)
        after = [await driver.query(q, v) for q, v in QUERIES]
        for rows in after:
            tally.record(rows)
        # httpx2 (unlike httpcore 1.x, encode/httpcore#1093) leaves no connection or request
        # stuck after cancellations, so the pool is checked like our own state
        left = leaks(driver, client)
        breaker = driver.status().breakers["query"]
        state, failures = breaker.state, breaker.failures
    tally.leaks = len(left) + len(tasks_left())
    tally.attempts_from(captured_logs)

    assert cancelled > 0
    assert tally.untyped == []
    assert state == "closed"
    assert failures == 0
    assert left == []
    assert after == expected
    assert tasks_left() == []
    assert not any(local_server.api_key in text for text in tally.texts)
    assert not any(isinstance(o, DriverError) for o in outcomes)
