"""Outage then recovery: the breaker opens, probes once per period, closes after recovery.

The server is real (uvicorn on 127.0.0.1, switched between 503 and healthy); the breaker's
clock is a manual one, so "one period" is exact and no assertion depends on wall time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import posthog_driver._breaker
from posthog_driver import AsyncDriver, CircuitOpenError, DriverSettings, ServerError
from tests.reliability.conftest import Tally, leaks, tasks_left
from tests.reliability.switchable import ROWS, SwitchableServer

pytestmark = pytest.mark.reliability

KEY = "phx_OUTAGEKEY0123456789abcdefghijklmnopqrstuvwxyz"
THRESHOLD, RESET = 3, 0.5
CALLERS = 20


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[SwitchableServer]:
    with SwitchableServer() as srv:
        yield srv


QUERY = "SELECT event, count() AS n FROM events GROUP BY event"
EXPECTED = [{"event": ROWS[0][0], "n": ROWS[0][1]}]


async def _one(driver: AsyncDriver) -> Any:
    try:
        return await driver.query(QUERY)
    except Exception as exc:  # noqa: BLE001 - the outcome is what is recorded
        return exc


async def _burst(driver: AsyncDriver, tally: Tally) -> list[Any]:
    outcomes = await asyncio.gather(
        *(driver.query(QUERY) for _ in range(CALLERS)),
        return_exceptions=True,
    )
    for outcome in outcomes:
        tally.record(outcome)
    return outcomes


async def test_outage_opens_the_breaker_probes_once_per_period_and_recovers(
    server: SwitchableServer,
    soak: bool,
    tally: Tally,
    captured_logs: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    periods = 20 if soak else 4
    clock = ManualClock()
    settings = DriverSettings(
        host=server.url,
        api_key=KEY,
        project_id="1",
        max_retries=0,
        breaker_threshold=THRESHOLD,
        breaker_reset_seconds=RESET,
        max_concurrent_queries=1,  # one attempt at a time: failures are counted in order
    )
    monkeypatch.setattr(posthog_driver._breaker, "_now", clock)  # the breakers' clock
    async with AsyncDriver(settings) as driver:

        def state() -> str:
            return driver.status().breakers["query"].state

        server.up = False

        # One call at a time until the threshold, so the failures are counted in order.
        for _ in range(THRESHOLD):
            tally.record(outcome := await _one(driver))
            assert isinstance(outcome, ServerError)
        assert state() == "open"
        rejected = await _burst(driver, tally)
        assert all(isinstance(o, CircuitOpenError) for o in rejected)
        assert server.requests == THRESHOLD

        probes_per_period = []
        for _ in range(periods):
            seen = server.requests
            clock.now += RESET * 0.9  # still inside the open period: nothing is sent
            await _burst(driver, tally)
            assert server.requests == seen
            clock.now += RESET * 0.1  # the period is over: one probe, which fails
            await _burst(driver, tally)
            probes_per_period.append(server.requests - seen)
            assert state() == "open"

        server.up = True
        clock.now += RESET  # within one period of recovery the probe gets through
        seen = server.requests
        recovered = await _burst(driver, tally)
        state_after_probe = state()
        after = await _burst(driver, tally)
        left = leaks(driver)
    tally.leaks = len(left) + len(tasks_left())
    tally.attempts_from(captured_logs)

    assert probes_per_period == [1] * periods
    assert state_after_probe == "closed"
    assert server.requests > seen
    # The probe closed the breaker; the callers queued behind it for the slot then went through.
    assert recovered == [EXPECTED] * CALLERS
    assert after == [EXPECTED] * CALLERS
    assert tally.untyped == []
    assert left == []
    assert not any(KEY in text for text in tally.texts)
