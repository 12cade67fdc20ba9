"""The driver's contract end to end, over real HTTP, against the embedded local server."""

from __future__ import annotations

from typing import Any

import pytest

from posthog_driver import (
    AsyncDriver,
    AuthenticationError,
    DriverSettings,
    NotFoundError,
    QueryError,
)
from posthog_driver.demo import QUESTIONS, funnel_steps


@pytest.fixture
def settings(local_server: Any) -> DriverSettings:
    return DriverSettings(
        host=local_server.url,
        api_key=local_server.api_key,
        project_id=local_server.project_id,
        retry_base_delay=0.0,
    )


async def test_list_objects_names_posthogs_tables(settings):
    async with AsyncDriver(settings) as driver:
        names = await driver.list_objects()
    expected = {"events", "persons", "sessions", "person_distinct_ids", "groups"}
    assert expected <= set(names)
    assert {"system.cohorts", "system.feature_flags", "system.insights"} <= set(names)
    assert names == sorted(names)


async def test_get_fields_of_events_describes_columns_properties_and_event_names(settings):
    async with AsyncDriver(settings) as driver:
        fields = await driver.get_fields("events")
    assert {"signed_up", "$pageview", "subscription_started"} <= set(fields["event"]["values"])
    assert fields["properties.$browser"]["type"] == "string"
    assert fields["properties.amount"]["type"] == "float"
    assert "person.properties.email" in fields
    assert fields["timestamp"]["type"] == "datetime"
    assert all(f["description"] for f in fields.values())


async def test_get_fields_of_an_unknown_table_suggests_the_right_one(settings):
    async with AsyncDriver(settings) as driver:
        with pytest.raises(NotFoundError) as caught:
            await driver.get_fields("person")
    assert "persons" in caught.value.suggestions


async def test_query_binds_values_as_data(settings):
    async with AsyncDriver(settings) as driver:
        rows = await driver.query(
            "SELECT count() AS n FROM events WHERE event = {ev}", values={"ev": "signed_up"}
        )
        injected = await driver.query(
            "SELECT count() AS n FROM events WHERE event = {ev}",
            values={"ev": "signed_up' OR 1=1 --"},
        )
    assert rows[0]["n"] > 0
    assert injected == [{"n": 0}]


async def test_a_query_without_limit_gets_100_rows_and_has_more(settings):
    async with AsyncDriver(settings) as driver:
        result = await driver.execute("SELECT event, timestamp FROM events")
    assert len(result.rows) == 100
    assert result.has_more is True
    assert result.columns == ["event", "timestamp"]


async def test_a_hogql_mistake_comes_back_as_query_error_with_posthogs_detail(settings):
    async with AsyncDriver(settings) as driver:
        with pytest.raises(QueryError) as caught:
            await driver.query("SELECT nonexistent_column FROM events")
    assert caught.value.status_code == 400
    detail = caught.value.detail or ""
    assert "nonexistent_column" in detail
    for internal in ("DB::", ".cpp", "Stack trace", "/usr/", "site-packages"):
        assert internal not in detail


async def test_describe_covers_every_table(settings):
    async with AsyncDriver(settings) as driver:
        names = await driver.list_objects()
        catalog = await driver.describe()
    assert list(catalog) == names
    assert all(catalog[name] for name in names)


async def test_health_check_and_a_wrong_key(settings, local_server):
    async with AsyncDriver(settings) as driver:
        assert await driver.health_check() is True
    wrong = DriverSettings(host=local_server.url, api_key="phx_wrong", project_id="1")
    async with AsyncDriver(wrong) as driver:
        assert await driver.health_check() is False
        with pytest.raises(AuthenticationError, match="POSTHOG_API_KEY"):
            await driver.query("SELECT 1")


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.title)
async def test_every_demo_question_has_an_answer(settings, question):
    async with AsyncDriver(settings) as driver:
        rows = await driver.query(question.hogql, values=question.values or None)
    assert rows
    if question.reshape is not None:
        steps = question.reshape(rows)
        users = [s["users"] for s in steps]
        assert users == sorted(users, reverse=True)  # a funnel only loses users
        assert users[0] > users[-1] > 0


def test_funnel_steps_count_users_who_reached_each_level():
    steps = funnel_steps(
        [{"level": 0, "users": 5}, {"level": 1, "users": 6}, {"level": 3, "users": 4}]
    )
    assert [s["users"] for s in steps] == [10, 4, 4]
    assert steps[1]["from_previous_pct"] == 40.0
    assert funnel_steps([])[1]["from_previous_pct"] == 0.0


async def test_hogqls_forgiving_casts_turn_bad_values_into_null(settings):
    async with AsyncDriver(settings) as driver:
        rows = await driver.query("SELECT toFloat('1.5') AS f, toInt('x') AS bad, toInt(7.0) AS i")
    assert rows == [{"f": 1.5, "bad": None, "i": 7}]


async def test_a_list_value_works_with_in_and_names_never_collide(settings):
    async with AsyncDriver(settings) as driver:
        both = await driver.query(
            "SELECT count() AS n FROM events WHERE event IN {names}",
            values={"names": ["signed_up", "subscription_started"]},
        )
        one = await driver.query(
            "SELECT count() AS n FROM events WHERE event = {name}", values={"name": "signed_up"}
        )
        pair = await driver.query("SELECT {a} AS a, {a_} AS b", values={"a": "x", "a_": "y"})
    assert both[0]["n"] > one[0]["n"] > 0
    assert pair == [{"a": "x", "b": "y"}]


async def test_an_unknown_table_in_hogql_gets_close_names(local_server: Any) -> None:
    settings = DriverSettings(
        host=local_server.url, api_key=local_server.api_key, project_id=local_server.project_id
    )
    async with AsyncDriver(settings) as driver:
        with pytest.raises(QueryError) as caught:
            await driver.query("SELECT count() FROM eventz")
    assert "Unknown table" in str(caught.value)
    assert "Did you mean events?" in str(caught.value)
    assert caught.value.status_code == 400
