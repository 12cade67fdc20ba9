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
