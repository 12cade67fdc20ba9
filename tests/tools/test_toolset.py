"""The Toolset: every tool, argument validation, and errors that come back as readable results."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import structlog

from posthog_driver import AsyncDriver, DriverSettings
from posthog_driver.tools import TOOL_SPECS, ToolResult, Toolset
from tests.tools.fake_posthog import KEY, FakePostHog, hogql_answer, settings


@pytest.fixture
def toolset(driver: AsyncDriver) -> Toolset:
    return Toolset(driver)


def test_every_spec_has_an_object_schema_and_a_description() -> None:
    assert [s.name for s in TOOL_SPECS] == ["list_objects", "get_fields", "query", "describe"]
    for spec in TOOL_SPECS:
        assert spec.input_schema["type"] == "object"
        assert spec.input_schema["additionalProperties"] is False
        assert len(spec.description) > 80


def test_query_description_teaches_hogql() -> None:
    query = next(s for s in TOOL_SPECS if s.name == "query")
    for reminder in ("properties.$browser", "person.properties", "timestamp", "LIMIT", "count()"):
        assert reminder in query.description


def test_anthropic_tools_have_the_messages_api_shape(toolset: Toolset) -> None:
    tools = toolset.anthropic_tools()
    assert [t["name"] for t in tools] == toolset.names
    assert all(set(t) == {"name", "description", "input_schema"} for t in tools)


async def test_list_objects_names_every_table(toolset: Toolset) -> None:
    result = await toolset.call("list_objects", {})
    assert result == ToolResult(result.text, is_error=False)
    assert "3 objects: events, persons, sessions" in result.text
    assert "get_fields" in result.text


async def test_list_objects_accepts_no_arguments_at_all(toolset: Toolset) -> None:
    assert not (await toolset.call("list_objects")).is_error


async def test_get_fields_lists_one_line_per_field_with_hogql_type_and_description(
    toolset: Toolset,
) -> None:
    result = await toolset.call("get_fields", {"object_name": "events"})
    assert not result.is_error
    lines = result.text.splitlines()
    assert lines[0].startswith("events: ")
    assert "properties.$browser | string | Event property $browser (String)." in lines
    assert (
        "properties['$feature/new-nav'] | boolean | Event property $feature/new-nav (Boolean)."
        in lines
    )
    assert any(line.startswith("person | lazy_table -> persons | ") for line in lines)
    assert "person.properties.email | string | Person property email (String)." in lines
    assert lines[-1] == ("known event names (4): $pageleave, $pageview, feature_used, signed_up")


async def test_get_fields_search_narrows_the_list(toolset: Toolset) -> None:
    result = await toolset.call("get_fields", {"object_name": "events", "search": "browser"})
    assert result.text.splitlines() == [
        "events: 1 of 8 fields match 'browser' (hogql | type | description)",
        "properties.$browser | string | Event property $browser (String).",
    ]


async def test_get_fields_of_an_unknown_object_offers_close_matches(toolset: Toolset) -> None:
    result = await toolset.call("get_fields", {"object_name": "event"})
    assert result.is_error
    assert "Close matches: events" in result.text
    assert "Use one of these exact names" in result.text


async def test_get_fields_of_a_far_off_name_points_to_list_objects(toolset: Toolset) -> None:
    result = await toolset.call("get_fields", {"object_name": "zzzzzz"})
    assert result.is_error
    assert "list_objects" in result.text


async def test_many_fields_are_cut_at_the_character_cap_with_a_way_to_the_rest(
    fake_posthog: FakePostHog, driver: AsyncDriver
) -> None:
    fake_posthog.event_properties = [
        {"name": f"prop_{i:04}", "property_type": "String"} for i in range(3000)
    ]
    result = await Toolset(driver, max_chars=4000).call("get_fields", {"object_name": "events"})
    assert len(result.text) <= 4000
    assert "more lines of events not shown" in result.text.splitlines()[-1]
    assert "search" in result.text.splitlines()[-1]


async def test_query_renders_columns_once_then_rows(
    fake_posthog: FakePostHog, toolset: Toolset
) -> None:
    fake_posthog.on_query = lambda node: httpx.Response(
        200, json=hogql_answer(["event", "n"], [["$pageview", 12], ["signed_up", 3]])
    )
    result = await toolset.call(
        "query", {"query": "SELECT event, count() AS n FROM events GROUP BY event LIMIT 10"}
    )
    assert result == ToolResult("event | n\n$pageview | 12\nsigned_up | 3\n(2 rows.)")


async def test_query_sends_values_as_placeholders(
    fake_posthog: FakePostHog, toolset: Toolset
) -> None:
    await toolset.call(
        "query", {"query": "SELECT 1 WHERE {ev} = 'x' LIMIT 1", "values": {"ev": "$pageview"}}
    )
    assert fake_posthog.hogql[-1]["values"] == {"ev": "$pageview"}


async def test_a_hogql_mistake_comes_back_with_posthogs_detail(
    fake_posthog: FakePostHog, toolset: Toolset
) -> None:
    fake_posthog.on_query = lambda node: httpx.Response(
        400,
        json={
            "type": "validation_error",
            "code": "query_error",
            "detail": "Unable to resolve field: evnt",
            "attr": None,
        },
    )
    result = await toolset.call("query", {"query": "SELECT evnt FROM events LIMIT 1"})
    assert result.is_error
    assert result.text.startswith("PostHog rejected the HogQL: Unable to resolve field: evnt\n")
    assert "call query again" in result.text


async def test_a_rate_limit_says_when_to_retry(fake_posthog: FakePostHog, toolset: Toolset) -> None:
    # Above max_retry_after, so the driver gives up at once instead of waiting it out.
    fake_posthog.on_query = lambda node: httpx.Response(
        429, headers={"Retry-After": "120"}, json={"detail": "Request was throttled."}
    )
    result = await toolset.call("query", {"query": "SELECT 1"})
    assert result.is_error
    assert "retry in 120 seconds, not sooner" in result.text


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "credentials of this tool were refused"),
        (403, "credentials of this tool were refused"),
        (503, "PostHog is unavailable right now"),
        (500, "PostHog failed running the HogQL: nope"),
        (504, "time or memory limit"),
        (408, "took too long"),
        (418, "The PostHog tool failed: PostHog answered 418"),
    ],
)
async def test_driver_errors_come_back_as_error_results(
    fake_posthog: FakePostHog, toolset: Toolset, status: int, expected: str
) -> None:
    fake_posthog.on_query = lambda node: httpx.Response(status, json={"detail": "nope"})
    result = await toolset.call("query", {"query": "SELECT 1"})
    assert result.is_error
    assert expected in result.text


async def test_an_open_circuit_says_when_calls_resume(fake_posthog: FakePostHog) -> None:
    fake_posthog.on_query = lambda node: httpx.Response(503, text="<html>down</html>")
    async with AsyncDriver(settings(breaker_threshold=1, breaker_reset_seconds=30)) as driver:
        toolset = Toolset(driver)
        await toolset.call("query", {"query": "SELECT 1"})
        result = await toolset.call("query", {"query": "SELECT 1"})
    assert result.is_error
    assert "calls are paused; retry in" in result.text


async def test_a_network_failure_is_an_error_result(
    fake_posthog: FakePostHog, toolset: Toolset
) -> None:
    def refuse(node: dict[str, Any]) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    fake_posthog.on_query = refuse
    result = await toolset.call("query", {"query": "SELECT 1"})
    assert result.is_error
    assert "PostHog is unavailable right now" in result.text


async def test_a_query_refused_before_sending_says_what_to_change(toolset: Toolset) -> None:
    result = await toolset.call("query", {"query": "   "})
    assert result.is_error
    assert result.text.startswith("Invalid input: The query is empty")


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("query", {}, "missing required argument 'query'"),
        ("query", {"query": 42}, "'query' must be a JSON string, not number"),
        (
            "query",
            {"query": "SELECT 1", "values": [1]},
            "'values' must be a JSON object, not array",
        ),
        ("query", {"sql": "SELECT 1"}, "unknown argument 'sql' (allowed: query, values)"),
        ("get_fields", {"object_name": None}, "missing required argument 'object_name'"),
        ("describe", {"objects": "events"}, "'objects' must be a JSON array, not string"),
        ("describe", {"objects": ["events", 3]}, "'objects' must hold only strings; 3 is not one"),
        ("list_objects", {"x": True}, "unknown argument 'x' (allowed: none)"),
        ("list_objects", ["events"], "arguments must be a JSON object, not list"),
    ],
)
async def test_bad_arguments_come_back_as_error_results(
    toolset: Toolset, name: str, arguments: Any, expected: str
) -> None:
    result = await toolset.call(name, arguments)
    assert result.is_error
    assert result.text.startswith(f"Invalid arguments for {name}: ")
    assert expected in result.text


async def test_an_unknown_tool_names_the_real_ones(toolset: Toolset) -> None:
    result = await toolset.call("drop_table", {})
    assert result == ToolResult(
        "There is no tool named 'drop_table'. "
        "The tools are: list_objects, get_fields, query, describe.",
        is_error=True,
    )


async def test_describe_renders_each_requested_object(toolset: Toolset) -> None:
    result = await toolset.call("describe", {"objects": ["persons", "sessions"]})
    assert not result.is_error
    headers = [line for line in result.text.splitlines() if ": " in line and "fields" in line]
    assert headers == [
        "persons: 3 fields (hogql | type | description)",
        "sessions: 1 fields (hogql | type | description)",
    ]


async def test_describe_without_objects_covers_all(toolset: Toolset) -> None:
    result = await toolset.call("describe", {})
    for name in ("events:", "persons:", "sessions:"):
        assert name in result.text


async def test_describe_cut_at_the_cap_names_the_objects_left_out(
    fake_posthog: FakePostHog, driver: AsyncDriver
) -> None:
    fake_posthog.event_properties = [
        {"name": f"prop_{i:04}", "property_type": "String"} for i in range(3000)
    ]
    result = await Toolset(driver, max_chars=4000).call(
        "describe", {"objects": ["events", "persons", "sessions"]}
    )
    assert len(result.text) <= 4000
    assert result.text.splitlines()[-1].endswith(
        "and the objects persons, sessions not shown. "
        "Call get_fields(object_name) for each of them.)"
    )


async def test_an_unexpected_exception_is_masked_and_logged(
    driver: AsyncDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode() -> list[str]:
        raise RuntimeError(f"internal state with {KEY}")

    monkeypatch.setattr(driver, "list_objects", explode)
    with structlog.testing.capture_logs() as logs:
        result = await Toolset(driver).call("list_objects", {})
    assert result.is_error
    assert "internal error" in result.text
    assert "RuntimeError" not in result.text
    assert KEY not in result.text
    assert logs[0]["event"] == "tool_crashed"
    assert logs[0]["tool"] == "list_objects"


async def test_no_result_text_ever_contains_the_api_key(
    fake_posthog: FakePostHog, toolset: Toolset
) -> None:
    # A row and an error body that echo the key (a misconfigured proxy could do this).
    answers = iter(
        [
            httpx.Response(200, json=hogql_answer(["leak"], [[f"Bearer {KEY}"], [KEY]])),
            httpx.Response(400, json={"detail": f"bad token {KEY}"}),
            httpx.Response(500, text=f"<html>{KEY}</html>"),
        ]
    )
    fake_posthog.on_query = lambda node: next(answers)
    texts = [(await toolset.call("query", {"query": "SELECT 1"})).text for _ in range(3)]
    texts += [(await toolset.call(name, {})).text for name in ("list_objects", "describe")]
    texts.append((await toolset.call("get_fields", {"object_name": KEY[:40]})).text)
    for text in texts:
        assert KEY not in text
        assert KEY[4:20] not in text


def test_repr_shows_tools_and_limits(toolset: Toolset) -> None:
    assert "query" in repr(toolset)
    assert "max_rows=100" in repr(toolset)


async def test_an_unknown_table_in_a_query_names_the_close_ones(local_server: Any) -> None:
    settings = DriverSettings(
        host=local_server.url, api_key=local_server.api_key, project_id=local_server.project_id
    )
    async with AsyncDriver(settings) as driver:
        answer = await Toolset(driver).call("query", {"query": "SELECT 1 FROM person"})
    assert answer.is_error
    assert "Did you mean persons?" in answer.text
