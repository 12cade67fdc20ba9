# ruff: noqa: S608  (SQL here is built from our own names and constants, never from a client)
"""Loading the demo data into the engine, inside the engine process, before any query runs.

The generator's coded frames are staged through chdb's ``Python()`` table function, spelled out
by ``seed_sql`` into the HogQL tables, then dropped. What the definitions endpoints need (events
with first/last seen, and which properties each event uses) is computed once here.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..catalog import EVENT_PROPERTIES, SYSTEM_TABLES, TABLES
from ..data import DemoData
from ..seed_sql import build_statements, insert_rows, system_rows
from ._settings import DATABASE

__all__ = ["load_demo_data"]


def load_demo_data(admin: Any, data: DemoData) -> dict[str, Any]:
    """Create and fill the tables with the admin session; return counts and definition rows."""
    started = time.perf_counter()
    # PostHog's stored JSON has plain slashes; JSONExtractRaw would otherwise return `https:\/\/`
    admin.query("SET output_format_json_escape_forward_slashes = 0")
    admin.query(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    for table in TABLES.values():
        admin.query(table.ddl(DATABASE))
    _stage(admin, data)
    for statement in build_statements(DATABASE):
        admin.query(statement)
    for name in ("stage_events", "stage_persons", "stage_sessions"):
        admin.query(f"DROP TABLE {DATABASE}.{name}")
    counts = _row_counts(admin)
    for table in SYSTEM_TABLES:
        rows = system_rows(table.name, counts, data.now)
        columns = [c.name for c in table.columns]
        admin.query(insert_rows(DATABASE, table.stored_name, columns, rows))
    counts = _row_counts(admin)
    events_sql, pairs_sql = _definition_queries()
    return {
        "counts": counts,
        "load_seconds": time.perf_counter() - started,
        "event_rows": _rows(admin, events_sql),
        "pair_rows": _rows(admin, pairs_sql),
        "now": data.now.isoformat(),
    }


def _stage(admin: Any, data: DemoData) -> None:
    # chdb's Python() table function finds the DataFrame by its variable name, `frame`
    for name, frame in (  # noqa: B007
        ("stage_events", data.events),
        ("stage_persons", data.persons),
        ("stage_sessions", data.sessions),
    ):
        admin.query(
            f"CREATE TABLE {DATABASE}.{name} ENGINE = Memory AS SELECT * FROM Python(frame)"
        )


def _row_counts(admin: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in TABLES.values():
        raw = admin.query(f"SELECT count() FROM {DATABASE}.{table.stored_name}")
        counts[table.name] = int(str(raw).strip() or 0)
    extra = admin.query(
        f"SELECT countIf(JSONExtractString(properties, 'plan') NOT IN ('free', '')), "
        f"countIf(is_identified = false) FROM {DATABASE}.persons FORMAT CSV"
    )
    paying, anonymous = (int(x) for x in str(extra).strip().split(","))
    counts["_paying"], counts["_anonymous"] = paying, anonymous
    return counts


def _rows(admin: Any, sql: str) -> list[list[Any]]:
    raw = admin.query(sql, "JSONCompact")
    return list(json.loads(raw.bytes())["data"])


def _definition_queries() -> tuple[str, str]:
    """Events with first/last seen and volume; (event, property) pairs seen together."""
    events = (
        f"SELECT event, toString(min(timestamp)), toString(max(timestamp)), count() "
        f"FROM {DATABASE}.events GROUP BY event"
    )
    # typed JSON paths exist on every row (NULL when unset), so presence is counted per path
    checks = ", ".join(
        f"tuple('{name}', countIf(JSONHas(properties, '{name}')))" for name in EVENT_PROPERTIES
    )
    pairs = (
        f"SELECT event, pair.1 FROM (SELECT event, [{checks}] AS found FROM {DATABASE}.events "
        f"GROUP BY event) ARRAY JOIN found AS pair WHERE pair.2 > 0"
    )
    return events, pairs
