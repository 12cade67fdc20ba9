"""The rate limits' semantics: bursts, sliding windows, pauses and cancellation.

"Admitted at once" is checked without timing: `acquire()` runs inside an already-cancelled scope,
so it is only admitted if it never has to wait.
"""

from __future__ import annotations

import math

import anyio
import pytest
from structlog.testing import capture_logs

from posthog_driver._limits import RateLimit, RateLimits, WaitTooLong, budget, held_for


class FakeClock:
    """A monotonic clock that only moves when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def admitted_at_once(limit: RateLimit) -> bool:
    """Whether `acquire()` returns without waiting (a waiting acquire is cancelled instead)."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        await limit.acquire()
    return not scope.cancelled_caught


ROOMY = [(1000, 60.0)]  # a window that never holds anyone back in these tests


# --- capacity: exact sliding windows ------------------------------------------------------------


@pytest.mark.parametrize(
    ("requests", "seconds", "allowed"),
    [(1, 60.0, 1), (3, 60.0, 2), (50, 60.0, 49), (240, 60.0, 235), (2400, 3600.0, 2352)],
)
async def test_the_whole_budget_is_available_at_once_as_a_burst(
    clock: FakeClock, requests: int, seconds: float, allowed: int
) -> None:
    assert budget(requests) == allowed  # 2% under PostHog's limit, at least 1
    limit = RateLimit("query", [(requests, seconds)], clock=clock)

    for _ in range(allowed):
        assert await admitted_at_once(limit)
    assert not await admitted_at_once(limit)


async def test_room_comes_back_exactly_as_admissions_age_out_of_the_window(
    clock: FakeClock,
) -> None:
    limit = RateLimit("query", [(240, 60.0)], clock=clock)
    for _ in range(100):
        assert await admitted_at_once(limit)
    clock.now += 30.0
    for _ in range(135):
        assert await admitted_at_once(limit)
    assert not await admitted_at_once(limit)
    # The window plus its settling time (1 s for a minute: PostHog counts on arrival, which
    # follows our admission): the first hundred are 60.999 s old, still held.
    assert held_for(60.0) == 61.0
    clock.now += 30.999
    assert not await admitted_at_once(limit)
    clock.now += 0.001
    for _ in range(100):
        assert await admitted_at_once(limit)
    assert not await admitted_at_once(limit)


def test_with_constant_demand_it_admits_posthogs_allowance_in_every_window() -> None:
    # The shape PostHog throttles with. Measured for the leaky buckets this replaced, with the
    # same demand: 154 / 303 / 489 admitted in the first 1 / 5 / 10 minutes.
    clock = FakeClock()
    start = clock.now
    limit = RateLimit("query", [(240, 60.0), (2400, 3600.0)], clock=clock)
    admitted: list[float] = []

    async def demand() -> None:
        while clock.now < start + 3600:
            with anyio.CancelScope() as scope:
                scope.cancel()
                await limit.acquire()
            if not scope.cancelled_caught:
                admitted.append(clock.now)
            clock.now += 0.05  # an agent that always wants one more query

    anyio.run(demand)
    first = [sum(1 for t in admitted if t < start + minutes * 60) for minutes in (1, 5, 10, 60)]
    assert first == [235, 1175, 2350, 2352]
    # never more than the budget in any interval of either window
    for seconds, allowed in ((60.0, 235), (3600.0, 2352)):
        right = 0
        for left, at in enumerate(admitted):
            while right < len(admitted) and admitted[right] < at + seconds:
                right += 1
            assert right - left <= allowed


async def test_every_window_applies_so_the_stricter_holds_back(clock: FakeClock) -> None:
    limit = RateLimit("query", [(1000, 60.0), (2, 3600.0)], clock=clock)

    assert await admitted_at_once(limit)
    assert not await admitted_at_once(limit)
    clock.now += 61.0  # the per-minute window is empty again; the hourly one is not
    assert not await admitted_at_once(limit)


# --- bounded waits ------------------------------------------------------------------------------


async def test_a_wait_longer_than_max_wait_fails_at_once_taking_nothing(clock: FakeClock) -> None:
    limit = RateLimit("query", [(1, 60.0)], clock=clock)
    limit.pause(3600.0)

    with anyio.CancelScope() as scope:  # fails before any await: the scope is never reached
        scope.cancel()
        with pytest.raises(WaitTooLong) as caught:
            await limit.acquire(max_wait=5.0)
    assert caught.value.paused
    assert caught.value.seconds == 3600.0
    assert limit.waiting == 0
    clock.now += 3600.0
    assert await admitted_at_once(limit)  # the single slot of the window was not spent


