"""The small parts: results, catalog shaping, the cache, error mapping, the public surface."""

from __future__ import annotations

import anyio
import pytest

import posthog_driver
from posthog_driver import DriverError, QueryResult
from posthog_driver._cache import TTLCache
from posthog_driver._catalog import column_fields, property_fields, reference
from posthog_driver._errors import (
    AuthenticationError,
    QueryError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    error_from_response,
)
from posthog_driver._results import unique_names


def test_the_public_surface_is_exactly_the_documented_names():
    assert sorted(posthog_driver.__all__) == sorted(
        [
            "AsyncDriver",
            "AuthenticationError",
            "BreakerStatus",
            "CircuitOpenError",
            "ConfigError",
            "DriverError",
            "DriverSettings",
            "DriverStatus",
            "FieldInfo",
            "LimitStatus",
            "NotFoundError",
            "PermissionDeniedError",
            "QueryError",
            "QueryProblem",
            "QueryResult",
            "RateLimitError",
            "RequestTimeoutError",
            "RowStream",
            "Rows",
            "SandboxUnavailableError",
            "ServerError",
            "SharedLimitsError",
            "TransportError",
            "ValidationError",
            "ValidationResult",
            "WindowStatus",
            "__version__",
            "configure_logging",
        ]
    )
    for name in posthog_driver.__all__:
        assert getattr(posthog_driver, name) is not None


def test_every_error_is_a_driver_error_and_says_what_it_is_for():
    errors = [getattr(posthog_driver, n) for n in posthog_driver.__all__ if n.endswith("Error")]
    for error in errors:
        assert issubclass(error, DriverError)
        assert error.__doc__


def test_the_version_comes_from_package_metadata():
    from importlib.metadata import version  # noqa: PLC0415

    assert posthog_driver.__version__ == version("posthog-driver")


def test_unique_names_keeps_first_names_and_numbers_repeats():
    assert unique_names(["a", "a", "a"]) == ["a", "a_2", "a_3"]
    assert unique_names(["a", "a", "a_2"]) == ["a", "a_3", "a_2"]
    assert unique_names([]) == []


def test_query_result_reads_plain_type_lists_and_missing_columns():
    result = QueryResult.from_response({"results": [[1, "x"]], "types": ["UInt8"]})
    assert result.columns == ["column_1", "column_2"]
    assert result.types == ["UInt8", "Unknown"]
    assert result.as_dicts() == [{"column_1": 1, "column_2": "x"}]
    assert QueryResult.from_response({"results": []}).columns == []


def test_query_result_refuses_columns_that_are_not_a_list():
    with pytest.raises(DriverError, match="'columns' is not a list"):
        QueryResult.from_response({"results": [], "columns": "a,b"})


def test_reference_quotes_names_hogql_cannot_read_bare():
    assert reference("event") == "event"
    assert reference("$session_id") == "$session_id"
    assert reference("my col") == "`my col`"
    assert reference("it's", "properties") == "properties['it\\'s']"
    assert reference("$browser", "person.properties") == "person.properties.$browser"


def test_column_fields_skip_malformed_entries_and_describe_every_kind():
    table = {
        "name": "events",
        "fields": {
            "event": {"name": "event", "hogql_value": "event", "type": "string"},
            "pdi": {"name": "pdi", "hogql_value": "pdi", "type": "lazy_table", "table": "pdi"},
            "poe": {"name": "poe", "type": "virtual_table", "table": "persons"},
            "other": {"name": "other", "type": "integer"},
            "broken": "not a dict",
        },
    }
    fields = column_fields(table)
    assert set(fields) == {"event", "pdi", "poe", "other"}
    assert fields["poe"]["description"].startswith("Virtual table over persons")
    assert fields["other"]["description"] == "Integer column other of events."
    assert column_fields({"name": "x", "fields": None}) == {}


def test_property_fields_map_posthog_types_and_skip_nameless_definitions():
    fields = property_fields(
        [
            {"name": "when", "property_type": "DateTime"},
            {"name": "free", "property_type": None},
            {"property_type": "String"},
            {"name": "", "property_type": "String"},
        ],
        "properties",
        "event",
    )
    assert fields["properties.when"]["type"] == "datetime"
    assert fields["properties.free"]["type"] == "string"
    assert "type unknown" in fields["properties.free"]["description"]
    assert len(fields) == 2


async def test_the_cache_keeps_values_for_their_ttl():
    clock = [0.0]
    cache = TTLCache(10, clock=lambda: clock[0])
    loads = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    assert await cache.get("k", load) == 1
    clock[0] = 9.9
    assert await cache.get("k", load) == 1
    clock[0] = 10.0
    assert await cache.get("k", load) == 2
    assert await cache.get("k", load, refresh=True) == 3
    assert "keys=1" in repr(cache)


async def test_concurrent_callers_of_a_failing_load_share_its_one_failure():
    cache = TTLCache(60)
    calls = 0

    async def failing() -> str:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.01)
        raise ServerError("down")

    outcomes: list[str] = []

    async def one() -> None:
        try:
            await cache.get("schema", failing)
        except ServerError as exc:
            outcomes.append(str(exc))

    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(one)
    assert calls == 1  # not six loads one after another
    assert outcomes == ["down"] * 6


async def test_a_cancelled_loader_hands_the_load_to_a_waiter():
    cache = TTLCache(60)
    calls = 0

    async def load() -> str:
        nonlocal calls
        calls += 1
        await anyio.sleep(10 if calls == 1 else 0)
        return f"v{calls}"

    results: list[str] = []
    loader_scope = anyio.CancelScope()

    async def loader() -> None:
        with loader_scope:
            await cache.get("k", load)

    async def waiter() -> None:
        results.append(await cache.get("k", load))

    async with anyio.create_task_group() as group:
        group.start_soon(loader)
        await anyio.wait_all_tasks_blocked()  # the first load is under way
        group.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()  # the waiter joined it
        loader_scope.cancel()
    assert results == ["v2"]  # the waiter loaded itself: no CancelledError, no stale value
    assert calls == 2


async def test_concurrent_misses_share_one_load_and_failures_are_not_stored():
    cache = TTLCache(60)
    calls = 0

    async def slow() -> str:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.01)
        return "v"

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(cache.get, "k", slow)
    assert calls == 1

    async def failing() -> str:
        raise ServerError("down")

    with pytest.raises(ServerError):
        await cache.get("other", failing)
    assert await cache.get("other", slow) == "v"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, QueryError), (401, AuthenticationError), (408, RequestTimeoutError), (502, ServerError)],
)
def test_error_bodies_of_any_shape_map_by_status(status, kind):
    for text in ('{"detail": 3}', "[]", "", "x" * 1000):
        error = error_from_response(status, text)
        assert type(error) is kind
        assert error.status_code == status
        assert len(str(error)) < 500


def test_a_rate_limit_error_without_retry_after_says_to_retry_later():
    error = error_from_response(429, "{}")
    assert isinstance(error, RateLimitError)
    assert error.retry_after is None
    assert "retry later" in str(error)
