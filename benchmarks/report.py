"""One markdown table of every case's figures, the machine it ran on, and the raw JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.stats import Summary

QUICK = " (--quick: fewer calls and rounds)"
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(slots=True)
class Row:
    """One line of the table: a measured figure, its target, and whether it was met."""

    case: str
    measure: str
    summary: Summary
    unit: str = "x"
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass(slots=True)
class Report:
    """Rows and notes gathered from every case, plus the raw figures for the JSON file."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def note(self, text: str) -> None:
        self.notes.append(text)


def machine() -> str:
    """One line naming the machine, interpreter and OS the figures come from."""
    freq = psutil.cpu_freq()
    mhz = f" @ {freq.max or freq.current:.0f} MHz" if freq else ""
    cpu = _cpu_model() or platform.processor() or platform.machine()
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu}{mhz}, {os.cpu_count()} logical CPUs, {memory:.0f} GiB RAM; "
        f"Python {platform.python_version()} on {platform.system()} {platform.release()}"
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _figure(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value:.1f}%"
    if abs(value) >= 100 or unit in ("requests", "chars"):
        return f"{value:,.0f} {unit}"
    return f"{value:.2f} {unit}"


def markdown(report: Report, *, quick: bool) -> str:
    """The table, then the notes that say what each figure means and what limits it."""
    lines = [
        f"Machine: {machine()}.",
        f"Run: {time.strftime('%Y-%m-%d %H:%M')}{QUICK if quick else ''}; "
        "median over rounds, spread = min..max.",
        "",
        "| Case | Measure | Median | Spread | Rounds | Target | Met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        s = row.summary
        spread = (
            "-" if s.low == s.high else f"{_figure(s.low, row.unit)} .. {_figure(s.high, row.unit)}"
        )
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(
            f"| {row.case} | {row.measure} | {_figure(s.median, row.unit)} | {spread} | "
            f"{s.rounds} | {row.target} | {met} |"
        )
    if report.notes:
        lines += ["", "Notes:", *(f"- {n}" for n in report.notes)]
    return "\n".join(lines)


def write_json(report: Report, *, quick: bool) -> Path:
    """Write the raw figures to `benchmarks/results/` and return the file's path."""
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"bench-{stamp}{'-quick' if quick else ''}.json"
    payload = {
        "machine": machine(),
        "python": sys.version,
        "quick": quick,
        "rows": [asdict(r) for r in report.rows],
        "notes": report.notes,
        "raw": report.raw,
    }
    text = json.dumps(payload, indent=2, default=str)
    path.write_text(text, encoding="utf-8")
    (RESULTS / "latest.json").write_text(text, encoding="utf-8")
    return path
