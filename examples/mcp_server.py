"""Serve the PostHog tools over MCP, for Claude Desktop, Claude Code or any MCP client.

`uv run posthog-driver mcp` is the same server from the command line (stdio; `--http` for
streamable HTTP on 127.0.0.1:8765/mcp). This file shows the library call, and lets you try
the server locally: with the local server's `export POSTHOG_...` lines pasted,

    uv run python examples/mcp_server.py            # lists the tools, runs a query, exits
    uv run python examples/mcp_server.py --serve    # serves on stdio

Claude Code: `claude mcp add posthog -- posthog-driver mcp` (set POSTHOG_* in its env).
Claude Desktop (claude_desktop_config.json):

    {"mcpServers": {"posthog": {"command": "posthog-driver", "args": ["mcp"],
      "env": {"POSTHOG_API_KEY": "phx_...", "POSTHOG_PROJECT_ID": "12345",
              "POSTHOG_HOST": "https://us.posthog.com"}}}}
"""

from __future__ import annotations

import sys

import anyio
from mcp import Client

from posthog_driver import DriverError
from posthog_driver.tools.mcp_server import create_mcp_server


async def try_it() -> None:
    async with Client(create_mcp_server()) as client:
        for tool in (await client.list_tools()).tools:
            print("tool:", tool.name)
        result = await client.call_tool(
            "query", {"query": "SELECT event, count() AS n FROM events GROUP BY event LIMIT 5"}
        )
        for block in result.content:
            print(getattr(block, "text", block))


if __name__ == "__main__":
    try:
        if "--serve" in sys.argv:
            create_mcp_server().run("stdio")
        else:
            anyio.run(try_it)
    except DriverError as exc:  # one line that says what to fix, not a traceback
        sys.exit(f"error: {exc}")
