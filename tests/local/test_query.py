"""HogQL over HTTP: schema conformance, sugar, placeholders, LIMIT and OFFSET rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from posthog_local.hogql import OFFSET_MESSAGE


@pytest.mark.asyncio(loop_scope="session")
async def test_hogql_response_validates_against_posthogs_schema(
    client: httpx.AsyncClient, hogql: Any, validate: Any
) -> None:
    response = await hogql("SELECT event, count() AS n, max(timestamp) FROM events GROUP BY event")
    assert response.status_code == 200
    body = response.json()
    validate(body, "HogQLQueryResponse")
    assert body["columns"][:2] == ["event", "n"]
    assert body["types"][1] == ["n", "UInt64"]
    assert body["results"][0][2].endswith("Z")


@pytest.mark.asyncio(loop_scope="session")
async def test_database_schema_validates_and_lists_relations(
    client: httpx.AsyncClient, hogql: Any, validate: Any
) -> None:
    response = await client.post(
        "/api/projects/1/query/", json={"query": {"kind": "DatabaseSchemaQuery"}}
    )
    body = response.json()
    validate(body, "DatabaseSchemaQueryResponse")
    events = body["tables"]["events"]
    assert events["fields"]["person"]["type"] == "lazy_table"
    assert events["fields"]["person"]["table"] == "persons"
    assert events["fields"]["$session_id"]["hogql_value"] == "`$session_id`"
    assert body["tables"]["system.cohorts"]["type"] == "system"
    assert events["row_count"] == 20_000


@pytest.mark.asyncio(loop_scope="session")
async def test_property_sugar_and_person_properties(client: httpx.AsyncClient, hogql: Any) -> None:
    response = await hogql(
        "SELECT properties.$browser, properties['$os'], person.properties.email FROM events "
        "WHERE event = 'signed_up' LIMIT 3",
    )
    body = response.json()
    # PostHog names a property column by its path: `$browser`, `$os`, `email`
    assert body["columns"] == ["$browser", "$os", "email"]
    assert all("@" in row[2] for row in body["results"])


@pytest.mark.asyncio(loop_scope="session")
async def test_placeholder_values_are_data_not_sql(client: httpx.AsyncClient, hogql: Any) -> None:
    evil = "'; DROP TABLE events; --"
    response = await hogql("SELECT count() FROM events WHERE event = {ev}", {"ev": evil})
    assert response.status_code == 200
    assert response.json()["results"] == [[0]]
    # the HogQL text shows the value as PostHog does: a quoted, escaped string constant
    assert "'\\'; DROP TABLE events; --'" in response.json()["hogql"]
    after = await hogql("SELECT count() FROM events")
    assert after.json()["results"] == [[20_000]]


@pytest.mark.asyncio(loop_scope="session")
async def test_default_limit_reports_has_more(client: httpx.AsyncClient, hogql: Any) -> None:
    body = (await hogql("SELECT uuid FROM events")).json()
    assert len(body["results"]) == 100
    assert body["hasMore"] is True
    assert (body["limit"], body["offset"]) == (100, 0)


@pytest.mark.asyncio(loop_scope="session")
async def test_small_result_without_limit_has_no_more(
    client: httpx.AsyncClient, hogql: Any
) -> None:
    body = (await hogql("SELECT DISTINCT event FROM events")).json()
    assert body["hasMore"] is False
    assert len(body["results"]) == 11


@pytest.mark.asyncio(loop_scope="session")
async def test_user_limit_is_clamped_to_50000(client: httpx.AsyncClient, hogql: Any) -> None:
    body = (await hogql("SELECT 1 FROM events LIMIT 999999")).json()
    assert "LIMIT 50000" in body["hogql"]
    assert "hasMore" not in body


@pytest.mark.asyncio(loop_scope="session")
async def test_offset_is_refused_with_posthogs_message(
    client: httpx.AsyncClient, hogql: Any
) -> None:
    response = await hogql("SELECT event FROM events LIMIT 5 OFFSET 10")
    assert response.status_code == 400
    assert response.json() == {
        "type": "validation_error",
        "code": "hogql_query_error",
        "detail": OFFSET_MESSAGE,
        "attr": None,
    }


@pytest.mark.asyncio(loop_scope="session")
async def test_engine_errors_are_400_without_internals(
    client: httpx.AsyncClient, hogql: Any
) -> None:
    response = await hogql("SELECT nosuch FROM events")
    body = response.json()
    assert response.status_code == 400
    assert body["type"] == "validation_error"
    assert "nosuch" in body["detail"]
    assert "phd_" not in body["detail"]
    assert "DB::Exception" not in body["detail"]


@pytest.mark.asyncio(loop_scope="session")
async def test_funnel_has_drop_off(client: httpx.AsyncClient, hogql: Any) -> None:
    body = (
        await hogql(
            "SELECT countIf(event = 'signed_up'), countIf(event = 'onboarding_completed'), "
            "countIf(event = 'subscription_started') FROM events",
        )
    ).json()
    signed, onboarded, subscribed = body["results"][0]
    assert signed > onboarded > subscribed > 0


@pytest.mark.asyncio(loop_scope="session")
async def test_environments_alias_and_kind_path(client: httpx.AsyncClient, hogql: Any) -> None:
    node = {"query": {"kind": "HogQLQuery", "query": "SELECT 1"}}
    assert (await client.post("/api/environments/1/query/", json=node)).status_code == 200
    mismatch = await client.post("/api/projects/1/query/DatabaseSchemaQuery/", json=node)
    assert mismatch.status_code == 400
    assert "mismatch" in mismatch.json()["detail"]
