"""Run every benchmark case and print one markdown table: `python -m benchmarks [--quick]`."""

from __future__ import annotations

import argparse
import importlib
import time
import traceback

from benchmarks.local import stop_kept
from benchmarks.report import Report, markdown, write_json

CASES = (
    "overhead", "discovery", "context", "ratelimit", "memory", "local_server", "engine_sandbox",
    "python_sandbox", "stream", "shared_limits",
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds: a smoke run")
    parser.add_argument("--only", nargs="*", choices=CASES, help="run only these cases")
    args = parser.parse_args()
    report = Report()
    for name in args.only or CASES:
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            module.run(report, quick=args.quick)
        except Exception as exc:  # noqa: BLE001 - one broken case must not hide the others
            traceback.print_exc()
            report.note(f"Case {name} did not run: {type(exc).__name__}: {exc}")
        report.raw.setdefault("case_seconds", {})[name] = round(time.perf_counter() - started, 1)
    stop_kept()  # the local server --quick shares between cases
    print(markdown(report, quick=args.quick))
    path = write_json(report, quick=args.quick)
    print(f"\nRaw figures: {path}")


if __name__ == "__main__":
    main()
