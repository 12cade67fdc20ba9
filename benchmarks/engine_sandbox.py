"""Case 8: what wall 3 costs: the engine process under bubblewrap vs a plain child process.

Both engines load the same data (50,000 events, seed 7) and answer the same queries straight
through ``Engine.run`` (no HTTP, no compiler), one at a time, alternating, so the ratio is the
sandbox's own cost: start-up (process, imports, generation, load) and per-query round trip.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from benchmarks.report import Report, Row
from benchmarks.stats import Summary, percentile

EVENTS = 50_000
QUERIES = (
    "SELECT 1",
    "SELECT count() FROM posthog.events WHERE event = '$pageview'",
    "SELECT event, count() FROM posthog.events GROUP BY event ORDER BY 2 DESC",
)


def _start(engine_cls: Any, limits: Any, sandbox: str) -> tuple[Any, float]:
    engine = engine_cls(4, limits, sandbox=sandbox)
    started = time.perf_counter()
    engine.start(events=EVENTS, seed=7)
    return engine, time.perf_counter() - started


async def _latencies(engines: dict[str, Any], repeats: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(repeats):
        for name, engine in engines.items():  # alternate, so drift hits both alike
            for sql in QUERIES:
                started = time.perf_counter()
                await engine.run(sql, {})
                out[name].append((time.perf_counter() - started) * 1000)
    return out


def run(report: Report, *, quick: bool) -> None:
    try:
        from posthog_driver import SandboxUnavailableError  # noqa: PLC0415
        from posthog_local.engine import Engine, EngineLimits  # noqa: PLC0415
    except ImportError as exc:
        report.note(f"Case 8 skipped: the local server is not available ({exc}).")
        return
    rounds, repeats = (1, 20) if quick else (4, 100)
    limits = EngineLimits()
    starts: dict[str, list[float]] = {"sandboxed": [], "plain": []}
    engines: dict[str, Any] = {}
    try:
        for _ in range(rounds):
            for name, mode in (("sandboxed", "required"), ("plain", "off")):
                engine, seconds = _start(Engine, limits, mode)
                starts[name].append(seconds)
                engines.setdefault(name, engine)
                if engines[name] is not engine:
                    engine.close()
        latencies = anyio.run(_latencies, engines, repeats)
    except SandboxUnavailableError as exc:
        report.note(f"Case 8 skipped: no sandbox here ({exc}).")
        return
    finally:
        for engine in engines.values():
            engine.close()
    report.raw["engine_sandbox"] = {"start_s": starts, "latencies_ms": latencies}
    start_ratio = percentile(starts["sandboxed"], 50) / percentile(starts["plain"], 50)
    query_ratio = percentile(latencies["sandboxed"], 50) / percentile(latencies["plain"], 50)
    for name in ("sandboxed", "plain"):
        report.add(Row("8 engine sandbox", f"start-up, {name} (p50 of {rounds})",
                       Summary.of(starts[name]), unit="s"))  # fmt: skip
        times = latencies[name]
        report.add(
            Row(
                "8 engine sandbox",
                f"query round trip, {name} (p50 of {len(times)})",
                Summary(percentile(times, 50), min(times), max(times), len(times)),
                unit="ms",
            )
        )
    for measure, ratio in (("start-up", start_ratio), ("query round trip", query_ratio)):
        report.add(
            Row(
                "8 engine sandbox",
                f"{measure}, sandboxed / plain",
                Summary.of([ratio]),
                target="<= 1.2x",
                met=ratio <= 1.2,
            )
        )
    smoke = " --quick: 1 start-up of each and 20 rounds of queries (4 and 100 in a full run)."
    report.note(
        f"Case 8: {EVENTS:,} events; start-up = spawn, imports, generation and load; a query "
        f"round trip = the server's pipe to the engine process and back, without HTTP."
        f"{smoke if quick else ''}"
    )
