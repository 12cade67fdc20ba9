"""Client-side rate limits that keep us inside PostHog's sliding windows.

PostHog allows N requests per sliding window of T seconds, per endpoint class (the query
endpoint and the other API endpoints have separate limits, each with a per-minute and a per-hour
window). A `RateLimit` holds one endpoint class's windows and admits a request only when every
window admits it; `RateLimits` holds the two classes.

**Capacity choice.** Each window is an `aiolimiter.AsyncLimiter`, a leaky bucket. A bucket with
capacity C draining at r requests per second admits at most C + r*T requests in any window of
length T (it can enter the window empty, take a burst of C, then admit r*T more as it drains).
We aim a little below the limit, because PostHog counts requests when they *arrive*, and the
varying time between leaving our bucket and reaching PostHog bunches them at its end. So we
budget B = N - ceil(N / 50) (2% headroom) and choose

    C = max(2, B // 20)      a 5% burst, at least 2
    r = (B - C) / T          i.e. AsyncLimiter(max_rate=C, time_period=C * T / (B - C))

so the busiest possible window leaving us holds C + (B - C) = B requests, under N, while a steady
stream is sustained at about 93% of N/T. For PostHog's 240 queries per minute that is a budget
of 235, a burst of 11 and then one query every 0.27 s. The burst is at least 2 because a bucket
of one runs dry between requests: each late timer wake-up is then lost for good, and they add
up (measured: about 91% instead of 95% of a fast limit).

**Tiny N.** For N <= 3 the budget leaves too little to drain at; such a window gets a bucket of
one request that drains over the whole window, AsyncLimiter(max_rate=1, time_period=T): one
request per T seconds, the next leaving just as the previous one ages out of the window.

**Pauses.** A 429 with `Retry-After` pauses the whole bucket: `pause(seconds)` makes every
`acquire()` of that `RateLimit` in this process wait until the pause is over (a later pause wins
over an earlier, shorter one). Acquirers wait out the pause *before* queueing for tokens, so when
a pause ends they leave at the bucket's rate rather than all at once.

**Cancellation.** A task cancelled while waiting (in a pause or in a limiter) leaves no waiter
behind: aiolimiter drops cancelled waiters. A token it already took from an earlier window stays
spent, which errs on the side of sending less, never more.

The pause runs on the injectable monotonic `clock`; the limiters run on the event loop's own
monotonic clock (aiolimiter uses `loop.time()`). Both belong to one event loop: build these
objects per loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Literal

import anyio
from aiolimiter import AsyncLimiter

from posthog_driver.logging import get_logger

__all__ = ["RateLimit", "RateLimits"]

# 2% headroom under PostHog's limit, then a burst of 1/20 (5%) of the budget, at least 2; see
# "Capacity choice" above.
_HEADROOM_DIVISOR = 50
_BURST_DIVISOR = 20
_MIN_BURST = 2


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


def _leaky_bucket(requests: int, seconds: float) -> AsyncLimiter:
    """A bucket whose busiest `seconds`-long window holds at most `requests` (see the module)."""
    budget = requests - math.ceil(requests / _HEADROOM_DIVISOR)
    burst = max(_MIN_BURST, budget // _BURST_DIVISOR)
    if budget - burst < 1:
        # N <= 3: too little to drain at, so drain a single request over the whole window.
        return AsyncLimiter(max_rate=1, time_period=seconds)
    return AsyncLimiter(max_rate=burst, time_period=burst * seconds / (budget - burst))


class RateLimit:
    """One endpoint class's limits: several (N requests per T seconds) windows, all must admit.

    ```python
    limit = RateLimit("query", [(240, 60.0), (2400, 3600.0)])
    await limit.acquire()  # waits for any pause, then for a token from both windows
    limit.pause(12.0)  # a 429 said Retry-After: 12; holds back every acquire of this bucket
    ```
    """

    __slots__ = ("_clock", "_limiters", "_paused_until", "_waiting", "name", "windows")

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
        self._limiters = tuple(_leaky_bucket(n, t) for n, t in self.windows)
        self._clock = clock
        self._paused_until = -math.inf
        self._waiting = 0

    @property
    def paused_for(self) -> float:
        """Seconds left in the current pause; 0.0 when the bucket is not paused."""
        return max(0.0, self._paused_until - self._clock())

    @property
    def waiting(self) -> int:
        """How many `acquire()` calls are waiting right now (in a pause or for a token)."""
        return self._waiting

    async def acquire(self) -> None:
        """Wait out any pause, then take one token from every window.

        Returns without suspending when the bucket is not paused and every window has room.
        If a pause began while this call queued for tokens, it waits that pause out too, so no
        request leaves during a pause.
        """
        self._waiting += 1
        try:
            await self._wait_out_pause()
            for limiter in self._limiters:
                await limiter.acquire()
            await self._wait_out_pause()
        finally:
            self._waiting -= 1

    async def _wait_out_pause(self) -> None:
        # A loop, not one sleep: the pause may be extended while we sleep, and the clock that
        # defines it need not be the one the event loop sleeps on. Each sleep lasts the whole
        # remaining pause, so this is not the busy polling ASYNC110 warns about.
        while (left := self.paused_for) > 0:  # noqa: ASYNC110
            await anyio.sleep(left)

    def pause(self, seconds: float) -> None:
        """Hold back every `acquire()` of this bucket until `seconds` from now.

        Meant for a 429's `Retry-After`. If a pause that ends later is already in force, it is
        kept. Logs `bucket_paused` when the pause takes effect.
        """
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"pause needs a finite number of seconds, 0 or more, got {seconds!r}")
        until = self._clock() + seconds
        if until > self._paused_until:
            self._paused_until = until
            get_logger().warning("bucket_paused", bucket=self.name, seconds=seconds)

    def __repr__(self) -> str:
        windows = ", ".join(f"{n}/{t:g}s" for n, t in self.windows)
        return (
            f"<RateLimit name={self.name!r} windows=[{windows}] "
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
        """The bucket for an endpoint class: `"query"` for HogQL queries, `"api"` for the rest."""
        try:
            return self._buckets[endpoint]
        except KeyError:
            raise ValueError(
                f"unknown endpoint class {endpoint!r}; expected 'query' or 'api'"
            ) from None

    def __repr__(self) -> str:
        return f"<RateLimits query={self._buckets['query']!r} api={self._buckets['api']!r}>"
