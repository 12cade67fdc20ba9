"""`SharedCache`: schema answers kept in Redis, so N workers make one discovery, not N.

A value is JSON under one key for `ttl` seconds. A process that misses takes a short lock
(`SET NX PX`) and loads; the others poll for the value while the lock stands, and load
themselves only if it goes without a value (the loader failed or died). Each process still
keeps its own `TTLCache` in front, so Redis is read once per key and TTL per process.
Under either failure policy a cache Redis cannot serve just loads: a cache is never a reason
to refuse a call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from posthog_driver._shared._scripts import UNLOCK
from posthog_driver._shared._store import FALLBACK, RedisStore

__all__ = ["SharedCache"]

_POLL = 0.05


class SharedCache:
    def __init__(self, store: RedisStore, prefix: str, ttl: float, lock_seconds: float) -> None:
        self._store = store
        self._prefix = prefix
        self._ttl = ttl
        self._lock_ms = max(1, int(lock_seconds * 1000))
        self._unlock = store.script(UNLOCK)

    async def get(
        self, name: str, load: Callable[[], Awaitable[Any]], *, refresh: bool = False
    ) -> Any:
        """The JSON value `name`, from Redis or from `load()` (whose answer is then stored)."""
        if self._ttl <= 0:
            return await load()
        key, lock = f"{self._prefix}:cache:{name}", f"{self._prefix}:cache-lock:{name}"
        client = self._store.client
        token = uuid.uuid4().hex
        while True:
            if not refresh:
                found = await self._store.run(client.get, key, best_effort=True)
                if isinstance(found, str):
                    return json.loads(found)
            took = await self._store.run(
                client.set, lock, token, nx=True, px=self._lock_ms, best_effort=True
            )
            if took is FALLBACK or took:
                break
            # Another process is loading: wait for its value while its lock stands.
            refresh = False
            while True:
                await anyio.sleep(_POLL)
                found = await self._store.run(client.get, key, best_effort=True)
                if isinstance(found, str):
                    return json.loads(found)
                held = await self._store.run(client.exists, lock, best_effort=True)
                if held is FALLBACK:
                    return await load()
                if not held:
                    break  # it went without a value: try to take the lock ourselves
        try:
            value = await load()
            with anyio.CancelScope(shield=True):
                await self._store.run(
                    client.set, key, json.dumps(value), px=int(self._ttl * 1000), best_effort=True
                )
            return value
        finally:
            if took is not FALLBACK:  # only our own lock: an expired one may be another's now
                with anyio.CancelScope(shield=True):
                    await self._store.run(self._unlock, keys=[lock], args=[token], best_effort=True)
