"""Each integration needs its extra, says so when missing, and the core never imports one."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

INTEGRATIONS = [
    ("posthog_driver.tools.mcp_server", "mcp", "mcp"),
    ("posthog_driver.tools.anthropic_loop", "anthropic", "anthropic"),
    ("posthog_driver.tools.agent_sdk", "claude_agent_sdk", "agent-sdk"),
    ("posthog_driver.integrations.fastapi", "fastapi", "fastapi"),
]


@pytest.mark.parametrize(("module", "dependency", "extra"), INTEGRATIONS)
def test_an_integration_without_its_extra_names_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, module: str, dependency: str, extra: str
) -> None:
    # None in sys.modules is what a missing package looks like to `import`.
    for name in [n for n in sys.modules if n == dependency or n.startswith(dependency + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, dependency, None)
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError, match=rf'pip install "posthog-driver\[{extra}\]"'):
        importlib.import_module(module)


def test_the_core_and_the_toolset_import_no_extra() -> None:
    code = (
        "import sys, posthog_driver, posthog_driver.tools, posthog_driver.integrations, "
        "posthog_driver.tools.commands; "
        "print(sorted(m for m in ('mcp', 'anthropic', 'claude_agent_sdk', 'fastapi') "
        "if m in sys.modules))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
