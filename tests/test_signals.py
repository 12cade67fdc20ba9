"""Every long-running command stops on the first Ctrl-C or SIGTERM: exit 130 or 143, one line,
no traceback, no engine noise. Real subprocesses, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

COMMANDS = {
    "demo": ["demo", "--events", "200000"],  # signalled while it generates and loads data
    "mcp": ["mcp"],
    "mcp-http": ["mcp", "--http", "--port", "0"],
    "serve-local": ["serve-local", "--events", "2000", "--port", "0"],
}


CASES = [  # each command once per signal it is most often stopped with (test_cli: serve-local
    # on Ctrl-C as a background job)
    ("demo", signal.SIGINT, 130),
    ("demo", signal.SIGTERM, 143),
    ("mcp", signal.SIGINT, 130),
    ("mcp-http", signal.SIGTERM, 143),
    ("serve-local", signal.SIGTERM, 143),
]


@pytest.mark.parametrize(("command", "signum", "status"), CASES,
                         ids=[f"{c}-{signal.Signals(s).name}" for c, s, _ in CASES])  # fmt: skip
def test_a_signal_ends_the_command_cleanly(
    command: str, signum: int, status: int, local_server: Any
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), **local_server.env(),
           "POSTHOG_MCP_TOKEN": "signal-test-token-0123456789"}  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        # The console script, as users run it: a signal even during its imports is one line.
        [str(Path(sys.executable).parent / "posthog-driver"), *COMMANDS[command]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        text=True,
    )  # fmt: skip
    time.sleep(2)  # started, mid-work: loading data, or serving
    assert process.poll() is None, process.communicate()[1]
    process.send_signal(signum)
    try:
        _out, err = process.communicate(timeout=30)  # a guard against hangs, not a timing
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure this test exists for
        process.kill()
        raise
    assert process.returncode == status, err
    assert "Traceback" not in err
    assert "Segmentation" not in err
    assert "Exception" not in err
    assert err.strip().splitlines()[-1] in ("interrupted", "terminated")


STDIO_SERVERS = {  # each reads stdin on the MCP SDK's worker thread, which only EOF ends
    "mcp": ["-m", "posthog_driver.cli", "mcp"],
    "example": [str(Path(__file__).parents[1] / "examples" / "mcp_server.py"), "--serve"],
}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
@pytest.mark.parametrize("server", list(STDIO_SERVERS))
def test_an_mcp_stdio_server_stops_on_a_signal_while_its_client_keeps_stdin_open(
    server: str, signum: int, local_server: Any, tmp_path: Path
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), **local_server.env()}
    with (tmp_path / "stderr").open("w+") as errors, subprocess.Popen(  # noqa: S603
        [sys.executable, *STDIO_SERVERS[server]],  # our own interpreter and module
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, env=env, text=True,
    ) as process:  # fmt: skip
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            process.stdin.write(json.dumps(INITIALIZE) + "\n")  # stdin stays open afterwards
            process.stdin.flush()
            assert '"result"' in process.stdout.readline()  # serving, blocked reading stdin
            process.send_signal(signum)
            status = process.wait(timeout=20)  # a guard against the wait for EOF, not a timing
        finally:
            process.kill()
        errors.seek(0)
        err = errors.read()
    assert status == 128 + signum, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] in ("interrupted", "terminated")


INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "signal-test", "version": "1"}},
}  # fmt: skip


def _sigint_ignored() -> None:  # what a script's `cmd &` hands a background job
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("command", ["mcp-http", "serve-local"])
@pytest.mark.parametrize("after", [0.0, 2.0], ids=["at-start", "serving"])
def test_a_server_started_in_the_background_still_stops_on_sigint(
    command: str, after: float, local_server: Any
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), **local_server.env(),
           "POSTHOG_MCP_TOKEN": "signal-test-token-0123456789"}  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(Path(sys.executable).parent / "posthog-driver"), *COMMANDS[command]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        text=True, preexec_fn=_sigint_ignored,  # noqa: PLW1509 - only signal.signal, no locks
    )  # fmt: skip
    time.sleep(after or 0.05)  # at once (still importing), or once serving
    process.send_signal(signal.SIGINT)
    try:
        _out, err = process.communicate(timeout=30)  # a guard against hangs, not a timing
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure this test exists for
        process.kill()
        process.communicate()
        raise
    assert process.returncode == 130, err
    assert "Traceback" not in err
