"""`TTLCache`: a small async cache whose loads are single-flight and share their outcome.

Concurrent callers asking for the same missing key share one load: the first runs it, the
others wait for it and get its value, or its exception. That keeps a `describe()` of thirty
objects to one schema request, and a failing load to one failure, not one per caller in turn.
A failed load stores nothing: the next call (after the shared failure) loads again. If the
loading caller is cancelled, the load did not finish: a waiter takes over and loads itself; so
it does after a failure that `shared` says belongs to the loading caller alone (its deadline).
A TTL of 0 disables storing (every call that finds no load in flight loads).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import anyio

__all__ = ["TTLCache"]

T = TypeVar("T")


class _Flight:
    """One load in progress: the waiters' meeting point."""

    __slots__ = ("done", "error", "finished", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.finished = False  # False after `done` means the loader was cancelled
        self.value: Any = None
        self.error: BaseException | None = None


class TTLCache:
    """Values by key, each kept for `ttl` seconds of the monotonic `clock`."""

    __slots__ = ("_clock", "_flights", "_shared", "_ttl", "_values")

    def __init__(
        self,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        shared: Callable[[Exception], bool] = lambda exc: True,
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._shared = shared
        self._values: dict[Hashable, tuple[float, Any]] = {}
        self._flights: dict[Hashable, _Flight] = {}

    def __repr__(self) -> str:
        return f"<TTLCache ttl={self._ttl:g} keys={len(self)} loading={len(self._flights)}>"

    def __len__(self) -> int:
        """How many fresh values are stored."""
        now = self._clock()
        return sum(1 for expires, _ in self._values.values() if now < expires)

    def _fresh(self, key: Hashable) -> tuple[bool, Any]:
        stored = self._values.get(key)
        if stored is None or self._clock() >= stored[0]:
            return False, None
        return True, stored[1]

    async def get(
        self, key: Hashable, load: Callable[[], Awaitable[T]], *, refresh: bool = False
    ) -> T:
        """The cached value for `key`, loading it with `load()` if missing, stale or `refresh`.

        A load already in flight for `key` is joined, even with `refresh`: it started after
        this call was made, so its answer is fresh.
        """
        while True:
            if not refresh:
                hit, value = self._fresh(key)
                if hit:
                    return value  # type: ignore[no-any-return]
            flight = self._flights.get(key)
            if flight is None:
                return await self._load(key, load)
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error.with_traceback(None)  # one object, raised in each waiter
            if flight.finished:
                return flight.value  # type: ignore[no-any-return]
            # The loader was cancelled (or failed for itself alone): try again, maybe loading.

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        flight = self._flights[key] = _Flight()
        try:
            value = await load()
        except Exception as exc:
            if self._shared(exc):
                flight.error = exc
            raise
        else:
            flight.value, flight.finished = value, True
            if self._ttl > 0:
                self._values[key] = (self._clock() + self._ttl, value)
            return value
        finally:
            del self._flights[key]
            flight.done.set()

    def clear(self) -> None:
        """Forget every value (loads in flight finish, and store what they load)."""
        self._values.clear()
