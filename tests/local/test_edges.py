"""Awkward edges: request shapes, value types, name chains, options and lifecycle misuse."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from posthog_local import LocalServer, ServerOptions
from posthog_local.hogql import HogQLError, compile_query
from posthog_local.hogql._functions import lookup


def compiled(query: str, values: dict[str, Any] | None = None) -> str:
    return compile_query(query, values, database="db").sql


def test_values_of_every_type_bind_as_typed_parameters() -> None:
    result = compile_query(
        "SELECT {a}, {b}, {c}, {d}, {e}, {f}",
        {"a": "x", "b": 2, "c": 1.5, "d": True, "e": None, "f": [1, 2]},
        database="db",
    )
    assert "{hogql_val_0:String}" in result.sql
    assert "{hogql_val_1:Array(Int64)}" in result.sql
    assert result.params == {"hogql_val_0": "x", "hogql_val_1": "[1,2]"}
    # numbers, booleans and NULL are printed by the printer itself, as PostHog's does
    assert " 2 AS " in result.sql
    assert " 1.5 AS " in result.sql
    assert "NULL AS " in result.sql


def test_mixed_lists_and_objects_are_refused() -> None:
    with pytest.raises(HogQLError, match="Unsupported"):
        compile_query("SELECT {a}", {"a": [1, "x"]}, database="db")
    with pytest.raises(HogQLError, match="Unsupported"):
        compile_query("SELECT {a}", {"a": {"k": 1}}, database="db")


def test_empty_and_unparsable_queries_are_syntax_errors() -> None:
    for query in ("   ", "SELECT (", "SELECT 'unterminated"):
        with pytest.raises(HogQLError) as refused:
            compile_query(query, None, database="db")
        assert refused.value.code == "hogql_syntax_error"
        assert refused.value.start is not None


def test_person_fields_read_the_persons_columns_each_event_carries() -> None:
    sql = compiled("SELECT person.id, e.person.properties.email FROM events e")
    assert "`e`.`person_id`" in sql
    assert "JSONExtractRaw(`e`.`person_properties`" in sql
    assert "JOIN" not in sql
    nested = compiled("SELECT properties['$set']['city'] FROM events")
    assert (
        "JSONExtractRaw(`events`.`properties`, {hogql_val_0:String}, {hogql_val_1:String})"
        in nested
    )


def test_non_literal_limit_is_capped() -> None:
    assert "LIMIT min2(50000, " in compiled("SELECT 1 FROM events LIMIT 1 + 1")
    assert compiled("SELECT 1 FROM events LIMIT {n}", {"n": 60_000}).endswith("LIMIT 50000")


def test_unknown_tables_are_refused() -> None:
    for query in ("SELECT 1 FROM nowhere", "SELECT 1 FROM a.b.c"):
        with pytest.raises(HogQLError, match="Unknown table"):
            compile_query(query, None, database="db")


def test_the_function_table_has_what_posthog_lists_and_nothing_that_reaches_out() -> None:
    for name in ("uniqIf", "countIf", "toStartOfDay", "arrayFold", "countEqual", "dateName"):
        assert lookup(name) is not None, name
    refused = "file fileIf url s3 remote getSetting sleep hostName currentUser version dictGet"
    for name in [*refused.split(), "joinGet", "executable", "nosuchIf"]:
        assert lookup(name) is None, name


def test_options_validation() -> None:
    for kwargs in ({"events": -1}, {"pool_size": 0}, {"query_timeout": 0}, {"port": 70000}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            ServerOptions(**kwargs)


def test_server_misuse_says_what_to_do() -> None:
    srv = LocalServer(ServerOptions(events=100))
    assert "stopped" in repr(srv)
    assert srv.stats is None
    with pytest.raises(RuntimeError, match="not running"):
        _ = srv.api_key
    srv.stop()  # idempotent on a server never started


@pytest.mark.asyncio(loop_scope="session")
async def test_bad_request_bodies(client: httpx.AsyncClient) -> None:
    url = "/api/projects/1/query/"
    invalid = await client.post(url, content=b"{not json")
    assert invalid.json()["code"] == "parse_error"
    missing = await client.post(url, json={"nope": 1})
    assert missing.json()["code"] == "required"
    other = await client.post(url, json={"query": {"kind": "TrendsQuery"}})
    assert "Unsupported query kind" in other.json()["detail"]
    wrong = await client.post(url, json={"query": {"kind": "HogQLQuery", "query": 5}})
    assert wrong.status_code == 400
    method = await client.get(url)
    assert method.status_code == 405


@pytest.mark.asyncio(loop_scope="session")
async def test_definition_filters_and_bad_parameters(client: httpx.AsyncClient) -> None:
    url = "/api/projects/1/property_definitions/"
    group = (await client.get(url, params={"type": "group", "group_type_index": 0})).json()
    assert {"industry", "employees"} <= {p["name"] for p in group["results"]}
    numeric = (await client.get(url, params={"is_numerical": "true"})).json()
    assert sorted(p["name"] for p in numeric["results"]) == [
        "$screen_height",
        "$screen_width",
        "$viewport_height",
        "$viewport_width",
        "amount",
    ]
    bad_names = await client.get(url, params={"event_names": '{"a": 1}'})
    assert bad_names.status_code == 400
    ignored = await client.get(url, params={"event_names": "not json"})
    assert ignored.status_code == 200
    bad_limit = await client.get("/api/projects/1/event_definitions/", params={"limit": "x"})
    assert bad_limit.status_code == 400


@pytest.mark.asyncio(loop_scope="session")
async def test_persons_and_system_tables_answer(client: httpx.AsyncClient, hogql: Any) -> None:
    persons = (await hogql("SELECT properties.email, is_identified FROM persons LIMIT 5")).json()
    assert persons["columns"] == ["email", "is_identified"]
    flags = (await hogql("SELECT key FROM system.feature_flags ORDER BY id")).json()
    assert flags["results"][0] == ["new-onboarding"]
    union = (await hogql("SELECT 1 AS x UNION ALL SELECT 2 AS x")).json()
    assert "hasMore" not in union  # PostHog's paginator only runs for a plain SELECT
    assert sorted(union["results"]) == [[1], [2]]


@pytest.mark.parametrize(
    "query",
    [
        # ClickHouse reads `$a$ ... $a$` as a heredoc string: unquoted, the text between would
        # have been live SQL that sqlglot took for a string literal.
        "SELECT $a$ AS x, 'y $a$, file($b$/etc/hostname$b$) AS s --' AS z FROM events",
        "SELECT $$ AS x, 'y $$, version() AS s --' AS z FROM events",
        # A subquery in ARRAY JOIN was parsed with its FROM as a column, escaping table checks.
        "SELECT n FROM system.cohorts "
        "ARRAY JOIN (SELECT groupArray(name) FROM system.settings) AS n",
        "SELECT n FROM events LEFT ARRAY JOIN (SELECT [1] FROM system.tables) AS n",
    ],
)
def test_parser_differential_tricks_are_refused(query: str) -> None:
    with pytest.raises(HogQLError):
        compiled(query)


def test_engine_sql_quotes_every_identifier() -> None:
    sql = compiled("SELECT event AS e, count() AS n FROM events GROUP BY e")
    assert sql.startswith("SELECT `events`.`event` AS `e`, count() AS `n` FROM `db`.`events`")


def test_a_heredoc_payload_over_http_reads_no_file(tmp_path: Any) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET_MARKER_51")
    query = f"SELECT $a$ AS x, 'y $a$, file($b${secret}$b$) AS s --' AS z FROM events"  # noqa: S608 - the attack under test
    with LocalServer(ServerOptions(events=500)) as server:
        response = httpx.post(
            f"{server.url}/api/projects/1/query/",
            headers={"Authorization": f"Bearer {server.api_key}"},
            json={"query": {"kind": "HogQLQuery", "query": query}},
            timeout=30,
        )
    assert response.status_code == 400
    assert "SECRET_MARKER_51" not in response.text


def test_a_timed_out_query_leaves_its_session_clean_for_the_next() -> None:
    slow = "SELECT count() FROM events a, events b, events c, events d"
    options = ServerOptions(events=2000, query_timeout=0.3, pool_size=1)
    with LocalServer(options) as server:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        url = f"{server.url}/api/projects/1/query/"

        def post(query: str) -> httpx.Response:
            body = {"query": {"kind": "HogQLQuery", "query": query}}
            return httpx.post(url, headers=headers, json=body, timeout=30)

        assert post(slow).status_code == 504
        following = [post("SELECT 1 AS one") for _ in range(3)]
    assert [r.status_code for r in following] == [200, 200, 200]
    assert all(r.json()["results"] == [[1]] for r in following)


def test_an_oversized_query_is_refused_before_parsing(server: LocalServer) -> None:
    query = "SELECT " + "+".join(["1"] * 60_000)
    response = httpx.post(
        f"{server.url}/api/projects/1/query/",
        headers={"Authorization": f"Bearer {server.api_key}"},
        json={"query": {"kind": "HogQLQuery", "query": query}},
        timeout=30,
    )
    assert response.status_code == 400
    assert "over the local server's limit" in response.json()["detail"]
