"""`ask` and `serve_mcp`, the functions behind `posthog-driver ask` and `posthog-driver mcp`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from posthog_driver import SandboxUnavailableError
from posthog_driver.tools import commands
from tests.tools.fake_posthog import HOST, KEY, PROJECT, FakePostHog
from tests.tools.respx_bridge import anthropic_client
from tests.tools.test_anthropic_loop import MESSAGES_URL, Replay, assistant, tool_use


@pytest.fixture
def posthog_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTHOG_HOST", HOST)
    monkeypatch.setenv("POSTHOG_API_KEY", KEY)
    monkeypatch.setenv("POSTHOG_PROJECT_ID", PROJECT)
    monkeypatch.setenv("POSTHOG_MAX_RETRIES", "0")


async def test_ask_without_an_anthropic_key_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert await commands.ask("How many users?") == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: ask needs ANTHROPIC_API_KEY set to an Anthropic API key.\n"


async def test_ask_with_invalid_posthog_settings_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    assert await commands.ask("?") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "POSTHOG_API_KEY" in err


@pytest.mark.usefixtures("posthog_env")
async def test_ask_prints_the_answer_after_the_tool_loop(
    fake_posthog: FakePostHog, capsys: pytest.CaptureFixture[str]
) -> None:
    replay = Replay(
        assistant(tool_use("tu_1", "list_objects", {})),
        assistant({"type": "text", "text": "You have 3 objects."}, stop_reason="end_turn"),
    )
    fake_posthog.router.post(MESSAGES_URL).mock(side_effect=replay)
    code = await commands.ask("What is there?", client=anthropic_client(), model="m")
    assert code == 0
    assert capsys.readouterr().out == "You have 3 objects.\n"
    assert replay.requests[0]["model"] == "m"
    assert replay.requests[0]["messages"] == [{"role": "user", "content": "What is there?"}]
    assert replay.requests[1]["messages"][-1]["content"][0]["is_error"] is False


@pytest.mark.usefixtures("posthog_env")
async def test_ask_that_runs_out_of_turns_says_so(
    fake_posthog: FakePostHog, capsys: pytest.CaptureFixture[str]
) -> None:
    replay = Replay(assistant(tool_use("tu_1", "list_objects", {})))
    fake_posthog.router.post(MESSAGES_URL).mock(side_effect=replay)
    code = await commands.ask("?", client=anthropic_client(), max_turns=1)
    assert code == 1
    assert "stopped after 1 turns" in capsys.readouterr().err


@pytest.mark.usefixtures("posthog_env")
async def test_ask_reports_an_anthropic_failure_in_one_line(
    fake_posthog: FakePostHog, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_posthog.router.post(MESSAGES_URL).mock(
        return_value=httpx.Response(
            401,
            json={"type": "error", "error": {"type": "authentication_error", "message": "bad"}},
        )
    )
    assert await commands.ask("?", client=anthropic_client()) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the Anthropic API failed: ")
    assert err.count("\n") == 1


def test_serve_mcp_refuses_an_unknown_transport(capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.serve_mcp(transport="carrier-pigeon") == 2
    assert "unknown MCP transport 'carrier-pigeon'" in capsys.readouterr().err


def test_serve_mcp_checks_settings_before_serving(capsys: pytest.CaptureFixture[str]) -> None:
    assert commands.serve_mcp() == 2
    assert "POSTHOG_API_KEY" in capsys.readouterr().err


@pytest.mark.usefixtures("posthog_env")
def test_serve_mcp_runs_stdio_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(MCPServer, "run", lambda self, how, **kw: ran.append((how, kw)))
    assert commands.serve_mcp(host="h", port=1) == 0
    assert ran == [("stdio", {})]


@pytest.mark.usefixtures("posthog_env")
def test_serve_mcp_serves_http_behind_the_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from posthog_driver.tools import mcp_http  # noqa: PLC0415

    served: list[dict[str, Any]] = []

    def serve(server: Any, *, sock: Any, **kw: Any) -> None:
        kw["port"] = sock.getsockname()[1]  # --port 0: the free port it was given
        sock.close()
        served.append(kw)

    monkeypatch.setattr(mcp_http, "serve_http", serve)
    monkeypatch.setenv("POSTHOG_MCP_TOKEN", "a-token-of-twenty-chars")
    assert commands.serve_mcp(transport="streamable-http", host="127.0.0.1", port=0) == 0
    assert served[0]["host"] == "127.0.0.1"
    assert served[0]["token"] == "a-token-of-twenty-chars"
    assert served[0]["port"] > 0


@pytest.mark.usefixtures("posthog_env")
def test_serve_mcp_with_a_local_sandbox_offers_the_python_tool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: list[list[str]] = []

    def run(self: MCPServer[Any], how: str, **kw: Any) -> None:
        served.append([tool.name for tool in self._tool_manager.list_tools()])

    monkeypatch.setattr(MCPServer, "run", run)
    assert commands.serve_mcp(sandbox="local") == 0
    assert served[0][-1] == "python"


@pytest.mark.usefixtures("posthog_env")
def test_a_sandbox_that_cannot_run_here_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing() -> str:
        raise SandboxUnavailableError("bubblewrap (bwrap) is not installed")

    monkeypatch.setattr(commands, "find_bubblewrap", missing)
    assert commands.serve_mcp(sandbox="local") == 2
    err = capsys.readouterr().err
    assert "--sandbox local cannot run here" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.usefixtures("posthog_env")
def test_an_e2b_sandbox_needs_its_key_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    assert commands.serve_mcp(sandbox="e2b") == 2
    assert "E2B_API_KEY" in capsys.readouterr().err
