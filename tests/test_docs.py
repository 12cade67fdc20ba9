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


# ---- every command the docs show, checked against what exists (a docs check: these are not
# run, most need a PostHog or run for ever) ----

DOCS = [README, *sorted((README.parent / "docs").glob("*.md"))]
_SHELL_BLOCK = re.compile(r"```(?:bash|console|sh|shell)\n(.*?)```", re.S)
_INLINE = re.compile(r"`((?:uv run |uvx )?(?:posthog-driver|nox|python -m benchmarks)[^`]*)`")


def _doc_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        lines = [line for block in _SHELL_BLOCK.findall(text) for line in block.splitlines()]
        for line in lines + _INLINE.findall(text):
            words = _words(line.strip().removeprefix("$ "))
            if words[:1] in (["posthog-driver"], ["nox"]) or words[:3] == _BENCHMARKS:
                found.append((f"{path.name}: {line.strip()}", words))
    return found


_BENCHMARKS = ["python", "-m", "benchmarks"]


def _words(line: str) -> list[str]:
    """The command of a shell line, without `VAR=value` prefixes and `uv run`."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return []
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        words = words[1:]
    return words[2:] if words[:2] == ["uv", "run"] else words


def _cli_arguments(words: list[str]) -> list[str]:
    """The arguments, with placeholders (QUESTION, N, "SELECT ...", <name>) made concrete."""
    arguments = []
    for word in words:
        if word in ("|", ">", ">>", "&&", ";"):
            break  # the rest is the shell's
        bare = word.strip("[]")  # a synopsis: [--port P]
        if "..." in bare or re.fullmatch(r"[A-Z][A-Z_]*|<.*>", bare):
            bare = "1"
        if bare:
            arguments.append(bare)
    return arguments


DOC_COMMANDS = _doc_commands()


def test_the_docs_show_many_commands() -> None:
    assert len(DOC_COMMANDS) >= 20


@pytest.mark.parametrize(("where", "words"), DOC_COMMANDS, ids=[w[:60] for w, _ in DOC_COMMANDS])
def test_a_documented_command_exists_as_written(where: str, words: list[str]) -> None:
    if words[0] == "posthog-driver":
        from posthog_driver.cli import _parser  # noqa: PLC0415 - what main() parses with

        arguments = _cli_arguments(words[1:])
        if not arguments:
            return  # the program's name in a sentence
        code = 0
        try:
            _parser().parse_args(arguments)
        except SystemExit as exc:  # --help and --version exit 0; a refusal exits 2
            code = int(exc.code or 0)
        assert code == 0, f"{where}: the CLI refuses {arguments}"
    elif words[0] == "nox":
        import noxfile  # noqa: PLC0415

        if "-s" in words:
            session = words[words.index("-s") + 1]
            assert callable(getattr(noxfile, session, None)), f"{where}: no nox session {session}"
    elif "--only" in words:
        from benchmarks.__main__ import CASES  # noqa: PLC0415

        for case in words[words.index("--only") + 1 :]:
            if case.startswith("-"):
                break
            assert case in CASES, f"{where}: no benchmark case {case}"
