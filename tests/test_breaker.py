"""The circuit breaker's semantics, pinned down with a fake monotonic clock."""

from __future__ import annotations

import anyio
import pytest
from structlog.testing import capture_logs

from posthog_driver._breaker import BreakerState, CircuitBreaker
from posthog_driver._errors import (
    CircuitOpenError,
    NotFoundError,
    QueryError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
)


class FakeClock:
    """A monotonic clock that only moves when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Interrupted(BaseException):
    """Stands for any BaseException that is not an Exception (KeyboardInterrupt, SystemExit...)."""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_breaker(clock: FakeClock, *, threshold: int = 3, reset: float = 30.0) -> CircuitBreaker:
    return CircuitBreaker(threshold=threshold, reset_seconds=reset, clock=clock)


async def succeed(breaker: CircuitBreaker) -> None:
    async with breaker.admit():
        pass


async def fail(breaker: CircuitBreaker, error: Exception | None = None) -> None:
    error = error if error is not None else ServerError("502 from PostHog", status_code=502)
    with pytest.raises(type(error)):
        async with breaker.admit():
            raise error


async def open_breaker(breaker: CircuitBreaker, clock: FakeClock) -> None:
    while breaker.state is BreakerState.CLOSED:
        await fail(breaker)


async def half_open_breaker(breaker: CircuitBreaker, clock: FakeClock) -> None:
    await open_breaker(breaker, clock)
    clock.now += 30.0


# --- CLOSED -------------------------------------------------------------------------------------


async def test_new_breaker_is_closed_and_admits(clock: FakeClock) -> None:
    breaker = make_breaker(clock)

    await succeed(breaker)

    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 0


async def test_fewer_consecutive_failures_than_threshold_keep_it_closed(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=3)

    await fail(breaker)
    await fail(breaker)

    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 2


async def test_threshold_consecutive_failures_open_it(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=3)

    for _ in range(3):
        await fail(breaker)

    assert breaker.state is BreakerState.OPEN
    assert breaker.failures == 3


@pytest.mark.parametrize(
    "error",
    [
        ServerError("503", status_code=503),
        TransportError("connection refused"),
        RequestTimeoutError("no answer in 10 s"),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_each_default_failure_type_counts(clock: FakeClock, error: Exception) -> None:
    breaker = make_breaker(clock, threshold=1)

    await fail(breaker, error)

    assert breaker.state is BreakerState.OPEN


async def test_what_counts_as_a_failure_can_be_chosen(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        threshold=1, is_failure=lambda exc: isinstance(exc, ConnectionError), clock=clock
    )

    await fail(breaker, ServerError("500", status_code=500))
    assert breaker.state is BreakerState.CLOSED

    await fail(breaker, ConnectionResetError())
    assert breaker.state is BreakerState.OPEN


async def test_success_resets_the_failure_streak(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=3)
    await fail(breaker)
    await fail(breaker)

    await succeed(breaker)
    await fail(breaker)
    await fail(breaker)

    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 2


@pytest.mark.parametrize(
    "error",
    [
        QueryError("Unknown table", status_code=400),
        NotFoundError("404", status_code=404),
        RateLimitError("429", status_code=429, retry_after=120.0),
        ValueError("a bug in the caller"),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_other_errors_count_as_success_and_reset_the_streak(
    clock: FakeClock, error: Exception
) -> None:
    breaker = make_breaker(clock, threshold=3)
    await fail(breaker)
    await fail(breaker)

    await fail(breaker, error)  # the exception still propagates: the breaker never swallows

    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 0


async def test_exception_group_holding_a_failure_counts_as_failure(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=1)

    with pytest.raises(ExceptionGroup):
        async with breaker.admit():
            raise ExceptionGroup("attempt", [QueryError("400"), ServerError("500")])

    assert breaker.state is BreakerState.OPEN


async def test_exception_group_without_a_failure_counts_as_success(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=2)
    await fail(breaker)

    with pytest.raises(ExceptionGroup):
        async with breaker.admit():
            raise ExceptionGroup("attempt", [QueryError("400")])

    assert breaker.failures == 0


async def test_cancellation_never_counts_as_failure_or_success(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=3)
    await fail(breaker)
    await fail(breaker)

    for _ in range(5):
        with anyio.CancelScope() as scope:
            async with breaker.admit():
                scope.cancel()
                await anyio.sleep_forever()
        assert scope.cancelled_caught

    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 2


async def test_other_base_exceptions_never_count(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=1)

    with pytest.raises(Interrupted):
        async with breaker.admit():
            raise Interrupted

    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 0


# --- OPEN ---------------------------------------------------------------------------------------


async def test_open_breaker_rejects_without_running_the_block(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    await open_breaker(breaker, clock)
    ran = False

    with pytest.raises(CircuitOpenError):
        async with breaker.admit():
            ran = True

    assert not ran


async def test_rejection_says_what_happened_and_when_to_retry(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=3, reset=30.0)
    await open_breaker(breaker, clock)
    clock.now += 17.7

    with pytest.raises(CircuitOpenError) as caught:
        await succeed(breaker)

    assert str(caught.value) == (
        "The circuit breaker is open after 3 consecutive failures (server errors, timeouts or "
        "network failures); no request was sent. Retry in 12.3 s."
    )
    assert caught.value.status_code is None


async def test_retry_after_decreases_as_time_passes(clock: FakeClock) -> None:
    breaker = make_breaker(clock, reset=30.0)
    await open_breaker(breaker, clock)
    seen = []

    for _ in range(3):
        with pytest.raises(CircuitOpenError) as caught:
            await succeed(breaker)
        seen.append(caught.value.retry_after)
        clock.now += 10.0

    assert seen == pytest.approx([30.0, 20.0, 10.0])


async def test_failures_of_stragglers_do_not_extend_the_open_period(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=1, reset=30.0)
    straggler_may_fail = anyio.Event()

    async def straggler() -> None:
        async with breaker.admit():  # admitted while still closed
            await straggler_may_fail.wait()
            raise TransportError("connection reset")

    with pytest.raises(ExceptionGroup):  # noqa: PT012 - the group wraps the straggler's failure
        async with anyio.create_task_group() as tg:
            tg.start_soon(straggler)
            await anyio.wait_all_tasks_blocked()
            await fail(breaker)  # opens the breaker at t=1000
            clock.now += 20.0
            straggler_may_fail.set()

    clock.now += 10.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.failures == 1


async def test_successes_of_stragglers_do_not_close_it(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=1)
    straggler_may_finish = anyio.Event()

    async def straggler() -> None:
        async with breaker.admit():
            await straggler_may_finish.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(straggler)
        await anyio.wait_all_tasks_blocked()
        await fail(breaker)
        straggler_may_finish.set()

    assert breaker.state is BreakerState.OPEN
    assert breaker.failures == 1


# --- HALF_OPEN ----------------------------------------------------------------------------------


async def test_open_breaker_reports_half_open_once_reset_time_passed(clock: FakeClock) -> None:
    breaker = make_breaker(clock, reset=30.0)
    await open_breaker(breaker, clock)

    clock.now += 29.9
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN


async def test_half_open_admits_exactly_one_probe_among_50_callers(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    await half_open_breaker(breaker, clock)
    probe_may_finish = anyio.Event()
    admitted = 0
    rejected: list[CircuitOpenError] = []

    async def caller() -> None:
        nonlocal admitted
        try:
            async with breaker.admit():
                admitted += 1
                await probe_may_finish.wait()
        except CircuitOpenError as error:
            rejected.append(error)

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        assert admitted == 1
        assert len(rejected) == 49
        assert breaker.probe_in_flight
        probe_may_finish.set()

    assert breaker.state is BreakerState.CLOSED


async def test_callers_turned_away_during_the_probe_are_told_to_retry_in_a_second(
    clock: FakeClock,
) -> None:
    breaker = make_breaker(clock)
    await half_open_breaker(breaker, clock)

    async with breaker.admit():  # the probe
        with pytest.raises(CircuitOpenError) as caught:
            await succeed(breaker)

    assert caught.value.retry_after == 1.0
    assert str(caught.value) == (
        "The circuit breaker is half-open and one probe request is checking whether PostHog has "
        "recovered; no request was sent. Retry in 1.0 s."
    )


async def test_probe_retry_after_never_exceeds_the_reset_period(clock: FakeClock) -> None:
    breaker = make_breaker(clock, reset=0.25)
    await half_open_breaker(breaker, clock)

    async with breaker.admit():
        with pytest.raises(CircuitOpenError) as caught:
            await succeed(breaker)

    assert caught.value.retry_after == 0.25


async def test_probe_success_closes_the_breaker(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    await half_open_breaker(breaker, clock)

    await succeed(breaker)

    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 0
    assert not breaker.probe_in_flight


async def test_probe_answered_with_a_client_error_closes_the_breaker(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    await half_open_breaker(breaker, clock)

    await fail(breaker, QueryError("Unknown table", status_code=400))

    assert breaker.state is BreakerState.CLOSED


async def test_probe_failure_reopens_for_a_full_period(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=3, reset=30.0)
    await half_open_breaker(breaker, clock)
    clock.now += 100.0  # however late the probe comes, the new period starts at its failure

    await fail(breaker)

    assert breaker.state is BreakerState.OPEN
    assert breaker.failures == 4
    assert not breaker.probe_in_flight
    with pytest.raises(CircuitOpenError) as caught:
        await succeed(breaker)
    assert caught.value.retry_after == 30.0
    clock.now += 30.0
    assert breaker.state is BreakerState.HALF_OPEN


async def test_cancelled_probe_is_not_counted_and_frees_the_slot(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=3)
    await half_open_breaker(breaker, clock)

    async def probe_forever() -> None:
        async with breaker.admit():
            await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        tg.start_soon(probe_forever)
        await anyio.wait_all_tasks_blocked()
        assert breaker.probe_in_flight
        tg.cancel_scope.cancel()

    assert not breaker.probe_in_flight
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.failures == 3
    await succeed(breaker)  # the next caller gets to probe
    assert breaker.state is BreakerState.CLOSED


# --- logs, repr, construction -------------------------------------------------------------------


async def test_state_changes_are_logged(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=2, reset=30.0)

    with capture_logs() as logs:
        await fail(breaker)
        await fail(breaker)
        clock.now += 30.0
        await fail(breaker)  # probe fails
        clock.now += 30.0
        await succeed(breaker)  # probe succeeds

    assert logs == [
        {"event": "breaker_opened", "failures": 2, "retry_after": 30.0, "log_level": "warning"},
        {"event": "breaker_half_open", "log_level": "info"},
        {"event": "breaker_opened", "failures": 3, "retry_after": 30.0, "log_level": "warning"},
        {"event": "breaker_half_open", "log_level": "info"},
        {"event": "breaker_closed", "log_level": "info"},
    ]


async def test_failures_below_threshold_and_rejections_log_nothing(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=2)
    await fail(breaker)
    await fail(breaker)

    with capture_logs() as logs:
        with pytest.raises(CircuitOpenError):
            await succeed(breaker)
        breaker.failures  # noqa: B018 - reading state must not log either
        repr(breaker)

    assert logs == []


async def test_repr_shows_live_state(clock: FakeClock) -> None:
    breaker = make_breaker(clock, threshold=2, reset=30.0)
    await fail(breaker)
    assert repr(breaker) == "<CircuitBreaker state=closed failures=1>"

    await fail(breaker)
    clock.now += 17.7
    assert repr(breaker) == "<CircuitBreaker state=open failures=2 retry_after=12.3>"

    clock.now += 12.3
    assert repr(breaker) == "<CircuitBreaker state=half_open failures=2 probe_in_flight=False>"
    async with breaker.admit():
        assert repr(breaker) == "<CircuitBreaker state=half_open failures=2 probe_in_flight=True>"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0}, "threshold must be at least 1 failure, got 0"),
        ({"reset_seconds": -1.0}, "reset_seconds must be 0 or more, got -1.0"),
        ({"reset_seconds": float("nan")}, "reset_seconds must be 0 or more, got nan"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]


def test_defaults_use_the_real_monotonic_clock() -> None:
    breaker = CircuitBreaker()

    assert breaker.state is BreakerState.CLOSED
    assert repr(breaker) == "<CircuitBreaker state=closed failures=0>"
