"""The `python` tool: the model's code runs in the bubblewrap sandbox on its query results and
charts come back as images, end to end on the demo data, through the Anthropic tool loop
(replayed) and through MCP."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from mcp import Client

from posthog_driver import AsyncDriver, DriverSettings, SandboxUnavailableError
from posthog_driver.sandbox import LocalSandboxExecutor, find_bubblewrap
from posthog_driver.tools import Toolset
from posthog_driver.tools.anthropic_loop import run_tool_loop
from posthog_driver.tools.mcp_server import create_mcp_server
from tests import respx2
from tests.tools.respx_bridge import anthropic_client
from tests.tools.test_anthropic_loop import MESSAGES_URL, Replay, assistant, tool_use

try:
    find_bubblewrap()
except SandboxUnavailableError as exc:  # pragma: no cover - CI installs bubblewrap
    pytest.skip(f"no bubblewrap here: {exc}", allow_module_level=True)

EVENTS = "SELECT event, count() AS n FROM events GROUP BY event ORDER BY n DESC LIMIT 5"
CHART = (
    "import matplotlib.pyplot as plt\n"
    "share = query_1['n'] / query_1['n'].sum()\n"
    "print(round(float(share.iloc[0]), 3))\n"
    "share.plot(kind='bar')\n"
)
PNG = b"\x89PNG"


@contextlib.asynccontextmanager
async def python_toolset(settings: DriverSettings) -> AsyncIterator[Toolset]:
    async with AsyncDriver(settings) as driver, LocalSandboxExecutor() as sandbox:
        yield Toolset(driver, executor=sandbox)


async def test_code_computes_on_the_rows_of_an_earlier_query_and_draws_a_chart(
    live_settings: DriverSettings,
) -> None:
    async with python_toolset(live_settings) as toolset:
        assert "python" in toolset.names
        rows = await toolset.call("query", {"query": EVENTS})
        result = await toolset.call("python", {"code": CHART})
    assert "`query_1` for the python tool" in rows.text
    assert not result.is_error, result.text
    share = float(result.text.splitlines()[0])
    assert 0 < share <= 1
    assert len(result.images) == 1
    assert result.images[0].startswith(PNG)
    assert "1 image attached" in result.text


async def test_a_mistake_in_the_code_comes_back_as_an_error_the_model_can_fix(
    live_settings: DriverSettings,
) -> None:
    async with python_toolset(live_settings) as toolset:
        result = await toolset.call("python", {"code": "print(query_7.columns)"})
    assert result.is_error
    assert "NameError" in result.text
    assert "agent.py" in result.text  # the model's own file and line


async def test_the_key_never_reaches_the_code(live_settings: DriverSettings) -> None:
    key = live_settings.api_key.get_secret_value()
    code = "import os\nprint(sorted(os.environ))\nprint(open('/proc/1/environ', 'rb').read())"
    async with python_toolset(live_settings) as toolset:
        result = await toolset.call("python", {"code": code})
    assert key not in result.text
    assert "API_KEY" not in result.text


async def test_without_an_executor_there_is_no_python_tool(live_settings: DriverSettings) -> None:
    async with AsyncDriver(live_settings) as driver:
        toolset = Toolset(driver)
        assert "python" not in toolset.names
        result = await toolset.call("python", {"code": "print(1)"})
    assert result.is_error
    assert "no tool named 'python'" in result.text


async def test_the_anthropic_loop_queries_computes_and_sends_the_chart_back(
    live_settings: DriverSettings,
) -> None:
    replay = Replay(
        assistant(tool_use("tu_1", "query", {"query": EVENTS})),
        assistant(tool_use("tu_2", "python", {"code": CHART})),
        assistant({"type": "text", "text": "Here is the chart."}, stop_reason="end_turn"),
    )
    question = [{"role": "user", "content": "Which event dominates? Chart it."}]
    with respx2.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        router.post(MESSAGES_URL).mock(side_effect=replay)
        async with (
            AsyncDriver(live_settings) as driver,
            LocalSandboxExecutor() as sandbox,
            anthropic_client() as client,
        ):
            outcome = await run_tool_loop(
                client, Toolset(driver, executor=sandbox), question, model="claude-test"
            )
    assert outcome.text == "Here is the chart."
    third = replay.requests[2]
    (result,) = third["messages"][-1]["content"]
    assert result["tool_use_id"] == "tu_2"
    assert result["is_error"] is False
    text, image = result["content"]
    assert text["type"] == "text"
    assert image["type"] == "image"
    assert base64.b64decode(image["source"]["data"]).startswith(PNG)
    key = live_settings.api_key.get_secret_value()
    assert not any(key in json.dumps(request) for request in replay.requests)


async def test_the_mcp_server_offers_python_with_a_sandbox_and_returns_images(
    live_settings: DriverSettings,
) -> None:
    sandbox = LocalSandboxExecutor()
    async with Client(create_mcp_server(live_settings, executor=sandbox)) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        await client.call_tool("query", {"query": EVENTS})
        result = await client.call_tool("python", {"code": CHART})
    assert names[-1] == "python"
    assert not result.is_error
    text, image = result.content
    assert float(text.text.splitlines()[0]) > 0
    assert image.mime_type == "image/png"
    assert base64.b64decode(image.data).startswith(PNG)
