"""The Claude tool loop, with the Messages API replayed by respx (no real key, no network)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

from posthog_driver import AsyncDriver
from posthog_driver.tools import ToolResult, Toolset
from posthog_driver.tools.anthropic_loop import DEFAULT_SYSTEM, run_tool_loop
from tests.tools.fake_posthog import FakePostHog, hogql_answer
from tests.tools.respx_bridge import anthropic_client

MESSAGES_URL = "https://api.anthropic.com/v1/messages"


def assistant(*content: dict[str, Any], stop_reason: str = "tool_use") -> httpx.Response:
    """One Messages API answer."""
    return httpx.Response(
        200,
        json={
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": list(content),
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 10},
        },
    )


def tool_use(use_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": use_id, "name": name, "input": arguments}


class Replay:
    """Answers Messages API calls from a script and keeps every request body."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(json.loads(request.content))
        return self.answers.pop(0)


class BothInFlight(Toolset):
    """A toolset whose calls each wait until `expected` calls have started.

    Run one after another, the first call would wait forever (and fail the test); only
    calls that are in flight together get past the gate.
    """

    def __init__(self, driver: AsyncDriver, expected: int) -> None:
        super().__init__(driver)
        self.expected = expected
        self.started = 0
        self.all_started = anyio.Event()

    async def call(self, name: str, arguments: Any = None) -> ToolResult:
        self.started += 1
        if self.started == self.expected:
            self.all_started.set()
        with anyio.fail_after(5):
            await self.all_started.wait()
        self.expected = 1  # later turns are not gated
        return await super().call(name, arguments)


BAD_QUERY = "SELECT evnt, count() FROM events GROUP BY evnt LIMIT 10"
GOOD_QUERY = "SELECT event, count() AS n FROM events GROUP BY event LIMIT 10"


@pytest.fixture
def script(fake_posthog: FakePostHog) -> Replay:
    def hogql(node: dict[str, Any]) -> httpx.Response:
        if "evnt" in node["query"]:
            return httpx.Response(
                400,
                json={
                    "type": "validation_error",
                    "code": None,
                    "detail": "Unable to resolve field: evnt",
                    "attr": None,
                },
            )
        return httpx.Response(200, json=hogql_answer(["event", "n"], [["$pageview", 42]]))

    fake_posthog.on_query = hogql
    replay = Replay(
        assistant(
            {"type": "text", "text": "Let me look."},
            tool_use("tu_1", "list_objects", {}),
            tool_use("tu_2", "get_fields", {"object_name": "events"}),
        ),
        assistant(tool_use("tu_3", "query", {"query": BAD_QUERY})),
        assistant(tool_use("tu_4", "query", {"query": GOOD_QUERY})),
        assistant({"type": "text", "text": "There were 42 pageviews."}, stop_reason="end_turn"),
    )
    fake_posthog.router.post(MESSAGES_URL).mock(side_effect=replay)
    return replay


async def test_the_model_fixes_its_query_after_reading_the_error(
    driver: AsyncDriver, script: Replay
) -> None:
    question = [{"role": "user", "content": "How many pageviews?"}]
    async with anthropic_client() as client:
        outcome = await run_tool_loop(
            client, BothInFlight(driver, expected=2), question, model="claude-test"
        )

    assert outcome.text == "There were 42 pageviews."
    assert (outcome.turns, outcome.hit_turn_limit) == (4, False)
    assert question == [{"role": "user", "content": "How many pageviews?"}]

    first, second, third, fourth = script.requests
    assert first["messages"] == question
    assert [t["name"] for t in first["tools"]] == [
        "list_objects",
        "get_fields",
        "query",
        "describe",
    ]
    assert first["system"] == DEFAULT_SYSTEM
    assert first["model"] == "claude-test"

    objects, fields = second["messages"][-1]["content"]
    assert second["messages"][-1]["role"] == "user"
    assert objects["type"] == fields["type"] == "tool_result"
    assert (objects["tool_use_id"], objects["is_error"]) == ("tu_1", False)
    assert objects["content"].startswith("3 objects: events, persons, sessions")
    assert (fields["tool_use_id"], fields["is_error"]) == ("tu_2", False)
    assert "properties.$browser | string" in fields["content"]

    (mistake,) = third["messages"][-1]["content"]
    assert (mistake["tool_use_id"], mistake["is_error"]) == ("tu_3", True)
    assert mistake["content"].startswith(
        "PostHog rejected the HogQL: Unable to resolve field: evnt"
    )

    (fixed,) = fourth["messages"][-1]["content"]
    assert fixed == {
        "type": "tool_result",
        "tool_use_id": "tu_4",
        "content": "event | n\n$pageview | 42\n(1 row.)",
        "is_error": False,
    }
    # The assistant turns go back verbatim, tool uses included.
    assert fourth["messages"][-2] == {
        "role": "assistant",
        "content": [tool_use("tu_4", "query", {"query": GOOD_QUERY})],
    }
    assert outcome.messages == [
        *fourth["messages"],
        {"role": "assistant", "content": [{"type": "text", "text": "There were 42 pageviews."}]},
    ]


async def test_the_loop_stops_at_the_turn_limit(
    fake_posthog: FakePostHog, driver: AsyncDriver
) -> None:
    replay = Replay(*[assistant(tool_use(f"tu_{i}", "list_objects", {})) for i in range(3)])
    fake_posthog.router.post(MESSAGES_URL).mock(side_effect=replay)
    async with anthropic_client() as client:
        outcome = await run_tool_loop(
            client,
            Toolset(driver),
            [{"role": "user", "content": "?"}],
            model="m",
            max_turns=2,
            system=None,
        )
    assert (outcome.turns, outcome.hit_turn_limit) == (2, True)
    assert len(replay.requests) == 2
    assert "system" not in replay.requests[0]
    # The conversation ends with the last tool results, so it can be continued.
    assert outcome.messages[-1]["content"][0]["tool_use_id"] == "tu_1"
    assert outcome.text == ""


async def test_a_turn_limit_below_one_is_refused(driver: AsyncDriver) -> None:
    async with anthropic_client() as client:
        with pytest.raises(ValueError, match="max_turns"):
            await run_tool_loop(client, Toolset(driver), [], model="m", max_turns=0)
