"""Case 6: resident memory per query while 1,000 queries (250 with --quick) are in flight.

Each measurement runs in a fresh interpreter (`python -m benchmarks.memory --probe ...`), so
memory freed by an earlier run and kept by the allocator does not hide growth. The stub holds
every answer until it is released: RSS is read once the stub reports all 1,000 requests arrived
(or, with the driver's default 3 query slots, 3 arrived and all 1,000 calls are still pending),
the stub's count is read again right after, and only then are the answers released. RSS after
a warm-up is the baseline; bare httpx posting the same body is the comparison.
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
QUICK_IN_FLIGHT = 250
SLOTS = 3  # the driver's default query slots
KINDS = ("bare", "driver", "driver-3-slots")


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def on_wire(kind: str, n: int) -> int:
    """How many of `n` calls the stub should hold at once: all, or the driver's 3 slots."""
    return SLOTS if kind == "driver-3-slots" else n


async def _probe(kind: str, url: str, n: int) -> dict[str, Any]:
    query_url = f"{url}/api/projects/{PROJECT}/query/"
    limits = httpx2.Limits(max_connections=n, max_keepalive_connections=n)
    async with (
        httpx2.AsyncClient(limits=limits, timeout=60) as client,
        AsyncDriver(
            driver_settings(url, max_concurrent_queries=on_wire(kind, n), max_connections=n)
        ) as driver,
        httpx2.AsyncClient() as control,
    ):

        async def call() -> Any:
            if kind == "bare":
                response = await client.post(query_url, json=BODY, headers=HEADERS)
                return response.json()
            return await driver.query(QUERY)

        async def in_flight() -> int:
            return int((await control.get(f"{url}/_stub/stats")).json()["in_flight"])

        await asyncio.gather(*(call() for _ in range(3)))  # warm-up: imports, pools, caches
        # This connects the control client too: once 1,000 connects queue up, one can time out.
        await control.post(f"{url}/_stub/hold")
        tasks: list[asyncio.Task[Any]] = []
        try:
            before = _rss()
            tasks = [asyncio.create_task(call()) for _ in range(n)]
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if await in_flight() >= on_wire(kind, n):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.2)  # the last arrivals' client side settles
            during = _rss()
            seen = await in_flight()  # what the stub holds now, with RSS just read
            pending = sum(not task.done() for task in tasks)
        finally:
            await control.post(f"{url}/_stub/release")
            if kind == "driver-3-slots":  # the other calls would only queue through 3 slots
                for task in tasks:
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return {"kind": kind, "calls": n, "before": before, "during": during,
            "server_in_flight": seen, "pending": pending}  # fmt: skip


def _run_probe(kind: str, url: str, n: int) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "benchmarks.memory", "--probe", kind, "--url", url, "--n", str(n)],
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
    n, rounds = (QUICK_IN_FLIGHT, 1) if quick else (IN_FLIGHT, 3)
    raw: list[dict[str, Any]] = []
    with StubServer() as stub:
        for i in range(rounds):
            order = KINDS if i % 2 == 0 else tuple(reversed(KINDS))
            raw.append({kind: _run_probe(kind, stub.url, n) for kind in order})
    report.raw["memory"] = raw

    def per_query(r: dict[str, Any], kind: str) -> float:
        return float(r[kind]["during"] - r[kind]["before"]) / n / 1024

    for kind, label in (("driver", "all on the wire"), ("driver-3-slots", "default 3 slots")):
        report.add(
            Row(
                "6 memory",
                f"RSS growth per query in flight, driver ({label}), {n:,} calls",
                Summary.of([per_query(r, kind) for r in raw]),
                unit="KiB",
            )
        )
    report.add(
        Row(
            "6 memory",
            f"RSS growth per query in flight, bare httpx, {n:,} calls",
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
    wanted = {k: on_wire(k, n) for k in KINDS}
    seen = {k: [r[k]["server_in_flight"] for r in raw] for k in KINDS}
    pending = [r["driver-3-slots"]["pending"] for r in raw]
    held = all(
        r[k]["server_in_flight"] == wanted[k] and r[k]["pending"] == n for r in raw for k in KINDS
    )
    report.note(
        f"Case 6: {n:,} concurrent calls{' (--quick; 1,000 in a full run)' if quick else ''}, "
        "the stub holding every answer until RSS was read, one fresh process per measurement; "
        f"requests the stub held when RSS was read, per round: {seen} (intended {wanted}); "
        f"calls still pending with the default 3 slots: {pending} (intended {n}): "
        f"{'as intended' if held else '**NOT as intended**: the rows above do not measure it'}. "
        f"With 3 slots the other {n - SLOTS:,} calls wait in the driver for a slot (their cost "
        "is a task and a waiter on the slot limiter), then are cancelled."
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", choices=KINDS, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, default=IN_FLIGHT)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_probe(args.probe, args.url, args.n))))


if __name__ == "__main__":
    main()
