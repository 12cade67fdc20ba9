"""HogQL's own text form of an AST: result column names and the ``hogql`` field of an answer.

As PostHog's HogQL printer: operators as their functions (``plus(1, 1)``,
``equals(event, 'a')``), fields as written, strings single-quoted. Only for display; never
sent to the engine.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["COMPARE_FUNCTIONS", "column_name", "text"]

COMPARE_FUNCTIONS = {
    "==": "equals",
    "!=": "notEquals",
    "<": "less",
    ">": "greater",
    "<=": "lessOrEquals",
    ">=": "greaterOrEquals",
    "like": "like",
    "ilike": "ilike",
    "not like": "notLike",
    "not ilike": "notILike",
    "in": "in",
    "not in": "notIn",
    "global in": "globalIn",
    "global not in": "globalNotIn",
    "=~": "match",
    "!~": "notMatch",
    "=~*": "imatch",
    "!~*": "notIMatch",
}
_TYPE_CASTS = {  # PostHog's HogQL printer writes `x::int` as the conversion it means
    **dict.fromkeys(("int", "integer"), "toInt64"),
    **dict.fromkeys(("float", "double", "double precision", "real"), "toFloat64"),
    **dict.fromkeys(("text", "varchar", "char", "string"), "toString"),
    **dict.fromkeys(("boolean", "bool"), "toBoolean"),
    "date": "toDate",
    **dict.fromkeys(("datetime", "timestamp", "timestamptz"), "toDateTime"),
}
_ARITHMETIC = {"+": "plus", "-": "minus", "*": "multiply", "/": "divide", "%": "modulo"}
_PLAIN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


def identifier(name: str) -> str:
    """A name as HogQL writes it: bare when plain, else in backticks."""
    if isinstance(name, int):
        return str(name)
    if _PLAIN.match(name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def constant(value: Any) -> str:
    if value is None:
        return "NULL"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list):
        return "[" + ", ".join(constant(v) for v in value) + "]"
    return repr(value)


def column_name(node: dict[str, Any]) -> str:
    """The name PostHog gives a select column: its alias, a field's last part, else its text."""
    kind = node.get("node")
    if kind == "Alias":
        return str(node["alias"])
    if kind == "Field":
        chain = [str(c) for c in node["chain"]]
        if "properties" in chain[:-1]:
            return "__".join(chain[chain.index("properties") + 1 :])
        return chain[-1]
    path = _constant_path(node)
    if path is not None:
        return "__".join(path)
    return text(node)


def _constant_path(node: dict[str, Any]) -> list[str] | None:
    """``properties['a'][1]``: the property path PostHog folds constant accesses into."""
    path: list[str] = []
    while node.get("node") in ("ArrayAccess", "TupleAccess"):
        if node["node"] == "TupleAccess":
            path.insert(0, str(node["index"]))
            node = node["tuple"]
        else:
            key = node["property"]
            if key.get("node") != "Constant" or not isinstance(key.get("value"), str | int):
                return None
            path.insert(0, str(key["value"]))
            node = node["array"]
    if path and node.get("node") == "Field":
        chain = [str(c) for c in node["chain"]]
        if "properties" in chain:
            return chain[chain.index("properties") + 1 :] + path
    return None


