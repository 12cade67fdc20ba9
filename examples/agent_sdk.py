"""The PostHog tools in the Claude Agent SDK, as an in-process MCP server.

Needs `pip install "posthog-driver[agent-sdk]"`, ANTHROPIC_API_KEY and the Claude Code CLI the
SDK drives. Against the local server: paste its `export POSTHOG_...` lines, then
`uv run python examples/agent_sdk.py "What are the top events this week?"`.
Without ANTHROPIC_API_KEY it only lists the tools it would offer.
"""

from __future__ import annotations

import os
import sys

import anyio
from claude_agent_sdk import AssistantMessage, ClaudeAgentOptions, TextBlock, query

from posthog_driver import AsyncDriver, DriverError
from posthog_driver.tools import Toolset
from posthog_driver.tools.agent_sdk import create_agent_sdk_server


async def main(question: str) -> None:
    async with AsyncDriver.from_env() as driver:
        tools = create_agent_sdk_server(Toolset(driver))
        print("tools:", ", ".join(tools.tool_names), file=sys.stderr)
        if not os.environ.get("ANTHROPIC_API_KEY"):
            sys.exit("Set ANTHROPIC_API_KEY to an Anthropic API key to let Claude use them.")
        options = ClaudeAgentOptions(
            mcp_servers={tools.name: tools.config},
            allowed_tools=tools.tool_names,  # only these: the agent cannot touch files or shells
            max_turns=10,
        )
        async for message in query(prompt=question, options=options):
            if isinstance(message, AssistantMessage):
                for block in message.content:
                    if isinstance(block, TextBlock):
                        print(block.text)


if __name__ == "__main__":
    try:
        anyio.run(main, " ".join(sys.argv[1:]) or "Which events are most common?")
    except DriverError as exc:  # one line that says what to fix, not a traceback
        sys.exit(f"error: {exc}")
