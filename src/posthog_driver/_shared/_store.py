"""`RedisStore`: the one connection to the shared store, and what happens when it fails.

Every shared operation goes through `RedisStore.run`, which bounds it by `redis_timeout` and
applies the failure policy when Redis does not answer:

- `local` (default): the operation reports `FALLBACK` and the caller uses its per-process
  state (limits, slots, breaker), as a driver without Redis would;
- `closed`: the call fails with `SharedLimitsError`; nothing is sent to PostHog.

A failure logs `shared_limits_unavailable` once; while Redis stays down it is tried again at
most once per `_RETRY_SECONDS` (the other calls go on at once, without waiting for a timeout
each), and its first answer logs `shared_limits_restored` once. The URL may hold a password:
only its host and port are ever shown.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio

from posthog_driver._errors import ConfigError, SharedLimitsError
from posthog_driver._logging import get_logger
from posthog_driver._settings import DriverSettings

__all__ = ["FALLBACK", "Fallback", "RedisStore"]

T = TypeVar("T")

# While Redis is down, one call in this many seconds tries it again; the rest fall back at once.
_RETRY_SECONDS = 1.0

log = get_logger()


class Fallback(enum.Enum):
    """What `RedisStore.run` returns instead of an answer under the `local` policy."""

    FALLBACK = "fallback"


FALLBACK = Fallback.FALLBACK


def _where(url: str) -> str:
    """host:port (or the socket path) of a Redis URL: never its password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


class RedisStore:
    """The shared store of one driver: a `redis.asyncio` client plus the failure policy."""

    def __init__(self, settings: DriverSettings, *, clock: Callable[[], float] = time.monotonic):
        try:
            import redis.asyncio as aioredis  # noqa: PLC0415 - the optional `redis` extra
            from redis.asyncio.retry import Retry  # noqa: PLC0415
            from redis.backoff import NoBackoff  # noqa: PLC0415
            from redis.exceptions import RedisError  # noqa: PLC0415
        except ImportError:
            raise ConfigError(
                "POSTHOG_REDIS_URL is set but the redis package is not installed; install the "
                "extra: pip install 'posthog-driver[redis]' (or unset POSTHOG_REDIS_URL)."
            ) from None
        assert settings.redis_url is not None
        url = settings.redis_url.get_secret_value()
        self.where = _where(url)
        self.policy = settings.redis_failure_policy
        self.timeout = settings.redis_timeout
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
        self._clock = clock
        # One immediate retry inside redis-py, for a pooled connection that a Redis restart
        # broke; `run` bounds the whole by redis_timeout, then the policy decides.
        try:
            self.client = aioredis.Redis.from_url(
                url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 1),
                decode_responses=True,
            )
        except ValueError as exc:  # e.g. ?socket_timeout=abc; the text may quote the URL
            password = urlsplit(url).password
            why = "" if password and password in str(exc) else f" ({exc})"
            raise ConfigError(
                f"redis-py cannot read POSTHOG_REDIS_URL (Redis at {self.where}){why}; check "
                "its options after '?', or leave them out."
            ) from None
        self.available = True
        self._next_try = -float("inf")
        self._pending: set[asyncio.Future[Any]] = set()  # see `run_to_the_end`

    def script(self, lua: str) -> Any:
        """A Lua script run by SHA (loaded again by redis-py after a Redis restart)."""
        return self.client.register_script(lua)

    async def run(
        self,
        operation: Callable[..., Awaitable[T]],
        /,
        *args: Any,
        best_effort: bool = False,
        always: bool = False,
        **kwargs: Any,
    ) -> T | Fallback:
        """`await operation(*args, **kwargs)` within `redis_timeout`; on failure, apply the
        policy.

        `best_effort` operations (releasing, renewing) never raise: they return `FALLBACK`
        whatever the policy, since refusing them would only lose the answer they clean up after.
        `always` operations are tried even while Redis is known to be down (releasing a slot:
        skipping it would hold the slot until its lease ends).
        """
        if not self.available and not always:
            now = self._clock()
            if now < self._next_try:
                return self._unavailable(None, best_effort)
            self._next_try = now + _RETRY_SECONDS  # this call tries; the others fall back
        try:
            with anyio.fail_after(self.timeout):
                answer = await operation(*args, **kwargs)
        except self._errors as exc:
            return self._unavailable(exc, best_effort)
        if not self.available:
            self.available = True
            log.warning("shared_limits_restored", redis=self.where)
        return answer

    async def run_to_the_end(
        self,
        operation: Callable[..., Awaitable[T]],
        /,
        *args: Any,
        undo: Callable[[T | Fallback], Awaitable[object]] | None = None,
        best_effort: bool = False,
        always: bool = False,
        **kwargs: Any,
    ) -> T | Fallback:
        """`run()` for an operation that takes or frees something (a slot, the probe): it runs
        to its end in a task of its own, even when the caller is cancelled meanwhile.

        A cancellation (anyio's or asyncio's own `task.cancel()`, which anyio's shield cannot
        hold back) can arrive after Redis granted something and before the caller heard of it;
        `undo(answer)` then gives it back, in the background, once the answer is in.
        """
        task = asyncio.ensure_future(
            self.run(operation, *args, best_effort=best_effort, always=always, **kwargs)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda done: self._abandoned(done, undo))
            raise

    def _abandoned(
        self, task: asyncio.Future[Any], undo: Callable[[Any], Awaitable[object]] | None
    ) -> None:
        if task.cancelled() or task.exception() is not None or undo is None:
            return  # (reading the exception also keeps asyncio from logging it as lost)
        cleanup = asyncio.ensure_future(undo(task.result()))
        self._pending.add(cleanup)
        cleanup.add_done_callback(self._pending.discard)

    def _unavailable(self, exc: BaseException | None, best_effort: bool) -> Fallback:
        if exc is not None:
            self._next_try = self._clock() + _RETRY_SECONDS
            if self.available:
                self.available = False
                fallback = "per-process limits" if self.policy == "local" else "calls refused"
                log.warning(
                    "shared_limits_unavailable",
                    redis=self.where,
                    error=type(exc).__name__,
                    policy=self.policy,
                    now=fallback,
                )
        if self.policy == "local" or best_effort:
            return FALLBACK
        raise SharedLimitsError(
            f"The shared limits store (Redis at {self.where}) could not be reached or did not "
            f"answer within {self.timeout:g} s; POSTHOG_REDIS_FAILURE_POLICY=closed refuses "
            "calls until it answers, and nothing was sent. Check that Redis is running and "
            "reachable, or set POSTHOG_REDIS_FAILURE_POLICY=local to fall back to per-process "
            "limits."
        )

    async def aclose(self) -> None:
        with anyio.move_on_after(self.timeout, shield=True):
            # Slots and probes given back for cancelled callers: a give-back starts only when
            # its Redis answer arrives, maybe during this wait, so wait again until none is left.
            while self._pending:
                await asyncio.wait(set(self._pending), timeout=self.timeout)
            await self.client.aclose()