def text(node: Any) -> str:  # noqa: PLR0912 - one branch per node kind reads best
    """The HogQL text of an expression or query."""
    if not isinstance(node, dict):
        return str(node)
    kind = node.get("node")
    if kind == "Constant":
        return constant(node.get("value"))
    if kind == "Field":
        return ".".join(identifier(c) for c in node["chain"])
    if kind == "Alias":
        return f"{text(node['expr'])} AS {identifier(node['alias'])}"
    if kind == "Call":
        params = node.get("params")
        head = f"{node['name']}({', '.join(text(p) for p in params)})" if params else node["name"]
        args = ", ".join(
            "*" if a.get("chain") == ["*"] else text(a) for a in node.get("args") or []
        )
        return f"{head}({'DISTINCT ' if node.get('distinct') else ''}{args})"
    if kind == "CompareOperation":
        op = node["op"]
        if op in ("in cohort", "not in cohort"):
            return f"{text(node['left'])} {op.upper()} {text(node['right'])}"
        return f"{COMPARE_FUNCTIONS.get(op, op)}({text(node['left'])}, {text(node['right'])})"
    if kind == "ArithmeticOperation":
        name = _ARITHMETIC.get(node["op"], node["op"])
        return f"{name}({text(node['left'])}, {text(node['right'])})"
    if kind in ("And", "Or"):
        return f"{kind.lower()}({', '.join(text(e) for e in node['exprs'])})"
    if kind == "Not":
        return f"not({text(node['expr'])})"
    if kind == "Array":
        return "[" + ", ".join(text(e) for e in node["exprs"]) + "]"
    if kind == "Tuple":
        return "tuple(" + ", ".join(text(e) for e in node["exprs"]) + ")"
    if kind == "ArrayAccess":
        return f"{text(node['array'])}[{text(node['property'])}]"
    if kind == "TupleAccess":
        return f"{text(node['tuple'])}.{node['index']}"
    if kind == "Lambda":
        args = node["args"]
        head = (
            identifier(args[0]) if len(args) == 1 else "(" + ", ".join(map(identifier, args)) + ")"
        )
        return f"{head} -> {text(node['expr'])}"
    if kind == "BetweenExpr":
        negated = "NOT " if node.get("negated") else ""
        return f"{text(node['expr'])} {negated}BETWEEN {text(node['low'])} AND {text(node['high'])}"
    if kind == "WindowFunction":
        args = ", ".join(text(e) for e in node.get("exprs") or [])
        over = node.get("over_identifier") or "(...)"
        return f"{node['name']}({args}) OVER {over}"
    if kind == "Placeholder":
        return "{" + text(node["expr"]) + "}"
    if kind == "TypeCast":
        function = _TYPE_CASTS.get(str(node.get("type_name")).lower(), "CAST")
        return f"{function}({text(node['expr'])})"
    if kind == "ArraySlice":
        start = text(node["start_expr"]) if node.get("start_expr") else ""
        end = text(node["end_expr"]) if node.get("end_expr") else ""
        return f"{text(node['array'])}[{start}:{end}]"
    if kind == "Dict":
        pairs = ", ".join(f"{text(k)}, {text(v)}" for k, v in node.get("items") or [])
        return f"tuple('__hx_tag', '__hx_obj'{', ' if pairs else ''}{pairs})"
    if kind == "HogQLXTag":
        parts = ["'__hx_tag'", constant(str(node.get("kind")))]
        for attribute in node.get("attributes") or []:
            value = attribute["value"]
            shown = (
                "tuple(" + ", ".join(text(v) for v in value) + ")"
                if isinstance(value, list)
                else text(value)
            )
            parts += [constant(str(attribute["name"])), shown]
        return f"tuple({', '.join(parts)})"
    if kind in ("SelectQuery", "SelectSetQuery"):
        return _query(node)
    return f"<{kind}>"


def _query(node: dict[str, Any]) -> str:
    if node["node"] == "SelectSetQuery":
        parts = [_query(node["initial_select_query"])]
        for item in node.get("subsequent_select_queries") or []:
            parts.append(f"{item['set_operator']} {_query(item['select_query'])}")
        return " ".join(parts)
    out = ["SELECT"]
    if node.get("distinct"):
        out.append("DISTINCT")
    out.append(", ".join(text(e) for e in node.get("select") or []))
    if node.get("select_from"):
        out.append("FROM " + _join(node["select_from"]))
    for clause, key in (("WHERE", "where"), ("HAVING", "having")):
        if node.get(key):
            out.append(f"{clause} {text(node[key])}")
    if node.get("group_by"):
        out.append("GROUP BY " + ", ".join(text(e) for e in node["group_by"]))
    if node.get("order_by"):
        out.append(
            "ORDER BY "
            + ", ".join(f"{text(o['expr'])} {o.get('order') or 'ASC'}" for o in node["order_by"])
        )
    if node.get("limit") is not None:
        out.append(f"LIMIT {text(node['limit'])}")
    return " ".join(out)


def _join(join: dict[str, Any] | None) -> str:
    parts: list[str] = []
    while join:
        table = join["table"]
        shown = text(table) if table.get("node") == "Field" else f"({text(table)})"
        if join.get("alias"):
            shown += f" AS {identifier(join['alias'])}"
        if parts:
            shown = f"{join.get('join_type') or 'JOIN'} {shown}"
            constraint = join.get("constraint")
            if constraint:
                shown += f" {constraint.get('constraint_type') or 'ON'} {text(constraint['expr'])}"
        parts.append(shown)
        join = join.get("next_join")
    return " ".join(parts)
