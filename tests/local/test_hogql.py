# ruff: noqa: S608  (queries built from the test's own constants)
"""HogQL's semantics as PostHog prints them, asserted on answers from the real server."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from tests.local.conftest import compile_here

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def hogql(client: httpx.AsyncClient) -> Any:
    """POST a HogQLQuery (with optional values); compiled in this process too, for coverage
    (these queries are benign: never hand the shared fixture hostile ones)."""

    async def send(query: str, values: dict[str, Any] | None = None) -> httpx.Response:
        node: dict[str, Any] = {"kind": "HogQLQuery", "query": query}
        if values is not None:
            node["values"] = values
        return await post(client, node)

    return send


async def rows(hogql: Any, query: str, values: dict[str, Any] | None = None) -> Any:
    response = await hogql(query, values)
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def post(client: httpx.AsyncClient, node: dict[str, Any]) -> httpx.Response:
    compile_here(node)
    return await client.post("/api/projects/1/query/", json={"query": node})


# -- NULL semantics: PostHog's test_null_equality truth table ---------------------------------

TRUTH = [
    ("null = 2", 0),
    ("null = null", 1),
    ("null != 2", 1),
    ("null != null", 0),
    ("null < 2", 0),
    ("2 < null", 0),
    ("null < null", 0),
    ("null >= 2", 0),
    ("null like '2'", 0),
    ("null like null", 1),
    ("null not like '2'", 1),
    ("null not like null", 0),
    ("null ilike '2'", 0),
    ("null =~ '2'", 0),
    ("null =~ null", 1),
    ("null !~ '2'", 1),
    ("null !~ null", 0),
    ("null =~* '2'", 0),
    ("null !~* null", 0),
]


@pytest.mark.parametrize(("expression", "expected"), TRUTH)
async def test_null_comparisons_are_two_valued_as_in_posthog(
    hogql: Any, expression: str, expected: int
) -> None:
    # once as constants, once through a subquery's (nullable) columns, as PostHog's test does
    left, op_right = expression.split(" ", 1)
    op, right = op_right.rsplit(" ", 1)
    assert await rows(hogql, f"SELECT {expression}") == [[expected]]
    via_columns = f"SELECT a {op} b FROM (SELECT {left} AS a, {right} AS b)"
    assert await rows(hogql, via_columns) == [[expected]]


async def test_a_missing_property_compares_as_posthog_compares_it(hogql: Any) -> None:
    total = (await rows(hogql, "SELECT count() FROM events"))[0][0]
    not_x = await rows(hogql, "SELECT count() FROM events WHERE properties.nope != 'x'")
    is_x = await rows(hogql, "SELECT count() FROM events WHERE properties.nope = 'x'")
    assert (not_x[0][0], is_x[0][0]) == (total, 0)  # NULL != 'x' is true, NULL = 'x' false
    assert await rows(hogql, "SELECT concat('a', properties.nope, 'b') FROM events LIMIT 1") == [
        ["ab"]
    ]


async def test_properties_read_as_posthog_reads_its_json(hogql: Any) -> None:
    result = await rows(
        hogql,
        "SELECT properties.amount, properties.$browser, properties.nope, properties "
        "FROM events WHERE event = 'subscription_started' LIMIT 1",
    )
    amount, browser, missing, whole = result[0]
    assert isinstance(amount, float)  # a Numeric property definition reads back as a number
    assert isinstance(browser, str)
    assert missing is None
    assert isinstance(whole, str)
    assert '"$browser"' in whole


async def test_columns_are_named_as_posthog_names_them(client: httpx.AsyncClient) -> None:
    response = await post(
        client,
        {
            "kind": "HogQLQuery",
            "query": (
                "SELECT event, count(), properties.$browser, person.properties.email, 1 + 1, "
                "toStartOfDay(timestamp) AS day FROM events GROUP BY event, properties.$browser, "
                "person.properties.email, day LIMIT 1"
            ),
        },
    )
    assert response.json()["columns"] == [
        "event",
        "count()",
        "$browser",
        "email",
        "plus(1, 1)",
        "day",
    ]


async def test_datetimes_come_back_as_posthogs_json_writes_them(hogql: Any) -> None:
    result = await rows(
        hogql, "SELECT toDateTime('2024-03-01 10:00:00'), now() FROM events LIMIT 1"
    )
    whole, now = result[0]
    assert whole == "2024-03-01T10:00:00Z"  # no fraction when there is none, `Z` for UTC
    assert dt.datetime.fromisoformat(now.replace("Z", "+00:00")).tzinfo is not None


# -- traversal, cohorts and actions -----------------------------------------------------------


async def test_person_pdi_poe_and_session_traversal_agree_with_explicit_joins(hogql: Any) -> None:
    lazy = await rows(hogql, "SELECT count() FROM events WHERE person.properties.plan = 'pro'")
    joined = await rows(
        hogql,
        "SELECT count() FROM events e JOIN persons p ON p.id = e.person_id "
        "WHERE p.properties.plan = 'pro'",
    )
    poe = await rows(hogql, "SELECT count() FROM events WHERE poe.properties.plan = 'pro'")
    assert lazy == joined == poe
    assert lazy[0][0] > 0
    created = await rows(
        hogql,
        "SELECT count() FROM events e JOIN persons p ON p.id = e.person_id "
        "WHERE e.person.created_at = p.created_at",
    )
    assert created == await rows(hogql, "SELECT count() FROM events")
    pdi = await rows(hogql, "SELECT count() FROM events WHERE pdi.person_id = person_id")
    assert pdi == created
    sessions = await rows(
        hogql,
        "SELECT sum(d) FROM (SELECT any(session.$session_duration) AS d FROM events "
        "WHERE $session_id != '' GROUP BY $session_id)",
    )
    direct = await rows(hogql, "SELECT sum($session_duration) FROM sessions")
    assert sessions == direct


async def test_in_cohort_matches_the_cohorts_count(hogql: Any) -> None:
    cohorts = await rows(hogql, "SELECT id, name, count FROM system.cohorts ORDER BY id")
    for cohort_id, name, count in cohorts:
        by_id = await rows(hogql, f"SELECT count() FROM persons WHERE id IN COHORT {cohort_id}")
        by_name = await rows(hogql, f"SELECT count() FROM persons WHERE id IN COHORT '{name}'")
        assert by_id == by_name == [[count]], name
    outside = await rows(hogql, "SELECT count() FROM persons WHERE id NOT IN COHORT 1")
    everyone = await rows(hogql, "SELECT count() FROM persons")
    assert outside[0][0] == everyone[0][0] - cohorts[0][2]


async def test_matches_action_is_the_actions_steps(hogql: Any) -> None:
    by_action = await rows(
        hogql, "SELECT count() FROM events WHERE matchesAction('Viewed pricing')"
    )
    by_hand = await rows(
        hogql,
        "SELECT count() FROM events WHERE event = '$pageview' "
        "AND properties.$current_url LIKE '%/pricing%'",
    )
    assert by_action == by_hand
    assert by_action[0][0] > 0
    missing = await hogql("SELECT count() FROM events WHERE matchesAction(99)")
    assert missing.json()["detail"] == "Could not find an action with the ID 99"


# -- placeholders, filters and variables --------------------------------------------------------


async def test_empty_filters_are_true_and_filters_narrow(client: httpx.AsyncClient) -> None:
    query = "SELECT count() FROM events WHERE {filters}"
    everything = await post(client, {"kind": "HogQLQuery", "query": query})
    pro = await post(
        client,
        {
            "kind": "HogQLQuery",
            "query": query,
            "filters": {
                "properties": [
                    {"key": "plan", "type": "event", "value": "pro", "operator": "exact"}
                ]
            },
        },
    )
    last_day = await post(
        client,
        {"kind": "HogQLQuery", "query": query, "filters": {"dateRange": {"date_from": "-1d"}}},
    )
    total = everything.json()["results"][0][0]
    assert 0 < pro.json()["results"][0][0] < total
    assert 0 < last_day.json()["results"][0][0] < total


async def test_filters_on_a_table_without_a_time_column_say_so(client: httpx.AsyncClient) -> None:
    response = await post(
        client,
        {"kind": "HogQLQuery", "query": "SELECT count() FROM person_distinct_ids WHERE {filters}"},
    )
    assert response.status_code == 400
    assert "does not select from the events, sessions" in response.json()["detail"]


async def test_variables_bind_by_code_name_and_missing_ones_suggest(
    client: httpx.AsyncClient,
) -> None:
    variables = {"a1b2": {"variableId": "a1b2", "code_name": "event_name", "value": "signed_up"}}
    ok = await post(
        client,
        {
            "kind": "HogQLQuery",
            "variables": variables,
            "query": "SELECT count() FROM events WHERE event = {variables.event_name}",
        },
    )
    assert ok.status_code == 200
    assert ok.json()["results"][0][0] > 0
    missing = await post(
        client,
        {"kind": "HogQLQuery", "variables": variables, "query": "SELECT {variables.event_nam}"},
    )
    assert missing.json()["detail"] == (
        "Variable event_nam is missing from query. Did you mean: event_name?"
    )


# -- limits, errors and metadata ------------------------------------------------------------------


async def test_limits_and_offsets_follow_posthog(hogql: Any, client: httpx.AsyncClient) -> None:
    paged = (await hogql("SELECT event FROM events")).json()
    assert (len(paged["results"]), paged["hasMore"], paged["limit"]) == (100, True, 100)
    capped = (await hogql("SELECT number FROM numbers(60000) LIMIT 60000")).json()
    assert len(capped["results"]) == 50_000
    refused = await hogql("SELECT event FROM events LIMIT 10 OFFSET 10")
    assert refused.json()["detail"].startswith("OFFSET is not supported on queries made with")


async def test_errors_use_posthogs_wording(hogql: Any) -> None:
    cases = {
        "SELECT tostring(1)": "Unsupported function call 'tostring(...)'. Perhaps you meant "
        "'toString(...)'?",
        "SELECT count(1, 2, 3, 4) FROM events": "Aggregation 'count' expects at most 1 argument, "
        "found 4",
        "SELECT avg(avg(1)) FROM events": "Aggregation 'avg' cannot be nested inside another "
        "aggregation 'avg'.",
        "SELECT chipotle FROM events": "Unable to resolve field: chipotle",
        "SELECT person.chipotle FROM events": "Field not found: chipotle",
        "SELECT 1 FROM nowhere": "Unknown table `nowhere`.",
        "SELECT [1, 2][0]": "SQL indexes start from one, not from zero. E.g: array[1]",
        "SELECT arrayReduce('array_agg', [1, 2])": "Invalid parametric function in "
        "'arrayReduce', 'array_agg' is not supported.",
        "SELECT arrayReduce('SUM', [1, 2])": "Invalid parametric function in 'arrayReduce', "
        "'SUM' is not supported.",
    }
    for query, message in cases.items():
        response = await hogql(query)
        assert response.status_code == 400, query
        assert response.json()["detail"] == message


async def test_metadata_reports_errors_with_positions_without_running(
    client: httpx.AsyncClient,
) -> None:
    valid = await post(
        client,
        {
            "kind": "HogQLMetadata",
            "language": "hogQL",
            "query": "SELECT event FROM events e JOIN persons p ON p.id = e.person_id",
        },
    )
    body = valid.json()
    assert body["isValid"] is True
    assert body["errors"] == []
    assert body["table_names"] == ["events", "persons"]
    invalid = (
        await post(
            client,
            {"kind": "HogQLMetadata", "language": "hogQL", "query": "SELECT nope FROM events"},
        )
    ).json()
    assert invalid["isValid"] is False
    assert invalid["errors"] == [
        {"message": "Unable to resolve field: nope", "start": 7, "end": 11, "fix": None}
    ]
    expr = (
        await post(
            client, {"kind": "HogQLMetadata", "language": "hogQLExpr", "query": "1 + no_field"}
        )
    ).json()
    assert expr["errors"][0]["message"] == "Unable to resolve field: no_field"
    assert (expr["errors"][0]["start"], expr["errors"][0]["end"]) == (4, 12)
    syntax = (
        await post(client, {"kind": "HogQLMetadata", "language": "hogQL", "query": "SELEC 1"})
    ).json()
    assert syntax["isValid"] is False
    assert syntax["errors"][0]["start"] == 0


async def test_the_schema_lists_what_queries_can_use(client: httpx.AsyncClient, hogql: Any) -> None:
    schema = (await post(client, {"kind": "DatabaseSchemaQuery"})).json()["tables"]
    events = schema["events"]["fields"]
    assert {"elements_chain_href", "$group_0", "person", "session", "pdi", "poe"} <= set(events)
    assert schema["sessions"]["fields"]["duration"]["type"] == "integer"
    for name in ("elements_chain_texts", "person_mode", "$group_0"):
        assert (await hogql(f"SELECT {name} FROM events LIMIT 1")).status_code == 200


async def test_string_search_and_ip_functions_from_posthogs_list(hogql: Any) -> None:
    response = await hogql(
        "SELECT arrayReduce('uniqMap', [map('a', 1), map('a', 2)]), "
        "multiSearchAnyCaseInsensitive('Hello World', ['WORLD']), "
        "hasTokenCaseInsensitive('Hello World', 'hello'), "
        "IPv4NumToString(toIPv4('10.0.0.1')), isIPv6String('::1')"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["results"] == [[{"a": 2}, 1, 1, "10.0.0.1", 1]]


async def test_posthog_functions_that_need_posthogs_own_data_are_refused_with_the_reason(
    hogql: Any,
) -> None:
    for query in (
        "SELECT getTrafficType('Mozilla/5.0')",
        "SELECT lookupDomainType('google.com')",
        "SELECT __preview_getTrafficType('x')",
    ):
        response = await hogql(query)
        assert response.status_code == 400, query
        assert "the local server does not emulate" in response.json()["detail"]
    typed = await hogql(
        "SELECT toDate(min(timestamp)) = toDate(min(toString(timestamp))) FROM events"
    )
    assert typed.status_code == 200, typed.json()
    assert typed.json()["results"] == [[1]]
