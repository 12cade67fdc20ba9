"""PostHog's property filters and ``{filters}`` as HogQL AST nodes (never as text).

Used for the request's ``filters`` (the ``{filters}`` placeholder), for the demo's cohorts and for
its actions' steps. Values from the request become ``Constant`` nodes, so they are bound as
parameters like any constant; operators follow PostHog's ``property_to_expr``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ._dates import date_bounds
from ._errors import HogQLError

__all__ = [
    "and_",
    "call",
    "compare",
    "const",
    "date_conditions",
    "datetime_node",
    "field",
    "filters_expr",
    "or_",
    "property_expr",
]

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
    """One property filter (or a group of them) as a condition; ``scope`` is where it is read:
    event, person, session or group (the table ``{filters}`` selects from)."""
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
        member = field("id") if scope == "person" else field("person_id")
        return compare(op, member, const(prop.get("value")))
    if not isinstance(key, str) or not key:
        raise HogQLError("A property filter needs a `key`.", "invalid_property_filter")
    if kind == "element":
        return _element_expr(key, str(prop.get("operator") or "exact"), prop.get("value"), scope)
    target = _target(prop, str(kind), key, scope)
    return operator_expr(target, str(prop.get("operator") or "exact"), prop.get("value"))


def _target(prop: dict[str, Any], kind: str, key: str, scope: str) -> Node:
    """The field a property filter of ``kind`` reads, from a query in ``scope``."""
    own = {"event": "event", "person": "person", "session": "session", "group": "group"}
    if scope in ("person", "group") and kind in ("event", "session", "element"):
        raise HogQLError(
            f"The '{kind}' property filter does not work in '{scope}' scope",
            "invalid_property_filter",
        )
    if kind == own.get(scope) and kind != "session":
        return field("properties", key)
    if kind == "person":
        return field("person", "properties", key)
    if kind == "event":
        return field("properties", key)
    if kind == "session":
        return field(key) if scope == "session" else field("session", key)
    if kind == "group" and scope != "person":
        index = prop.get("group_type_index")
        if not isinstance(index, int) or not 0 <= index <= 4:
            raise HogQLError(
                "A group property filter needs a `group_type_index` from 0 to 4.",
                "invalid_property_filter",
            )
        return field(f"group_{index}", "properties", key)
    raise HogQLError(
        f"Property filters of type {kind!r} are not supported by the local server.",
        "invalid_property_filter",
    )


def operator_expr(target: Node, operator: str, value: Any) -> Node:
    """``target`` compared with ``value`` by one of PostHog's property filter operators."""
    if value is None and operator not in ("is_set", "is_not_set"):
        return const(1)  # PostHog: a filter without a value matches everything
    values = [v for v in value if v is not None] if isinstance(value, list) else [value]
    if operator in ("exact", "is_not"):
        return _equality(target, operator == "exact", values)
    if operator in ("icontains", "not_icontains", "regex", "not_regex"):
        return _text_match(target, operator, values, value)
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
    if operator in ("is_date_exact", "is_date_before", "is_date_after") and values:
        op = {"is_date_exact": "==", "is_date_before": "<", "is_date_after": ">"}[operator]
        text = call("toString", target)
        return compare(op, call("toDateTime", text), call("toDateTime", const(str(values[0]))))
    raise HogQLError(
        f"Unsupported property filter operator {operator!r}.", "invalid_property_filter"
    )


def _equality(target: Node, positive: bool, values: list[Any]) -> Node:
    if not values:
        return const(True)
    if len(values) == 1:
        return compare("==" if positive else "!=", target, const(values[0]))
    items = {"node": "Tuple", "exprs": [const(v) for v in values]}
    return compare("in" if positive else "not in", target, items)


def _text_match(target: Node, operator: str, values: list[Any], value: Any) -> Node:
    text = call("toString", target)
    positive = not operator.startswith("not_")
    if operator.endswith("regex"):  # a missing property matches `not_regex`, as in PostHog
        found = [call("match", text, const(v)) for v in values]
        if positive:
            return or_(*(call("ifNull", f, const(False)) for f in found))
        return and_(*(call("ifNull", call("not", f), const(True)) for f in found))
    if len(values) > 1:  # PostHog's one search for many needles
        searched = call("multiSearchAnyCaseInsensitive", text, const([str(v) for v in values]))
        return compare(">" if positive else "==", searched, const(0))
    needle = values[0] if values else value  # an empty list is searched as its text, '[]'
    return compare("ilike" if positive else "not ilike", text, const(f"%{_text_of(needle)}%"))


