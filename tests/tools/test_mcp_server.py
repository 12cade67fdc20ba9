"""The MCP server, through MCP clients, against the local PostHog-compatible server."""

from __future__ import annotations

import os
import sys
from typing import Any

from mcp import Client, StdioServerParameters

from posthog_driver import AsyncDriver, DriverSettings
from posthog_driver.tools import Toolset
from posthog_driver.tools.mcp_server import create_mcp_server

TOOL_NAMES = ["list_objects", "get_fields", "query", "describe"]


def text_of(result: Any) -> str:
    (block,) = result.content
    return str(block.text)


async def test_the_tools_are_listed_with_our_schemas_and_read_only_annotations(
    live_settings: DriverSettings,
) -> None:
    async with Client(create_mcp_server(live_settings)) as client:
        listed = (await client.list_tools()).tools
    assert [t.name for t in listed] == TOOL_NAMES
    query = next(t for t in listed if t.name == "query")
    assert query.input_schema["required"] == ["query"]
    assert query.input_schema["properties"]["values"]["type"] == "object"
    assert "LIMIT" in (query.description or "")
    for tool in listed:
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.destructive_hint is False


async def test_each_tool_answers_through_the_protocol(live_settings: DriverSettings) -> None:
    async with Client(create_mcp_server(live_settings)) as client:
        objects = await client.call_tool("list_objects", {})
        fields = await client.call_tool("get_fields", {"object_name": "events"})
        rows = await client.call_tool(
            "query",
            {
                "query": "SELECT count() AS n FROM events WHERE event = {ev} LIMIT 1",
                "values": {"ev": "$pageview"},
            },
        )
        described = await client.call_tool("describe", {"objects": ["persons"]})
    assert not any(r.is_error for r in (objects, fields, rows, described))
    assert "events" in text_of(objects).splitlines()[0]
    assert any(line.startswith("timestamp | datetime") for line in text_of(fields).splitlines())
    lines = text_of(rows).splitlines()
    assert lines[0] == "n"
    assert int(lines[1]) > 0
    assert lines[2] == "(1 row.)"
    assert text_of(described).startswith("persons: ")


async def test_a_hogql_mistake_is_an_error_result_with_posthogs_detail(
    live_settings: DriverSettings,
) -> None:
    async with Client(create_mcp_server(live_settings)) as client:
        result = await client.call_tool("query", {"query": "SELECT no_such_field FROM events"})
    assert result.is_error
    assert text_of(result).startswith("PostHog rejected the HogQL: ")
    assert "no_such_field" in text_of(result)


async def test_bad_arguments_and_unknown_objects_are_error_results(
    live_settings: DriverSettings,
) -> None:
    async with Client(create_mcp_server(live_settings)) as client:
        wrong_type = await client.call_tool("query", {"query": 42})
        missing = await client.call_tool("get_fields", {})
        unknown = await client.call_tool("get_fields", {"object_name": "event"})
    assert wrong_type.is_error
    assert "'query' must be a JSON string" in text_of(wrong_type)
    assert missing.is_error
    assert "missing required argument 'object_name'" in text_of(missing)
    assert unknown.is_error
    assert "Close matches: events" in text_of(unknown)


async def test_one_driver_serves_every_call_and_closes_with_the_server(
    live_settings: DriverSettings,
) -> None:
    made: list[Toolset] = []

    def factory(driver: AsyncDriver) -> Toolset:
        made.append(Toolset(driver, max_rows=5))
        return made[-1]

    server = create_mcp_server(live_settings, toolset_factory=factory)
    async with Client(server) as client:
        await client.call_tool("list_objects", {})
        result = await client.call_tool("query", {"query": "SELECT event FROM events LIMIT 50"})
        assert "state=open" in repr(made[0].driver)
    assert len(made) == 1
    assert "showing the first 5" in text_of(result)
    assert "state=closed" in repr(made[0].driver)


async def test_serve_mcp_speaks_stdio_to_a_real_client(local_server: Any) -> None:
    environment = {**local_server.env(), "PATH": os.environ.get("PATH", "")}
    launch = StdioServerParameters(
        command=sys.executable,
        args=[
            "-c",
            "import sys; from posthog_driver.tools.commands import serve_mcp; "
            "sys.exit(serve_mcp())",
        ],
        env=environment,
    )
    async with Client(launch) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("list_objects", {})
    assert names == TOOL_NAMES
    assert not result.is_error
    assert "events" in text_of(result)
