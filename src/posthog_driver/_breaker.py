"""An async circuit breaker that stops calling PostHog while PostHog keeps failing.

The breaker has three states:

```
            threshold consecutive failures
  CLOSED ─────────────────────────────────▶ OPEN ◀──────────────┐
    ▲                                        │                  │ probe failed:
    │ probe succeeded                        │ reset_seconds    │ a new full period
    │                                        ▼ passed           │
    └──────────────────────────────────── HALF_OPEN ────────────┘
```

- **CLOSED** admits every attempt. `threshold` *consecutive* failures open it.
- **OPEN** rejects at once with `CircuitOpenError`, whose `retry_after` is the number of seconds
  until the reset time. Nothing is sent.
- **HALF_OPEN** (an open breaker whose `reset_seconds` have passed) admits exactly one attempt at a
  time, the *probe*. While the probe is in flight every other caller gets `CircuitOpenError` with
  `retry_after` of one second (or `reset_seconds`, if that is shorter): the probe usually answers
  within one request's time, and if it succeeds the caller can go straight through. The probe's
  success closes the breaker; its failure opens it again for a new full `reset_seconds`.

What the attempt's outcome counts as:

- a **failure**: the block raised an exception for which `is_failure` is true (by default
  `is_outage`: a network failure, a timeout, a 502/503 or a 5xx without PostHog's error body),
  or an exception group holding one;
- a **success**: the block finished, or raised any other `Exception`. A `QueryError` (also a
  query's own 500/504) or a 429 means PostHog answered, so it resets the failure count;
- **nothing at all**: the block raised a `BaseException` that is not an `Exception`, such as
  `asyncio.CancelledError` (anyio's cancellation) or `KeyboardInterrupt`. A cancelled probe gives
  its slot back so the next caller can probe.

The outcome of an attempt admitted while CLOSED only counts while the breaker is still CLOSED:
stragglers that fail after the breaker opened do not extend the open period, and stragglers that
succeed do not close it (only the probe decides that).

Time comes from a monotonic clock (injectable for tests), so wall-clock jumps never open or close
the breaker.

>>> import asyncio
>>> breaker = CircuitBreaker(threshold=3, reset_seconds=30.0)
>>> async def attempt() -> str:
...     async with breaker.admit():
...         return "sent"
>>> asyncio.run(attempt())
'sent'
>>> breaker
<CircuitBreaker state=closed failures=0>
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Literal

from posthog_driver._errors import CircuitOpenError, is_outage
from posthog_driver._logging import get_logger

__all__ = ["BreakerState", "CircuitBreaker", "open_error", "probing_error"]


def _now() -> float:
    """The default clock: monotonic, looked up per call (the reliability tests replace it)."""
    return time.monotonic()


# What callers turned away during a probe are told: the probe normally answers within one request.
_PROBE_RETRY_AFTER = 1.0


def open_error(failures: int, retry_after: float, *, fleet: bool = False) -> CircuitOpenError:
    """The error for a call an open breaker turns away."""
    shared = " across the processes sharing POSTHOG_REDIS_URL" if fleet else ""
    return CircuitOpenError(
        f"The circuit breaker is open after {failures} consecutive failures (server errors, "
        f"timeouts or network failures){shared}; no request was sent. "
        f"Retry in {retry_after:.1f} s.",
        retry_after=retry_after,
    )


def probing_error(retry_after: float) -> CircuitOpenError:
    """The error for a call turned away while the half-open probe is in flight."""
    return CircuitOpenError(
        "The circuit breaker is half-open and one probe request is checking whether "
        f"PostHog has recovered; no request was sent. Retry in {retry_after:.1f} s.",
        retry_after=retry_after,
    )


class BreakerState(enum.Enum):
    """Where a `CircuitBreaker` stands."""

    CLOSED = "closed"  #: attempts go through
    OPEN = "open"  #: attempts are rejected until the reset time
    HALF_OPEN = "half_open"  #: one probe attempt at a time decides whether to close


class CircuitBreaker:
    """Stop sending requests after `threshold` consecutive failures; probe after `reset_seconds`.

    Use one breaker per upstream and wrap each single attempt (not a whole retried call) in
    `admit()`, so every failed attempt counts:

    ```python
    breaker = CircuitBreaker(threshold=5, reset_seconds=30.0)
    async with breaker.admit():  # raises CircuitOpenError instead of sending, while open
        response = await send()
    ```

    The breaker is meant for one event loop. It needs no lock: deciding to admit an attempt and
    recording the decision happen with no `await` between them, so no other task can interleave.
    """

    __slots__ = (
        "_clock",
        "_failure_check",
        "_failures",
        "_probe_in_flight",
        "_reset_at",
        "_reset_seconds",
        "_state",
        "_threshold",
    )

    def __init__(
        self,
        *,
        threshold: int = 5,
        reset_seconds: float = 30.0,
        is_failure: Callable[[BaseException], bool] = is_outage,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1 failure, got {threshold!r}")
        if not reset_seconds >= 0:  # written this way round so NaN is refused too
            raise ValueError(f"reset_seconds must be 0 or more, got {reset_seconds!r}")
        self._threshold = threshold
        self._reset_seconds = reset_seconds
        self._failure_check = is_failure
        self._clock = clock or _now
        # The stored state is CLOSED, OPEN or HALF_OPEN; an OPEN breaker past its reset time is
        # *reported* as HALF_OPEN but only becomes so when the first probe is admitted.
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._reset_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose reset time has passed reports HALF_OPEN."""
        if self._state is BreakerState.OPEN and self._clock() >= self._reset_at:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted so far (kept while open, reset to 0 on closing)."""
        return self._failures

    @property
    def retry_after(self) -> float:
        """Seconds until an open breaker lets a probe through (0.0 when it would now)."""
        if self._state is BreakerState.CLOSED:
            return 0.0
        return max(0.0, self._reset_at - self._clock())

    @property
    def probe_in_flight(self) -> bool:
        """True while a half-open probe attempt is running."""
        return self._probe_in_flight

    def admit(self) -> AbstractAsyncContextManager[None]:
        """Return a context manager that runs one attempt under the breaker.

        Entering it raises `CircuitOpenError` if the breaker is open (or half-open with a probe in
        flight); leaving it records the attempt's outcome as described in the module docstring.
        Exceptions are never swallowed.
        """
        return _Attempt(self)

    def reject_if_open(self) -> None:
        """Raise `CircuitOpenError` now if the breaker is open (its reset time not yet reached).

        A cheap early check for callers that wait for other resources before `admit()`: they
        fail at once instead of queueing, and `admit()` still decides when they get there.
        """
        if self._state is BreakerState.CLOSED:
            return
        now = self._clock()
        if now < self._reset_at:
            raise open_error(self._failures, self._reset_at - now)

    def _enter(self) -> bool:
        """Admit one attempt or raise `CircuitOpenError`; return True if it is the probe."""
        if self._state is BreakerState.CLOSED:
            return False
        self.reject_if_open()
        if self._probe_in_flight:
            raise probing_error(min(_PROBE_RETRY_AFTER, self._reset_seconds))
        # No await since the checks above: this task alone takes the probe slot.
        self._probe_in_flight = True
        if self._state is BreakerState.OPEN:
            self._state = BreakerState.HALF_OPEN
            get_logger().info("breaker_half_open")
        return True

    def outcome(self, exc: BaseException | None) -> Literal["success", "failure", "cancel"]:
        """What an attempt that ended with `exc` (None: it finished) tells the breaker."""
        if exc is not None and not isinstance(exc, Exception):
            return "cancel"  # cancelled or interrupted: we learnt nothing about PostHog
        if exc is not None and self._is_failure(exc):
            return "failure"
        return "success"

    def _exit(self, is_probe: bool, exc: BaseException | None) -> None:
        """Record how an admitted attempt ended."""
        outcome = self.outcome(exc)
        if outcome == "cancel":
            if is_probe:  # free the probe slot only
                self._probe_in_flight = False
        elif outcome == "failure":
            self._on_failure(is_probe)
        else:
            self._on_success(is_probe)

    def _is_failure(self, exc: BaseException) -> bool:
        if isinstance(exc, BaseExceptionGroup):
            return (
                exc.subgroup(
                    lambda e: not isinstance(e, BaseExceptionGroup) and self._failure_check(e)
                )
                is not None
            )
        return self._failure_check(exc)

    def _on_failure(self, is_probe: bool) -> None:
        if is_probe:
            self._probe_in_flight = False
            self._failures += 1
            self._open()
        elif self._state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self._threshold:
                self._open()

    def _on_success(self, is_probe: bool) -> None:
        if is_probe:
            self._probe_in_flight = False
            self._failures = 0
            self._state = BreakerState.CLOSED
            get_logger().info("breaker_closed")
        elif self._state is BreakerState.CLOSED:
            self._failures = 0

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._reset_at = self._clock() + self._reset_seconds
        get_logger().warning(
            "breaker_opened", failures=self._failures, retry_after=self._reset_seconds
        )

    def __repr__(self) -> str:
        state = self.state
        text = f"<CircuitBreaker state={state.value} failures={self._failures}"
        if state is BreakerState.OPEN:
            text += f" retry_after={self._reset_at - self._clock():.1f}"
        elif state is BreakerState.HALF_OPEN:
            text += f" probe_in_flight={self._probe_in_flight}"
        return text + ">"


class _Attempt(AbstractAsyncContextManager[None]):
    """One admitted attempt; remembers whether it holds the half-open probe slot."""

    __slots__ = ("_breaker", "_is_probe")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._is_probe = False

    async def __aenter__(self) -> None:
        self._is_probe = self._breaker._enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._breaker._exit(self._is_probe, exc)
