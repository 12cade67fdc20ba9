"""Configuration of the local PostHog-compatible server.

Every knob is off (or harmless) by default so that the server behaves like a quiet, healthy PostHog;
throttling and fault injection are switched on explicitly by reliability tests and the CLI.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

__all__ = ["MAX_EVENTS", "ServerOptions", "generate_api_key"]

MAX_EVENTS = 20_000_000  # the demo data is generated in memory, then loaded


def generate_api_key() -> str:
    """Return a fresh personal API key in PostHog's form: ``phx_`` and 43 URL-safe characters."""
    return "phx_" + secrets.token_urlsafe(32)[:43]


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """How the local server listens, what data it serves and which PostHog limits it emulates.

    Example::

        ServerOptions(port=0, events=10_000, seed=7, max_concurrent_queries=3)
    """

    host: str = "127.0.0.1"
    """Interface to bind. Loopback by default: the server has no real users and no TLS."""

    port: int = 0
    """TCP port; 0 asks the operating system for a free one (read it from ``LocalServer.url``)."""

    events: int = 50_000
    """Number of events in the generated demo dataset (1_000_000 works, loading takes longer)."""

    seed: int = 42
    """Seed of the demo data generator: one seed always gives the same persons and events."""

    api_key: str | None = None
    """Personal API key clients must send as ``Authorization: Bearer <key>``; None generates one."""

    project_id: str = "1"
    """The one project id the server answers for; other ids get PostHog's 404."""

    query_rate_per_minute: int | None = None
    """Query endpoint throttle per minute (PostHog: 240); None switches the throttle off."""

    query_rate_per_hour: int | None = None
    """Query endpoint throttle per hour (PostHog: 2400); None switches the throttle off."""

    max_concurrent_queries: int | None = None
    """Queries allowed at once (PostHog: 3); one more gets the concurrency 429. None: no cap."""

    fault_5xx_rate: float = 0.0
    """Probability (0..1) that an API request is answered with an injected 503."""

    fault_429_rate: float = 0.0
    """Probability (0..1) that an API request is answered with an injected throttling 429."""

    retry_after: int = 1
    """``Retry-After`` seconds sent with injected 429 responses."""

    fault_drop_rate: float = 0.0
    """Probability (0..1) that the connection is closed without any response."""

    latency_ms: tuple[int, int] = (0, 0)
    """Range (low, high) of random latency in milliseconds added before every API response."""

    query_latency_ms: tuple[int, int] = (0, 0)
    """Range (low, high) of milliseconds every query takes on top of its engine time, holding its
    concurrency slot meanwhile: a slow ClickHouse, so that concurrent queries overlap."""

    query_timeout: float = 10.0
    """Engine ``max_execution_time`` in seconds for one HogQL query (PostHog's API uses 10)."""

    pool_size: int = 4
    """Number of engine sessions; a session runs one query at a time, so this bounds parallelism."""

    session_wait: float = 1.0
    """Seconds a query waits for a free engine session before PostHog's concurrency 429."""

    compile_timeout: float = 8.0
    """Seconds a query may take to parse and compile (PostHog's parser is slow on some deep
    nestings); past it the compiler process is replaced and the query refused with a 400."""

    query_memory_bytes: int = 1 << 30
    """Engine ``max_memory_usage`` of one query; past it the query fails (PostHog: a 504)."""

    sandbox: str = "auto"
    """Engine process isolation: ``auto`` (bubblewrap where it works, else a plain process and
    a warning), ``required`` (refuse to start without it) or ``off``."""

    def __post_init__(self) -> None:
        """Refuse values that cannot work, with a sentence that names the field."""
        for name in ("fault_5xx_rate", "fault_429_rate", "fault_drop_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate!r}")
        for name in ("latency_ms", "query_latency_ms"):
            low, high = getattr(self, name)
            if low < 0 or high < low:
                raise ValueError(
                    f"{name} must be (low, high) with 0 <= low <= high, got {(low, high)!r}"
                )
        if not 0 <= self.events <= MAX_EVENTS:
            raise ValueError(
                f"events must be between 0 and {MAX_EVENTS:,} (the demo data is generated in "
                f"memory), got {self.events!r}"
            )
        self._check_identity()
        self._check_limits()
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {self.pool_size!r}")
        if self.query_timeout <= 0:
            raise ValueError(f"query_timeout must be > 0, got {self.query_timeout!r}")
        if self.sandbox not in ("auto", "required", "off"):
            raise ValueError(f"sandbox must be auto, required or off, got {self.sandbox!r}")
        if self.session_wait < 0:
            raise ValueError(f"session_wait must be >= 0, got {self.session_wait!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {self.port!r}")

    def _check_identity(self) -> None:
        """The project id and key the driver will be given: what it would refuse, refused here."""
        if not re.fullmatch(r"[0-9]+", str(self.project_id)):
            raise ValueError(
                f"project_id must be a number, as PostHog's are, got {self.project_id!r}"
            )
        key = self.api_key
        if key is not None and not (key and key.isascii() and key.isprintable() and " " not in key):
            raise ValueError(
                "api_key must be printable ASCII without spaces, like a PostHog key (phx_...)"
            )
        if key is not None and key.startswith("phc_"):
            raise ValueError(
                "api_key must be a personal key (phx_...): the driver refuses project keys (phc_)"
            )

    def _check_limits(self) -> None:
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed!r}")
        for name in ("query_rate_per_minute", "query_rate_per_hour", "max_concurrent_queries"):
            limit = getattr(self, name)
            if limit is not None and limit < 1:
                raise ValueError(
                    f"{name} must be 1 or more (leave it out for no limit), got {limit}"
                )
        if self.retry_after < 0:
            raise ValueError(f"retry_after must be >= 0, got {self.retry_after!r}")
