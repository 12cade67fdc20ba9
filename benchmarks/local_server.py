"""Case 7: the embedded local server on 1,000,000 events: query latency and requests per second.

The demo's typical analytics questions (top events, daily actives, a funnel, breakdowns) run
through the driver one at a time for latency; then 16 callers send a cheap query and
`health_check()` (GET project) for throughput. The server runs on a thread of this process,
as `posthog-driver serve-local` and the tests run it, so client and server share the GIL.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.local import local_server
from benchmarks.report import Report, Row
from benchmarks.stats import Summary, percentile
from posthog_driver import AsyncDriver, DriverError, DriverSettings

CALLERS = 16
LIGHT_QUERY = "SELECT count() AS n FROM events WHERE event = '$pageview'"


def _settings(srv: Any) -> DriverSettings:
    return DriverSettings(
        host=srv.url,
        api_key=srv.api_key,
        project_id=srv.project_id,
        query_rate_per_minute=10**9,
        query_rate_per_hour=10**9,
        api_rate_per_minute=10**9,
        api_rate_per_hour=10**9,
        max_concurrent_queries=CALLERS,
        retry_base_delay=0.0,
    )


async def _latencies(srv: Any, repeats: int, failed: dict[str, str]) -> dict[str, list[float]]:
    from posthog_driver.demo import QUESTIONS  # noqa: PLC0415

    out: dict[str, list[float]] = {}
    async with AsyncDriver(_settings(srv)) as driver:
        for q in QUESTIONS:
            try:
                await driver.query(q.hogql, q.values)  # warm: parse caches, page cache
            except DriverError as exc:
                failed[q.title] = str(exc)
                continue
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                await driver.query(q.hogql, q.values)
                times.append((time.perf_counter() - started) * 1000)
            out[q.title] = times
    return out


async def _throughput(srv: Any, calls: int, kind: str) -> float:
    async with AsyncDriver(_settings(srv)) as driver:

        async def once() -> None:
            if kind == "query":
                await driver.query(LIGHT_QUERY)
            else:
                assert await driver.health_check()

        async def caller() -> None:
            for _ in range(calls // CALLERS):
                await once()

        await once()
        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(CALLERS)))
        return (calls // CALLERS * CALLERS) / (time.perf_counter() - started)


def run(report: Report, *, quick: bool) -> None:
    events = 100_000 if quick else 1_000_000
    repeats, rounds, calls = (3, 1, 160) if quick else (7, 3, 800)
    try:
        import posthog_local  # noqa: F401, PLC0415
    except ImportError as exc:
        report.note(f"Case 7 skipped: the local server is not available ({exc}).")
        return
    with local_server(events, keep=quick) as (srv, load_s):
        failed: dict[str, str] = {}
        latencies = asyncio.run(_latencies(srv, repeats, failed))
        rates = {
            kind: [asyncio.run(_throughput(srv, calls, kind)) for _ in range(rounds)]
            for kind in ("query", "health")
        }
    report.raw["local_server"] = {
        "events": events,
        "load_s": load_s,
        "latencies_ms": latencies,
        "per_s": rates,
        "failed": failed,
    }
    for title, error in failed.items():
        report.note(f"Case 7: the demo question {title!r} failed on the local server: {error}")
    for title, times in latencies.items():
        report.add(
            Row(
                "7 local server",
                f"{title} (p50 of {repeats}; spread p0..p100)",
                Summary(percentile(times, 50), min(times), max(times), repeats),
                unit="ms",
            )
        )
    report.add(
        Row(
            "7 local server",
            f"requests/s, light query, {CALLERS} callers",
            Summary.of(rates["query"]),
            unit="req/s",
        )
    )
    report.add(
        Row(
            "7 local server",
            f"requests/s, health_check (GET project), {CALLERS} callers",
            Summary.of(rates["health"]),
            unit="req/s",
        )
    )
    report.note(
        f"Case 7: {events:,} generated events (generation and load took {load_s:.1f} s"
        f"{'; --quick: the server is kept for case 10' if quick else ''}); "
        "server on a thread of the benchmark process (chdb pool of 4 sessions), so it shares "
        "the CPU and GIL with the client. Latency includes the driver and HTTP."
    )