def _element_expr(key: str, operator: str, value: Any, scope: str) -> Node:
    """An autocapture element filter: a regular expression over ``elements_chain``."""
    if scope != "event":
        raise HogQLError(
            f"The 'element' property filter does not work in '{scope}' scope",
            "invalid_property_filter",
        )
    if isinstance(value, list) and len(value) != 1:
        parts = [_element_expr(key, operator, v, scope) for v in value]
        return and_(*parts) if operator in _NEGATED else or_(*parts)
    value = value[0] if isinstance(value, list) else value
    if key == "tag_name":
        if operator not in ("exact", "is_not"):
            raise HogQLError(
                f"An element `tag_name` filter supports the exact and is_not operators, "
                f"not {operator!r}.",
                "invalid_property_filter",
            )
        found = compare("=~", field("elements_chain"), const(rf"(^|;){value}(\.|$|;|:)"))
        return call("not", found) if operator == "is_not" else found
    if key in ("href", "text"):
        return _element_attribute(key, str(value), operator)
    raise HogQLError(
        f"Element filters on {key!r} are not supported by the local server: filter on "
        "`tag_name`, `href` or `text`, or match `elements_chain` with a regular expression "
        "in a hogql filter.",
        "invalid_property_filter",
    )


_NEGATED = ("is_not", "not_icontains", "not_regex", "is_not_set")


def _element_attribute(key: str, text: str, operator: str) -> Node:
    """PostHog's ``element_chain_key_filter``: ``href="..."`` or ``text="..."`` in the chain."""
    escaped = text.replace('"', r"\"")
    if operator in ("is_set", "is_not_set"):
        pattern = r'[^"]+'
    elif operator in ("icontains", "not_icontains"):
        pattern = rf'[^"]*{re.escape(escaped)}[^"]*'
    elif operator in ("regex", "not_regex"):
        pattern = escaped
    elif operator in ("exact", "is_not"):
        pattern = re.escape(escaped)
    else:
        raise HogQLError(
            f"Unsupported operator {operator!r} for an element `{key}` filter.",
            "invalid_property_filter",
        )
    op = "=~*" if operator.endswith("icontains") else "=~"
    found = compare(op, field("elements_chain"), const(f'({key}="{pattern}")'))
    return call("not", found) if operator in _NEGATED else found


def _text_of(value: Any) -> str:
    """A value as PostHog's Python writes it into a pattern (``True``, ``[]``, ``1.5``)."""
    return str(value)


# -- {filters} ----------------------------------------------------------------------------------

# the timestamp each table's date range applies to, and the scope its property filters read in
_TABLES = {
    "events": ("timestamp", "event"),
    "sessions": ("$start_timestamp", "session"),
    "groups": ("created_at", "group"),
    "persons": ("created_at", "person"),
}


def filters_expr(filters: Any, table: str | None, now: dt.datetime) -> Node:
    """The condition ``{filters}`` stands for in a SELECT over ``table``; ``true`` when empty."""
    if table not in _TABLES:
        raise HogQLError(
            "Cannot use 'filters' placeholder in a SELECT clause that does not select from the "
            "events, sessions, logs, traces, persons or groups table."
        )
    if not isinstance(filters, dict):
        return const(True)
    timestamp, scope = _TABLES[table]
    parts: list[Node] = []
    properties = filters.get("properties") or []
    if properties:
        parts.append(and_(*(property_expr(p, scope) for p in properties)))
    parts.extend(date_conditions(field(timestamp), filters.get("dateRange"), now))
    return and_(*parts) if parts else const(True)


def date_conditions(timestamp: Node, date_range: Any, now: dt.datetime) -> list[Node]:
    """``timestamp`` within the range: the end's comparison first, then the start's (PostHog's
    order)."""
    start, end = date_bounds(date_range, now)
    return [
        compare(bound.op, timestamp, datetime_node(bound.moment))
        for bound in (end, start)
        if bound is not None
    ]


def datetime_node(moment: dt.datetime) -> Node:
    """A datetime constant as PostHog writes it in HogQL (the project's zone, UTC here):
    ``toDateTime('2020-01-01 00:00:00.000000')``."""
    return call("toDateTime", const(moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")))
