"""The driver and the embedded local server are two packages with a one-way dependency."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import posthog_driver
from posthog_driver import cli

DRIVER = Path(posthog_driver.__file__).parent


def test_no_driver_module_imports_the_local_server() -> None:
    offenders = []
    for path in DRIVER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("posthog_local")]
    assert offenders == []


def test_importing_every_driver_module_leaves_the_local_server_unloaded() -> None:
    script = (
        "import pkgutil, sys, posthog_driver\n"
        "for m in pkgutil.walk_packages(posthog_driver.__path__, 'posthog_driver.'):\n"
        "    __import__(m.name)\n"
        "print('posthog_local' in sys.modules)\n"
        "from posthog_driver.cli import _parser\n"
        "_parser()\n"
        "print(sorted({'chdb', 'pandas', 'posthog_local.app'} & set(sys.modules)))\n"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    # the CLI's commands come from posthog_local's entry point, which loads no engine stack
    assert out.stdout.splitlines() == ["False", "[]"]


def test_without_the_local_package_demo_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    assert cli.main(["demo"]) == cli.EXIT_USAGE
    assert 'pip install "posthog-driver[local]"' in capsys.readouterr().err
