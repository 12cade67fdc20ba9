"""Placeholders, filled in before printing as PostHog's ``replace_placeholders`` and
``replace_filters`` fill them.

- ``{name}``: from the request's ``values``, as a constant (so bound as a typed parameter);
- ``{variables.x}``: from the request's ``variables`` (by ``code_name``) or ``values``;
- ``{filters}``: the request's property filters and date range over the SELECT's table;
- ``{filters.dateRange.from}`` / ``.to``: the range's ends (a comparison with an open end
  becomes ``true = true``);
- ``{filters(expr AS timestamp, expr AS 'key')}``: the filters applied to the expressions bound
  to their keys, for tables ``{filters}`` does not know;
- ``{filters.interval}`` / ``{filters.interval('week')}``: the request's interval, or a default;
- ``{filters.breakdown(expr AS 'key', ...)}``: the expression bound to the breakdown's key.

Anything else (Hog code such as ``{variables.x ? a : b}``) is refused: there is no HogVM here.
"""

from __future__ import annotations

import datetime as dt
import difflib
from typing import Any

from ..params import ParameterError, parameter
from ._dates import date_bounds
from ._errors import HogQLError
from ._filters import (
    and_,
    compare,
    const,
    date_conditions,
    datetime_node,
    filters_expr,
    operator_expr,
)

__all__ = ["Placeholders"]

Node = dict[str, Any]

_INTERVALS = frozenset({"second", "minute", "hour", "day", "week", "month", "quarter", "year"})
_UNBINDABLE = {
    "cohort": "Cohort filters can't be applied through {filters(...)} bindings",
    "hogql": "SQL expression filters can't be applied through {filters(...)} bindings",
    "element": "Element filters match autocaptured elements and can't be applied through "
    "{filters(...)} bindings",
    "recording": "Session recording filters can't be applied through {filters(...)} bindings",
}
_SUPPORTED = (
    "`{filters}`, `{filters(expr AS timestamp, ...)}`, `{filters.dateRange.from}`, "
    "`{filters.dateRange.to}`, `{filters.interval}`, `{filters.breakdown(expr AS 'key', ...)}`"
)


