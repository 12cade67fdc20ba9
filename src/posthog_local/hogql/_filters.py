"""PostHog's property filters and ``{filters}`` as HogQL AST nodes (never as text).

Used for the request's ``filters`` (the ``{filters}`` placeholder), for the demo's cohorts and for
its actions' steps. Values from the request become ``Constant`` nodes, so they are bound as
parameters like any constant; operators follow PostHog's ``property_to_expr``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ._errors import HogQLError

__all__ = ["and_", "call", "compare", "const", "field", "filters_expr", "or_", "property_expr"]

Node = dict[str, Any]


def const(value: Any) -> Node:
    return {"node": "Constant", "value": value}


def field(*chain: Any) -> Node:
    return {"node": "Field", "chain": list(chain)}


def compare(op: str, left: Node, right: Node) -> Node:
    return {"node": "CompareOperation", "op": op, "left": left, "right": right}


def call(name: str, *args: Node) -> Node:
    return {"node": "Call", "name": name, "args": list(args)}


def and_(*exprs: Node) -> Node:
    return (
        exprs[0]
        if len(exprs) == 1
        else {"node": "And", "exprs": list(exprs)}
        if exprs
        else const(True)
    )


def or_(*exprs: Node) -> Node:
    return (
        exprs[0]
        if len(exprs) == 1
        else {"node": "Or", "exprs": list(exprs)}
        if exprs
        else const(False)
    )


def _not(expr: Node) -> Node:
    return {"node": "Not", "expr": expr}


# -- property filters ---------------------------------------------------------------------------


def property_expr(prop: Any, scope: str = "event") -> Node:
    """One property filter (or a group of them) as a condition; ``scope`` is event or person."""
    if not isinstance(prop, dict):
        raise HogQLError("A property filter must be an object.", "invalid_property_filter")
    if "values" in prop and isinstance(prop["values"], list):  # a group: {"type": "AND", "values"}
        parts = [property_expr(p, scope) for p in prop["values"]]
        return or_(*parts) if str(prop.get("type", "AND")).upper() == "OR" else and_(*parts)
    kind = prop.get("type", "event")
    key = prop.get("key")
    if kind == "hogql":
        from ._parse import parse_expr  # noqa: PLC0415

        return parse_expr(str(key))
    if kind == "cohort":
        negated = prop.get("operator") == "not_in" or prop.get("negation")
        op = "not in cohort" if negated else "in cohort"
        return compare(op, field("person_id"), const(prop.get("value")))
    if not isinstance(key, str) or not key:
        raise HogQLError("A property filter needs a `key`.", "invalid_property_filter")
    if kind == "person":
        target = (
            field("properties", key) if scope == "person" else field("person", "properties", key)
        )
    elif kind == "event":
        target = field("properties", key)
    elif kind == "session":
        target = field(key) if scope == "session" else field("session", key)
    elif kind == "element" and key in ("tag_name", "text", "href", "selector"):
        target = field("elements_chain")
    else:
        raise HogQLError(
            f"Property filters of type {kind!r} are not supported by the local server.",
            "invalid_property_filter",
        )
    return _operator(target, str(prop.get("operator") or "exact"), prop.get("value"))


def _operator(target: Node, operator: str, value: Any) -> Node:
    values = value if isinstance(value, list) else [value]
    text = call("toString", target)
    if operator == "exact":
        if not values:
            return const(True)
        return (
            compare("==", target, const(values[0]))
            if len(values) == 1
            else compare("in", target, {"node": "Tuple", "exprs": [const(v) for v in values]})
        )
    if operator == "is_not":
        if not values:
            return const(True)
        return (
            compare("!=", target, const(values[0]))
            if len(values) == 1
            else compare("not in", target, {"node": "Tuple", "exprs": [const(v) for v in values]})
        )
    if operator in ("icontains", "not_icontains"):
        parts = [
            compare("ilike" if operator == "icontains" else "not ilike", text, const(f"%{v}%"))
            for v in values
        ]
        return or_(*parts) if operator == "icontains" else and_(*parts)
    if operator in ("regex", "not_regex"):
        parts = [compare("=~" if operator == "regex" else "!~", text, const(v)) for v in values]
        return or_(*parts) if operator == "regex" else and_(*parts)
    if operator in ("is_set", "is_not_set"):
        return compare("!=" if operator == "is_set" else "==", target, const(None))
    comparisons = {"gt": ">", "lt": "<", "gte": ">=", "lte": "<=", "min": ">=", "max": "<="}
    if operator in comparisons:
        return or_(*(compare(comparisons[operator], target, const(v)) for v in values))
    if operator in ("between", "not_between") and len(values) == 2:
        low, high = const(values[0]), const(values[1])
        if operator == "between":
            return and_(compare(">=", target, low), compare("<=", target, high))
        return or_(compare("<", target, low), compare(">", target, high))
    if operator in ("in", "not_in"):
        return compare("in" if operator == "in" else "not in", target, const(list(values)))
    if operator in ("is_date_exact", "is_date_before", "is_date_after"):
        op = {"is_date_exact": "==", "is_date_before": "<", "is_date_after": ">"}[operator]
        return compare(op, call("toDateTime", text), call("toDateTime", const(str(values[0]))))
    raise HogQLError(
        f"Unsupported property filter operator {operator!r}.", "invalid_property_filter"
    )


# -- {filters} ----------------------------------------------------------------------------------

_TIMESTAMP = {"events": "timestamp", "sessions": "$start_timestamp", "groups": "created_at"}
_RELATIVE = re.compile(r"^-?(\d+)([hdwmqyMs])(Start|End)?$")


def filters_expr(filters: Any, table: str | None, now: dt.datetime) -> Node:
    """The condition ``{filters}`` stands for in a SELECT over ``table``; ``true`` when empty."""
    if table not in _TIMESTAMP:
        raise HogQLError(
            "Cannot use 'filters' placeholder in a SELECT clause that does not select from the "
            "events, sessions, logs, traces or groups table."
        )
    if not isinstance(filters, dict):
        return const(True)
    parts: list[Node] = []
    scope = "session" if table == "sessions" else "event"
    properties = filters.get("properties") or []
    if properties:
        parts.append(and_(*(property_expr(p, scope) for p in properties)))
    date_range = filters.get("dateRange") or {}
    timestamp = field(_TIMESTAMP[table])
    if date_range.get("date_to"):
        parts.append(compare("<", timestamp, datetime_node(parse_date(date_range["date_to"], now))))
    if date_range.get("date_from") and date_range["date_from"] != "all":
        parts.append(
            compare(">=", timestamp, datetime_node(parse_date(date_range["date_from"], now)))
        )
    return and_(*parts) if parts else const(True)


def datetime_node(moment: dt.datetime) -> Node:
    """A datetime constant as PostHog writes it in HogQL (the project's zone, UTC here):
    ``toDateTime('2020-01-01 00:00:00.000000')``."""
    return call("toDateTime", const(moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")))


def parse_date(value: Any, now: dt.datetime) -> dt.datetime:
    """PostHog's dates: ISO 8601 (naive means the project's zone, UTC here) or ``-7d``-style."""
    text = str(value).strip()
    match = _RELATIVE.match(text)
    if match:
        amount, unit, snap = int(match.group(1)), match.group(2), match.group(3)
        moment = _shift(now, unit, amount)
        if snap:
            moment = _snap(moment, unit, snap == "End")
        return moment
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HogQLError(
            f"Unsupported date {text!r}: use ISO 8601 or a relative date like -7d."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _shift(now: dt.datetime, unit: str, amount: int) -> dt.datetime:
    if unit in "hdwsM":
        seconds = {"h": 3600, "d": 86400, "w": 604800, "s": 1, "M": 60}[unit]
        return now - dt.timedelta(seconds=seconds * amount)
    months = {"m": 1, "q": 3, "y": 12}[unit] * amount
    year, month = divmod(now.month - 1 - months, 12)
    day = min(now.day, 28)
    return now.replace(year=now.year + year, month=month + 1, day=day)


def _snap(moment: dt.datetime, unit: str, end: bool) -> dt.datetime:
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "m":
        start = start.replace(day=1)
    elif unit == "y":
        start = start.replace(month=1, day=1)
    if not end:
        return start
    return start + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