async def test_a_full_window_is_a_wait_too(clock: FakeClock) -> None:
    limit = RateLimit("query", [(1, 60.0)], clock=clock)
    await limit.acquire()

    with pytest.raises(WaitTooLong) as caught:
        await limit.acquire(max_wait=1.0)
    assert not caught.value.paused
    assert caught.value.seconds == held_for(60.0)


async def test_a_waiter_gives_up_as_soon_as_the_pause_grows_past_its_bound(
    clock: FakeClock,
) -> None:
    limit = RateLimit("query", ROOMY, clock=clock)
    limit.pause(0.02)
    failures: list[WaitTooLong] = []

    async def waiter() -> None:
        try:
            await limit.acquire(max_wait=5.0)
        except WaitTooLong as exc:
            failures.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            limit.pause(3600.0)  # a later 429 asked for an hour
            clock.now += 0.02
    assert len(failures) == 1
    assert failures[0].paused
    assert limit.waiting == 0


# --- pauses -------------------------------------------------------------------------------------


async def test_a_new_bucket_is_not_paused(clock: FakeClock) -> None:
    limit = RateLimit("query", ROOMY, clock=clock)

    assert limit.paused_for == 0.0
    assert await admitted_at_once(limit)


async def test_paused_for_counts_down_with_the_clock(clock: FakeClock) -> None:
    limit = RateLimit("query", ROOMY, clock=clock)

    limit.pause(30.0)
    clock.now += 12.5
    assert limit.paused_for == 17.5
    clock.now += 100.0
    assert limit.paused_for == 0.0


async def test_the_later_pause_wins(clock: FakeClock) -> None:
    limit = RateLimit("query", ROOMY, clock=clock)

    limit.pause(10.0)
    limit.pause(3.0)
    assert limit.paused_for == 10.0
    limit.pause(20.0)
    assert limit.paused_for == 20.0


async def test_pause_holds_back_every_acquirer_of_that_bucket_until_the_clock_passes_it(
    clock: FakeClock,
) -> None:
    limits = RateLimits(query=ROOMY, api=ROOMY, clock=clock)
    query = limits.for_endpoint("query")
    admitted = 0

    async def acquirer() -> None:
        nonlocal admitted
        await query.acquire()
        admitted += 1

    query.pause(0.02)  # short in real time, but only the (fake) clock can end it
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(acquirer)
            await anyio.sleep(0.1)
            assert admitted == 0
            assert query.waiting == 5
            assert not await admitted_at_once(query)  # a newcomer is held back too
            clock.now += 0.02

    assert admitted == 5
    assert query.waiting == 0


async def test_pause_does_not_hold_back_the_other_bucket(clock: FakeClock) -> None:
    limits = RateLimits(query=ROOMY, api=ROOMY, clock=clock)

    limits.for_endpoint("query").pause(60.0)

    assert await admitted_at_once(limits.for_endpoint("api"))
    assert limits.for_endpoint("api").paused_for == 0.0


async def test_an_acquirer_already_waiting_honours_an_extended_pause(clock: FakeClock) -> None:
    limit = RateLimit("query", ROOMY, clock=clock)
    limit.pause(0.02)

    async with anyio.create_task_group() as tg:
        tg.start_soon(limit.acquire)
        await anyio.wait_all_tasks_blocked()
        limit.pause(60.0)
        clock.now += 0.03  # past the first pause, well inside the second
        await anyio.sleep(0.1)
        assert limit.waiting == 1
        tg.cancel_scope.cancel()


async def test_a_pause_that_began_while_queued_for_a_token_is_waited_out(
    clock: FakeClock,
) -> None:
    limit = RateLimit("query", [(1, 0.05)], clock=clock)  # one token per 50 ms
    await limit.acquire()

    async with anyio.create_task_group() as tg:
        tg.start_soon(limit.acquire)  # queues for the next token
        await anyio.wait_all_tasks_blocked()
        limit.pause(60.0)
        await anyio.sleep(0.2)  # the token has come by now; the pause must still hold it
        assert limit.waiting == 1
        tg.cancel_scope.cancel()


