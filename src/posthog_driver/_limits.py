"""Client-side rate limits shaped like PostHog's throttles: sliding logs, per endpoint class.

PostHog throttles with Django REST framework's `SimpleRateThrottle`: for each window it keeps
the arrival times of recent requests and refuses one when the window already holds N. That is a
*sliding log*, and this module keeps the same log on our side:

- **Exact.** A request is admitted only if, in each of its endpoint class's windows, fewer than
  the budget were admitted in the last T seconds. No interval of length T ever holds more.
- **Bursty.** The whole budget is available at once: 235 queries can leave in the first second
  if that is what the agent needs, which is what PostHog allows.
- **Headroom.** The budget is N - ceil(N / 50) (2% under PostHog's N, at least 1): PostHog
  counts requests when they *arrive*, and the network can bunch requests that left us evenly.
- **Settling time.** An admission stays in its window's log for T plus 2% of T (at most 1 s):
  PostHog's clock starts when the request arrives, which is a little after we admit it (the
  breaker, a new connection, the network), and less so for a request sent on a warm
  connection. Without it, a burst admitted as the window frees can reach PostHog while the
  slower half of the previous burst is still in PostHog's window (measured at small limits,
  where the 2% headroom is one request).

Why not `aiolimiter` (a leaky bucket, the design card's first choice): a bucket admits at most
capacity + rate x T per window, so to stay under N it must trade burst against rate; measured
with PostHog's limits it admitted 154 / 303 / 489 queries in the first 1 / 5 / 10 minutes where
PostHog allows 240 / 1,200 / 2,400. A sliding log has no such trade-off. It costs one float per
admitted request per window (2,400 floats for the hourly query window).

**Pauses.** A 429 or 503 with `Retry-After` pauses the whole endpoint class: `pause(seconds)`
holds back every `acquire()` of it in this process until then (a later pause wins).

**Bounded waits.** `acquire(max_wait=...)` never waits longer than `max_wait` seconds in all:
when the pause or the windows need longer, it raises `WaitTooLong` at once (or as soon as a
pause grows while it waits), so the caller can fail with a useful error instead of sleeping
through an hour-long `Retry-After` while holding a query slot.

**Cancellation.** A cancelled `acquire()` takes nothing and leaves no waiter behind.

Time comes from an injectable monotonic clock; objects here belong to one event loop.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Literal

import anyio

from posthog_driver._logging import get_logger

__all__ = ["RateLimit", "RateLimits", "WaitTooLong", "budget", "held_for"]

_HEADROOM_DIVISOR = 50


_SETTLE_FRACTION = 0.02
_SETTLE_MAX = 1.0


def held_for(seconds: float) -> float:
    """How long an admission stays in a `seconds` window's log: the window plus the settling
    time between our admission and PostHog's arrival (2% of it, at most 1 s)."""
    return seconds + min(_SETTLE_MAX, seconds * _SETTLE_FRACTION)


def budget(requests: int) -> int:
    """How many requests we admit per window where PostHog allows `requests` (2% headroom)."""
    return max(1, requests - math.ceil(requests / _HEADROOM_DIVISOR))


class WaitTooLong(Exception):
    """`acquire()` would have to wait `seconds` (more than its `max_wait`); nothing was taken."""

    def __init__(self, seconds: float, *, paused: bool) -> None:
        super().__init__(seconds)
        self.seconds = seconds
        self.paused = paused  #: True when a `Retry-After` pause is what holds the call back


class _Window:
    """At most `limit` admissions in any `seconds`-long interval (each kept `held_for(seconds)`,
    so the bound also holds at PostHog's end): the log of admission times."""

    __slots__ = ("_log", "held", "limit", "seconds")

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.held = held_for(seconds)
        self._log: deque[float] = deque()

    def wait(self, now: float) -> float:
        """Seconds until this window admits one more (0.0 when it admits now)."""
        while self._log and self._log[0] <= now - self.held:
            self._log.popleft()
        if len(self._log) < self.limit:
            return 0.0
        return self._log[0] + self.held - now

    def record(self, now: float) -> None:
        self._log.append(now)

    def used(self, now: float) -> int:
        self.wait(now)
        return len(self._log)


def _validated(name: str, window: tuple[int, float]) -> tuple[int, float]:
    requests, seconds = window
    if requests < 1:
        raise ValueError(
            f"rate limit {name!r}: a window must allow at least 1 request, got {requests!r}"
        )
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(
            f"rate limit {name!r}: a window must last a finite number of seconds above 0, "
            f"got {seconds!r}"
        )
    return requests, float(seconds)


