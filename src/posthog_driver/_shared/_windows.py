"""`SharedWindows`: one endpoint class's sliding windows and `Retry-After` pause, in Redis.

The same sliding log as `_limits.RateLimit` (the same budgets, 2% under PostHog's limits, the
same settling time, bursts and exactness), but one log for every process that shares the
store: each admission is one script run that drops old entries, checks every window and the
pause, and records itself only if all admit. Under the `local` failure policy a call Redis
cannot decide is admitted by this process's own `RateLimit`, which also records the shared
admissions, so the fallback starts from what this process really sent.
"""

from __future__ import annotations

import math
import time
import uuid

import anyio

from posthog_driver._limits import RateLimit, WaitTooLong, budget, held_for
from posthog_driver._shared._scripts import ADMIT, PAUSE
from posthog_driver._shared._store import FALLBACK, RedisStore

__all__ = ["SharedWindows"]


class SharedWindows:
    """`acquire()` and `pause()` of one endpoint class (`query` or `api`), fleet-wide."""

    def __init__(self, store: RedisStore, prefix: str, local: RateLimit) -> None:
        self.local = local
        self.name = local.name
        self._store = store
        self._admit = store.script(ADMIT)
        self._pause = store.script(PAUSE)
        self._pause_key = f"{prefix}:{local.name}:pause"
        windows = [f"{prefix}:{local.name}:{n}/{t:g}s" for n, t in local.windows]
        self._keys = [self._pause_key, *windows]
        self._args: list[str | float] = []
        for n, t in local.windows:
            self._args += [budget(n), held_for(t)]
        self.waiting = 0
        self._paused_until = -math.inf  # as last seen in Redis, on this process's clock

    @property
    def paused_for(self) -> float:
        """Seconds left of the fleet's pause, as last seen (or of the local one, if longer)."""
        return max(self.local.paused_for, self._paused_until - time.monotonic())

    async def acquire(self, *, max_wait: float = math.inf) -> None:
        """Wait for the pause to end and for room in every shared window, then take one.

        Raises `WaitTooLong` (taking nothing) when the wait would pass `max_wait`.
        """
        started = time.monotonic()
        self.waiting += 1
        try:
            while True:
                answer = await self._store.run(
                    self._admit, keys=self._keys, args=[uuid.uuid4().hex, *self._args]
                )
                left = max_wait - (time.monotonic() - started)
                if answer is FALLBACK:
                    await self.local.acquire(max_wait=max(0.0, left))
                    return
                wait, paused = float(answer[0]), float(answer[1])
                if paused > 0:
                    self._paused_until = time.monotonic() + paused
                if wait <= 0:
                    self.local.record()
                    return
                if wait > left:
                    raise WaitTooLong(wait, paused=paused >= wait)
                # The whole known wait: others may take the room first, then we wait again.
                await anyio.sleep(wait)
        finally:
            self.waiting -= 1

    async def pause(self, seconds: float) -> None:
        """Hold back every process's calls of this class for `seconds` (a `Retry-After`)."""
        self.local.pause(seconds)  # holds here even if Redis does not answer
        answer = await self._store.run(self._pause, keys=[self._pause_key], args=[seconds])
        if answer is not FALLBACK:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)
