"""Serve the PostHog tools over MCP, for Claude Desktop, Claude Code or any MCP client.

`uv run posthog-driver mcp` is the same server from the command line (stdio; `--http` for
streamable HTTP on 127.0.0.1:8765/mcp). This file shows the library call, and lets you try
the server locally: with the local server's `export POSTHOG_...` lines pasted,

    uv run python examples/mcp_server.py            # lists the tools, runs a query, exits
    uv run python examples/mcp_server.py --serve    # serves on stdio (Ctrl-C stops it)

Claude Code: `claude mcp add posthog -- posthog-driver mcp` (set POSTHOG_* in its env), with
`posthog-driver` on PATH (`uv tool install "/path/to/posthog-driver[mcp]"`, see
docs/integrations.md).
Claude Desktop (claude_desktop_config.json) starts it without your shell's PATH: give the
absolute path that `which posthog-driver` prints:

    {"mcpServers": {"posthog": {"command": "/home/you/.local/bin/posthog-driver", "args": ["mcp"],
      "env": {"POSTHOG_API_KEY": "phx_...", "POSTHOG_PROJECT_ID": "12345",
              "POSTHOG_HOST": "https://us.posthog.com"}}}}
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

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


def serve_stdio() -> None:
    """Serve on stdio until the client closes stdin, Ctrl-C (exit 130) or SIGTERM (exit 143).

    The SDK reads stdin on a worker thread that only a closed stdin ends: a signal raises
    KeyboardInterrupt at once (asyncio's own Ctrl-C would wait for that thread), the server
    shuts down, and the process exits without waiting for the thread.
    """
    stopped_by: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        stopped_by.append(signum)
        # asyncio.run's clean-up would report the task this ends, with a traceback: on purpose.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        # The clean-up can still wait on that reader thread; give it 2 s, then exit anyway.
        threading.Timer(2.0, _exit, [signum]).start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        create_mcp_server().run("stdio")
    except* KeyboardInterrupt:  # bare, or wrapped by a task group it interrupted
        _exit(stopped_by[-1] if stopped_by else signal.SIGINT)


def _exit(signum: int) -> None:
    """One line, then exit 128 + signum without waiting for the SDK's stdin reader thread."""
    if threading.current_thread() is threading.main_thread():  # the timer's thread cannot
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("terminated" if signum == signal.SIGTERM else "interrupted", file=sys.stderr, flush=True)
    os._exit(128 + signum)


if __name__ == "__main__":
    try:
        if "--serve" in sys.argv:
            serve_stdio()
        else:
            anyio.run(try_it)
    except DriverError as exc:  # one line that says what to fix, not a traceback
        sys.exit(f"error: {exc}")
