"""The commands the README shows, run as written (against the local server), so they cannot go
stale: each `uv run posthog-driver ...` line of the Command line section exits 0. The two
long-running ones (demo, serve-local) have their own tests (test_cli, test_signals)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).parents[1] / "README.md"
LONG_RUNNING = {"demo", "serve-local"}


def _commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words[:3] == ["uv", "run", "posthog-driver"] and words[3] not in LONG_RUNNING:
            commands.append(words[3:])
    return commands


COMMANDS = _commands()


def test_the_readme_shows_commands() -> None:
    assert len(COMMANDS) >= 6
    assert any(c[0] == "validate" for c in COMMANDS)


@pytest.mark.parametrize("arguments", COMMANDS, ids=[" ".join(c)[:40] for c in COMMANDS])
def test_a_readme_command_runs_as_written(
    arguments: list[str], local_server: Any, tmp_path: Path
) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and the README's arguments
        [sys.executable, "-m", "posthog_driver.cli", *arguments],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), **local_server.env()},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    expected = 1 if arguments[0] == "validate" and "evnt" in arguments[1] else 0
    assert done.returncode == expected, done.stderr
    assert "Traceback" not in done.stderr


def test_every_server_option_the_docs_call_a_flag_is_one() -> None:
    import argparse  # noqa: PLC0415
    import dataclasses  # noqa: PLC0415

    from posthog_driver.cli import _parser  # noqa: PLC0415
    from posthog_local import ServerOptions  # noqa: PLC0415

    text = (README.parent / "docs" / "local-server.md").read_text(encoding="utf-8")
    said = re.search(r"Every field but (.*?) is\s+also a `serve-local` flag", text, re.S)
    assert said is not None
    not_flags = set(re.findall(r"`(\w+)`", said.group(1)))
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    flags = {action.dest for action in commands.choices["serve-local"]._actions}
    fields = {field.name for field in dataclasses.fields(ServerOptions)}
    assert fields - flags == not_flags
