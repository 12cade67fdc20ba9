"""Each example, run as a newcomer would without configuration, says what to set in one line:
no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"
RUNNABLE = ["basic_usage.py", "typed_usage.py", "claude_tool_loop.py", "agent_sdk.py",
            "mcp_server.py"]  # fmt: skip


@pytest.mark.parametrize("name", RUNNABLE)
def test_an_example_without_configuration_says_what_to_set(name: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POSTHOG_", "ANTHROPIC_"))}  # fmt: skip
    done = subprocess.run(  # noqa: S603 - our own interpreter and example
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,  # no .env here
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "ANTHROPIC_API_KEY" in message or "POSTHOG_" in message


def _newcomer_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("POSTHOG_", "ANTHROPIC_")) and k != "APP_API_TOKEN"}  # fmt: skip


def test_the_fastapi_example_run_as_a_script_says_how_to_serve_it(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and example
        [sys.executable, str(EXAMPLES / "fastapi_app.py")],
        cwd=tmp_path, env=_newcomer_env(), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "uvicorn --factory examples.fastapi_app:create_app" in done.stderr
    assert "APP_API_TOKEN" in done.stderr


def test_the_fastapi_example_under_uvicorn_without_a_token_says_so_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "examples.fastapi_app:create_app",
         "--port", "0"],
        cwd=EXAMPLES.parent, env=_newcomer_env(), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: Set APP_API_TOKEN")


def test_the_fastapi_example_under_uvicorn_without_posthog_settings_says_so_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "examples.fastapi_app:create_app",
         "--port", "0"],
        cwd=EXAMPLES.parent, env={**_newcomer_env(), "APP_API_TOKEN": "t" * 24},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "POSTHOG_PROJECT_ID is missing" in done.stderr
