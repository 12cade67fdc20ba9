"""`DriverStatus`: a read-only snapshot of a driver's resilience state, for monitoring.

```python
snap = driver.status()
snap.breakers["query"].state  # "closed", "open" or "half_open"
snap.limits["query"].windows[0]  # WindowStatus(used=12, limit=235, seconds=60.0)
```

Every field is a plain value taken when `status()` was called; changing nothing in the driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["BreakerStatus", "DriverStatus", "LimitStatus", "WindowStatus"]


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """One endpoint class's circuit breaker."""

    state: str  #: "closed", "open" or "half_open"
    failures: int  #: consecutive outage failures counted
    retry_after: float  #: seconds until a probe is let through (0.0 unless open)
    probe_in_flight: bool  #: a half-open breaker's one probe request is running


@dataclass(frozen=True, slots=True)
class WindowStatus:
    """One sliding rate window: `used` of `limit` requests in the last `seconds`."""

    used: int
    limit: int
    seconds: float


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """One endpoint class's rate limits."""

    paused_for: float  #: seconds left of a `Retry-After` pause (0.0 when none)
    waiting: int  #: calls waiting for room or for the pause to end
    windows: tuple[WindowStatus, ...]


@dataclass(frozen=True, slots=True)
class DriverStatus:
    """A snapshot of an `AsyncDriver`: breakers and limits per endpoint class ("query",
    "api"), query slots and cache."""

    state: str  #: "unopened", "open" or "closed"
    breakers: Mapping[str, BreakerStatus]
    limits: Mapping[str, LimitStatus]
    query_slots_in_use: int
    query_slots: int  #: POSTHOG_MAX_CONCURRENT_QUERIES
    cache_entries: int  #: fresh schema answers cached
    #: "off" (limits per process), "redis" (shared through POSTHOG_REDIS_URL), or "redis
    #: unreachable: per-process limits" / "... calls refused", by POSTHOG_REDIS_FAILURE_POLICY
    shared_limits: str = "off"
