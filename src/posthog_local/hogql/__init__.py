"""HogQL in, ClickHouse SQL out, as PostHog does it: its grammar, then a printer of known nodes.

``compile_query`` parses with PostHog's own parser (``hogql-parser``), fills in placeholders
(``values``, ``{filters}``, ``{variables.x}``), refuses OFFSET as PostHog does for personal
API keys, applies PostHog's limits (100 by default with one more row for ``hasMore``, at most
50,000), prints engine SQL from the tree (wall 1) and hands it to the lexical guard. Only
printed SQL reaches the engine; the query text never does.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from typing import Any

from ..guard import UnsafeSQLError, check_engine_sql
from ..params import ParameterError, parameter
from ._errors import HogQLError
from ._filters import compare, const, datetime_node, filters_expr, parse_date
from ._parse import parse_expr, parse_select
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
    tree = _Placeholders(values, filters, variables, now).fill(tree)
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
    if limit.get("node") == "Constant" and isinstance(limit.get("value"), int):
        select["limit"] = {**limit, "value": min(int(limit["value"]), MAX_LIMIT)}
    else:
        select["limit"] = {"node": "Call", "name": "min2", "args": [const(MAX_LIMIT), limit]}


class _Placeholders:
    """``{name}`` from values, ``{filters}``, ``{filters.dateRange.from|to}``, ``{variables.x}``."""

    def __init__(self, values: Any, filters: Any, variables: Any, now: dt.datetime | None) -> None:
        if values is not None and not isinstance(values, dict):
            raise HogQLError("`values` must be an object of placeholder names to values.")
        self.values = values or {}
        self.filters = filters
        self.variables = variables if isinstance(variables, dict) else {}
        self.now = now or dt.datetime.now(dt.UTC)
        self.tables: list[str | None] = []

    def fill(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.fill(item) for item in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("node")
        if kind == "Placeholder":
            return self._value(node)
        if kind == "CompareOperation" and self._missing_bound(node):
            return compare("==", const(True), const(True))
        if kind == "SelectQuery":
            self.tables.append(_first_table(node))
            try:
                return {key: self.fill(value) for key, value in node.items()}
            finally:
                self.tables.pop()
        return {key: self.fill(value) for key, value in node.items()}

    def _missing_bound(self, node: dict[str, Any]) -> bool:
        for side in (node.get("left"), node.get("right")):
            chain = _placeholder_chain(side)
            if chain and chain[:2] == ["filters", "dateRange"] and self._bound(chain) is None:
                return True
        return False

    def _bound(self, chain: list[str]) -> str | None:
        if len(chain) != 3 or chain[2] not in ("from", "to"):
            return None
        filters = self.filters if isinstance(self.filters, dict) else {}
        date_range = filters.get("dateRange") or {}
        value = date_range.get("date_from" if chain[2] == "from" else "date_to")
        return None if value in (None, "", "all") else str(value)

    def _value(self, node: dict[str, Any]) -> dict[str, Any]:
        chain = _placeholder_chain(node)
        span: dict[str, Any] = {k: node[k] for k in ("start", "end") if k in node}
        if chain is None:
            raise HogQLError.at(
                node,
                "This placeholder holds a Hog expression, which the local server does not "
                "evaluate; pass the value in `values` and write {name}.",
            )
        if chain == ["filters"]:
            table = self.tables[-1] if self.tables else None
            return {**filters_expr(self.filters, table, self.now), **span}
        if chain[0] == "filters":
            bound = self._bound(chain)
            if bound is None and chain[1:2] == ["dateRange"] and chain[2:] in (["from"], ["to"]):
                name = ".".join(chain)
                raise HogQLError.at(
                    node,
                    f"The `{{{name}}}` placeholder must be used directly in a comparison (e.g. "
                    f"`timestamp > {{{name}}}`), not nested inside a function call, when the "
                    "date range is not set.",
                )
            if bound is None:
                raise HogQLError.at(
                    node,
                    f"Unsupported filters placeholder `{{{'.'.join(chain)}}}`. Supported filters "
                    "placeholders are: `{filters}`, `{filters.dateRange.from}`, "
                    "`{filters.dateRange.to}`.",
                )
            return {**datetime_node(parse_date(bound, self.now)), **span}
        if chain[0] == "variables" and len(chain) == 2:
            return {**const(self._variable(chain[1], node)), **span}
        name = ".".join(chain)
        if len(chain) == 1 and name in self.values:
            value = self.values[name]
            if value is not None:
                try:
                    parameter(value)
                except ParameterError as exc:
                    raise HogQLError.at(
                        node, f"Unsupported value for placeholder {{{name}}}: {exc}."
                    ) from None
            return {**const(value), **span}
        available = ", ".join(sorted(self.values)) or "none"
        raise HogQLError.at(
            node,
            f"Placeholder {{{name}}} is not available in this context. You can use the "
            f"following: {available}",
        )

    def _variable(self, code_name: str, node: dict[str, Any]) -> Any:
        """From the request's ``variables`` (by ``code_name``), or from ``values["variables"]``,
        which PostHog's runner also offers to placeholders."""
        known: dict[str, Any] = {}
        for variable in self.variables.values():
            if isinstance(variable, dict) and isinstance(variable.get("code_name"), str):
                value = None if variable.get("isNull") else variable.get("value")
                known[variable["code_name"]] = value
        extra = self.values.get("variables")
        if isinstance(extra, dict):
            known = {**extra, **known}
        if code_name in known:
            return known[code_name]
        close = difflib.get_close_matches(code_name, list(known), n=1, cutoff=0.6)
        hint = f". Did you mean: {close[0]}?" if close else ""
        raise HogQLError.at(node, f"Variable {code_name} is missing from query{hint}")


def _placeholder_chain(node: Any) -> list[str] | None:
    if not isinstance(node, dict) or node.get("node") != "Placeholder":
        return None
    expr = node.get("expr") or {}
    if expr.get("node") != "Field":
        return None
    return [str(part) for part in expr["chain"]]


def _first_table(select: dict[str, Any]) -> str | None:
    source = select.get("select_from")
    table = source.get("table") if isinstance(source, dict) else None
    if isinstance(table, dict) and table.get("node") == "Field":
        return ".".join(str(part) for part in table["chain"])
    return None


def _check_expression(
    query: str, language: str, values: Any, filters: Any, variables: Any
) -> list[str]:
    """``hogQLExpr``: the expression as a column of ``SELECT ... FROM events``."""
    if language != "hogQLExpr":
        raise HogQLError(f"Unsupported language {language!r}: use hogQL or hogQLExpr.")
    tree = parse_select("SELECT 1 FROM events")
    tree["select"] = [parse_expr(query)]
    tree = _Placeholders(values, filters, variables, None).fill(tree)
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
