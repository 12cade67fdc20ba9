"""`posthog-driver mcp`: a real server process. Over HTTP (127.0.0.1) it is closed without its
bearer token and open with it; a token is generated when none is set; other addresses get a
warning. On stdio it logs at the configured level."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

TOKEN = "mcp-test-token-0123456789abcdef"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _environment(local_server: Any) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), **local_server.env()}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(env: dict[str, str], port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "posthog_driver.cli", "mcp", "--http", "--port", str(port), *extra],
        env={"PATH": os.environ.get("PATH", ""), **env},
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the MCP server did not start")  # pragma: no cover


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    try:
        _out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:  # pragma: no cover - a hang is the failure
        process.kill()
        raise
    return err


@pytest.fixture
def server(local_server: Any) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = _free_port()
    process = _serve({**local_server.env(), "POSTHOG_MCP_TOKEN": TOKEN}, port)
    try:
        _wait_for(port, process)
        yield port, process
    finally:
        if process.poll() is None:
            _stop(process)


def test_without_the_token_nothing_is_reached(server: tuple[int, Any]) -> None:
    port, _process = server
    url = f"http://127.0.0.1:{port}/mcp"
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": TOKEN}):  # fmt: skip
        answer = httpx.post(url, json=INITIALIZE, headers={**HEADERS, **headers}, timeout=10)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"


def test_with_the_token_the_protocol_answers(server: tuple[int, Any]) -> None:
    port, process = server
    answer = httpx.post(
        f"http://127.0.0.1:{port}/mcp",
        json=INITIALIZE,
        headers={**HEADERS, "Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert "serverInfo" in answer.text
    err = _stop(process)
    assert TOKEN not in err  # a token from the environment is never printed
    assert process.returncode is not None


def test_a_missing_token_is_generated_and_printed_once(local_server: Any) -> None:
    port = _free_port()
    process = _serve(dict(local_server.env()), port)
    _wait_for(port, process)
    err = _stop(process)
    lines = err.splitlines()
    token = lines[lines.index(next(line for line in lines if "no POSTHOG_MCP_TOKEN" in line)) + 1]
    assert len(token) >= 32
    assert local_server.api_key not in err


def test_an_address_beyond_loopback_is_warned_about(local_server: Any) -> None:
    port = _free_port()
    process = _serve({**local_server.env(), "POSTHOG_MCP_TOKEN": TOKEN}, port, "--host", "0.0.0.0")  # noqa: S104
    _wait_for(port, process)
    err = _stop(process)
    assert "warning: serving MCP on 0.0.0.0" in err


def test_a_short_token_is_refused(local_server: Any) -> None:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "posthog_driver.cli", "mcp", "--http", "--port", str(_free_port())],
        env={**_environment(local_server), "POSTHOG_MCP_TOKEN": "short"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "at least 16 characters" in done.stderr


def test_the_stdio_server_keeps_its_logs_at_the_configured_level(local_server: Any) -> None:
    # before: the SDK logged every HTTP request to stderr at INFO, whatever POSTHOG_LOG_LEVEL said
    process = subprocess.Popen(
        [sys.executable, "-m", "posthog_driver.cli", "mcp"],
        env={**_environment(local_server), "POSTHOG_LOG_LEVEL": "WARNING"},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdin is not None
    assert process.stdout is not None

    def send(message: dict[str, Any]) -> None:
        assert process.stdin is not None
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()

    send(INITIALIZE)
    hello = json.loads(process.stdout.readline())
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
          "params": {"name": "list_objects", "arguments": {}}})  # fmt: skip
    answer = json.loads(process.stdout.readline())
    process.stdin.close()  # end of input: the server stops
    assert process.wait(timeout=30) == 0
    assert process.stderr is not None
    err = process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    assert hello["result"]["serverInfo"]["version"]  # not empty
    assert "events" in json.dumps(answer["result"])
    assert "HTTP Request" not in err
    assert "Processing request" not in err
