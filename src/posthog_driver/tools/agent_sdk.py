"""The toolset as an in-process MCP server for the Claude Agent SDK.

```python
from claude_agent_sdk import ClaudeAgentOptions, query

async with AsyncDriver.from_env() as driver:
    tools = create_agent_sdk_server(Toolset(driver))
    options = ClaudeAgentOptions(
        mcp_servers={tools.name: tools.config}, allowed_tools=tools.tool_names
    )
    async for message in query(prompt="How many signups last week?", options=options):
        ...
```

Claude Code names an MCP tool `mcp__<server>__<tool>`; `tool_names` lists them so they can be
passed to `allowed_tools` as they are. The driver is yours: keep it open while the agent runs.

Needs the `agent-sdk` extra: `pip install "posthog-driver[agent-sdk]"`.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

try:
    from claude_agent_sdk import McpSdkServerConfig, SdkMcpTool, ToolAnnotations
    from claude_agent_sdk import create_sdk_mcp_server as _create_sdk_mcp_server
    from claude_agent_sdk import tool as _sdk_tool
except ImportError as exc:
    raise ImportError(
        "The Claude Agent SDK helper needs claude-agent-sdk: "
        'pip install "posthog-driver[agent-sdk]"'
    ) from exc

from posthog_driver._version import __version__
from posthog_driver.tools.specs import ToolSpec
from posthog_driver.tools.toolset import Toolset

__all__ = ["AgentSdkServer", "create_agent_sdk_server"]

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class AgentSdkServer:
    """An in-process SDK MCP server: `config` for `ClaudeAgentOptions(mcp_servers=...)`.

    `name` is the key to use in `mcp_servers`; `tool_names` are the names Claude sees
    (`mcp__posthog__query`...), for `allowed_tools`.
    """

    name: str
    config: McpSdkServerConfig
    tool_names: list[str]


def create_agent_sdk_server(toolset: Toolset, *, name: str = "posthog") -> AgentSdkServer:
    """Wrap `toolset` in `create_sdk_mcp_server`, with read-only annotations on every tool."""
    tools = [_sdk_tool_for(toolset, spec) for spec in toolset.specs]
    config = _create_sdk_mcp_server(name=name, version=__version__, tools=tools)
    return AgentSdkServer(
        name=name,
        config=config,
        tool_names=[f"mcp__{name}__{spec.name}" for spec in toolset.specs],
    )


def _sdk_tool_for(toolset: Toolset, spec: ToolSpec) -> SdkMcpTool[Any]:
    async def handler(arguments: dict[str, Any]) -> dict[str, Any]:
        result = await toolset.call(spec.name, arguments)
        content: list[dict[str, Any]] = [{"type": "text", "text": result.text}]
        content += [
            {"type": "image", "data": base64.b64encode(image).decode(), "mimeType": "image/png"}
            for image in result.images
        ]
        return {"content": content, "is_error": result.is_error}

    annotations = ToolAnnotations(
        readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=True
    )
    return _sdk_tool(spec.name, spec.description, spec.input_schema, annotations=annotations)(
        handler
    )
