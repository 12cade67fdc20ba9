"""Ask Claude a question; it answers by calling the PostHog tools (Messages API tool loop).

Needs `pip install "posthog-driver[anthropic]"` and ANTHROPIC_API_KEY. Against the local server:
`uv run posthog-driver serve-local`, paste its `export POSTHOG_...` lines, then
`uv run python examples/claude_tool_loop.py "Which plan do most paying users pick?"`.
(`uv run posthog-driver ask "..."` does the same from the command line.)
"""

from __future__ import annotations

import os
import sys

import anyio
from anthropic import AsyncAnthropic

from posthog_driver import AsyncDriver, DriverError
from posthog_driver.tools import Toolset
from posthog_driver.tools.anthropic_loop import DEFAULT_MODEL, run_tool_loop


async def main(question: str) -> None:
    async with AsyncDriver.from_env() as driver, AsyncAnthropic() as claude:
        outcome = await run_tool_loop(
            claude,
            Toolset(driver, max_rows=50),
            [{"role": "user", "content": question}],
            model=DEFAULT_MODEL,
            max_turns=10,
        )
    for message in outcome.messages:
        for block in message["content"] if isinstance(message["content"], list) else []:
            if block.get("type") == "tool_use":
                print(f"-> {block['name']}({block['input']})", file=sys.stderr)
    print(outcome.text)


if __name__ == "__main__":
    if not os.environ.get("ANTHROPIC_API_KEY"):
        sys.exit(
            "Set ANTHROPIC_API_KEY to an Anthropic API key (`posthog-driver demo` needs none)."
        )
    try:
        anyio.run(main, " ".join(sys.argv[1:]) or "How many people signed up in the last 30 days?")
    except DriverError as exc:  # one line that says what to fix, not a traceback
        sys.exit(f"error: {exc}")
