"""A tool loop on Anthropic's Messages API: `run_tool_loop(client, toolset, messages, model=...)`.

Each turn sends the conversation with `toolset.anthropic_tools()`; when the model answers with
tool uses, all of that turn's tools run at once (one anyio task group: a slow query does not hold
up a schema look-up) and their results go back in one user message of `tool_result` blocks,
`is_error` set on those that failed, so the model can read PostHog's complaint and fix its query.
The loop ends when a turn has no tool use, or after `max_turns` model calls.

Needs the `anthropic` extra: `pip install "posthog-driver[anthropic]"`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

try:
    from anthropic import AsyncAnthropic
    from anthropic.types import Message, ToolUseBlock
except ImportError as exc:
    raise ImportError(
        'The Claude tool loop needs the anthropic package: pip install "posthog-driver[anthropic]"'
    ) from exc

from posthog_driver.tools.toolset import ToolResult, Toolset

__all__ = ["DEFAULT_MODEL", "DEFAULT_SYSTEM", "ToolLoopResult", "run_tool_loop"]

DEFAULT_MODEL = "claude-sonnet-5-5"
"""The model `posthog-driver ask` uses unless told otherwise."""

DEFAULT_SYSTEM = (
    "You answer questions about a product's analytics stored in PostHog, using the tools. "
    "Work in steps: list_objects, then get_fields for the object you need, then query with "
    "HogQL (aggregate, filter on timestamp, always LIMIT). If a query fails, read the error, "
    "fix the query and try again. Answer briefly with the numbers you found and how you got them."
)


@dataclass(frozen=True, slots=True)
class ToolLoopResult:
    """How a tool loop ended.

    `message` is the model's last answer; `messages` the whole conversation (the input plus
    every assistant turn and tool-result message), ready to continue; `turns` the number of
    model calls; `hit_turn_limit` is True when the model still wanted tools at `max_turns`.
    """

    message: Message
    messages: list[dict[str, Any]]
    turns: int
    hit_turn_limit: bool

    @property
    def text(self) -> str:
        """The text blocks of the last answer, joined."""
        return "\n".join(b.text for b in self.message.content if b.type == "text").strip()


async def run_tool_loop(
    client: AsyncAnthropic,
    toolset: Toolset,
    messages: Sequence[dict[str, Any]],
    *,
    model: str,
    max_turns: int = 10,
    max_tokens: int = 4096,
    system: str | None = DEFAULT_SYSTEM,
) -> ToolLoopResult:
    """Drive a conversation until the model stops calling tools (or `max_turns` calls).

    ```python
    async with AsyncDriver.from_env() as driver:
        outcome = await run_tool_loop(
            AsyncAnthropic(), Toolset(driver),
            [{"role": "user", "content": "How many signups last week?"}],
            model=DEFAULT_MODEL,
        )
        print(outcome.text)
    ```

    `messages` is not changed; the full conversation is in the result. Errors of the Messages
    API itself (`anthropic.APIError`) propagate; tool failures never do.
    """
    if max_turns < 1:
        raise ValueError("max_turns must be at least 1")
    conversation = list(messages)
    options: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    if system is not None:
        options["system"] = system
    tools = toolset.anthropic_tools()
    for turn in range(1, max_turns + 1):
        response = await client.messages.create(
            messages=conversation,  # type: ignore[arg-type]
            tools=tools,  # type: ignore[arg-type]
            **options,
        )
        conversation.append(
            {"role": "assistant", "content": [block.to_dict() for block in response.content]}
        )
        uses = [block for block in response.content if isinstance(block, ToolUseBlock)]
        if not uses:
            return ToolLoopResult(response, conversation, turns=turn, hit_turn_limit=False)
        conversation.append({"role": "user", "content": await run_tool_uses(toolset, uses)})
    return ToolLoopResult(response, conversation, turns=max_turns, hit_turn_limit=True)


async def run_tool_uses(toolset: Toolset, uses: Sequence[ToolUseBlock]) -> list[dict[str, Any]]:
    """Run one turn's tool uses concurrently; their `tool_result` blocks, in the order asked."""
    results: list[dict[str, Any]] = [{} for _ in uses]

    async def run(index: int, use: ToolUseBlock) -> None:
        outcome = await toolset.call(use.name, use.input)
        results[index] = {
            "type": "tool_result",
            "tool_use_id": use.id,
            "content": _content(outcome),
            "is_error": outcome.is_error,
        }

    # Toolset.call never raises (only cancellation escapes), so one tool cannot cancel another.
    async with anyio.create_task_group() as group:
        for index, use in enumerate(uses):
            group.start_soon(run, index, use)
    return results


def _content(outcome: ToolResult) -> str | list[dict[str, Any]]:
    """The text alone, or text and PNG image blocks (charts from the python tool)."""
    if not outcome.images:
        return outcome.text
    blocks: list[dict[str, Any]] = [{"type": "text", "text": outcome.text}]
    for image in outcome.images:
        source = {
            "type": "base64",
            "media_type": "image/png",
            "data": base64.b64encode(image).decode(),
        }
        blocks.append({"type": "image", "source": source})
    return blocks
