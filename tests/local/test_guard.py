"""The final lexical guard on engine SQL, on its own and behind the HTTP API.

The heredoc bypass: ClickHouse reads `$tag$ ... $tag$` as a string wherever a bare word may stand,
so a `$a$` printed raw in a unit, interval, collation or type position can end inside one of the
query's own string literals and turn the rest of that literal into live SQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from posthog_local.guard import UnsafeSQLError, check_engine_sql, lex

WORDS = frozenset({"select", "from", "where", "as", "and", "count", "in", "string", "extract"})


def check(sql: str, params: tuple[str, ...] = ()) -> None:
    check_engine_sql(sql, WORDS, params)


# -- the guard alone: hand-written engine SQL, no compiler in front of it ----------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT extract($a$ FROM \"t\"), 'x$a$, 1) FROM file(''/etc/passwd'') --'",
        'SELECT count() FROM "db"."events" WHERE $$ a $$',
        "SELECT $a$",
        "SELECT count$a$",
        'SELECT "a" COLLATE $x$ FROM "t"',
    ],
)
def test_a_dollar_outside_quotes_is_refused(sql: str) -> None:
    with pytest.raises(UnsafeSQLError, match=r"\$"):
        check(sql)


def test_a_dollar_inside_strings_and_identifiers_is_data() -> None:
    check("SELECT '$a$' AS \"$b$\" FROM `$c$`")


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT 1; SELECT 2", "second statement"),
        ("SELECT 1 -- hidden", "comment"),
        ("SELECT 1 /* x */", "comment"),
        ("SELECT 1 # x", "comment"),
        ('INSERT INTO "t" SELECT 1', "not a SELECT"),
        ("KILL QUERY WHERE 1", "not a SELECT"),
        ("SELECT 1 INTO OUTFILE 'x'", "bare word `INTO`"),
        ("SELECT 1 SETTINGS readonly = 0", "bare word `SETTINGS`"),
        ("SELECT 1 FORMAT JSON", "bare word `FORMAT`"),
        ("SELECT file('/etc/passwd')", "bare word `file`"),
        ("SELECT 'unterminated", "unterminated"),
        ('SELECT "unterminated', "unterminated"),
        ("SELECT 'a\\'", "unterminated"),
        ("SELECT 1x", "malformed number"),
        ("SELECT 0x", "malformed number"),
        ("SELECT a\\b", "character"),
        ("SELECT é", "character"),
        ("SELECT 1 @ 2", "character"),
        ("", "empty"),
    ],
)
def test_anything_but_one_plain_select_is_refused(sql: str, reason: str) -> None:
    with pytest.raises(UnsafeSQLError, match=reason):
        check(sql)


def test_escapes_are_read_as_clickhouse_reads_them() -> None:
    # `\'` and `''` keep the string open; the `$` after them is still inside it
    tokens = lex("SELECT 'a\\'$x$''b' AS \"q\"\"$\"")
    assert [t.kind for t in tokens] == ["word", "string", "word", "identifier"]


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT {p:String}", ()),  # a name the caller did not bind
        ("SELECT {p:String", ("p",)),
        ("SELECT {p}", ("p",)),
        ("SELECT {p:Evil}", ("p",)),  # a type word nobody emitted
        ("SELECT {p:String}, {q:String}", ("p",)),
        ("SELECT }", ()),
    ],
)
def test_query_parameters_must_be_known_and_well_formed(sql: str, params: tuple[str, ...]) -> None:
    with pytest.raises(UnsafeSQLError):
        check(sql, params)


def test_a_known_parameter_with_a_known_type_passes() -> None:
    check('SELECT count() FROM "t" WHERE "e" IN {p:String}', ("p",))


# -- behind the API: each position where sqlglot printed a word raw -----------------------------

POSITIONS = [
    "SELECT extract($a$ FROM timestamp), '$a$ FROM events INTO OUTFILE ''{out}'' --' FROM events",
    "SELECT dateDiff($a$, timestamp, timestamp), '$a$' FROM events",
    "SELECT date_add($a$, 1, timestamp), '$a$' FROM events",
    "SELECT date_sub($a$, 1, timestamp), '$a$' FROM events",
    "SELECT INTERVAL 1 $a$, '$a$' FROM events",
    "SELECT event COLLATE $a$, '$a$' FROM events",
    "SELECT CAST(timestamp AS DateTime64(6, $a$)), '$a$' FROM events",
    "SELECT toDateTime64(timestamp, 6, $a$), '$a$' FROM events",
    "SELECT 1 IN system.one",
    "SELECT 1 IN (system.one)",
    "SELECT 1 NOT IN system.processes",
    "SELECT 1 GLOBAL IN system.settings",
    "SELECT globalIn(1, system.one)",
    "SELECT notIn(1, system.one)",
    "SELECT event IN events FROM events",
    "SELECT * FROM (WITH x AS (SELECT 1 AS a) SELECT a FROM x) AS y, x",
]


@pytest.mark.parametrize("query", POSITIONS)
@pytest.mark.asyncio(loop_scope="session")
async def test_every_known_bypass_position_is_a_400_with_no_effect(
    client: httpx.AsyncClient, hogql: Any, query: str, tmp_path: Path
) -> None:
    out = tmp_path / "written.txt"
    response = await hogql(query.replace("{out}", str(out)))
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "validation_error"
    assert not out.exists()
    count = await hogql("SELECT count() FROM events")
    assert count.json()["results"] == [[20_000]]
