"""Start several worker processes together and collect what each printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def start(config: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tests.shared.worker", json.dumps(config)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(process: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise AssertionError(f"worker failed ({process.returncode}): {err[-3000:]}")
    answer: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    answer["stderr"] = err
    return answer


def run(configs: list[dict[str, Any]], *, lead: float = 3.0) -> list[dict[str, Any]]:
    """Run one worker per config, all starting their calls `lead` seconds from now."""
    start_at = time.time() + lead
    processes = [start({**config, "start_at": start_at}) for config in configs]
    return [result(process) for process in processes]


def settings(server: Any, redis_url: str | None, **overrides: Any) -> dict[str, Any]:
    """Driver settings (as JSON) for the local `server`, shared through `redis_url`."""
    values: dict[str, Any] = {
        "api_key": server.api_key,
        "project_id": server.project_id,
        "host": server.url,
        "retry_base_delay": 0.0,
        "retry_max_delay": 0.0,
        **overrides,
    }
    if redis_url is not None:
        values["redis_url"] = redis_url
    return values
