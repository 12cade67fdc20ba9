"""Bad input, generated: only typed errors come out, and only read queries reach the server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posthog_driver import AsyncDriver, ConfigError, DriverError, DriverSettings
from tests.reliability.conftest import Tally, leaks

pytestmark = pytest.mark.reliability

WRITES = [
    "DROP TABLE events",
    "INSERT INTO events (event) VALUES ('x')",
    "ALTER TABLE events DELETE WHERE 1",
    "TRUNCATE TABLE events",
    "SELECT 1; DROP TABLE events",
    "SELECT 1; SELECT 2",
    "SELECT 1 /* ; DROP TABLE events */",
    "SELECT 1 -- ; DELETE FROM events",
    "/*/ DROP TABLE events /*/ SELECT 1",
    "SELECT * FROM file('/etc/passwd')",
    "SELECT * FROM url('http://127.0.0.1:1/')",
    "SELECT 1 INTO OUTFILE 'out.csv'",
    "SELECT name FROM system.tables",
    "SELECT '\\'; DROP TABLE events; --'",
    "SELECT {x}",
    "SELECT 1\x00; DROP TABLE events",
]
TEXT = st.text(max_size=300)
SURROGATES = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1)
QUERY = st.one_of(
    st.sampled_from(WRITES),
    TEXT,
    # Built from pieces on purpose: injection-shaped text is what this test sends.
    st.builds(lambda a, b: "SELECT " + a + " FROM events " + b, TEXT, TEXT),  # noqa: S608
    st.builds(lambda s: "SELECT 1 " + s, SURROGATES),
    st.just("SELECT 1 -- " + "x" * 1_000_001),
    st.integers(),
    st.none(),
    st.binary(max_size=20),
)
VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT, SURROGATES),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
VALUES = st.one_of(
    st.none(),
    st.dictionaries(st.one_of(TEXT, st.integers()), VALUE, max_size=3),
    st.lists(VALUE, max_size=2),
    st.builds(set),
    st.builds(object),
)
NAME = st.one_of(
    TEXT,
    SURROGATES,
    st.sampled_from(["events", "persons", "events; DROP TABLE events", "../../etc", "x" * 10_000]),
    st.integers(),
    st.none(),
)
SETTING = st.sampled_from(
    [
        "host",
        "project_id",
        "api_key",
        "timeout",
        "max_retries",
        "max_retry_after",
        "retry_base_delay",
        "query_rate_per_minute",
        "max_concurrent_queries",
        "breaker_threshold",
        "breaker_reset_seconds",
        "schema_cache_ttl",
        "max_query_chars",
        "log_level",
    ]
)
SETTING_VALUE = st.one_of(
    TEXT,
    SURROGATES,
    st.integers(),
    st.floats(),
    st.none(),
    st.booleans(),
    st.sampled_from(["-1", "nan", "inf", "1e309", "phc_projectkey", "ftp://x", "http://"]),
)


class Recorder:
    """Every request the driver sends: method, path and the query node, if any."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any]] = []

    async def __call__(self, request: httpx2.Request) -> None:
        node = json.loads(request.content).get("query") if request.content else None
        self.seen.append((request.method, request.url.path, node))


def _is_read(method: str, path: str, node: Any, project: str) -> bool:
    base = f"/api/projects/{project}/"
    if method == "GET":
        return path.startswith(base)
    if method == "DELETE":  # the driver cancelling its own query at a deadline
        return path.startswith(base + "query/") and path != base + "query/"
    return (
        method == "POST"
        and path == base + "query/"
        and isinstance(node, dict)
        and node.get("kind") in ("HogQLQuery", "DatabaseSchemaQuery")
    )


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    # One event loop for all examples: the driver and its limiter belong to it.
    with asyncio.Runner() as loop:
        yield loop


def test_generated_bad_input_gives_only_typed_errors_and_sends_only_reads(
    local_server: Any, soak: bool, tally: Tally, runner: asyncio.Runner
) -> None:
    recorder = Recorder()
    client = httpx2.AsyncClient(event_hooks={"request": [recorder]}, timeout=20)
    settings_ = DriverSettings(
        host=local_server.url,
        api_key=local_server.api_key,
        project_id=local_server.project_id,
        query_rate_per_minute=1_000_000,
        query_rate_per_hour=1_000_000,
        retry_base_delay=0.0,
        breaker_threshold=1000,
    )
    driver = AsyncDriver(settings_, http_client=client)
    runner.run(driver.__aenter__())
    events_before = runner.run(driver.query("SELECT count() AS n FROM events"))

    async def outcome(call: Any) -> Any:
        try:
            return await call
        except Exception as exc:  # noqa: BLE001 - sorting typed from untyped is the point
            return exc

    examples = 300 if soak else 25

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(query=QUERY, values=VALUES, name=NAME)
    def check(query: Any, values: Any, name: Any) -> None:
        for result in (
            runner.run(outcome(driver.query(query, values))),
            runner.run(outcome(driver.query(query))),
            runner.run(outcome(driver.get_fields(name))),
        ):
            tally.record(result)
            assert not isinstance(result, BaseException) or isinstance(result, DriverError), repr(
                result
            )

    check()
    events_after = runner.run(driver.query("SELECT count() AS n FROM events"))
    tally.leaks = len(leaks(driver))
    runner.run(driver.aclose())
    runner.run(client.aclose())

    project = local_server.project_id
    assert [s for s in recorder.seen if not _is_read(*s, project)] == []
    assert events_after == events_before
    assert tally.untyped == []
    assert tally.leaks == 0
    assert not any(local_server.api_key in text for text in tally.texts)


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(field=SETTING, value=SETTING_VALUE)
def test_generated_settings_values_build_or_raise_config_error(field: str, value: Any) -> None:
    key = "phx_SETTINGSKEY0123456789abcdefghijklmnopqrstuvw"
    values = {"api_key": key, "project_id": "1", field: value}
    texts: list[str] = []
    try:
        DriverSettings(**values)
    except ConfigError as exc:
        texts += [str(exc), repr(exc)]
    assert [t for t in texts if key in t] == []
