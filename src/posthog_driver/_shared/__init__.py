"""Limits shared by every process that uses one Redis (`POSTHOG_REDIS_URL`).

PostHog's budgets belong to the project (240 queries a minute, 2,400 an hour) and to the
organisation (3 queries at once), not to a process: workers of one app that each enforce them
alone send several times the limits between them. With a Redis URL, the pipeline asks Redis
instead of its own state for:

- the sliding windows and `Retry-After` pauses of each endpoint class (`SharedWindows`);
- the concurrent-query slots, held by leases (`SharedSlots`);
- the circuit breakers, with one half-open probe fleet-wide (`SharedBreaker`);
- the schema answers (`SharedCache`, unless `redis_schema_cache=False`).

Keys are namespaced by host and project, and the slots by organisation when
`organization_id` is set (else by project too): two projects never share a budget by
accident. Each per-process object stays in place behind its shared one, for the `local`
failure policy.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from posthog_driver._breaker import CircuitBreaker
from posthog_driver._limits import RateLimits
from posthog_driver._settings import DriverSettings
from posthog_driver._shared._breaker import SharedBreaker
from posthog_driver._shared._cache import SharedCache
from posthog_driver._shared._slots import SharedSlots
from posthog_driver._shared._store import RedisStore
from posthog_driver._shared._windows import SharedWindows

__all__ = ["SharedLimits", "key_prefixes"]

_NAMESPACE = "posthog-driver:v1"


def key_prefixes(settings: DriverSettings) -> tuple[str, str]:
    """(project prefix, organisation prefix). Each is one Redis Cluster hash tag."""
    host = urlsplit(settings.host).netloc.lower()
    project = f"{_NAMESPACE}:{{{host}/project/{settings.project_id}}}"
    if settings.organization_id is None:
        return project, project
    return project, f"{_NAMESPACE}:{{{host}/organization/{settings.organization_id}}}"


class SharedLimits:
    """The shared counterparts of one pipeline's windows, slots and breakers."""

    def __init__(
        self,
        settings: DriverSettings,
        limits: RateLimits,
        breakers: dict[str, CircuitBreaker],
    ) -> None:
        self.store = RedisStore(settings)
        project, organization = key_prefixes(settings)
        self.windows = {
            name: SharedWindows(self.store, project, limits.for_endpoint(name))
            for name in ("query", "api")
        }
        self.slots = SharedSlots(
            self.store,
            f"{organization}:query-slots",
            settings.max_concurrent_queries,
            settings.redis_lease_seconds,
        )
        self.breakers = {
            name: SharedBreaker(
                self.store,
                f"{project}:breaker:{name}",
                breaker,
                threshold=settings.breaker_threshold,
                reset_seconds=settings.breaker_reset_seconds,
                probe_lease=settings.timeout + 2 * settings.redis_timeout,
            )
            for name, breaker in breakers.items()
        }
        self.cache = (
            SharedCache(self.store, project, settings.schema_cache_ttl, settings.timeout)
            if settings.redis_schema_cache
            else None
        )

    async def aclose(self) -> None:
        await self.slots.aclose()
        await self.store.aclose()
