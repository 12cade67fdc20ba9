"""`SharedBreaker`: one circuit breaker for every process that shares the store.

The same three states as `_breaker.CircuitBreaker`, kept in one Redis hash: consecutive outage
failures of all processes count together, an open breaker turns every process's calls away,
and once `reset_seconds` have passed exactly one attempt in the whole fleet is the half-open
probe. The probe holds a lease (`timeout` plus a margin): a process that dies while probing
does not keep the breaker half-open for ever. The process that makes a transition logs it.

Under the `local` failure policy an attempt Redis cannot decide goes through this process's
own breaker, which then counts it as a driver without Redis would.
"""

from __future__ import annotations

import math
import time
import uuid
from contextlib import AbstractAsyncContextManager
from types import TracebackType

from posthog_driver._breaker import CircuitBreaker, open_error, probing_error
from posthog_driver._logging import get_logger
from posthog_driver._shared._scripts import BREAKER_ENTER, BREAKER_EXIT
from posthog_driver._shared._store import FALLBACK, RedisStore

__all__ = ["SharedBreaker"]

log = get_logger()


class SharedBreaker:
    """`reject_if_open()` and `admit()` like `CircuitBreaker`, decided in Redis."""

    def __init__(
        self,
        store: RedisStore,
        key: str,
        local: CircuitBreaker,
        *,
        threshold: int,
        reset_seconds: float,
        probe_lease: float,
    ) -> None:
        self.local = local
        self.key = key
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self.probe_lease = probe_lease
        self._store = store
        self._enter = store.script(BREAKER_ENTER)
        self._exit = store.script(BREAKER_EXIT)
        # What Redis last said, on this process's clock: lets `reject_if_open` stay local.
        self.seen_state = "closed"
        self.seen_failures = 0
        self._open_until = -math.inf

    @property
    def retry_after(self) -> float:
        return max(0.0, self._open_until - time.monotonic())

    def reject_if_open(self) -> None:
        """Raise `CircuitOpenError` now if the fleet's breaker was open when last seen (or this
        process's own, after a fallback), without a round trip."""
        self.local.reject_if_open()
        left = self._open_until - time.monotonic()
        if left > 0:
            if self.seen_state == "half_open":
                raise probing_error(left)
            raise open_error(self.seen_failures, left, fleet=True)

    def admit(self) -> AbstractAsyncContextManager[None]:
        return _SharedAttempt(self)

    async def enter(self, probe_id: str) -> bool | None:
        """Admit one attempt: True if it is the fleet's probe, False if the breaker is closed,
        None if Redis could not decide. Raises `CircuitOpenError` otherwise."""
        # Run to its end: a caller cancelled after Redis made it the probe gives the probe
        # back at once, rather than turning the whole fleet away for the probe's lease.
        answer = await self._store.run_to_the_end(
            self._enter,
            keys=[self.key],
            args=[probe_id, self.probe_lease, self.reset_seconds],
            undo=lambda answer: self._abandon(answer, probe_id),
        )
        if answer is FALLBACK:
            return None
        verdict, retry_after, failures = answer[0], float(answer[1]), int(answer[2])
        self.seen_failures = failures
        if verdict == "admit":
            self.seen_state = "closed"
            return False
        if verdict == "probe":
            self.seen_state = "half_open"
            log.info("breaker_half_open", shared=True)
            return True
        if verdict == "probing":
            # Turn this process's next callers away without a round trip (or a rate window's
            # room) for as long as they are told to wait.
            self.seen_state = "half_open"
            self._open_until = time.monotonic() + retry_after
            raise probing_error(retry_after)
        self.seen_state = "open"
        self._open_until = time.monotonic() + retry_after
        raise open_error(failures, retry_after, fleet=True)

    async def _abandon(self, answer: object, probe_id: str) -> None:
        if answer is not FALLBACK and isinstance(answer, list) and answer[0] == "probe":
            await self.record("cancel", True, probe_id)

    async def record(self, outcome: str, is_probe: bool, probe_id: str) -> None:
        """Record how an admitted attempt ended (run to its end: an outcome is never lost to
        a cancellation; bounded by redis_timeout)."""
        answer = await self._store.run_to_the_end(
            self._exit,
            keys=[self.key],
            args=[outcome, int(is_probe), probe_id, self.threshold, self.reset_seconds],
            best_effort=True,
        )
        if answer == "opened":
            self.seen_state = "open"
            self._open_until = time.monotonic() + self.reset_seconds
            log.warning("breaker_opened", shared=True, retry_after=self.reset_seconds)
        elif answer == "closed":
            self.seen_state = "closed"
            self.seen_failures = 0
            self._open_until = -math.inf
            log.info("breaker_closed", shared=True)


class _SharedAttempt(AbstractAsyncContextManager[None]):
    """One attempt under the shared breaker, or under the local one when Redis is down."""

    __slots__ = ("_breaker", "_is_probe", "_local", "_probe_id")

    def __init__(self, breaker: SharedBreaker) -> None:
        self._breaker = breaker
        self._probe_id = uuid.uuid4().hex
        self._is_probe = False
        self._local: AbstractAsyncContextManager[None] | None = None

    async def __aenter__(self) -> None:
        decided = await self._breaker.enter(self._probe_id)
        if decided is None:
            self._local = self._breaker.local.admit()
            await self._local.__aenter__()
        else:
            self._is_probe = decided

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._local is not None:
            await self._local.__aexit__(exc_type, exc, tb)
            return
        outcome = self._breaker.local.outcome(exc)
        await self._breaker.record(outcome, self._is_probe, self._probe_id)
