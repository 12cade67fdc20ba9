"""`TTLCache`: a small async cache whose misses are single-flight.

Concurrent callers asking for the same missing key share one load: the first runs it, the
others wait on the key's lock and then read the stored value. That is what keeps a `describe()`
of thirty objects to one schema request. A failed load stores nothing. A TTL of 0 disables
storing (every call loads).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import anyio

__all__ = ["TTLCache"]

T = TypeVar("T")


class TTLCache:
    """Values by key, each kept for `ttl` seconds of the monotonic `clock`."""

    __slots__ = ("_clock", "_locks", "_ttl", "_values")

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._values: dict[Hashable, tuple[float, Any]] = {}
        self._locks: dict[Hashable, anyio.Lock] = {}

    def __repr__(self) -> str:
        return f"<TTLCache ttl={self._ttl:g} keys={len(self._values)}>"

    def _fresh(self, key: Hashable) -> tuple[bool, Any]:
        stored = self._values.get(key)
        if stored is None or self._clock() >= stored[0]:
            return False, None
        return True, stored[1]

    async def get(
        self, key: Hashable, load: Callable[[], Awaitable[T]], *, refresh: bool = False
    ) -> T:
        """The cached value for `key`, loading it with `load()` if missing, stale or `refresh`."""
        if not refresh:
            hit, value = self._fresh(key)
            if hit:
                return value  # type: ignore[no-any-return]
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            if not refresh:
                # Someone else may have loaded it while we waited for the lock.
                hit, value = self._fresh(key)
                if hit:
                    return value  # type: ignore[no-any-return]
            loaded = await load()
            if self._ttl > 0:
                self._values[key] = (self._clock() + self._ttl, loaded)
            return loaded

    def clear(self) -> None:
        """Forget every value."""
        self._values.clear()
