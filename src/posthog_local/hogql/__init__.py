"""HogQL in, ClickHouse SQL out, as PostHog does it: its grammar, then a printer of known nodes.

``compile_query`` parses with PostHog's own parser (``hogql-parser``), fills in placeholders
(``values``, ``{filters}``, ``{variables.x}``), refuses OFFSET as PostHog does for personal
API keys, applies PostHog's limits (100 by default with one more row for ``hasMore``, at most
50,000), prints engine SQL from the tree (wall 1) and hands it to the lexical guard. Only
printed SQL reaches the engine; the query text never does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..guard import UnsafeSQLError, check_engine_sql
from ._errors import HogQLError
from ._filters import const
from ._parse import parse_expr, parse_select
from ._placeholders import Placeholders
from ._printer import DATABASE, Printer
from ._scope import Output, Scope
from ._text import text

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "OFFSET_MESSAGE",
    "CompiledQuery",
    "HogQLError",
    "compile_query",
    "metadata",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 50_000
MAX_SQL_CHARS = 1_000_000
OFFSET_MESSAGE = (
    "OFFSET is not supported on queries made with a personal API key. For pagination, use keyset "
    "pagination on the `timestamp` column, e.g. `WHERE timestamp > :last_seen_timestamp ORDER BY "
    "timestamp LIMIT N`. For bulk data extraction, use batch exports: "
    "https://posthog.com/docs/cdp/batch-exports"
)


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """Engine SQL and its parameters; ``limit`` is set when PostHog's paginator applies."""

    sql: str
    params: dict[str, str]
    hogql: str
    limit: int | None
    tables: list[str]
    columns: list[str]
    """PostHog's column names (repeats included), from the outermost select list."""


def compile_query(
    query: str,
    values: dict[str, Any] | None = None,
    *,
    filters: Any = None,
    variables: Any = None,
    database: str = DATABASE,
    now: dt.datetime | None = None,
) -> CompiledQuery:
    """Compile HogQL to engine SQL; ``HogQLError`` (PostHog's 400) for anything refused."""
    tree = parse_select(query)
    if tree.get("node") not in ("SelectQuery", "SelectSetQuery"):
        raise HogQLError.at(tree, "The query must be a SELECT (or a UNION of them).")
    tree = Placeholders(values, filters, variables, now).fill(tree)
    _refuse_offsets(tree)
    limit = _apply_limits(tree)
    output = Output()
    printer = Printer(output, database)
    sql, _ = printer.select(tree, None)
    try:
        check_engine_sql(sql, output.words, output.params)
    except UnsafeSQLError as exc:
        raise HogQLError(
            f"The query cannot be run safely: its SQL would contain {exc.reason}."
        ) from None
    if len(sql) > MAX_SQL_CHARS:  # CTEs read twice by the next, and so on, grow exponentially
        raise HogQLError(
            f"The query expands to {len(sql):,} characters of SQL, over the local server's limit "
            f"of {MAX_SQL_CHARS:,}; read each CTE fewer times."
        )
    outermost = tree if tree["node"] == "SelectQuery" else tree["initial_select_query"]
    columns = printer.names.get(id(outermost.get("select")), [])
    return CompiledQuery(sql, output.params, text(tree), limit, output.tables, columns)


def _refuse_offsets(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("node") == "SelectQuery" and node.get("offset") is not None:
            raise HogQLError.at(node["offset"], OFFSET_MESSAGE)
        if node.get("node") == "LimitByExpr" and node.get("offset_value") is not None:
            raise HogQLError.at(node, OFFSET_MESSAGE)
        for value in node.values():
            _refuse_offsets(value)
    elif isinstance(node, list):
        for value in node:
            _refuse_offsets(value)


def _apply_limits(tree: dict[str, Any]) -> int | None:
    """PostHog's paginator (limit + 1, for ``hasMore``) or each union member's default; the cap."""
    if tree["node"] == "SelectQuery":
        if tree.get("limit") is None:
            tree["limit"] = const(DEFAULT_LIMIT + 1)
            return DEFAULT_LIMIT
        _cap(tree)
        return None
    members = [tree["initial_select_query"]] + [
        item["select_query"] for item in tree.get("subsequent_select_queries") or []
    ]
    for member in members:
        if member["node"] == "SelectQuery":
            if member.get("limit") is None:
                member["limit"] = const(DEFAULT_LIMIT)
            _cap(member)
    return None


def _cap(select: dict[str, Any]) -> None:
    limit = select["limit"]
    if select.get("limit_percent"):
        return  # as PostHog: a percentage is not capped (the engine's row limit still holds)
    if limit.get("node") == "Constant" and isinstance(limit.get("value"), int):
        select["limit"] = {**limit, "value": min(int(limit["value"]), MAX_LIMIT)}
    else:
        select["limit"] = {"node": "Call", "name": "min2", "args": [const(MAX_LIMIT), limit]}


def _check_expression(
    query: str, language: str, values: Any, filters: Any, variables: Any
) -> list[str]:
    """``hogQLExpr``: the expression as a column of ``SELECT ... FROM events``."""
    if language != "hogQLExpr":
        raise HogQLError(f"Unsupported language {language!r}: use hogQL or hogQLExpr.")
    tree = parse_select("SELECT 1 FROM events")
    tree["select"] = [parse_expr(query)]
    tree = Placeholders(values, filters, variables, None).fill(tree)
    output = Output()
    Printer(output).select(tree, Scope())
    return output.tables


def metadata(
    query: str,
    language: str = "hogQL",
    *,
    values: dict[str, Any] | None = None,
    filters: Any = None,
    variables: Any = None,
) -> dict[str, Any]:
    """PostHog's ``HogQLMetadataResponse``: is the query valid, and where are its errors."""
    errors: list[dict[str, Any]] = []
    tables: list[str] = []
    notices: list[dict[str, Any]] = []
    try:
        if language == "hogQL":
            compiled = compile_query(query, values, filters=filters, variables=variables)
            tables = compiled.tables
        else:
            tables = _check_expression(query, language, values, filters, variables)
    except HogQLError as exc:
        start = exc.start if exc.start is not None else 0
        end = exc.end if exc.end is not None else len(query)
        errors.append({"message": exc.detail, "start": start, "end": end, "fix": None})
    return {
        "isValid": not errors,
        "query": query,
        "errors": errors,
        "warnings": [],
        "notices": notices,
        "table_names": tables,
    }
