"""Case 11: one PostHog budget for a fleet of workers, with and without Redis.

4 worker processes x 64 callers query the local server, which is throttled as PostHog is:
240 queries a minute and 2,400 an hour per project (429 with `Retry-After`), 3 queries at once
(429 without). Each caller queries until the run ends (every call's deadline is the run's
end). The same fleet runs twice, side by side, on two fresh servers: with `POSTHOG_REDIS_URL`
(one redis-server on loopback) and without it. The server counts what it admitted and what
it refused; the share of the allowance used is admitted / (240 x the minute windows the run
spans).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.report import Report, Row
from benchmarks.stats import Summary
from benchmarks.stub import REPO_ROOT

WORKERS = 4
CALLERS = 64
PER_MINUTE = 240
QUERY = "SELECT event, count() FROM events GROUP BY event ORDER BY count() DESC LIMIT 5"


async def _worker(settings: dict[str, Any], start_at: float, seconds: float) -> dict[str, Any]:
    from posthog_driver import AsyncDriver, DriverError, DriverSettings  # noqa: PLC0415

    ok = 0
    errors: Counter[str] = Counter()
    messages: dict[str, str] = {}  # one example of each error
    answered: Counter[int] = Counter()  # answers per 5 s of the run
    async with AsyncDriver(DriverSettings(**settings)) as driver:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        end = time.monotonic() + seconds

        async def caller() -> None:
            nonlocal ok
            while (left := end - time.monotonic()) > 0.05:
                try:
                    await driver.query(QUERY, timeout=left)
                    ok += 1
                    answered[int((seconds - (end - time.monotonic())) // 5) * 5] += 1
                except DriverError as exc:
                    kind = f"{type(exc).__name__} {exc.status_code}"
                    errors[kind] += 1
                    messages.setdefault(kind, str(exc)[:300])
                    await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))

        await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return {"ok": ok, "errors": dict(errors), "messages": messages, "answered": answered}


def _fleet(server: Any, redis_url: str | None, seconds: float) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "api_key": server.api_key,
        "project_id": server.project_id,
        "host": server.url,
    }
    if redis_url is not None:
        settings["redis_url"] = redis_url
    start_at = time.time() + 4.0  # every worker imported and connected before the start
    config = json.dumps({"settings": settings, "start_at": start_at, "seconds": seconds})
    processes = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "benchmarks.shared_limits", "--worker", config],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    answers = []
    for process in processes:
        out, err = process.communicate(timeout=seconds + 120)
        if process.returncode:
            raise RuntimeError(f"worker failed: {err[-2000:]}")
        answers.append(json.loads(out.strip().splitlines()[-1]))
    counts = server.limit_counts
    errors: Counter[str] = Counter()
    for answer in answers:
        errors.update(answer["errors"])
    return {
        "admitted": counts["admitted"],
        "throttled": counts["throttled"],
        "concurrency_refused": counts["concurrency"],
        "peak_running": counts["peak_running"],
        "ok": sum(a["ok"] for a in answers),
        "errors": dict(errors),
    }


def _server(events: int) -> Any:
    from posthog_local import LocalServer, ServerOptions  # noqa: PLC0415 - an optional extra

    return LocalServer(
        ServerOptions(
            events=events,
            seed=7,
            query_rate_per_minute=PER_MINUTE,
            query_rate_per_hour=2400,
            max_concurrent_queries=3,
            query_latency_ms=(20, 40),  # a query takes a little while, as on PostHog
        )
    )


def run(report: Report, *, quick: bool) -> None:
    from tests.shared.redis_process import RedisProcess  # noqa: PLC0415

    seconds = 10.0 if quick else 75.0  # the last minute window has 15 s for its burst
    windows = math.ceil(seconds / 60)
    allowance = PER_MINUTE * windows
    raw: dict[str, Any] = {"seconds": seconds, "allowance": allowance}
    with tempfile.TemporaryDirectory() as folder, RedisProcess(Path(folder)) as redis:
        for name, url in (("redis", redis.url), ("per_process", None)):
            with _server(2_000 if quick else 20_000) as server:
                raw[name] = _fleet(server, url, seconds)
    report.raw["shared_limits"] = raw
    shared, alone = raw["redis"], raw["per_process"]
    refused = {
        name: raw[name]["throttled"] + raw[name]["concurrency_refused"]
        for name in ("redis", "per_process")
    }
    case = "11 shared limits"
    report.add(
        Row(
            case,
            f"429s from the server, {WORKERS} workers x {CALLERS} callers, with Redis / "
            f"per process ({refused['per_process']:,})",
            Summary.of([refused["redis"]]),
            unit="",
            target="0",
            met=refused["redis"] == 0,
        )
    )
    used = shared["admitted"] / allowance
    report.add(
        Row(
            case,
            f"allowance used with Redis: queries admitted / {allowance} allowed in "
            f"{windows} minute window(s); per process admitted {alone['admitted']}",
            Summary.of([used * 100]),
            unit="%",
            target=">= 90%",
            met=used >= 0.9,
        )
    )
    report.add(
        Row(
            case,
            "most queries running at once at the server, with Redis (PostHog's limit 3)",
            Summary.of([shared["peak_running"]]),
            unit="",
            target="<= 3",
            met=shared["peak_running"] <= 3,
        )
    )
    report.note(
        f"Case 11: {WORKERS} worker processes x {CALLERS} callers for {seconds:g} s each way, "
        "against the local server throttled to PostHog's limits (240/min, 2,400/h, 3 at once; "
        "queries take 20-40 ms); one redis-server on loopback. Calls and errors: with Redis "
        f"{shared['ok']} answered, {shared['errors']}; per process {alone['ok']} answered, "
        f"{alone['errors']}." + (" Quick: one minute window (10 s)." if quick else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", required=True)
    config = json.loads(parser.parse_args().worker)
    answer = asyncio.run(_worker(config["settings"], config["start_at"], config["seconds"]))
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
