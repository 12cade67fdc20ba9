"""`SharedSlots`: PostHog's concurrent-query limit as a semaphore in Redis, held by leases.

A slot is a member of one sorted set whose score is when its lease ends. Taking one drops
expired leases, then adds ours if fewer than the limit remain: a worker that crashed (or
lost its network) mid-query frees its slot when its lease runs out, `lease` seconds at most.
While this process holds slots, one background task renews all of them every third of the
lease, in one round trip. A waiter polls (5 ms, doubling to 50 ms, with jitter): slots are
freed by queries finishing, which Redis cannot announce to a waiter without a second channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid

import anyio

from posthog_driver._limits import WaitTooLong
from posthog_driver._logging import get_logger
from posthog_driver._shared._scripts import SLOT_ACQUIRE, SLOT_RENEW
from posthog_driver._shared._store import FALLBACK, RedisStore

__all__ = ["SharedSlots"]

_FIRST_POLL = 0.005
_LAST_POLL = 0.05

log = get_logger()


class SharedSlots:
    """At most `count` holders fleet-wide; `acquire(holder)` then `release(holder)`."""

    def __init__(self, store: RedisStore, key: str, count: int, lease: float) -> None:
        self.key = key
        self.count = count
        self.lease = lease
        self._store = store
        self._acquire = store.script(SLOT_ACQUIRE)
        self._renew = store.script(SLOT_RENEW)
        self._held: set[str] = set()
        self._renewer: asyncio.Task[None] | None = None
        self._renewing = asyncio.Lock()  # a renewal and a release never cross in Redis

    @property
    def held(self) -> int:
        """Slots this process holds in Redis now."""
        return len(self._held)

    @staticmethod
    def new_holder() -> str:
        return uuid.uuid4().hex

    async def acquire(self, holder: str, bound: float) -> bool:
        """Take a slot for `holder` within `bound` seconds: True when Redis granted it, False
        when Redis could not decide (the `local` policy: the process's own slot stands in).

        Raises `WaitTooLong` when every slot stays held. Always pair with `release(holder)`.
        """
        deadline = time.monotonic() + bound
        poll = _FIRST_POLL
        while True:
            # Run to its end (bounded by redis_timeout), and given back if our caller was
            # cancelled meanwhile: a slot granted to nobody would be lost for a whole lease.
            # Only granted slots are renewed: renewing a waiter's id would hand it a slot it
            # does not know it has.
            answer = await self._store.run_to_the_end(
                self._acquire,
                keys=[self.key],
                args=[holder, self.count, self.lease],
                undo=lambda answer: self._give_back(holder, answer),
            )
            if answer is FALLBACK:
                return False
            if int(answer) == 1:
                self._held.add(holder)
                self._start_renewing()
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTooLong(bound, paused=False)
            await anyio.sleep(min(left, poll * random.uniform(0.5, 1.5)))  # noqa: S311
            poll = min(_LAST_POLL, poll * 2)

    async def release(self, holder: str) -> None:
        """Give the slot back (a no-op if `holder` holds none); if Redis does not answer, the
        lease frees it."""
        if holder not in self._held:
            return
        self._held.discard(holder)
        await self._store.run_to_the_end(self._remove, holder, best_effort=True, always=True)

    async def _give_back(self, holder: str, answer: object) -> None:
        if answer is not FALLBACK and int(str(answer)) == 1:
            await self._store.run(self._remove, holder, best_effort=True, always=True)

    async def _remove(self, holder: str) -> None:
        # Not while a renewal is on its way: it could take the slot again for this holder.
        async with self._renewing:
            await self._store.client.zrem(self.key, holder)

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while self._held:
            await anyio.sleep(self.lease / 3)
            async with self._renewing:
                held = list(self._held)
                if not held:
                    break
                answer = await self._store.run(
                    self._renew,
                    keys=[self.key],
                    args=[self.lease, self.count, *held],
                    best_effort=True,
                )
            if answer is not FALLBACK and answer:
                lost = set(answer) & self._held
                if lost:
                    # The lease ran out and others took the slots (Redis was unreachable for
                    # longer than the lease): the query goes on; the fleet may briefly run
                    # more than the limit, and PostHog's 429s are then retried as usual.
                    log.warning("query_slot_lease_lost", slots=len(lost))
                    self._held -= lost

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._renewer
