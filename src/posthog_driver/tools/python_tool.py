"""The `python` tool: the model's code runs in an `Executor` on the rows of its earlier queries.

Nothing the model or PostHog sent becomes program text of ours: the model's code is the file
`agent.py`, each query result the file `query_N.csv` (with `datasets.json` naming them), and the
program the sandbox runs is the fixed `RUNNER` below, which loads the data as DataFrames, runs
`agent.py` in that namespace and saves the figures left open as PNG files.
"""

from __future__ import annotations

import csv
import io
import json
from collections import OrderedDict
from dataclasses import dataclass

from posthog_driver._results import QueryResult
from posthog_driver.sandbox._executor import ExecutionResult, Executor

__all__ = ["Datasets", "PythonRun", "run_python"]

MAX_DATASETS = 10  # the most recent query results kept for the python tool
RUNNER = """\
import json
import pandas as pd
namespace = {"__name__": "__main__", "pd": pd}
for name in json.load(open("datasets.json")):
    namespace[name] = pd.read_csv(name + ".csv")
source = open("agent.py", encoding="utf-8").read()
exec(compile(source, "agent.py", "exec"), namespace)
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    for index, number in enumerate(plt.get_fignums(), start=1):
        plt.figure(number).savefig(f"figure_{index}.png", dpi=100, bbox_inches="tight")
"""


class Datasets:
    """The conversation's query results, by name (`query_1`, ...), the newest `MAX_DATASETS`."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, QueryResult] = OrderedDict()
        self._count = 0

    def add(self, result: QueryResult) -> str:
        self._count += 1
        name = f"query_{self._count}"
        self._items[name] = result
        while len(self._items) > MAX_DATASETS:
            self._items.popitem(last=False)
        return name

    def files(self) -> dict[str, bytes]:
        out = {f"{name}.csv": _csv(result) for name, result in self._items.items()}
        out["datasets.json"] = json.dumps(list(self._items)).encode()
        return out


def _csv(result: QueryResult) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(result.as_dicts().columns)
    for row in result.rows:
        writer.writerow(json.dumps(v) if isinstance(v, list | dict) else v for v in row)
    return buffer.getvalue().encode("utf-8")


@dataclass(frozen=True, slots=True)
class PythonRun:
    """What the tool tells the model, and the images it shows it."""

    text: str
    images: tuple[bytes, ...]
    failed: bool


async def run_python(
    executor: Executor, code: str, datasets: Datasets, *, timeout: float, max_chars: int
) -> PythonRun:
    files = {**datasets.files(), "agent.py": code.encode("utf-8")}
    result = await executor.run(RUNNER, files=files, timeout=timeout)
    images = tuple(data for name, data in sorted(result.files.items()) if name.endswith(".png"))
    return PythonRun(_describe(result, images, max_chars), images, not result.ok)


def _describe(result: ExecutionResult, images: tuple[bytes, ...], max_chars: int) -> str:
    parts = []
    if result.stdout.strip():
        parts.append(_cut(result.stdout.rstrip(), max_chars))
    if result.timed_out:
        parts.append("The code ran out of time and was stopped; make it do less.")
    elif result.exit_code != 0:
        error = result.stderr.strip() or "no error output"
        parts.append("The code failed:\n" + _cut(error, max_chars // 2, keep_end=True))
    if result.truncated:
        parts.append("(Output was cut at the sandbox's limit: print less.)")
    if images:
        parts.append(f"({len(images)} image{'s' if len(images) > 1 else ''} attached.)")
    others = sorted(n for n in result.files if not n.endswith(".png"))
    if others:
        parts.append("Files written: " + ", ".join(others) + " (not shown).")
    return "\n".join(parts) or "The code ran and printed nothing; print() what you need."


def _cut(text: str, limit: int, *, keep_end: bool = False) -> str:
    if len(text) <= limit:
        return text
    if keep_end:  # a traceback's last lines say what went wrong
        return f"[... {len(text) - limit:,} characters cut]\n" + text[-limit:]
    return text[:limit] + f"\n[... {len(text) - limit:,} characters cut: print less]"
