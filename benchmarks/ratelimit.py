"""Case 5: how closely the client-side rate limit keeps to a sliding window, seen by the server.

The query bucket is scaled down (N requests per T seconds, one window) so that 2,000 requests
take seconds, not hours; 64 callers push as hard as they can. The stub records each request's
arrival; we count the busiest T-second window (it must not exceed N) and the achieved rate over
the whole run (it should be at least 90% of N/T; the bucket is designed for 95% after a 5%
burst, see `posthog_driver.limits`).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from typing import Any, Literal

from benchmarks.overhead import driver_settings
from benchmarks.report import Report, Row
from benchmarks.stats import Summary
from benchmarks.stub import StubServer
from posthog_driver import AsyncDriver
from posthog_driver.limits import RateLimit, RateLimits

WINDOW = (100, 1.0)
CALLERS = 64


class _TimedRateLimit(RateLimit):
    """The driver's bucket, noting the moment each request leaves it."""

    __slots__ = ("released",)

    def __init__(self, released: list[float]) -> None:
        super().__init__("query", [WINDOW])
        self.released = released

    async def acquire(self) -> None:
        await super().acquire()
        self.released.append(time.monotonic())


class _TimedLimits(RateLimits):
    __slots__ = ("_timed",)

    def __init__(self, released: list[float]) -> None:
        super().__init__(query=[WINDOW], api=[WINDOW])
        self._timed = _TimedRateLimit(released)

    def for_endpoint(self, endpoint: Literal["query", "api"]) -> RateLimit:
        return self._timed if endpoint == "query" else super().for_endpoint(endpoint)


def busiest_window(times: list[float], seconds: float) -> int:
    """The most arrivals in any half-open window [t, t + seconds) that starts at an arrival."""
    ordered = sorted(times)
    return max(bisect.bisect_left(ordered, t + seconds) - i for i, t in enumerate(ordered))


async def _push(url: str, total: int) -> list[float]:
    """Send `total` queries as fast as the bucket allows; return when each left the bucket."""
    released: list[float] = []
    async with AsyncDriver(driver_settings(url)) as driver:
        # Settings express only per-minute and per-hour windows; swap in a scaled-down one.
        driver.pipeline.limits = _TimedLimits(released)
        remaining = total

        async def caller() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await driver.query("SELECT 1")

        await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return released


def run(report: Report, *, quick: bool) -> None:
    rounds, total = (1, 500) if quick else (2, 2000)
    limit, seconds = WINDOW
    raw: list[dict[str, Any]] = []
    with StubServer() as stub:
        for _ in range(rounds):
            stub.reset()
            released = asyncio.run(_push(stub.url, total))
            times = stub.arrival_times()
            span = max(times) - min(times)
            raw.append(
                {
                    "requests": len(times),
                    "busiest_window": busiest_window(times, seconds),
                    "busiest_window_client": busiest_window(released, seconds),
                    "span_s": span,
                    "achieved_per_s": (len(times) - 1) / span,
                }
            )
    report.raw["ratelimit"] = raw
    busiest = Summary.of([float(r["busiest_window"]) for r in raw])
    report.add(
        Row(
            "5 rate-limit accuracy",
            f"most requests in any {seconds:g} s window, client side (leaving the bucket)",
            Summary.of([float(r["busiest_window_client"]) for r in raw]),
            unit="requests",
        )
    )
    achieved = Summary.of([100 * r["achieved_per_s"] / (limit / seconds) for r in raw])
    report.add(
        Row(
            "5 rate-limit accuracy",
            f"most requests in any {seconds:g} s window (limit {limit})",
            busiest,
            unit="requests",
            target=f"<= {limit}",
            met=busiest.high <= limit,
        )
    )
    report.add(
        Row(
            "5 rate-limit accuracy",
            "achieved rate, % of the limit",
            achieved,
            unit="%",
            target=">= 90%",
            met=achieved.low >= 90,
        )
    )
    report.note(
        f"Case 5: {raw[0]['requests']:,} requests per round from {CALLERS} callers through one "
        f"query window of {limit} per {seconds:g} s (scaled down from PostHog's 240/min so the "
        "run is short); busiest window and rate from the stub's arrival times, so loopback "
        "jitter counts against the driver. Met means every round met it."
    )
