"""Case 10: streaming every row to Parquet: `driver.stream()` against keyset pagination written
by hand over bare httpx, from the local server, each client in its own process.

Both send the same page queries (the caller's SELECT as a subquery, `timestamp, uuid` keyset,
50,000 rows a page) and write each page as a Parquet row group; the driver's pages are typed
from PostHog's column types (timestamps as timestamps), the hand-written ones are what pyarrow
infers from the JSON (timestamps as text). Runs alternate. Each client reports its rows, a
checksum of the uuids it wrote (the same for both: every row, once) and its peak RSS; a driver
run with 10,000-row pages shows that memory follows the page size, not the result size.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.local import local_server
from benchmarks.report import Report, Row
from benchmarks.stats import Summary, percentile


def _client(kind: str, server: Any, batch: int, folder: str) -> dict[str, Any]:
    out = str(Path(folder) / f"{kind}-{batch}.parquet")
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "benchmarks.stream_client", kind, server.url, server.api_key,
         str(server.project_id), out, str(batch)],
        capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{kind} client failed: {done.stderr[-1000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(report: Report, *, quick: bool) -> None:
    try:
        import posthog_local  # noqa: F401, PLC0415
    except ImportError as exc:
        report.note(f"Case 10 skipped: the local server is not available ({exc}).")
        return
    events, rounds = (100_000, 1) if quick else (1_000_000, 2)
    runs: dict[str, list[dict[str, Any]]] = {"driver": [], "httpx": [], "driver-10k": []}
    with (
        local_server(events, keep=quick) as (server, _),
        tempfile.TemporaryDirectory() as folder,
    ):
        for _ in range(rounds):
            for kind in ("driver", "httpx"):
                runs[kind].append(_client(kind, server, 50_000, folder))
        runs["driver-10k"].append(_client("driver", server, 10_000, folder))
    report.raw["stream"] = runs
    checksums = {r["checksum"] for rs in runs.values() for r in rs}
    counts = {r["rows"] for rs in runs.values() for r in rs}
    rate = {k: [r["rows"] / r["seconds"] for r in rs] for k, rs in runs.items()}
    for kind, label in (("driver", "driver.stream()"), ("httpx", "hand-written keyset, httpx")):
        report.add(Row("10 stream to Parquet", f"{events:,} rows, {label}",
                       Summary.of(rate[kind]), unit="rows/s"))  # fmt: skip
        report.add(Row("10 stream to Parquet", f"peak RSS, {label}, 50,000-row pages",
                       Summary.of([r["peak_mib"] for r in runs[kind]]), unit="MiB"))  # fmt: skip
    small_pages = Summary.of([r["peak_mib"] for r in runs["driver-10k"]])
    report.add(Row("10 stream to Parquet", "peak RSS, driver.stream(), 10,000-row pages",
                   small_pages, unit="MiB"))  # fmt: skip
    ratio = percentile(rate["driver"], 50) / percentile(rate["httpx"], 50)
    report.add(Row("10 stream to Parquet", "throughput, driver / hand-written",
                   Summary.of([ratio]), target=">= 0.9x", met=ratio >= 0.9))  # fmt: skip
    same = len(checksums) == 1 and counts == {events}
    report.add(Row("10 stream to Parquet", "every row once (count and uuid checksum agree)",
                   Summary.of([1.0 if same else 0.0]), unit="", target="1", met=same))  # fmt: skip
    if quick:
        report.note(
            f"Case 10, --quick: a smoke run: {events:,} rows, 1 round (1,000,000 rows x 2 in a "
            "full run), on case 7's server when both run. Each client's imports and first page "
            "weigh more in so short a timed run, and the machine's other load is not averaged "
            "out, so the driver / hand-written ratio and its target are judged by a full run."
        )
