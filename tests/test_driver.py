"""The contract (list_objects, get_fields, query, execute, describe, health_check) via respx."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import respx

from posthog_driver import (
    AsyncDriver,
    ConfigError,
    DriverError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    QueryResult,
    RequestTimeoutError,
    ValidationError,
)
from tests import respx2
from tests.conftest import FAKE_KEY
from tests.posthog_bodies import (
    EVENT_DEFS_URL,
    HOST,
    PROJECT,
    PROJECT_URL,
    PROPERTY_DEFS_URL,
    QUERY_URL,
    error_body,
    hogql_response,
    page,
    prop,
    schema_response,
)


def _query_router(mock: respx.MockRouter, hogql: dict[str, Any] | None = None) -> respx.Route:
    """Answer DatabaseSchemaQuery with the schema and HogQLQuery with `hogql`."""

    def answer(request: httpx.Request) -> httpx.Response:
        kind = json.loads(request.content)["query"]["kind"]
        if kind == "DatabaseSchemaQuery":
            return httpx.Response(200, json=schema_response())
        return httpx.Response(200, json=hogql or hogql_response(["n"], ["UInt64"], [[1]]))

    return mock.post(QUERY_URL).mock(side_effect=answer)


def _definitions(mock: respx.MockRouter) -> None:
    mock.get(EVENT_DEFS_URL).respond(
        200, json=page([{"name": "$pageview"}, {"name": "signed_up"}, {"name": "$pageview"}])
    )

    def properties(request: httpx.Request) -> httpx.Response:
        kind = request.url.params["type"]
        if kind == "event":
            return httpx.Response(
                200, json=page([prop("$browser", "String"), prop("amount", "Numeric")])
            )
        return httpx.Response(
            200, json=page([prop("email", "String"), prop("$feature/beta", "Boolean")])
        )

    mock.get(PROPERTY_DEFS_URL).mock(side_effect=properties)


@pytest.fixture
def mock() -> Any:
    with respx2.mock(assert_all_called=False) as router:
        yield router


def test_the_schema_fixtures_speak_posthogs_shapes(posthog_schema):
    posthog_schema("DatabaseSchemaQueryResponse", schema_response())
    posthog_schema("HogQLQueryResponse", hogql_response(["a"], ["String"], [["x"]]))


async def test_list_objects_returns_every_table_sorted(mock, make_settings):
    _query_router(mock)
    async with AsyncDriver(make_settings()) as driver:
        names = await driver.list_objects()
    assert names == ["events", "persons", "sessions", "stripe_charges", "system.cohorts"]


async def test_list_objects_is_cached_and_refresh_bypasses_the_cache(mock, make_settings):
    route = _query_router(mock)
    async with AsyncDriver(make_settings()) as driver:
        await driver.list_objects()
        await driver.list_objects()
        assert route.call_count == 1
        await driver.list_objects(refresh=True)
        assert route.call_count == 2


async def test_a_zero_ttl_turns_the_cache_off(mock, make_settings):
    route = _query_router(mock)
    async with AsyncDriver(make_settings(schema_cache_ttl=0)) as driver:
        await driver.list_objects()
        await driver.list_objects()
    assert route.call_count == 2


async def test_concurrent_discovery_shares_one_schema_request(mock, make_settings):
    route = _query_router(mock)
    async with AsyncDriver(make_settings()) as driver, anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(driver.list_objects)
    assert route.call_count == 1


async def test_get_fields_of_events_merges_columns_properties_and_event_names(mock, make_settings):
    _query_router(mock)
    _definitions(mock)
    async with AsyncDriver(make_settings()) as driver:
        fields = await driver.get_fields("events")
    assert fields["event"]["type"] == "string"
    assert fields["event"]["values"] == ["$pageview", "signed_up"]
    assert fields["properties.$browser"] == {
        "type": "string",
        "hogql": "properties.$browser",
        "description": "Event property $browser (String).",
    }
    assert fields["properties.amount"]["type"] == "float"
    assert fields["person.properties.email"]["hogql"] == "person.properties.email"
    assert fields["person.properties['$feature/beta']"]["type"] == "boolean"
    assert fields["`$session_id`"]["hogql"] == "`$session_id`"
    assert fields["person"]["type"] == "lazy_table"
    assert fields["person"]["table"] == "persons"
    assert "person.<field>" in fields["person"]["description"]
    assert "fields" not in fields["person"]  # relations are described, not expanded
    assert fields["person_id"]["chain"] == "person.id"


async def test_get_fields_of_persons_lists_person_properties_only(mock, make_settings):
    _query_router(mock)
    _definitions(mock)
    async with AsyncDriver(make_settings()) as driver:
        fields = await driver.get_fields("persons")
    assert "properties.email" in fields
    assert not any(key.startswith("person.") for key in fields)
    assert "properties.$browser" not in fields


async def test_get_fields_of_a_plain_table_makes_no_definition_request(mock, make_settings):
    _query_router(mock)
    defs = mock.get(PROPERTY_DEFS_URL).respond(200, json=page([]))
    async with AsyncDriver(make_settings()) as driver:
        fields = await driver.get_fields("system.cohorts")
    assert set(fields) == {"id", "name"}
    assert defs.call_count == 0


async def test_get_fields_runs_its_definition_requests_side_by_side(mock, make_settings):
    _query_router(mock)
    arrived = 0
    everyone_here = anyio.Event()

    async def barrier(request: httpx.Request) -> httpx.Response:
        # Each of the three requests waits for the others: sequential requests would time out.
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            everyone_here.set()
        with anyio.fail_after(2):
            await everyone_here.wait()
        return httpx.Response(200, json=page([]))

    mock.get(EVENT_DEFS_URL).mock(side_effect=barrier)
    mock.get(PROPERTY_DEFS_URL).mock(side_effect=barrier)
    async with AsyncDriver(make_settings()) as driver:
        await driver.get_fields("events")
    assert arrived == 3


async def test_get_fields_follows_next_links_across_pages(mock, make_settings):
    _query_router(mock)
    mock.get(EVENT_DEFS_URL).respond(200, json=page([]))
    second = f"{PROPERTY_DEFS_URL}?type=person&limit=1&offset=1"
    third = f"{PROPERTY_DEFS_URL}?type=person&limit=1&offset=2"

    def properties(request: httpx.Request) -> httpx.Response:
        offset = request.url.params.get("offset")
        if offset is None:
            return httpx.Response(200, json=page([prop("email", "String")], second))
        if offset == "1":
            return httpx.Response(200, json=page([prop("plan", "String")], third))
        return httpx.Response(200, json=page([prop("seats", "Numeric")]))

    route = mock.get(PROPERTY_DEFS_URL).mock(side_effect=properties)
    async with AsyncDriver(make_settings()) as driver:
        fields = await driver.get_fields("persons")
    assert {"properties.email", "properties.plan", "properties.seats"} <= set(fields)
    assert route.call_count == 3


async def test_a_next_link_to_another_host_is_refused_and_gets_no_key(mock, make_settings):
    _query_router(mock)
    mock.get(EVENT_DEFS_URL).respond(200, json=page([]))
    mock.get(PROPERTY_DEFS_URL).respond(
        200, json=page([prop("email", "String")], "https://evil.example/steal?offset=1")
    )
    evil = mock.get(url__startswith="https://evil.example").respond(200, json=page([]))
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(DriverError, match="another host"):
            await driver.get_fields("persons")
    assert evil.call_count == 0


@pytest.mark.parametrize(
    "link",
    [
        f"/api/projects/{PROJECT}/property_definitions/?type=person&offset=1",
        f"https://POSTHOG.test:443/api/projects/{PROJECT}/property_definitions/?offset=1",
        f"//posthog.test/api/projects/{PROJECT}/property_definitions/?offset=1",
    ],
)
async def test_next_links_on_our_origin_are_followed_however_spelled(mock, make_settings, link):
    _query_router(mock)
    mock.get(EVENT_DEFS_URL).respond(200, json=page([]))

    def properties(request: httpx.Request) -> httpx.Response:
        if "offset" in request.url.params:
            return httpx.Response(200, json=page([prop("plan", "String")]))
        return httpx.Response(200, json=page([prop("email", "String")], link))

    mock.get(PROPERTY_DEFS_URL).mock(side_effect=properties)
    async with AsyncDriver(make_settings()) as driver:
        fields = await driver.get_fields("persons")
    assert "properties.plan" in fields


@pytest.mark.parametrize(
    "link", ["//evil.example/steal", "http://posthog.test/x", "https://posthog.test:8443/x"]
)
async def test_next_links_to_another_origin_are_refused(mock, make_settings, link):
    _query_router(mock)
    mock.get(EVENT_DEFS_URL).respond(200, json=page([]))
    mock.get(PROPERTY_DEFS_URL).respond(200, json=page([prop("a", "String")], link))
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(DriverError, match="another host"):
            await driver.get_fields("persons")


async def test_a_relative_next_link_is_followed_on_our_host(mock, make_settings):
    _query_router(mock)
    mock.get(EVENT_DEFS_URL).respond(200, json=page([]))

    def properties(request: httpx.Request) -> httpx.Response:
        if "offset" in request.url.params:
            return httpx.Response(200, json=page([prop("plan", "String")]))
        next_link = f"/api/projects/{PROJECT}/property_definitions/?type=person&offset=1"
        return httpx.Response(200, json=page([prop("email", "String")], next_link))

    mock.get(PROPERTY_DEFS_URL).mock(side_effect=properties)
    async with AsyncDriver(make_settings()) as driver:
        fields = await driver.get_fields("persons")
    assert "properties.plan" in fields


async def test_a_pagination_loop_is_detected(mock, make_settings):
    _query_router(mock)
    mock.get(EVENT_DEFS_URL).respond(200, json=page([]))
    loop_link = f"{PROPERTY_DEFS_URL}?type=person&offset=1"
    mock.get(PROPERTY_DEFS_URL).respond(200, json=page([prop("a", "String")], loop_link))
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(DriverError, match="does not end"):
            await driver.get_fields("persons")


async def test_a_definitions_answer_of_the_wrong_shape_is_a_typed_error(mock, make_settings):
    _query_router(mock)
    mock.get(EVENT_DEFS_URL).respond(200, json={"detail": "?"})
    mock.get(PROPERTY_DEFS_URL).respond(200, json=page([]))
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(DriverError, match="not a paginated list"):
            await driver.get_fields("events")


async def test_a_missing_scope_on_definitions_is_raised_not_hidden(mock, make_settings):
    _query_router(mock)
    detail = "API key missing required scope 'property_definition:read'"
    mock.get(EVENT_DEFS_URL).respond(200, json=page([]))
    mock.get(PROPERTY_DEFS_URL).respond(
        403, json=error_body("authentication_error", "permission_denied", detail)
    )
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(PermissionDeniedError) as caught:
            await driver.get_fields("events")
    assert caught.value.missing_scope == "property_definition:read"


async def test_an_unknown_object_raises_not_found_with_close_matches(mock, make_settings):
    _query_router(mock)
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(NotFoundError) as caught:
            await driver.get_fields("event")
        with pytest.raises(NotFoundError) as upper:
            await driver.get_fields("PERSONS")
    assert caught.value.suggestions[0] == "events"
    assert "Did you mean events" in str(caught.value)
    assert upper.value.suggestions[0] == "persons"


async def test_a_schema_answer_without_tables_is_a_typed_error(mock, make_settings):
    mock.post(QUERY_URL).respond(200, json={"joins": []})
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(DriverError, match="no 'tables'"):
            await driver.list_objects()


@pytest.mark.parametrize("name", ["", "   ", None, 42, "x" * 300, "bad\ud800name"])
async def test_bad_object_names_are_refused_before_sending(mock, make_settings, name):
    route = _query_router(mock)
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(ValidationError):
            await driver.get_fields(name)
    assert route.call_count == 0


async def test_describe_fans_out_with_bounded_concurrency(make_settings, monkeypatch):
    in_flight = peak = 0

    async def observed_get_fields(name: str, *, refresh: bool = False) -> dict[str, Any]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.01)
        in_flight -= 1
        return {"id": {"type": "integer", "table": name}}

    progress: list[tuple[str, int, int]] = []
    async with AsyncDriver(make_settings(describe_concurrency=3)) as driver:
        monkeypatch.setattr(driver, "get_fields", observed_get_fields)
        names = [f"table_{i}" for i in range(10)]
        catalog = await driver.describe(names, on_progress=lambda *a: progress.append(a))
    assert peak == 3  # concurrent, and never more than describe_concurrency
    assert list(catalog) == names
    assert catalog["table_4"]["id"]["table"] == "table_4"
    assert sorted(p[0] for p in progress) == sorted(names)
    assert progress[-1][1:] == (10, 10)


async def test_describe_with_refresh_reloads_the_schema_once(mock, make_settings):
    route = _query_router(mock)
    _definitions(mock)
    async with AsyncDriver(make_settings()) as driver:
        await driver.describe()
        assert route.call_count == 1
        await driver.describe(refresh=True)
        assert route.call_count == 2


async def test_a_caller_editing_its_fields_does_not_edit_the_cache(mock, make_settings):
    _query_router(mock)
    async with AsyncDriver(make_settings()) as driver:
        fields = await driver.get_fields("sessions")
        fields.clear()
        catalog = await driver.describe(["sessions"])
        catalog["sessions"]["session_id"]["type"] = "changed"
        assert (await driver.get_fields("sessions"))["session_id"]["type"] == "string"


async def test_describe_defaults_to_every_object(mock, make_settings):
    _query_router(mock)
    _definitions(mock)
    async with AsyncDriver(make_settings()) as driver:
        catalog = await driver.describe()
    assert list(catalog) == ["events", "persons", "sessions", "stripe_charges", "system.cohorts"]
    assert "properties.email" in catalog["persons"]


async def test_describe_raises_the_first_typed_error_and_cancels_the_rest(mock, make_settings):
    _query_router(mock)
    cancelled = anyio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        try:
            await anyio.sleep(10)
        finally:
            cancelled.set()
        return httpx.Response(200, json=page([]))  # pragma: no cover

    mock.get(EVENT_DEFS_URL).mock(side_effect=hang)
    mock.get(PROPERTY_DEFS_URL).mock(side_effect=hang)
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(NotFoundError):
            await driver.describe(["events", "nope"])
    assert cancelled.is_set()


@pytest.mark.parametrize("objects", ["events", 5, object()])
async def test_describe_refuses_anything_but_a_list_of_names(make_settings, objects):
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(ValidationError, match="list of object names"):
            await driver.describe(objects)


async def test_query_zips_columns_with_rows_and_keeps_repeated_names_apart(mock, make_settings):
    body = hogql_response(
        ["event", "count()", "count()"], ["String", "UInt64", "UInt64"], [["$pageview", 3, 4]]
    )
    _query_router(mock, body)
    async with AsyncDriver(make_settings()) as driver:
        rows = await driver.query("SELECT event, count(), count() FROM events GROUP BY event")
    assert rows == [{"event": "$pageview", "count()": 3, "count()_2": 4}]


async def test_execute_returns_columns_types_rows_and_has_more(mock, make_settings):
    body = hogql_response(
        ["event"], ["String"], [["a"], ["b"]], has_more=True, hogql="SELECT event LIMIT 100"
    )
    _query_router(mock, body)
    async with AsyncDriver(make_settings()) as driver:
        result = await driver.execute("SELECT event FROM events")
    assert isinstance(result, QueryResult)
    assert result.columns == ["event"]
    assert result.types == ["String"]
    assert result.rows == [["a"], ["b"]]
    assert result.has_more is True
    assert result.hogql == "SELECT event LIMIT 100"
    assert len(result) == 2


@pytest.mark.parametrize(
    ("hogql", "values", "fragment"),
    [
        ("", None, "empty"),
        ("  \n\t ", None, "empty"),
        (None, None, "string"),
        (b"SELECT 1", None, "string"),
        ("SELECT 1", ["not", "a", "dict"], "dict"),
        ("SELECT {x}", {"x": object()}, "JSON"),
        ("SELECT {x}", {"x": float("nan")}, "JSON"),
        ("SELECT {x}", {"x": "\ud800"}, "JSON"),
        ("SELECT {1x}", {"1x": 1}, "Placeholder"),
        ("SELECT {x}", {3: 1}, "Placeholder"),
        ("SELECT '\udcff'", None, "Unicode"),
    ],
)
async def test_bad_queries_are_refused_before_sending(mock, make_settings, hogql, values, fragment):
    route = _query_router(mock)
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(ValidationError, match=fragment):
            await driver.query(hogql, values)
    assert route.call_count == 0


async def test_an_oversized_query_is_refused_and_names_the_setting(mock, make_settings):
    route = _query_router(mock)
    async with AsyncDriver(make_settings(max_query_chars=50)) as driver:
        with pytest.raises(ValidationError, match="POSTHOG_MAX_QUERY_CHARS"):
            await driver.query("SELECT 1 " + "x" * 50)
        assert await driver.query("SELECT 1") == [{"n": 1}]
    assert route.call_count == 1


async def test_an_async_answer_is_polled_until_complete(mock, make_settings):
    mock.post(QUERY_URL).respond(
        202, json={"query_status": {"id": "q1", "complete": False, "query_async": True}}
    )
    status = f"{HOST}/api/projects/{PROJECT}/query/q1/"
    done = hogql_response(["n"], ["UInt64"], [[9]])
    mock.get(status).side_effect = [
        httpx.Response(202, json={"query_status": {"id": "q1", "complete": False}}),
        httpx.Response(200, json={"query_status": {"id": "q1", "complete": True, "results": done}}),
    ]
    async with AsyncDriver(make_settings()) as driver:
        assert await driver.query("SELECT 9") == [{"n": 9}]


async def test_an_async_answer_that_fails_raises_query_error(mock, make_settings):
    mock.post(QUERY_URL).respond(202, json={"query_status": {"id": "q2", "complete": False}})
    mock.get(f"{HOST}/api/projects/{PROJECT}/query/q2/").respond(
        200,
        json={
            "query_status": {
                "id": "q2",
                "complete": True,
                "error": True,
                "error_message": "Unknown table",
            }
        },
    )
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(QueryError, match="Unknown table"):
            await driver.query("SELECT 1 FROM nope")


async def test_an_async_answer_that_never_completes_times_out(mock, make_settings):
    mock.post(QUERY_URL).respond(202, json={"query_status": {"id": "q3", "complete": False}})
    mock.get(f"{HOST}/api/projects/{PROJECT}/query/q3/").respond(
        202, json={"detail": "still going"}
    )
    cancel = mock.delete(f"{HOST}/api/projects/{PROJECT}/query/q3/")
    cancel_any = mock.delete(url__regex=rf"{HOST}/api/projects/{PROJECT}/query/\w+/$")
    async with AsyncDriver(make_settings()) as driver:
        with pytest.raises(RequestTimeoutError, match="deadline"):
            await driver.query("SELECT 1", timeout=0.3)
    assert cancel.called or cancel_any.called  # PostHog is asked to stop the query


async def test_health_check_is_true_on_200(mock, make_settings):
    mock.get(PROJECT_URL).respond(200, json={"id": int(PROJECT), "name": "Default project"})
    async with AsyncDriver(make_settings()) as driver:
        assert await driver.health_check() is True


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(401, json=error_body("authentication_error", "x", "bad key")),
        httpx.Response(500),
        httpx.ConnectError("refused"),
    ],
)
async def test_health_check_is_false_on_failure_and_never_raises(mock, make_settings, answer):
    mock.get(PROJECT_URL).mock(side_effect=[answer] * 10)
    async with AsyncDriver(make_settings(max_retries=0)) as driver:
        assert await driver.health_check() is False


async def test_execute_falls_back_to_the_sent_hogql_when_posthog_omits_it(mock, make_settings):
    body = hogql_response(["n"], ["UInt64"], [[1]])
    del body["hogql"]
    _query_router(mock, body)
    async with AsyncDriver(make_settings()) as driver:
        result = await driver.execute("SELECT 1 AS n")
    assert result.hogql == "SELECT 1 AS n"


async def test_a_closed_client_gives_a_driver_error_and_a_false_health_check(make_settings):
    client = httpx2.AsyncClient()
    await client.aclose()
    async with AsyncDriver(make_settings(), http_client=client) as driver:
        with pytest.raises(DriverError, match="client is closed"):
            await driver.query("SELECT 1")
        assert await driver.health_check() is False


def test_a_client_of_another_library_is_refused_with_the_fix(make_settings):
    with pytest.raises(ConfigError, match=r"http_client must be an httpx2\.AsyncClient"):
        AsyncDriver(make_settings(), http_client=httpx.AsyncClient())  # type: ignore[arg-type]


def test_settings_are_required_and_from_env_is_named(make_settings):
    with pytest.raises(ConfigError, match=r"AsyncDriver\.from_env\(\)"):
        AsyncDriver(None)  # type: ignore[arg-type]


async def test_a_closed_driver_refuses_work_and_closing_twice_is_fine(make_settings):
    driver = AsyncDriver(make_settings())
    async with driver:
        pass
    await driver.aclose()
    assert await driver.health_check() is False
    with pytest.raises(DriverError, match="closed"):
        await driver.query("SELECT 1")
    with pytest.raises(DriverError, match="closed"):
        await driver.list_objects()
    with pytest.raises(DriverError, match="entered only once"):
        async with driver:
            pass  # pragma: no cover


async def test_a_driver_works_without_a_with_block_until_closed(mock, make_settings):
    _query_router(mock)
    driver = AsyncDriver(make_settings())
    assert await driver.query("SELECT 1") == [{"n": 1}]
    await driver.aclose()
    assert "state=closed" in repr(driver)


def test_repr_shows_host_and_project_but_never_the_key(make_settings):
    driver = AsyncDriver(make_settings())
    text = repr(driver)
    assert HOST in text
    assert PROJECT in text
    assert FAKE_KEY not in text


def test_from_env_reads_posthog_variables(monkeypatch):
    monkeypatch.setenv("POSTHOG_API_KEY", FAKE_KEY)
    monkeypatch.setenv("POSTHOG_PROJECT_ID", "77")
    monkeypatch.setenv("POSTHOG_HOST", "https://eu.posthog.com/")
    driver = AsyncDriver.from_env()
    assert driver.settings.project_id == "77"
    assert driver.settings.host == "https://eu.posthog.com"


def test_from_env_without_variables_raises_config_error():
    with pytest.raises(ConfigError, match=r"POSTHOG_API_KEY\) is missing"):
        AsyncDriver.from_env()


async def test_describe_counts_a_repeated_name_once_in_its_progress(mock, make_settings):
    _query_router(mock)
    progress: list[tuple[str, int, int]] = []
    async with AsyncDriver(make_settings()) as driver:
        catalog = await driver.describe(
            ["sessions", "sessions"], on_progress=lambda *a: progress.append(a)
        )
    assert progress == [("sessions", 1, 1)]
    assert list(catalog) == ["sessions"]
