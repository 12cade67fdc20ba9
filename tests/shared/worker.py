"""One worker process of a fleet: `python -m tests.shared.worker CONFIG_JSON`.

It builds an `AsyncDriver` from the config's settings, waits until `start_at` (a shared
wall-clock time, so that every worker's burst lands together), runs `calls` calls of `what`
with `concurrency` at once (or for `seconds`, when given), and prints one JSON line:
{"ok": n, "errors": {"ClassName status": n}, "messages": [...], "seconds": t}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

from posthog_driver import AsyncDriver, DriverError, DriverSettings, configure_logging


async def _run(config: dict[str, Any]) -> dict[str, Any]:
    settings = DriverSettings(**config["settings"])
    ok = 0
    errors: Counter[str] = Counter()
    messages: list[str] = []
    what = config.get("what", "query")
    hogql = config.get("hogql", "SELECT 1")
    calls = config.get("calls", 1)
    seconds = config.get("seconds")
    async with AsyncDriver(settings) as driver:
        delay = config.get("start_at", 0) - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        started = time.monotonic()
        remaining = {"calls": calls}

        async def one() -> None:
            nonlocal ok
            if what == "query":
                await driver.query(hogql, timeout=config.get("timeout"))
            elif what == "list_objects":
                await driver.list_objects(timeout=config.get("timeout"))
            else:
                await driver.get_fields(what, timeout=config.get("timeout"))
            ok += 1

        async def caller() -> None:
            while True:
                if seconds is not None:
                    if time.monotonic() - started >= seconds:
                        return
                elif remaining["calls"] <= 0:
                    return
                else:
                    remaining["calls"] -= 1
                try:
                    await one()
                except DriverError as exc:
                    errors[f"{type(exc).__name__} {exc.status_code}"] += 1
                    if len(messages) < 5:
                        messages.append(str(exc))
                    if seconds is not None:
                        await asyncio.sleep(config.get("pause_after_error", 0.05))

        await asyncio.gather(*(caller() for _ in range(config.get("concurrency", 1))))
        return {
            "ok": ok,
            "errors": dict(errors),
            "messages": messages,
            "seconds": time.monotonic() - started,
            "shared": driver.status().shared_limits,
        }


def main() -> None:
    config = json.loads(sys.argv[1])
    if config.get("log"):
        configure_logging(level="WARNING", fmt="json")
    print(json.dumps(asyncio.run(_run(config))), flush=True)


if __name__ == "__main__":
    main()
