"""`validate()`: PostHog's HogQLMetadata finds a mistake and says where, without running the
query; the query tool uses it to show the model the spot."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from posthog_driver import AsyncDriver, DriverSettings, ValidationError
from posthog_driver.tools import Toolset
from tests import respx2
from tests.conftest import FAKE_KEY
from tests.posthog_bodies import HOST, PROJECT, QUERY_URL


@pytest.fixture
def live(local_server: Any) -> DriverSettings:
    return DriverSettings(
        host=local_server.url, api_key=local_server.api_key, project_id=local_server.project_id
    )


async def test_a_misspelt_field_gets_its_line_and_column(live: DriverSettings) -> None:
    query = "SELECT event,\n       count() AS n\nFROM events\nWHERE evnt = '$pageview'"
    async with AsyncDriver(live) as driver:
        checked = await driver.validate(query)
    assert not checked.is_valid
    assert not checked
    (error,) = checked.errors
    assert "evnt" in error.message
    assert (error.line, error.column) == (4, 7)
    assert query[error.start : error.end] == "evnt"
    assert checked.pointer() == "WHERE evnt = '$pageview'\n      ^^^^"
    assert str(error).startswith("line 4, column 7: ")


async def test_a_valid_query_is_valid(live: DriverSettings) -> None:
    async with AsyncDriver(live) as driver:
        checked = await driver.validate("SELECT event, count() FROM events GROUP BY event")
    assert checked.is_valid
    assert checked.errors == []
    assert checked.pointer() == ""
    assert "events" in checked.tables


async def test_positions_after_a_placeholder_point_into_the_callers_text(
    live: DriverSettings,
) -> None:
    query = "SELECT event FROM events WHERE event = {name} AND evnt = 1"
    values = {"name": "a value much longer than its placeholder, with ' and \\ in it"}
    async with AsyncDriver(live) as driver:
        checked = await driver.validate(query, values)
        fine = await driver.validate("SELECT event FROM events WHERE event = {name}", values)
    (error,) = checked.errors
    assert query[error.start : error.end] == "evnt"
    assert error.column == query.index("evnt") + 1
    assert fine.is_valid, fine.errors  # the escaped literal parsed: quotes cannot break out


async def test_values_of_other_types_are_refused(live: DriverSettings) -> None:
    async with AsyncDriver(live) as driver:
        with pytest.raises(ValidationError):
            await driver.validate("SELECT {x}", {"x": {"nested": 1}})


@pytest.fixture
def mock() -> Iterator[Any]:
    with respx2.mock(assert_all_called=False) as router:
        yield router


async def test_it_sends_hogqlmetadata_of_posthogs_shape_and_runs_nothing(
    mock: Any, posthog_schema: Callable[[str, Any], None]
) -> None:
    bodies: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"isValid": True, "errors": [], "warnings": [],
                                         "notices": [], "query": "x"})  # fmt: skip

    mock.post(QUERY_URL).mock(side_effect=answer)
    settings = DriverSettings(api_key=FAKE_KEY, project_id=PROJECT, host=HOST)
    async with AsyncDriver(settings) as driver:
        await driver.validate("SELECT {n}", {"n": 1})
        slots = driver.status().query_slots_in_use
    (body,) = bodies
    posthog_schema("QueryRequest", body)  # HogQLMetadata takes no `values`: printed literals
    assert body["query"] == {"kind": "HogQLMetadata", "language": "hogQL", "query": "SELECT 1"}
    assert slots == 0


async def test_the_query_tool_points_at_the_mistake(live: DriverSettings) -> None:
    async with AsyncDriver(live) as driver:
        answer = await Toolset(driver).call(
            "query", {"query": "SELECT evnt, count() FROM events GROUP BY evnt"}
        )
    assert answer.is_error
    assert "line 1, column 8:" in answer.text
    assert "SELECT evnt, count() FROM events GROUP BY evnt\n       ^^^^" in answer.text


async def test_a_negative_value_after_a_minus_is_not_a_comment(live: DriverSettings) -> None:
    # found by review: 10-{n} with n=-5 printed 10--5, and `--` hid the rest of the line
    async with AsyncDriver(live) as driver:
        checked = await driver.validate("SELECT 10-{n} AS x, nosuchfield FROM events", {"n": -5})
    assert not checked.is_valid
    assert "nosuchfield" in checked.errors[0].message


async def test_a_placeholder_after_a_slash_comment_is_still_bound(live: DriverSettings) -> None:
    async with AsyncDriver(live) as driver:
        checked = await driver.validate(
            "SELECT event FROM events // don't\nWHERE event = {e}", {"e": "$pageview"}
        )
    assert checked.is_valid, checked.errors


async def test_the_pointer_of_an_error_at_the_very_end_does_not_fail(
    live: DriverSettings,
) -> None:
    async with AsyncDriver(live) as driver:
        checked = await driver.validate("SELECT 1 FROM\n")
    assert not checked.is_valid
    assert isinstance(checked.pointer(), str)


async def test_an_unknown_table_gets_close_names(live: DriverSettings) -> None:
    async with AsyncDriver(live) as driver:
        checked = await driver.validate("SELECT count() FROM evnets")
    (error,) = checked.errors
    assert "evnets" in error.message
    assert "Did you mean events?" in error.message


async def test_values_of_every_kind_keep_positions_in_the_callers_text(
    live: DriverSettings,
) -> None:
    query = "SELECT {a}, {b}, {c}, {d}, {e}, {f}, evnt FROM events"
    values = {"a": None, "b": True, "c": 1.5, "d": -2.5, "e": [1, "x'y"], "f": "s"}
    async with AsyncDriver(live) as driver:
        checked = await driver.validate(query, values)
    (error,) = checked.errors
    assert query[error.start : error.end] == "evnt"
