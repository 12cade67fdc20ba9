"""`stream()`: every row exactly once by keyset pagination, against the local PostHog server
(and respx for the exact requests: keys bound as values, never OFFSET, cancel at PostHog)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from posthog_driver import AsyncDriver, DriverSettings, QueryError, RowStream, ValidationError
from tests import respx2
from tests.conftest import FAKE_KEY
from tests.posthog_bodies import HOST, PROJECT, QUERY_URL, hogql_response


@pytest.fixture
def live(local_server: Any) -> DriverSettings:
    return DriverSettings(
        host=local_server.url, api_key=local_server.api_key, project_id=local_server.project_id
    )


async def _every_uuid(driver: AsyncDriver, where: str = "") -> list[str]:
    rows = await driver.query(f"SELECT uuid FROM events {where} LIMIT 50000")  # noqa: S608
    return sorted(row["uuid"] for row in rows)


PAGEVIEWS = "WHERE event = '$pageview'"  # about 8,600 of the 20,000: enough pages, less time


async def test_every_row_comes_back_exactly_once(live: DriverSettings) -> None:
    progress: list[int] = []
    async with AsyncDriver(live) as driver:
        expected = await _every_uuid(driver)
        stream = driver.stream(
            "SELECT uuid, timestamp, event FROM events",
            cursor=("timestamp", "uuid"),
            batch_size=3_001,
            on_progress=progress.append,
        )
        seen: list[str] = []
        hogql = []
        async for page in stream:
            seen += [row[0] for row in page.rows]
            hogql.append(page.hogql or "")
    assert len(expected) == 20_000  # the session server's events
    assert sorted(seen) == expected  # each once: no loss, no repeat
    assert stream.pages == len(progress) == 7
    assert progress[-1] == stream.rows_so_far == 20_000
    assert progress == sorted(progress)
    assert all("OFFSET" not in text.upper() for text in hogql)


async def test_rows_sharing_the_first_key_are_neither_lost_nor_repeated(
    live: DriverSettings,
) -> None:
    # an hour holds hundreds of events: every page boundary falls inside a run of equal keys
    async with AsyncDriver(live) as driver:
        expected = await _every_uuid(driver, PAGEVIEWS)
        seen = [
            row["uuid"]
            async for row in driver.stream(
                f"SELECT toStartOfHour(timestamp) AS hour, uuid FROM events {PAGEVIEWS}",  # noqa: S608
                cursor=("hour", "uuid"),
                batch_size=997,
            ).rows()
        ]
    assert sorted(seen) == expected
    assert len(set(seen)) == len(seen)


async def test_values_filter_every_page(live: DriverSettings) -> None:
    async with AsyncDriver(live) as driver:
        rows = await driver.query(
            "SELECT count() AS n FROM events WHERE event = {name}", {"name": "$pageview"}
        )
        streamed = [
            row
            async for row in driver.stream(
                "SELECT uuid, timestamp, event FROM events WHERE event = {name}",
                {"name": "$pageview"},
                cursor=("timestamp", "uuid"),
                batch_size=1_000,
            ).rows()
        ]
    assert len(streamed) == rows[0]["n"]
    assert {row["event"] for row in streamed} == {"$pageview"}


async def test_duplicate_rows_come_back_once_per_copy_across_page_boundaries(
    live: DriverSettings,
) -> None:
    # PostHog's events table can hold an event twice: identical rows, equal keys
    once = f"SELECT uuid, timestamp, event FROM events {PAGEVIEWS}"  # noqa: S608
    twice = f"{once} UNION ALL {once}"
    async with AsyncDriver(live) as driver:
        expected = await _every_uuid(driver, PAGEVIEWS)
        seen = [
            row["uuid"]
            async for row in driver.stream(
                twice, cursor=("timestamp", "uuid"), batch_size=999
            ).rows()
        ]
    assert sorted(seen) == sorted(expected * 2)


async def test_more_copies_than_a_page_are_refused(live: DriverSettings) -> None:
    copies = " UNION ALL ".join(["SELECT uuid, timestamp FROM events"] * 3)
    async with AsyncDriver(live) as driver:
        stream = driver.stream(copies, cursor=("timestamp", "uuid"), batch_size=2)
        with pytest.raises(ValidationError, match="raise batch_size"):
            async for _page in stream:
                pass


async def test_rows_sharing_a_key_but_differing_are_refused(live: DriverSettings) -> None:
    differ = " UNION ALL ".join(f"SELECT uuid, timestamp, {n} AS copy FROM events" for n in (1, 2))  # noqa: S608
    async with AsyncDriver(live) as driver:
        stream = driver.stream(differ, cursor=("timestamp", "uuid"), batch_size=1_000)
        with pytest.raises(ValidationError, match="not unique"):
            async for _page in stream:
                pass


async def test_a_cursor_that_is_not_unique_is_refused_not_skipped(live: DriverSettings) -> None:
    async with AsyncDriver(live) as driver:
        stream = driver.stream(
            "SELECT toStartOfHour(timestamp) AS hour, uuid FROM events", cursor="hour"
        )
        with pytest.raises(ValidationError, match=r"not unique.*cursor=\('timestamp', 'uuid'\)"):
            async for _page in stream:
                pass  # pragma: no cover - refused before the first page is given


async def test_a_cursor_column_the_query_does_not_select_is_explained(
    live: DriverSettings,
) -> None:
    async with AsyncDriver(live) as driver:
        with pytest.raises(ValidationError, match="Select the cursor columns"):
            async for _page in driver.stream("SELECT event FROM events", cursor="uuid"):
                pass  # pragma: no cover


async def test_a_null_key_is_refused(live: DriverSettings) -> None:
    async with AsyncDriver(live) as driver:
        stream = driver.stream(
            "SELECT toString(properties.$no_such_property) AS missing, uuid FROM events "
            "WHERE properties.$no_such_property IS NULL",
            cursor=("missing", "uuid"),
        )
        with pytest.raises(ValidationError, match="NULL"):
            async for _page in stream:
                pass  # pragma: no cover


@pytest.mark.parametrize(
    ("query", "options", "match"),
    [
        ("SELECT uuid FROM events LIMIT 10", {"cursor": "uuid"}, "must not have its own LIMIT"),
        ("SELECT uuid FROM events LIMIT 10 OFFSET 5", {"cursor": "uuid"}, "LIMIT"),
        ("SELECT uuid FROM events", {"cursor": "uuid", "batch_size": 50_001}, "50,000"),
        ("SELECT uuid FROM events", {"cursor": "uuid", "batch_size": 0}, "between 1"),
        ("SELECT uuid FROM events", {"cursor": "properties.$browser"}, "alias"),
        ("SELECT uuid FROM events", {"cursor": ()}, "cursor must name"),
        ("SELECT uuid FROM events", {"cursor": ("uuid", "uuid")}, "twice"),
        ("", {"cursor": "uuid"}, "needs a HogQL SELECT"),
    ],
)
async def test_a_query_of_the_wrong_shape_is_refused_before_anything_is_sent(
    live: DriverSettings, query: str, options: dict[str, Any], match: str
) -> None:
    async with AsyncDriver(live) as driver:
        with pytest.raises(ValidationError, match=match):
            driver.stream(query, **options)


async def test_limit_inside_a_string_or_subquery_is_not_mistaken_for_the_querys(
    live: DriverSettings,
) -> None:
    async with AsyncDriver(live) as driver:
        stream = driver.stream(
            "SELECT uuid, 'LIMIT 5' AS note FROM events "
            "WHERE uuid IN (SELECT uuid FROM events ORDER BY timestamp LIMIT 10) -- LIMIT 1",
            cursor="uuid",
        )
        rows = [row async for row in stream.rows()]
    assert len(rows) == 10


async def test_a_stream_is_read_once(live: DriverSettings) -> None:
    async with AsyncDriver(live) as driver:
        stream = driver.stream("SELECT uuid FROM events WHERE event = 'none'", cursor="uuid")
        assert [page async for page in stream] == []
        with pytest.raises(Exception, match="read once"):
            stream.__aiter__()


# ---- the exact requests (respx) ----------------------------------------------------------------


def _settings() -> DriverSettings:
    return DriverSettings(
        api_key=FAKE_KEY, project_id=PROJECT, host=HOST, retry_base_delay=0, retry_max_delay=0
    )


@pytest.fixture
def mock() -> Iterator[Any]:
    with respx2.mock(assert_all_called=False) as router:
        router.delete(url__regex=rf"{QUERY_URL}\w+/$").respond(200, json={"message": "ok"})
        yield router


def _answer(rows: list[list[Any]]) -> dict[str, Any]:
    return hogql_response(["timestamp", "uuid"], ["DateTime64(6, 'UTC')", "UUID"], rows)


async def test_the_last_key_is_bound_as_values_and_breaking_out_stops(mock: Any) -> None:
    bodies: list[dict[str, Any]] = []
    pages = [
        _answer([["2026-01-01T00:00:00Z", "a"], ["2026-01-01T00:00:01.5Z", "b"]]),
        _answer([["2026-01-01T00:00:02Z", "c"], ["2026-01-01T00:00:03Z", "d"]]),
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=pages[len(bodies) - 1])

    mock.post(QUERY_URL).mock(side_effect=answer)
    async with AsyncDriver(_settings()) as driver:
        stream: RowStream = driver.stream(
            "SELECT timestamp, uuid FROM events WHERE event = {e}",
            {"e": "x"},
            cursor=("timestamp", "uuid"),
            batch_size=2,
        )
        async for _page in stream:
            if stream.pages == 2:
                break
    assert len(bodies) == 2  # nothing after the loop was left
    first, second = (body["query"] for body in bodies)
    assert first["values"] == {"e": "x"}
    assert "WHERE" not in first["query"].split(")")[-1]
    assert first["query"].endswith("ORDER BY `timestamp`, `uuid`\nLIMIT 2")
    assert second["values"] == {"e": "x", "stream_after_0": "2026-01-01T00:00:01.5Z",
                                "stream_after_1": "b"}  # fmt: skip
    assert "toDateTime({stream_after_0})" in second["query"]
    assert "`uuid` >= toUUID({stream_after_1})" in second["query"]
    assert "2026-01-01" not in second["query"]  # keys are values, never text
    assert all("OFFSET" not in body["query"]["query"].upper() for body in bodies)


async def test_cancelling_the_reader_cancels_the_page_at_posthog(mock: Any) -> None:
    sent = anyio.Event()
    ids: list[str] = []

    async def hang(request: httpx.Request) -> httpx.Response:
        ids.append(json.loads(request.content)["client_query_id"])
        sent.set()
        await anyio.sleep(30)
        return httpx.Response(200, json=_answer([]))  # pragma: no cover - cancelled first

    async def read(driver: AsyncDriver) -> None:
        async for _page in driver.stream("SELECT timestamp, uuid FROM events", cursor="uuid"):
            pass  # pragma: no cover

    mock.post(QUERY_URL).mock(side_effect=hang)
    async with AsyncDriver(_settings()) as driver, anyio.create_task_group() as group:
        group.start_soon(read, driver)
        await sent.wait()
        group.cancel_scope.cancel()
    deletes = [c.request.url.path for c in mock.calls if c.request.method == "DELETE"]
    assert deletes == [f"/api/projects/{PROJECT}/query/{ids[0]}/"]


async def test_values_may_not_take_the_streams_own_names(mock: Any) -> None:
    async with AsyncDriver(_settings()) as driver:
        with pytest.raises(ValidationError, match="stream_after_N"):
            driver.stream("SELECT uuid FROM events", {"stream_after_0": 1}, cursor="uuid")


@pytest.mark.parametrize(
    "query",
    [
        "SELECT uuid, timestamp FROM events # don't page\nLIMIT 10",
        "SELECT uuid, timestamp FROM events // customer's events\nLIMIT 10",
        "SELECT uuid, timestamp FROM events -- it's\nOFFSET 5",
    ],
)
async def test_a_limit_after_a_comment_with_a_quote_is_still_seen(
    live: DriverSettings, query: str
) -> None:
    # found by review: HogQL's # and // comments hid the LIMIT, and the stream returned 10 rows
    async with AsyncDriver(live) as driver:
        with pytest.raises(ValidationError, match="must not have its own"):
            driver.stream(query, cursor=("timestamp", "uuid"))


async def test_limit_and_offset_as_names_are_not_keywords(live: DriverSettings) -> None:
    async with AsyncDriver(live) as driver:
        stream = driver.stream(
            "SELECT uuid, timestamp, properties.limit AS offset, properties.$offset AS o "
            "FROM events WHERE event = '$pageleave' // LIMIT 5 in a comment",
            cursor=("timestamp", "uuid"),
        )
        rows = [row async for row in stream.rows()]
    assert rows
    assert set(rows[0]) == {"uuid", "timestamp", "offset", "o"}


async def test_the_querys_own_errors_stay_query_errors(live: DriverSettings) -> None:
    # found by review: "function" contains "i", and the error was blamed on the cursor `i`
    async with AsyncDriver(live) as driver:
        stream = driver.stream(
            "SELECT noSuchFunction(timestamp) AS i, uuid FROM events", cursor=("i", "uuid")
        )
        with pytest.raises(QueryError) as caught:
            async for _page in stream:
                pass  # pragma: no cover
    assert caught.value.__cause__ is not caught.value
