"""``{filters}`` and its forms, and HogQL's NULL semantics of IN, as PostHog resolves them today.

Expected moments are computed here from the clock, the way PostHog's ``test_filters.py`` states
them for a frozen one: relative starts snap to midnight, open ranges end at the end of today,
date-only ends cover their day, explicit datetimes stay as given.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from tests.local.conftest import compile_here

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _run(client: httpx.AsyncClient, query: str, **node: Any) -> httpx.Response:
    body = {"query": {"kind": "HogQLQuery", "query": query, **node}}
    compile_here(body["query"])
    return await client.post("/api/projects/1/query/", json=body)


async def _row(client: httpx.AsyncClient, query: str, **node: Any) -> list[Any]:
    response = await _run(client, query, **node)
    assert response.status_code == 200, response.json()
    row: list[Any] = response.json()["results"][0]
    return row


def _iso(moment: dt.datetime) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f").removesuffix(".000000")
    return text + "Z"


def _midnight(day: dt.date) -> str:
    return _iso(dt.datetime.combine(day, dt.time()))


def _day_end(day: dt.date) -> str:
    return _iso(dt.datetime.combine(day, dt.time(23, 59, 59, 999_999)))


async def test_relative_starts_snap_to_midnight_and_open_ranges_end_today(
    client: httpx.AsyncClient,
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    ends = "SELECT {filters.dateRange.from}, {filters.dateRange.to}"
    week_ago = await _row(client, ends, filters={"dateRange": {"date_from": "-7d"}})
    assert week_ago == [_midnight(today - dt.timedelta(days=7)), _day_end(today)]
    month = await _row(client, ends, filters={"dateRange": {"date_from": "mStart"}})
    assert month[0] == _midnight(today.replace(day=1))
    year = await _row(client, ends, filters={"dateRange": {"date_from": "yStart"}})
    assert year[0] == _midnight(today.replace(month=1, day=1))
    week = await _row(client, ends, filters={"dateRange": {"date_from": "wStart"}})
    assert week[0] == _midnight(today - dt.timedelta(days=today.weekday()))  # Monday


async def test_ends_cover_their_day_unless_given_as_a_datetime(
    client: httpx.AsyncClient,
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    end = "SELECT {filters.dateRange.to}"
    last_month_end = await _row(
        client, end, filters={"dateRange": {"date_from": "-7d", "date_to": "-1mEnd"}}
    )
    assert last_month_end == [_day_end(today.replace(day=1) - dt.timedelta(days=1))]
    date_only = await _row(
        client, end, filters={"dateRange": {"date_from": "-7d", "date_to": "2020-02-10"}}
    )
    assert date_only == ["2020-02-10T23:59:59.999999Z"]
    verbatim = await _row(
        client, end, filters={"dateRange": {"date_from": "-7d", "date_to": "2020-02-10 12:34:56"}}
    )
    assert verbatim == ["2020-02-10T12:34:56Z"]
    explicit = await _row(
        client,
        end,
        filters={
            "dateRange": {"date_from": "2020-02-01", "date_to": "2020-02-10", "explicitDate": True}
        },
    )
    assert explicit == ["2020-02-10T00:00:00Z"]


async def test_an_open_end_turns_its_comparison_into_true(client: httpx.AsyncClient) -> None:
    everything = await _row(client, "SELECT count() FROM events")
    for date_range in ({}, {"date_from": "-1h"}, {"date_from": "all"}):
        rolling = await _row(
            client,
            "SELECT count() FROM events WHERE timestamp <= {filters.dateRange.to}",
            filters={"dateRange": date_range},
        )
        assert rolling == everything


async def test_filters_on_persons_use_created_at_and_person_properties(
    client: httpx.AsyncClient,
) -> None:
    filters = {
        "dateRange": {"date_from": "-30d"},
        "properties": [{"key": "plan", "type": "person", "value": "pro", "operator": "exact"}],
    }
    placeholder = await _row(client, "SELECT count() FROM persons WHERE {filters}", filters=filters)
    by_hand = await _row(
        client,
        "SELECT count() FROM persons WHERE properties.plan = 'pro' "
        "AND created_at >= toStartOfDay(now() - INTERVAL 30 DAY)",
    )
    assert placeholder == by_hand
    assert placeholder[0] > 0
    refused = await _run(
        client,
        "SELECT count() FROM persons WHERE {filters}",
        filters={"properties": [{"key": "$browser", "type": "event", "value": "Chrome"}]},
    )
    assert refused.status_code == 400
    assert "The 'event' property filter does not work in 'person' scope" in refused.json()["detail"]


async def test_bound_filters_apply_to_the_expressions_they_name(client: httpx.AsyncClient) -> None:
    filters = {
        "dateRange": {"date_from": "-30d"},
        "properties": [{"key": "plan", "type": "event", "value": "pro", "operator": "exact"}],
    }
    bound = await _row(
        client,
        "SELECT count() FROM persons "
        "WHERE {filters(created_at AS timestamp, properties.plan AS 'plan')}",
        filters=filters,
    )
    placeholder = await _row(
        client,
        "SELECT count() FROM persons WHERE {filters}",
        filters={**filters, "properties": [{**filters["properties"][0], "type": "person"}]},
    )
    assert bound == placeholder
    ignored = await _row(
        client,
        "SELECT count() FROM persons WHERE {filters(null AS timestamp, null AS 'plan')}",
        filters=filters,
    )
    assert ignored == await _row(client, "SELECT count() FROM persons")


@pytest.mark.parametrize(
    ("placeholder", "filters", "message"),
    [
        ("{filters(created_at)}", {}, "must bind an expression to a filter key with AS"),
        (
            "{filters(created_at AS timestamp, id AS timestamp)}",
            {},
            "Filter key 'timestamp' is bound more than once",
        ),
        (
            "{filters(null AS timestamp)}",
            {"properties": [{"key": "plan", "type": "event", "value": "pro"}]},
            "The property filter on 'plan' has no binding in {filters(...)}",
        ),
        (
            "{filters(properties.plan AS 'plan')}",
            {"dateRange": {"date_from": "-7d"}},
            "A date filter is set, but {filters(...)} has no timestamp binding",
        ),
        (
            "{filters(created_at AS timestamp)}",
            {"properties": [{"key": "id", "type": "cohort", "value": 1}]},
            "Cohort filters can't be applied through {filters(...)} bindings",
        ),
    ],
)
async def test_bound_filter_mistakes_get_posthogs_messages(
    client: httpx.AsyncClient, placeholder: str, filters: dict[str, Any], message: str
) -> None:
    response = await _run(
        client,
        f"SELECT count() FROM persons WHERE {placeholder}",  # noqa: S608
        filters=filters,
    )
    assert response.status_code == 400
    assert message in response.json()["detail"]


async def test_interval_and_breakdown_placeholders(client: httpx.AsyncClient) -> None:
    assert await _row(client, "SELECT {filters.interval}") == ["day"]
    assert await _row(client, "SELECT {filters.interval}", filters={"interval": "week"}) == ["week"]
    assert await _row(client, "SELECT {filters.interval('month')}") == ["month"]
    bad = await _run(client, "SELECT {filters.interval('fortnight')}")
    assert bad.status_code == 400
    assert "must be a constant string" in bad.json()["detail"]

    query = (
        "SELECT {filters.breakdown(properties.plan AS 'plan', properties.country AS 'country')}"
        " AS b, count() FROM persons GROUP BY b ORDER BY b"
    )
    by_plan = await _run(
        client,
        query,
        filters={"breakdownFilter": {"breakdown": "plan", "breakdown_type": "person"}},
    )
    assert by_plan.status_code == 200
    plans = {row[0] for row in by_plan.json()["results"]}
    assert {"free", "pro"} <= plans
    single = await _run(client, query)
    assert [row[0] for row in single.json()["results"]] == [None]


async def test_not_in_keeps_null_rows_and_in_matches_null_as_posthog_does(
    client: httpx.AsyncClient,
) -> None:
    assert await _row(client, "SELECT NULL NOT IN ('a'), NULL IN (NULL, 'a')") == [1, 1]
    outside, inside, total = await _row(
        client,
        "SELECT countIf(properties.utm_source NOT IN ('google')), "
        "countIf(properties.utm_source IN ('google')), count() FROM events",
    )
    assert outside + inside == total
    listed = await _row(
        client,
        "SELECT count() FROM events WHERE {filters}",
        filters={"properties": [{"key": "utm_source", "value": ["google"], "operator": "is_not"}]},
    )
    assert listed == [outside]


async def test_text_filters_match_as_property_to_expr_does(client: httpx.AsyncClient) -> None:
    query = "SELECT count() FROM events WHERE {filters}"
    total = await _row(client, "SELECT count() FROM events")
    no_value = await _row(
        client, query, filters={"properties": [{"key": "utm_source", "operator": "icontains"}]}
    )
    assert no_value == total  # a filter without a value matches everything

    def icontains(value: Any) -> dict[str, Any]:
        prop = {"key": "$browser", "operator": "icontains", "value": value}
        return {"properties": [prop]}

    both = await _row(client, query, filters=icontains(["chrom", "safar"]))
    chrome = await _row(client, query, filters=icontains("chrom"))
    safari = await _row(client, query, filters=icontains("safar"))
    assert both[0] == chrome[0] + safari[0]
    assert chrome[0] > 0


async def test_element_filters_find_the_autocaptured_elements(client: httpx.AsyncClient) -> None:
    clicks = await _row(
        client,
        "SELECT countIf(elements_chain LIKE 'button%'), "
        "countIf(elements_chain LIKE '%text=\"Save\"%') FROM events WHERE event = '$autocapture'",
    )
    assert clicks[0] > 0
    count = "SELECT count() FROM events WHERE event = '$autocapture' AND {filters}"
    tag = {"type": "element", "key": "tag_name", "value": "button"}
    assert await _row(client, count, filters={"properties": [tag]}) == [clicks[0]]
    text = {"type": "element", "key": "text", "value": "sav", "operator": "icontains"}
    assert await _row(client, count, filters={"properties": [text]}) == [clicks[1]]
    none = {"type": "element", "key": "tag_name", "value": "butto"}  # a whole tag, not a prefix
    assert await _row(client, count, filters={"properties": [none]}) == [0]