class RateLimit:
    """One endpoint class's limits: several (N requests per T seconds) windows, all must admit.

    ```python
    limit = RateLimit("query", [(240, 60.0), (2400, 3600.0)])
    await limit.acquire(max_wait=30.0)  # waits for any pause and for room in both windows
    limit.pause(12.0)  # a 429 said Retry-After: 12; holds back every acquire of this class
    ```
    """

    __slots__ = ("_clock", "_paused_until", "_waiting", "_windows", "name", "windows")

    name: str  #: the endpoint class, e.g. "query"
    windows: tuple[tuple[int, float], ...]  #: the (requests, seconds) windows as given

    def __init__(
        self,
        name: str,
        windows: Sequence[tuple[int, float]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not windows:
            raise ValueError(f"rate limit {name!r} needs at least one (requests, seconds) window")
        self.name = name
        self.windows = tuple(_validated(name, window) for window in windows)
        self._windows = tuple(_Window(budget(n), t) for n, t in self.windows)
        self._clock = clock
        self._paused_until = -math.inf
        self._waiting = 0

    @property
    def paused_for(self) -> float:
        """Seconds left in the current pause; 0.0 when the class is not paused."""
        return max(0.0, self._paused_until - self._clock())

    @property
    def waiting(self) -> int:
        """How many `acquire()` calls are waiting right now (in a pause or for room)."""
        return self._waiting

    def used(self) -> list[tuple[int, int, float]]:
        """(admitted, budget, seconds) for each window, now."""
        now = self._clock()
        return [(w.used(now), w.limit, w.seconds) for w in self._windows]

    async def acquire(self, *, max_wait: float = math.inf) -> None:
        """Wait out any pause and for room in every window, then record one admission.

        Returns without suspending when nothing holds the call back. Raises `WaitTooLong`
        (taking nothing) as soon as the remaining wait exceeds what is left of `max_wait`,
        re-checked after every sleep: a pause may grow and other callers may take the room.
        """
        started = self._clock()
        self._waiting += 1
        try:
            while True:
                now = self._clock()
                paused = self._paused_until - now
                wait = max(paused, *(window.wait(now) for window in self._windows))
                if wait <= 0:
                    for window in self._windows:
                        window.record(now)
                    return
                if wait > max_wait - (now - started):
                    raise WaitTooLong(wait, paused=paused >= wait)
                # Each sleep lasts the whole known wait, so this is not busy polling.
                await anyio.sleep(wait)
        finally:
            self._waiting -= 1

    def record(self) -> None:
        """Record one admission made elsewhere (the shared windows in Redis), so that this
        process's windows show, and a fallback to them starts from, what it really sent."""
        now = self._clock()
        for window in self._windows:
            window.wait(now)  # drop what left the window first
            window.record(now)

    def pause(self, seconds: float) -> None:
        """Hold back every `acquire()` of this class until `seconds` from now.

        Meant for a `Retry-After`. If a pause that ends later is already in force, it is kept.
        Logs `bucket_paused` when the pause takes effect.
        """
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"pause needs a finite number of seconds, 0 or more, got {seconds!r}")
        until = self._clock() + seconds
        if until > self._paused_until:
            self._paused_until = until
            get_logger().warning("bucket_paused", bucket=self.name, seconds=seconds)

    def __repr__(self) -> str:
        used = ", ".join(f"{n}/{limit} per {t:g}s" for n, limit, t in self.used())
        return (
            f"<RateLimit name={self.name!r} used=[{used}] "
            f"paused_for={self.paused_for:.1f} waiting={self._waiting}>"
        )


class RateLimits:
    """The rate limits of both PostHog endpoint classes: `query` and every other `api` call.

    ```python
    limits = RateLimits(query=[(240, 60.0), (2400, 3600.0)], api=[(240, 60.0), (1200, 3600.0)])
    await limits.for_endpoint("query").acquire()
    ```
    """

    __slots__ = ("_buckets",)

    def __init__(
        self,
        *,
        query: Sequence[tuple[int, float]],
        api: Sequence[tuple[int, float]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._buckets = {
            "query": RateLimit("query", query, clock=clock),
            "api": RateLimit("api", api, clock=clock),
        }

    def for_endpoint(self, endpoint: Literal["query", "api"]) -> RateLimit:
        """The limits of an endpoint class: `"query"` for HogQL queries, `"api"` for the rest."""
        try:
            return self._buckets[endpoint]
        except KeyError:
            raise ValueError(
                f"unknown endpoint class {endpoint!r}; expected 'query' or 'api'"
            ) from None

    def __repr__(self) -> str:
        return f"<RateLimits query={self._buckets['query']!r} api={self._buckets['api']!r}>"
