"""Case 6: resident memory per query while 1,000 queries are in flight.

Each measurement runs in a fresh interpreter (`python -m benchmarks.memory --probe ...`), so
memory freed by an earlier run and kept by the allocator does not hide growth. The stub holds
every answer for a few seconds; RSS is read once the stub reports all 1,000 requests arrived
(or, with the driver's default 3 query slots, once all 1,000 calls are waiting), then compared
with RSS after a warm-up. Bare httpx posting the same body is the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx2
import psutil

from benchmarks.overhead import BODY, HEADERS, QUERY, driver_settings
from benchmarks.report import Report, Row
from benchmarks.stats import Summary
from benchmarks.stub import PROJECT, REPO_ROOT, StubServer
from posthog_driver import AsyncDriver

IN_FLIGHT = 1000
HOLD_MS = 6000
KINDS = ("bare", "driver", "driver-3-slots")


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


async def _probe(kind: str, url: str, n: int) -> dict[str, Any]:
    query_url = f"{url}/api/projects/{PROJECT}/query/"
    limits = httpx2.Limits(max_connections=n, max_keepalive_connections=n)
    slots = 3 if kind == "driver-3-slots" else n
    async with (
        httpx2.AsyncClient(limits=limits, timeout=60) as client,
        AsyncDriver(
            driver_settings(url, max_concurrent_queries=slots, max_connections=n)
        ) as driver,
        httpx2.AsyncClient() as control,
    ):

        async def call() -> Any:
            if kind == "bare":
                response = await client.post(query_url, json=BODY, headers=HEADERS)
                return response.json()
            return await driver.query(QUERY)

        await asyncio.gather(*(call() for _ in range(3)))  # warm-up: imports, pools, caches
        # Connect the control client now: once 1,000 connects queue up, a new one can time out.
        await control.get(f"{url}/_stub/stats")
        before = _rss()
        tasks = [asyncio.create_task(call()) for _ in range(n)]
        expected = 3 if kind == "driver-3-slots" else n
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            stats = (await control.get(f"{url}/_stub/stats")).json()
            if stats["in_flight"] >= expected:
                break
        await asyncio.sleep(0.2)
        during = _rss()
        in_flight = stats["in_flight"]
        if kind == "driver-3-slots":
            for task in tasks:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"kind": kind, "before": before, "during": during, "server_in_flight": in_flight}


def _run_probe(kind: str, url: str) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "benchmarks.memory", "--probe", kind, "--url", url],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"memory probe {kind} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(report: Report, *, quick: bool) -> None:
    rounds = 1 if quick else 3
    raw: list[dict[str, Any]] = []
    with StubServer(delay_ms=HOLD_MS) as stub:
        for i in range(rounds):
            order = KINDS if i % 2 == 0 else tuple(reversed(KINDS))
            raw.append({kind: _run_probe(kind, stub.url) for kind in order})
    report.raw["memory"] = raw

    def per_query(r: dict[str, Any], kind: str) -> float:
        return (r[kind]["during"] - r[kind]["before"]) / IN_FLIGHT / 1024

    for kind, label in (("driver", "all on the wire"), ("driver-3-slots", "default 3 slots")):
        report.add(
            Row(
                "6 memory",
                f"RSS growth per query in flight, driver ({label})",
                Summary.of([per_query(r, kind) for r in raw]),
                unit="KiB",
            )
        )
    report.add(
        Row(
            "6 memory",
            "RSS growth per query in flight, bare httpx",
            Summary.of([per_query(r, "bare") for r in raw]),
            unit="KiB",
        )
    )
    report.add(
        Row(
            "6 memory",
            "driver / bare httpx, per query on the wire",
            Summary.of([per_query(r, "driver") / per_query(r, "bare") for r in raw]),
        )
    )
    seen = {k: raw[0][k]["server_in_flight"] for k in KINDS}
    report.note(
        f"Case 6: {IN_FLIGHT:,} concurrent calls, stub holding each answer {HOLD_MS} ms, one "
        f"fresh process per measurement; requests the stub saw in flight when RSS was read: "
        f"{seen}. With the default 3 slots the other 997 calls wait in the driver (their "
        "cost is a task and a limiter waiter), then are cancelled."
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", choices=KINDS, required=True)
    parser.add_argument("--url", required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_probe(args.probe, args.url, IN_FLIGHT))))


if __name__ == "__main__":
    main()
