"""Case 9: the python tool's latency, a sandbox started for the run vs one kept warm.

The same program (the python tool's fixed runner, on a 1,000-row query result: pandas loads it,
matplotlib draws it) runs in a ``LocalSandboxExecutor`` started on demand and in one entered
with ``warm=1``, alternating. A warm sandbox has pandas and matplotlib imported before the
program arrives; each still serves one run and is destroyed after it.
"""

from __future__ import annotations

import time

import anyio

from benchmarks.report import Report, Row
from benchmarks.stats import Summary, percentile

CODE = "query_1.plot(x='n', y='m')\nprint(query_1['m'].sum())"


def _files() -> dict[str, bytes]:
    rows = "\n".join(f"{i},{i * i}" for i in range(1000))
    return {"query_1.csv": f"n,m\n{rows}\n".encode(), "datasets.json": b'["query_1"]',
            "agent.py": CODE.encode()}  # fmt: skip


async def _latencies(rounds: int, pause: float) -> dict[str, list[float]]:
    from posthog_driver.sandbox import LocalSandboxExecutor  # noqa: PLC0415
    from posthog_driver.tools.python_tool import RUNNER  # noqa: PLC0415

    out: dict[str, list[float]] = {"cold": [], "warm": []}
    async with LocalSandboxExecutor() as cold, LocalSandboxExecutor(warm=1) as warm:
        for _ in range(rounds):
            for name, executor in (("cold", cold), ("warm", warm)):
                if name == "warm":  # the time between two model turns: the pool refills
                    await anyio.sleep(pause)
                started = time.perf_counter()
                result = await executor.run(RUNNER, files=_files(), timeout=120)
                out[name].append(time.perf_counter() - started)
                if not result.ok:
                    raise RuntimeError(f"the program failed: {result.stderr[-500:]}")
    return out


def run(report: Report, *, quick: bool) -> None:
    from posthog_driver import SandboxUnavailableError  # noqa: PLC0415

    rounds, pause = (1, 4.0) if quick else (5, 8.0)
    try:
        latencies = anyio.run(_latencies, rounds, pause)
    except SandboxUnavailableError as exc:
        report.note(f"Case 9 skipped: no sandbox here ({exc}).")
        return
    report.raw["python_sandbox"] = {"latency_s": latencies}
    for name in ("cold", "warm"):
        report.add(Row("9 python tool", f"run with a chart, {name} sandbox (p50 of {rounds})",
                       Summary.of(latencies[name]), unit="s"))  # fmt: skip
    ratio = percentile(latencies["warm"], 50) / percentile(latencies["cold"], 50)
    report.add(Row("9 python tool", "warm / cold", Summary.of([ratio]), target="<= 0.5x",
                   met=ratio <= 0.5))  # fmt: skip
    report.note(
        "Case 9: the python tool's runner on 1,000 rows with a chart; a warm sandbox was "
        "started (and imported pandas and matplotlib) while the previous turn ran, then "
        f"{pause:g} s passed before the warm run, as between two model turns"
        f"{' (--quick: 1 round; 5 rounds and 8 s in a full run)' if quick else ''}."
    )