async def test_pause_is_logged_when_it_takes_effect(clock: FakeClock) -> None:
    limit = RateLimit("query", ROOMY, clock=clock)

    with capture_logs() as logs:
        limit.pause(12.0)
        limit.pause(5.0)  # inside the first pause: nothing changes, nothing logged

    assert logs == [
        {"event": "bucket_paused", "bucket": "query", "seconds": 12.0, "log_level": "warning"}
    ]


@pytest.mark.parametrize("seconds", [-1.0, math.inf, math.nan])
def test_pause_refuses_negative_or_non_finite_seconds(seconds: float) -> None:
    limit = RateLimit("query", ROOMY)

    with pytest.raises(ValueError, match="pause needs a finite number of seconds, 0 or more"):
        limit.pause(seconds)


# --- cancellation -------------------------------------------------------------------------------


async def test_cancelled_during_a_pause_takes_no_token_and_leaves_no_waiter(
    clock: FakeClock,
) -> None:
    limit = RateLimit("query", [(1, 60.0)], clock=clock)
    limit.pause(0.02)

    async with anyio.create_task_group() as tg:
        tg.start_soon(limit.acquire)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()

    assert limit.waiting == 0
    clock.now += 0.02
    assert await admitted_at_once(limit)  # the single token was still there


async def test_cancelled_while_queued_for_a_token_leaves_no_waiter() -> None:
    limit = RateLimit("query", [(2, 0.05)])  # one token per 50 ms
    await limit.acquire()

    async with anyio.create_task_group() as tg:
        tg.start_soon(limit.acquire)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()

    assert limit.waiting == 0
    await anyio.sleep(0.1)  # the token the cancelled waiter queued for comes free
    assert await admitted_at_once(limit)  # ...and nobody else took it


# --- construction and repr ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ([], "rate limit 'query' needs at least one \\(requests, seconds\\) window"),
        ([(0, 60.0)], "a window must allow at least 1 request, got 0"),
        ([(10, 60.0), (-5, 3600.0)], "a window must allow at least 1 request, got -5"),
        ([(10, 0.0)], "a window must last a finite number of seconds above 0, got 0.0"),
        ([(10, -1.0)], "a window must last a finite number of seconds above 0, got -1.0"),
        ([(10, math.inf)], "a window must last a finite number of seconds above 0, got inf"),
        ([(10, math.nan)], "a window must last a finite number of seconds above 0, got nan"),
    ],
)
def test_invalid_windows_are_refused(windows: list[tuple[int, float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimit("query", windows)


def test_rate_limits_validate_both_endpoint_classes() -> None:
    with pytest.raises(ValueError, match="rate limit 'api'"):
        RateLimits(query=ROOMY, api=[(0, 60.0)])


def test_for_endpoint_returns_one_bucket_per_endpoint_class() -> None:
    limits = RateLimits(query=[(240, 60.0)], api=[(1200, 3600.0)])

    assert limits.for_endpoint("query") is limits.for_endpoint("query")
    assert limits.for_endpoint("query").windows == ((240, 60.0),)
    assert limits.for_endpoint("api").windows == ((1200, 3600.0),)


def test_for_endpoint_refuses_an_unknown_endpoint_class() -> None:
    limits = RateLimits(query=ROOMY, api=ROOMY)

    with pytest.raises(ValueError, match="unknown endpoint class 'events'; expected 'query' or"):
        limits.for_endpoint("events")  # type: ignore[arg-type]


async def test_repr_shows_windows_pause_and_waiters(clock: FakeClock) -> None:
    limits = RateLimits(query=[(240, 60), (2400, 3600)], api=[(240, 60)], clock=clock)
    query = limits.for_endpoint("query")
    query.pause(12.34)

    assert repr(query) == (
        "<RateLimit name='query' used=[0/235 per 60s, 0/2352 per 3600s] paused_for=12.3 waiting=0>"
    )
    assert repr(limits) == (
        "<RateLimits query=<RateLimit name='query' used=[0/235 per 60s, 0/2352 per 3600s] "
        "paused_for=12.3 waiting=0> api=<RateLimit name='api' used=[0/235 per 60s] "
        "paused_for=0.0 waiting=0>>"
    )


def test_the_settling_time_is_two_percent_of_a_window_and_at_most_a_second() -> None:
    assert held_for(1.0) == pytest.approx(1.02)
    assert held_for(60.0) == 61.0
    assert held_for(3600.0) == 3601.0
