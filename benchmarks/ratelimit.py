"""Case 5: how much of PostHog's allowance the client-side limits admit, and never more.

PostHog throttles queries with sliding logs: 240 per minute and 2,400 per hour. An agent that
always wants one more query (one attempt every 50 ms) is simulated on a fake clock for an hour,
side by side through two admission designs:

- the driver's sliding log (`posthog_driver._limits.RateLimit`, 2% headroom);
- the leaky buckets it replaced (one per window, a 5% burst then a steady drain sized so that
  no window can overflow: capacity C = budget/20, drain (budget - C)/T), simulated exactly.

The figures are deterministic (no wall clock): admitted in the first 1, 5, 10 and 60 minutes,
the busiest 60 s and 3,600 s windows, and the ratio of the two designs.
"""

from __future__ import annotations

import asyncio
import bisect
from typing import Any

from benchmarks.report import Report, Row
from benchmarks.stats import Summary
from posthog_driver._limits import RateLimit, WaitTooLong, budget

WINDOWS = ((240, 60.0), (2400, 3600.0))
STEP = 0.05  # one attempt every 50 ms
HOUR = 3600.0
MARKS = (1, 5, 10, 60)  # minutes


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _sliding_log() -> list[float]:
    clock = _Clock()
    limit = RateLimit("query", list(WINDOWS), clock=clock)
    admitted = []
    while clock.now < HOUR:
        try:  # admitted only if it need not wait: max_wait=0 refuses at once, taking nothing
            await limit.acquire(max_wait=0.0)
        except WaitTooLong:
            pass
        else:
            admitted.append(clock.now)
        clock.now += STEP
    return admitted


def _leaky_buckets() -> list[float]:
    """The replaced design, simulated: a request leaves when every bucket has a token."""
    buckets = []
    for requests, seconds in WINDOWS:
        allowed = budget(requests)
        burst = max(2, allowed // 20)
        rate = (allowed - burst) / seconds  # tokens per second
        buckets.append([float(burst), float(burst), rate])  # level, capacity, rate
    admitted, now = [], 0.0
    while now < HOUR:
        if all(level >= 1 for level, _, _ in buckets):
            for bucket in buckets:
                bucket[0] -= 1
            admitted.append(now)
        now += STEP
        for bucket in buckets:
            bucket[0] = min(bucket[1], bucket[0] + bucket[2] * STEP)
    return admitted


def busiest_window(times: list[float], seconds: float) -> int:
    """The most admissions in any window [t, t + seconds) that starts at an admission."""
    return max(bisect.bisect_left(times, t + seconds) - i for i, t in enumerate(times))


def run(report: Report, *, quick: bool) -> None:
    log = asyncio.run(_sliding_log())
    leaky = _leaky_buckets()
    raw: dict[str, Any] = {}
    for name, times in (("sliding log", log), ("leaky buckets", leaky)):
        counts = [sum(1 for t in times if t < m * 60) for m in MARKS]
        raw[name] = {
            "first_minutes": dict(zip(MARKS, counts, strict=True)),
            "busiest_60s": busiest_window(times, 60.0),
            "busiest_3600s": busiest_window(times, 3600.0),
        }
    report.raw["ratelimit"] = raw
    allowance = {1: 240, 5: 1200, 10: 2400, 60: 2400}
    for minutes in MARKS:
        ours = raw["sliding log"]["first_minutes"][minutes]
        old = raw["leaky buckets"]["first_minutes"][minutes]
        report.add(
            Row(
                "5 rate-limit allowance",
                f"queries admitted in the first {minutes} min (PostHog allows "
                f"{allowance[minutes]:,}); sliding log vs leaky buckets {old:,}: "
                f"{ours / old:.2f}x",
                Summary.of([float(ours)]),
                unit="queries",
                target=f">= 95% of {allowance[minutes]:,}",
                met=ours >= 0.95 * allowance[minutes],
            )
        )
    for seconds, (limit, _) in zip((60.0, 3600.0), WINDOWS, strict=True):
        key = f"busiest_{seconds:.0f}s"
        report.add(
            Row(
                "5 rate-limit allowance",
                f"most admitted in any {seconds:g} s window (PostHog's limit {limit:,})",
                Summary.of([float(raw["sliding log"][key])]),
                unit="queries",
                target=f"<= {limit:,}",
                met=raw["sliding log"][key] <= limit,
            )
        )
    report.note(
        "Case 5: an agent attempting a query every 50 ms for an hour, on a fake clock, through "
        "PostHog's query windows (240/min, 2,400/h). The sliding log admits the whole budget "
        "(2% under each limit) as a burst and never more in any window; the leaky buckets it "
        "replaced had to trade burst against rate to stay under the limit."
    )
