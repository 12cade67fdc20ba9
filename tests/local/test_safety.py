"""Every refused query class gets PostHog's 400 and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

REFUSED = [
    "INSERT INTO events SELECT * FROM events",
    "ALTER TABLE events DELETE WHERE 1",
    "DROP TABLE events",
    "CREATE TABLE x (a Int8) ENGINE = Memory",
    "TRUNCATE TABLE events",
    "SELECT * FROM file('/etc/passwd')",
    "SELECT file('/etc/hostname')",
    "SELECT * FROM url('http://127.0.0.1:1/', CSV)",
    "SELECT * FROM s3('http://x/y.csv')",
    "SELECT * FROM remote('127.0.0.1', system.one)",
    "SELECT * FROM python(x)",
    "SELECT * FROM numbers(10) SETTINGS max_threads = 1",
    "SELECT name FROM system.tables",
    "SELECT * FROM system.processes",
    "SELECT * FROM default.events",
    "SELECT 1 SETTINGS readonly = 0",
    "SET readonly = 0",
    "SELECT 1 INTO OUTFILE 'out.csv'",
    "SELECT 1 FORMAT JSON",
    "SELECT 1; DROP TABLE events",
    "SELECT 1; SELECT 2",
    "SELECT getSetting('readonly')",
    "SELECT sleep(3)",
    "SELECT 1 /* */; DROP TABLE events",
    "KILL QUERY WHERE 1",
    "SELECT {x:String}",
]


@pytest.mark.parametrize("query", REFUSED)
@pytest.mark.asyncio(loop_scope="session")
async def test_refused_query_is_a_400_and_changes_nothing(
    client: httpx.AsyncClient, hogql: Any, query: str
) -> None:
    response = await hogql(query)
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert body["attr"] is None
    assert "Traceback" not in body["detail"]
    assert "/usr/" not in body["detail"]
    count = await hogql("SELECT count() FROM events")
    assert count.json()["results"] == [[20_000]]


@pytest.mark.asyncio(loop_scope="session")
async def test_comment_cannot_smuggle_a_statement(client: httpx.AsyncClient, hogql: Any) -> None:
    response = await hogql("SELECT 1 AS one -- ; DROP TABLE events\n")
    assert response.status_code == 200
    assert "DROP" not in response.json()["hogql"]
