"""PostHog's request limits as the local server emulates them: throttles and the concurrency cap.

``SlidingWindowThrottle`` follows DRF's ``SimpleRateThrottle``: a request is allowed while fewer
than ``rate`` requests were allowed in the last ``period`` seconds; otherwise the wait is the time
until the oldest of them leaves the window (sent, rounded up, as ``Retry-After``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

__all__ = ["ConcurrencyGate", "SlidingWindowThrottle"]


class SlidingWindowThrottle:
    """At most ``rate`` requests per ``period`` seconds, DRF style."""

    __slots__ = ("_clock", "_history", "period", "rate")

    def __init__(
        self, rate: int, period: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.period = period
        self._clock = clock
        self._history: deque[float] = deque()

    def __repr__(self) -> str:
        used = len(self._history)
        return f"SlidingWindowThrottle(rate={self.rate}, period={self.period}, used={used})"

    def admit(self) -> int | None:
        """Record a request and return None, or return the seconds to wait (and record nothing)."""
        now = self._clock()
        while self._history and self._history[0] <= now - self.period:
            self._history.popleft()
        if len(self._history) >= self.rate:
            return max(1, math.ceil(self._history[0] + self.period - now))
        self._history.append(now)
        return None


class ConcurrencyGate:
    """Counts running queries; ``enter`` refuses once ``limit`` are running (no queueing)."""

    __slots__ = ("limit", "peak", "running")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0
        self.peak = 0  # the most running at once

    def __repr__(self) -> str:
        return f"ConcurrencyGate(limit={self.limit}, running={self.running})"

    def enter(self) -> bool:
        """Take a slot if one is free."""
        if self.running >= self.limit:
            return False
        self.running += 1
        self.peak = max(self.peak, self.running)
        return True

    def leave(self) -> None:
        """Give a slot back."""
        self.running -= 1