class Placeholders:
    """Fills the placeholders of one query's tree."""

    def __init__(self, values: Any, filters: Any, variables: Any, now: dt.datetime | None) -> None:
        if values is not None and not isinstance(values, dict):
            raise HogQLError("`values` must be an object of placeholder names to values.")
        self.values = values or {}
        self.filters = filters if isinstance(filters, dict) else {}
        self.variables = variables if isinstance(variables, dict) else {}
        self.now = now or dt.datetime.now(dt.UTC)
        self.tables: list[str | None] = []
        self.start, self.end = date_bounds(self.filters.get("dateRange"), self.now)

    def fill(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.fill(item) for item in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("node")
        if kind == "Placeholder":
            return {**self._value(node), **{k: node[k] for k in ("start", "end") if k in node}}
        if kind == "CompareOperation" and self._open_end(node):
            return compare("==", const(True), const(True))
        if kind == "SelectQuery":
            self.tables.append(_first_table(node))
            try:
                return {key: self.fill(value) for key, value in node.items()}
            finally:
                self.tables.pop()
        return {key: self.fill(value) for key, value in node.items()}

    def _open_end(self, node: Node) -> bool:
        """A comparison with ``{filters.dateRange.from|to}`` whose end of the range is open."""
        for side in (node.get("left"), node.get("right")):
            chain = _chain(side)
            ends = (["filters", "dateRange", "from"], ["filters", "dateRange", "to"])
            if chain in ends and self._range_end(chain[2]) is None:
                return True
        return False

    def _range_end(self, which: str) -> Node | None:
        bound = self.start if which == "from" else self.end
        return datetime_node(bound.moment) if bound is not None else None

    def _value(self, node: Node) -> Node:
        expr = node.get("expr") or {}
        chain = _chain(node)
        if expr.get("node") == "Call" and expr.get("name") == "filters":
            return self._bound_filters(expr)
        if expr.get("node") == "ExprCall" and _chain({"node": "Placeholder", "expr": expr["expr"]}):
            return self._filters_call(expr, node)
        if chain is None:
            raise HogQLError.at(
                node,
                "This placeholder holds a Hog expression, which the local server does not "
                "evaluate; pass the value in `values` and write {name}.",
            )
        if chain == ["filters"]:
            table = self.tables[-1] if self.tables else None
            return filters_expr(self.filters, table, self.now)
        if chain[0] == "filters":
            return self._filters_field(chain, node)
        if chain[0] == "variables" and len(chain) == 2:
            return const(self._variable(chain[1], node))
        return self._named_value(".".join(chain), node)

    def _filters_field(self, chain: list[str], node: Node) -> Node:
        name = ".".join(chain)
        if chain[1:] in (["dateRange", "from"], ["dateRange", "to"]):
            value = self._range_end(chain[2])
            if value is None:
                raise HogQLError.at(
                    node,
                    f"The `{{{name}}}` placeholder must be used directly in a comparison (e.g. "
                    f"`timestamp > {{{name}}}`), not nested inside a function call, when the "
                    "date range is not set.",
                )
            return value
        if chain[1:] == ["interval"]:
            return const(self._interval(None, node))
        if chain[1:] == ["breakdown"]:
            raise HogQLError.at(
                node,
                "{filters.breakdown} needs column bindings: "
                "{filters.breakdown(properties.plan AS 'plan')}",
            )
        raise HogQLError.at(
            node, f"Unsupported filters placeholder `{{{name}}}`. Supported: {_SUPPORTED}."
        )

    def _filters_call(self, expr: Node, node: Node) -> Node:
        """``{filters.interval('week')}`` and ``{filters.breakdown(expr AS 'key', ...)}``."""
        chain = [str(part) for part in expr["expr"]["chain"]]
        args: list[Node] = list(expr.get("args") or [])
        if chain == ["filters", "interval"]:
            if len(args) > 1:
                raise HogQLError.at(node, "{filters.interval(...)} takes at most one argument")
            default = args[0] if args else None
            if default is not None and not (
                default.get("node") == "Constant" and default.get("value") in _INTERVALS
            ):
                raise HogQLError.at(
                    node,
                    "The default of {filters.interval(...)} must be a constant string, one of "
                    + ", ".join(f"'{unit}'" for unit in sorted(_INTERVALS)),
                )
            return const(self._interval(default["value"] if default else None, node))
        if chain == ["filters", "breakdown"]:
            return self._breakdown(_bindings(args, node, "breakdown key"), node)
        raise HogQLError.at(
            node,
            f"Unsupported filters placeholder `{{{'.'.join(chain)}(...)}}`. "
            f"Supported: {_SUPPORTED}.",
        )

    def _interval(self, default: str | None, node: Node) -> str:
        chosen = self.filters.get("interval") or default or "day"
        if chosen not in _INTERVALS:
            raise HogQLError.at(node, f"Unsupported interval {chosen!r} in the request's filters.")
        return str(chosen)

    def _breakdown(self, bindings: dict[str, Node], node: Node) -> Node:
        found = self.filters.get("breakdownFilter")
        if not isinstance(found, dict):
            return const(None)
        entries = found.get("breakdowns")
        if isinstance(entries, list) and entries:
            if len(entries) > 1:
                raise HogQLError.at(
                    node, "{filters.breakdown(...)} supports a single breakdown, not several."
                )
            entry = entries[0] if isinstance(entries[0], dict) else {}
            key, kind = entry.get("property"), entry.get("type")
            binned = entry.get("histogram_bin_count") is not None
        else:
            key, kind = found.get("breakdown"), found.get("breakdown_type")
            binned = found.get("breakdown_histogram_bin_count") is not None
        if key is None:
            return const(None)
        if kind == "cohort":
            raise HogQLError.at(node, "Cohort breakdowns can't be applied through bindings.")
        if binned:
            raise HogQLError.at(
                node, "Numeric binning isn't supported by {filters.breakdown(...)}."
            )
        if str(key) not in bindings:
            raise HogQLError.at(
                node, f"The breakdown on '{key}' has no binding in {{filters.breakdown(...)}}"
            )
        return bindings[str(key)]

    def _bound_filters(self, expr: Node) -> Node:
        """``{filters(expr AS timestamp, expr AS 'key')}``: filters on the bound expressions."""
        bindings = _bindings(list(expr.get("args") or []), expr, "filter key")
        parts: list[Node] = []
        if self.start is not None or self.end is not None:
            if "timestamp" not in bindings:
                raise HogQLError.at(
                    expr,
                    "A date filter is set, but {filters(...)} has no timestamp binding; add "
                    "e.g. `created_at AS timestamp`, or `null AS timestamp` to ignore it.",
                )
            if not _is_null(bindings["timestamp"]):
                parts.extend(
                    date_conditions(bindings["timestamp"], self.filters.get("dateRange"), self.now)
                )
        for prop in self.filters.get("properties") or []:
            if not isinstance(prop, dict):
                continue
            kind = str(prop.get("type") or "event")
            if kind in _UNBINDABLE:
                raise HogQLError.at(expr, _UNBINDABLE[kind])
            key = str(prop.get("key"))
            if key not in bindings:
                raise HogQLError.at(
                    expr, f"The property filter on '{key}' has no binding in {{filters(...)}}"
                )
            if _is_null(bindings[key]):
                continue
            value = prop.get("value")
            if kind == "event_metadata" and isinstance(value, list):
                value = [str(v) for v in value]
            parts.append(operator_expr(bindings[key], str(prop.get("operator") or "exact"), value))
        return and_(*parts) if parts else const(True)

    def _named_value(self, name: str, node: Node) -> Node:
        if "." not in name and name in self.values:
            value = self.values[name]
            if value is not None:
                try:
                    parameter(value)
                except ParameterError as exc:
                    raise HogQLError.at(
                        node, f"Unsupported value for placeholder {{{name}}}: {exc}."
                    ) from None
            return const(value)
        available = ", ".join(sorted(self.values)) or "none"
        raise HogQLError.at(
            node,
            f"Placeholder {{{name}}} is not available in this context. You can use the "
            f"following: {available}",
        )

    def _variable(self, code_name: str, node: Node) -> Any:
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


def _bindings(args: list[Node], node: Node, what: str) -> dict[str, Node]:
    """``expr AS key`` arguments by key; every argument must be one, each key once."""
    if not args or any(arg.get("node") != "Alias" for arg in args):
        raise HogQLError.at(
            node,
            f"Each argument must bind an expression to a {what} with AS, e.g. "
            "`created_at AS timestamp` or `properties.plan AS 'plan'`.",
        )
    bound: dict[str, Node] = {}
    for arg in args:
        key = str(arg["alias"])
        if key in bound:
            raise HogQLError.at(arg, f"Filter key '{key}' is bound more than once")
        bound[key] = arg["expr"]
    return bound


def _is_null(node: Node) -> bool:
    return node.get("node") == "Constant" and node.get("value") is None


def _chain(node: Any) -> list[str] | None:
    if not isinstance(node, dict) or node.get("node") != "Placeholder":
        return None
    expr = node.get("expr") or {}
    if expr.get("node") != "Field":
        return None
    return [str(part) for part in expr["chain"]]


def _first_table(select: Node) -> str | None:
    source = select.get("select_from")
    table = source.get("table") if isinstance(source, dict) else None
    if isinstance(table, dict) and table.get("node") == "Field":
        return ".".join(str(part) for part in table["chain"])
    return None
