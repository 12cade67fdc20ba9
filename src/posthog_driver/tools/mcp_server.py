"""An MCP server for the toolset, on the official `mcp` SDK (2.x `MCPServer`).

`create_mcp_server()` builds the server; its lifespan opens one `AsyncDriver` for the whole
server and closes it on shutdown, and every tool call shares it. The tools are async (the SDK
runs sync tools on the event loop), advertise the toolset's own JSON schemas, and are annotated
read-only, non-destructive, idempotent and open-world (they reach PostHog). Results and errors
are the toolset's text, with `is_error` set on failures.

```python
server = create_mcp_server()           # settings from POSTHOG_* at start-up
server.run("stdio")                    # or: server.run("streamable-http", port=8765)
```

Needs the `mcp` extra: `pip install "posthog-driver[mcp]"`.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

try:
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.tools import Tool
    from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
except ImportError as exc:
    raise ImportError(
        'The MCP server needs the mcp package (2.x): pip install "posthog-driver[mcp]"'
    ) from exc

from posthog_driver import __version__
from posthog_driver._driver import AsyncDriver
from posthog_driver._settings import DriverSettings
from posthog_driver.sandbox._executor import Executor
from posthog_driver.tools.specs import PYTHON_SPEC, TOOL_SPECS, ToolSpec
from posthog_driver.tools.toolset import ToolResult, Toolset

__all__ = ["INSTRUCTIONS", "READ_ONLY", "create_mcp_server", "to_call_tool_result"]

INSTRUCTIONS = (
    "Query PostHog product analytics with HogQL. Start with list_objects, read the fields of "
    "the object you need with get_fields, then run query (aggregate, filter on timestamp, "
    "always LIMIT). Errors tell you what to change."
)

READ_ONLY = ToolAnnotations(
    read_only_hint=True,
    destructive_hint=False,
    idempotent_hint=True,
    open_world_hint=True,
)
"""Every tool only reads: HogQL is SELECT-only and the key needs only read scopes."""

ToolsetFactory = Callable[[AsyncDriver], Toolset]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def to_call_tool_result(result: ToolResult) -> CallToolResult:
    """A toolset result as MCP's `CallToolResult`: a text block, then any PNG images."""
    images = [
        ImageContent(type="image", data=base64.b64encode(image).decode(), mime_type="image/png")
        for image in result.images
    ]
    return CallToolResult(
        content=[TextContent(type="text", text=result.text), *images], is_error=result.is_error
    )


def create_mcp_server(
    settings: DriverSettings | None = None,
    *,
    name: str = "posthog",
    toolset_factory: ToolsetFactory | None = None,
    executor: Executor | None = None,
    log_level: LogLevel = "WARNING",
) -> MCPServer[Toolset]:
    """An `MCPServer` serving `list_objects`, `get_fields`, `query` and `describe`, and
    `python` when an `executor` (a sandbox) is given.

    `settings` default to `DriverSettings.from_env()` (the `POSTHOG_*` environment), read when the
    server starts, not when it is built. `toolset_factory` builds the toolset around the
    server's driver (e.g. `lambda d: Toolset(d, max_rows=50)`). `log_level` is the SDK's
    (at INFO it logs every request to stderr).
    """
    factory = toolset_factory or (lambda driver: Toolset(driver, executor=executor))
    specs = TOOL_SPECS + ((PYTHON_SPEC,) if executor is not None else ())

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Toolset]) -> AsyncIterator[Toolset]:
        chosen = settings if settings is not None else DriverSettings.from_env()
        sandbox = executor if executor is not None else contextlib.nullcontext()
        async with AsyncDriver(chosen) as driver, sandbox:
            yield factory(driver)

    return MCPServer(
        name,
        version=__version__,
        log_level=log_level,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        tools=[_tool(spec) for spec in specs],
    )


def _tool(spec: ToolSpec) -> Tool:
    tool = Tool.from_function(
        _handler(spec),
        name=spec.name,
        description=spec.description,
        annotations=READ_ONLY,
        structured_output=False,
    )
    # Advertise the toolset's schema, not the one derived from the handler's signature: the
    # handler accepts anything so that the toolset, not pydantic, explains argument mistakes.
    tool.parameters = spec.input_schema
    return tool


def _handler(spec: ToolSpec) -> Callable[..., Awaitable[CallToolResult]]:
    async def handler(ctx: Context[Toolset, Any], **arguments: Any) -> CallToolResult:
        toolset = ctx.request_context.lifespan_context
        present = {k: v for k, v in arguments.items() if v is not None}
        return to_call_tool_result(await toolset.call(spec.name, present))

    # The SDK reads a tool's parameters from its signature: one optional `Any` per property.
    parameters = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters[0] = parameters[0].replace(annotation=Context)
    parameters += [
        inspect.Parameter(prop, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Any)
        for prop in spec.input_schema.get("properties", {})
    ]
    handler.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=CallToolResult
    )
    handler.__name__ = spec.name
    return handler
