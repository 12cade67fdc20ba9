"""Several worker processes, one PostHog budget: the local server (with PostHog's limits on)
is the referee, counting what it had to refuse. Each test also runs the same fleet without
Redis, to show the check can fail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from posthog_driver._limits import budget
from tests.shared import fleet

PER_MINUTE = 30
WORKERS = 3


def _burst(server: Any, redis_url: str | None) -> list[dict[str, Any]]:
    """Each worker fires 20 queries at once; a wait for the window is refused at once."""
    config = {
        "settings": fleet.settings(
            server,
            redis_url,
            query_rate_per_minute=PER_MINUTE,
            max_retry_after=0.5,
            max_retries=0,
            max_concurrent_queries=60,  # the window, not the slots, is what this test meets
        ),
        "calls": 20,
        "concurrency": 20,
    }
    return fleet.run([config] * WORKERS)


def test_the_fleet_shares_one_rate_window(
    limited_server: Callable[..., Any], redis_url: str
) -> None:
    server = limited_server(query_rate_per_minute=PER_MINUTE)
    results = _burst(server, redis_url)
    assert all(r["shared"] == "redis" for r in results)
    # Exactly the budget, fleet-wide: the whole burst allowance, and not one more.
    assert sum(r["ok"] for r in results) == budget(PER_MINUTE)
    assert server.limit_counts["throttled"] == 0
    # Every other call was refused by the driver before sending, saying why.
    for r in results:
        assert set(r["errors"]) <= {"RateLimitError None"}
        assert all("rate windows have no room" in m for m in r["messages"])


def test_without_redis_each_worker_spends_the_whole_budget(
    limited_server: Callable[..., Any],
) -> None:
    server = limited_server(query_rate_per_minute=PER_MINUTE)
    results = _burst(server, None)
    assert all(r["shared"] == "off" for r in results)
    assert server.limit_counts["throttled"] > 0  # the case shared windows exist for


def _overlapping(server: Any, redis_url: str | None) -> list[dict[str, Any]]:
    config = {
        "settings": fleet.settings(server, redis_url, max_retries=0, max_concurrent_queries=3),
        "calls": 12,
        "concurrency": 6,
        "timeout": 60,
    }
    return fleet.run([config] * WORKERS)


def test_the_fleet_runs_no_more_queries_than_its_slots(
    limited_server: Callable[..., Any], redis_url: str
) -> None:
    server = limited_server(max_concurrent_queries=3, query_latency_ms=(60, 60))
    results = _overlapping(server, redis_url)
    assert sum(r["ok"] for r in results) == 12 * WORKERS
    counts = server.limit_counts
    assert counts["concurrency"] == 0
    assert counts["peak_running"] == 3  # the slots were used, not left idle


def test_without_redis_the_workers_overrun_the_slots(limited_server: Callable[..., Any]) -> None:
    server = limited_server(max_concurrent_queries=3, query_latency_ms=(60, 60))
    results = _overlapping(server, None)
    assert server.limit_counts["concurrency"] > 0
    assert any("RateLimitError 429" in r["errors"] for r in results)
