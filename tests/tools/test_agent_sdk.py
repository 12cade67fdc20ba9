"""The Claude Agent SDK's in-process server: its tools, called through the MCP protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from mcp import Client

from posthog_driver import AsyncDriver, DriverSettings
from posthog_driver.tools import Toolset
from posthog_driver.tools.agent_sdk import AgentSdkServer, create_agent_sdk_server


# Function loop: the driver's connections must live and close on the test's own loop.
@pytest_asyncio.fixture(loop_scope="function")
async def sdk_server(live_settings: DriverSettings) -> AsyncIterator[AgentSdkServer]:
    async with AsyncDriver(live_settings) as driver:
        yield create_agent_sdk_server(Toolset(driver))


def test_it_names_its_tools_as_claude_code_sees_them(sdk_server: AgentSdkServer) -> None:
    assert sdk_server.name == "posthog"
    assert sdk_server.config["type"] == "sdk"
    assert sdk_server.tool_names == [
        "mcp__posthog__list_objects",
        "mcp__posthog__get_fields",
        "mcp__posthog__query",
        "mcp__posthog__describe",
    ]


async def test_its_tools_are_listed_read_only_with_our_schemas(
    sdk_server: AgentSdkServer,
) -> None:
    async with Client(sdk_server.config["instance"]) as client:
        listed = (await client.list_tools()).tools
    assert [t.name for t in listed] == ["list_objects", "get_fields", "query", "describe"]
    assert all(t.annotations and t.annotations.read_only_hint for t in listed)
    get_fields = next(t for t in listed if t.name == "get_fields")
    assert get_fields.input_schema["required"] == ["object_name"]


async def test_its_tools_answer_and_fail_readably_through_mcp(sdk_server: AgentSdkServer) -> None:
    async with Client(sdk_server.config["instance"]) as client:
        rows = await client.call_tool(
            "query", {"query": "SELECT event, count() AS n FROM events GROUP BY event LIMIT 3"}
        )
        objects = await client.call_tool("list_objects", {})
        mistake = await client.call_tool("query", {"query": "SELEC 1"})
    assert not rows.is_error
    assert rows.content[0].text.splitlines()[0] == "event | n"  # type: ignore[union-attr]
    assert "events" in objects.content[0].text  # type: ignore[union-attr]
    assert mistake.is_error
    assert mistake.content[0].text.startswith("PostHog rejected the HogQL")  # type: ignore[union-attr]


async def test_a_custom_server_name_prefixes_the_tool_names(
    live_settings: DriverSettings,
) -> None:
    async with AsyncDriver(live_settings) as driver:
        server = create_agent_sdk_server(Toolset(driver), name="analytics")
    assert server.tool_names[0] == "mcp__analytics__list_objects"
