"""Streaming a whole events table returns every row exactly once: against the server's own
count, distinct keys and timestamp sum per day. Short form: the session's 20,000 events;
`nox -s soak`: 1,000,000 (the issue's figure), in 50,000-row pages."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from posthog_driver import AsyncDriver, DriverSettings

PER_DAY = (
    "SELECT toString(toDate(timestamp)) AS day, count() AS n, uniqExact(uuid) AS keys, "
    "sum(toUnixTimestamp(timestamp)) AS seconds FROM events GROUP BY day LIMIT 10000"
)


@pytest.fixture
def events_server(soak: bool, local_server: Any) -> Iterator[Any]:
    if not soak:
        yield local_server
        return
    from posthog_local import LocalServer, ServerOptions  # noqa: PLC0415

    with LocalServer(ServerOptions(events=1_000_000, seed=11)) as server:
        yield server


async def test_every_row_of_the_events_table_comes_back_once(
    events_server: Any, soak: bool
) -> None:
    settings = DriverSettings(
        host=events_server.url,
        api_key=events_server.api_key,
        project_id=events_server.project_id,
        call_timeout=600,
    )
    count: Counter[str] = Counter()
    keys: dict[str, set[str]] = {}
    seconds: Counter[str] = Counter()
    async with AsyncDriver(settings) as driver:
        expected = {row["day"]: row for row in await driver.query(PER_DAY)}
        stream = driver.stream(
            "SELECT uuid, timestamp FROM events",
            cursor=("timestamp", "uuid"),
            batch_size=50_000 if soak else 1_999,
        )
        async for page in stream:
            for uuid, timestamp in page.rows:
                when = dt.datetime.fromisoformat(timestamp)
                day = when.date().isoformat()
                count[day] += 1
                keys.setdefault(day, set()).add(uuid)
                seconds[day] += int(when.timestamp())
    assert sum(count.values()) == sum(row["n"] for row in expected.values())
    assert set(count) == set(expected)
    for day, row in expected.items():
        assert (count[day], len(keys[day]), seconds[day]) == (row["n"], row["keys"], row["seconds"])
