"""Agent tools: the driver as `list_objects`, `get_fields`, `query` and `describe`.

`Toolset` is framework-neutral; thin adapters translate it (each needs its extra):

- `posthog_driver.tools.anthropic_loop`: `run_tool_loop` for the Messages API (`anthropic`);
- `posthog_driver.tools.mcp_server`: `create_mcp_server` on the official SDK (`mcp`);
- `posthog_driver.tools.agent_sdk`: `create_agent_sdk_server` for the Claude Agent SDK
  (`agent-sdk`).

Importing this package imports none of those extras.
"""

from posthog_driver.tools.rendering import RenderLimits
from posthog_driver.tools.specs import TOOL_SPECS, ToolSpec
from posthog_driver.tools.toolset import ToolResult, Toolset

__all__ = ["TOOL_SPECS", "RenderLimits", "ToolResult", "ToolSpec", "Toolset"]
