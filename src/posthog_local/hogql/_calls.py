"""Function calls: the function table, PostHog's special printings and its HogQL-only functions.

A call is looked up in ``functions.tsv`` (case as PostHog has it), its arguments and parameters
counted against the table with PostHog's messages, then printed under the table's ClickHouse
name, from its template, or by a rule of this module (forgiving casts, NULL-safe ``concat``,
``now()``, ``toDateTime``, ``sparkline``, ``sortableSemVer``, ``matchesAction``, IN COHORT...).
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

from . import _demo_objects, _functions, _funnels
from ._errors import HogQLError
from ._parse import parse_expr
from ._schema import Type
from ._scope import Scope, Value

if TYPE_CHECKING:
    from ._printer import Printer

__all__ = ["call", "hogqlx_tag", "in_cohort", "window_function", "window_spec"]

_COMPARISONS = {
    "equals": "==",
    "notequals": "!=",
    "less": "<",
    "greater": ">",
    "lessorequals": "<=",
    "greaterorequals": ">=",
    "like": "like",
    "ilike": "ilike",
    "notlike": "not like",
    "notilike": "not ilike",
    "in": "in",
    "notin": "not in",
    "globalin": "global in",
    "globalnotin": "global not in",
}
_CASTS = {"toInt": "Int64", "toFloat": "Float64", "toUUID": "UUID"}
_UNTYPED_PROPERTY_ARG = {"toFloatOrZero", "toIntOrZero", "toFloatOrDefault"}
_TIME_WINDOWS = {"tumble", "hop", "tumbleStart", "tumbleEnd", "hopStart", "hopEnd", "windowID"}
_NON_NULL_AGGREGATES = {
    "count",
    "countIf",
    "uniq",
    "uniqIf",
    "uniqExact",
    "uniqExactIf",
    "countDistinct",
    "uniqCombined",
    "uniqHLL12",
    "groupArray",
    "groupUniqArray",
}
_TYPE_OF = {
    "toString": "string",
    "lower": "string",
    "upper": "string",
    "concat": "string",
    "toDate": "date",
    "toStartOfDay": "datetime",
    "toStartOfWeek": "date",
    "toStartOfMonth": "date",
    "toStartOfHour": "datetime",
    "length": "integer",
}


def call(printer: Printer, node: dict[str, Any], scope: Scope) -> Value:
    """Print a ``Call`` node."""
    name = str(node["name"])
    args: list[dict[str, Any]] = list(node.get("args") or [])
    if "." in name:
        raise HogQLError.at(node, "You can only call simple functions in HogQL, not expressions")
    comparison = _COMPARISONS.get(name.lower())
    if comparison is not None:
        if len(args) != 2:
            raise HogQLError.at(node, f"Comparison '{name}' requires exactly two arguments")
        return printer.compare(comparison, args[0], args[1], scope, node)
    if name.lower() in ("and", "or"):
        return printer.expr({"node": name.capitalize(), "exprs": args}, scope)
    if name.lower() == "not" and len(args) == 1:
        return printer.expr({"node": "Not", "expr": args[0]}, scope)
    if name in _UNTYPED_PROPERTY_ARG and args and args[0].get("node") == "Field":
        args = [{**args[0], "untyped": True}, *args[1:]]  # PostHog keeps the raw text here
    if name in ("percentile_cont", "percentile_disc"):
        within = node.get("within_group") or node.get("order_by")
        detail = (
            "with WITHIN GROUP is not supported in ClickHouse dialect"
            if within
            else ("requires WITHIN GROUP")
        )
        raise HogQLError.at(node, f"Aggregation '{name}' {detail}")
    special = _SPECIAL.get(name) or _SPECIAL.get(name.lower())
    if special is not None:
        return special(printer, node, args, scope)
    function = _functions.lookup(name)
    if function is None and (name in _NOT_EMULATED or name.startswith("__preview_")):
        raise HogQLError.at(
            node,
            f"'{name}(...)' is a PostHog function the local server does not emulate: it needs "
            "PostHog's own lookup tables or classifiers. Run this query against PostHog.",
        )
    if function is None:
        hint = _functions.suggestion(name)
        more = f" Perhaps you meant '{hint}(...)'?" if hint else ""
        raise HogQLError.at(node, f"Unsupported function call '{name}(...)'.{more}")
    _check_arity(node, function, len(args), len(node.get("params") or []))
    if node.get("filter_expr") is not None and not function.aggregate:
        raise HogQLError.at(
            node, f"FILTER (WHERE ...) applies to aggregations, and '{name}' is not one."
        )
    if function.template is not None:
        return _template(printer, name, function.template, args, scope)
    return _print_call(printer, node, function, args, scope)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _check_arity(
    node: dict[str, Any], function: _functions.Function, args: int, params: int
) -> None:
    what = "Aggregation" if function.aggregate else "Function"
    lo, hi = function.min_args, function.max_args
    if lo == hi and args != lo:
        raise HogQLError.at(
            node,
            f"{what} '{node['name']}' expects {_count(lo, 'argument')}, found {args}",
        )
    if args < lo:
        raise HogQLError.at(
            node,
            f"{what} '{node['name']}' expects at least {_count(lo, 'argument')}, found {args}",
        )
    if hi is not None and args > hi:
        raise HogQLError.at(
            node,
            f"{what} '{node['name']}' expects at most {_count(hi, 'argument')}, found {args}",
        )
    given = node.get("params")
    if function.min_params and given is None:
        raise HogQLError.at(
            node, f"{what} '{node['name']}' requires parameters in addition to arguments"
        )
    lo, hi = function.min_params, function.max_params
    if lo and (params < lo or (hi is not None and params > hi)):
        wanted = _count(lo, "parameter") if lo == hi else f"at least {_count(lo, 'parameter')}"
        raise HogQLError.at(node, f"{what} '{node['name']}' expects {wanted}, found {params}")
    if params and not function.aggregate:  # parametric aggregates: ClickHouse counts them
        raise HogQLError.at(node, f"{what} '{node['name']}' does not accept parameters")


def _print_call(
    printer: Printer,
    node: dict[str, Any],
    function: _functions.Function,
    args: list[dict[str, Any]],
    scope: Scope,
) -> Value:
    name = function.clickhouse or function.name
    if function.aggregate:
        for outer in scope.aggregates:
            raise HogQLError.at(
                node,
                f"Aggregation '{node['name']}' cannot be nested inside another aggregation "
                f"'{outer}'.",
            )
        scope.aggregates.append(str(node["name"]))
    if function.name == "count" and len(args) == 1 and args[0].get("chain") == ["*"]:
        args = []  # count(*) is count()
    try:
        printed = [printer.expr(a, scope) for a in args]
    finally:
        if function.aggregate:
            scope.aggregates.pop()
    if function.name in _TIME_WINDOWS and printed:
        # ClickHouse's window functions want DateTime, not DateTime64 (PostHog converts too)
        printed[0] = Value(printer.out.call("toDateTime", printed[0].sql, "'UTC'"), printed[0].type)
    params = [printer.expr(p, scope).sql for p in node.get("params") or []]
    head = printer.out.word(name) + (f"({', '.join(params)})" if params else "")
    distinct = printer.out.word("DISTINCT") + " " if node.get("distinct") else ""
    sql = f"{head}({distinct}{', '.join(p.sql for p in printed)})"
    if node.get("filter_expr") is not None:  # rows are filtered before they are aggregated
        condition = printer.expr(node["filter_expr"], scope).sql
        sql += f" {printer.out.word('FILTER')} ({printer.out.word('WHERE')} {condition})"
    nullable = function.name not in _NON_NULL_AGGREGATES and any(p.type.nullable for p in printed)
    kind = _TYPE_OF.get(function.name, "unknown")
    if function.name in _FIRST_ARGUMENT_TYPE and printed:  # min(timestamp) is a datetime
        kind = printed[0].type.kind
    return Value(sql, Type(kind, nullable))


_FIRST_ARGUMENT_TYPE = frozenset(
    f"{name}{suffix}"
    for name in ("min", "max", "any", "anyLast", "anyHeavy", "argMin", "argMax")
    for suffix in ("", "If", "OrNull")
)


@cache
def _template_ast(template: str) -> dict[str, Any]:
    return parse_expr(re.sub(r"\{(\d+)\}", r"{__arg\1}", template))


_MAX_MACRO_DEPTH = 8  # PostHog's: templates inside templates repeat their arguments


def _template(
    printer: Printer, name: str, template: str, args: list[dict[str, Any]], scope: Scope
) -> Value:
    """A function PostHog defines as HogQL over its arguments: parsed, filled in, printed."""

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("node") == "Placeholder":
                name = str(node["expr"]["chain"][0])
                return args[int(name.removeprefix("__arg"))]
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        return node

    printer.macro_depth += 1
    try:
        if printer.macro_depth > _MAX_MACRO_DEPTH:
            raise HogQLError(
                f"Function '{name}' exceeded maximum placeholder macro depth of {_MAX_MACRO_DEPTH}."
            )
        return printer.expr(fill(_template_ast(template)), scope)
    finally:
        printer.macro_depth -= 1


# -- PostHog's special printings --------------------------------------------------------------


def _cast(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    name = str(node["name"])
    if name == "toDecimal":
        if len(args) != 2:
            raise HogQLError.at(
                node, f"Function 'toDecimal' expects 2 arguments, found {len(args)}"
            )
        scale = printer.expr(args[1], scope)
        if not (scale.constant and isinstance(scale.value, int) and 0 <= scale.value <= 18):
            raise HogQLError.at(args[1], "toDecimal's scale must be a constant from 0 to 18.")
        target = f"Decimal64({scale.value})"
    else:
        if len(args) != 1:
            raise HogQLError.at(node, f"Function '{name}' expects 1 argument, found {len(args)}")
        target = _CASTS[name]
    value = printer.expr(args[0], scope)
    kind = {"Int64": "integer", "Float64": "float", "UUID": "uuid"}.get(target, "float")
    return Value(printer.out.call("accurateCastOrNull", value.sql, f"'{target}'"), Type(kind))


def _float_or_default(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    """PostHog's ``toFloatOrDefault``: NULL stays NULL without a default, any default is a float."""
    if not 1 <= len(args) <= 2:
        raise HogQLError.at(
            node, f"Function 'toFloatOrDefault' expects at most 2 arguments, found {len(args)}"
        )
    call = printer.out.call
    value = printer.expr(args[0], scope)
    if len(args) == 1 and value.constant and value.value is None:
        return Value(printer.out.word("NULL"), Type("float"))
    default = call("toFloat64", printer.expr(args[1], scope).sql) if len(args) == 2 else "0."
    parsed = call("toFloat64OrNull", call("toString", value.sql))
    return Value(call("ifNull", parsed, default), Type("float", False))


def _case_with_expression(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    """``CASE x WHEN a THEN b ... ELSE c END``: ``transform(x, [a...], [b...], c)``, as PostHog."""
    if len(args) < 4 or len(args) % 2:
        raise HogQLError.at(node, "CASE needs WHEN ... THEN ... pairs and an ELSE.")
    subject, *pairs, otherwise = (printer.expr(a, scope).sql for a in args)
    whens, thens = pairs[0::2], pairs[1::2]
    return Value(
        printer.out.call(
            "transform",
            subject,
            "[" + ", ".join(whens) + "]",
            "[" + ", ".join(thens) + "]",
            otherwise,
        )
    )


def _now(printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope) -> Value:
    if len(args) > 1:
        raise HogQLError.at(
            node, f"Function '{node['name']}' expects at most 1 argument, found {len(args)}"
        )
    zone = printer.expr(args[0], scope).sql if args else "'UTC'"
    return Value(printer.out.call("now64", "6", zone), Type("datetime", False))


def _to_datetime(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    if not 1 <= len(args) <= 2:
        raise HogQLError.at(
            node,
            f"Function '{node['name']}' expects at least 1 argument, found {len(args)}"
            if not args
            else f"Function '{node['name']}' expects at most 2 arguments, found {len(args)}",
        )
    value = printer.expr(args[0], scope)
    zone = printer.expr(args[1], scope).sql if len(args) == 2 else "'UTC'"
    call = printer.out.call
    if value.type.kind in ("datetime", "date", "integer", "float"):
        return Value(call("toDateTime", value.sql, zone), Type("datetime", value.type.nullable))
    if value.constant and isinstance(value.value, str):
        text = value.value
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?", text):
            return Value(call("toDateTime", value.sql, zone), Type("datetime", False))
        return Value(
            call("parseDateTime64BestEffort", value.sql, "6", zone), Type("datetime", False)
        )
    # Of a type the printer does not know (a date from a function, a string...): via its text,
    # which the best-effort parser reads for dates, datetimes and strings alike.
    text = value.sql if value.type.kind == "string" else call("toString", value.sql)
    return Value(call("parseDateTime64BestEffortOrNull", text, "6", zone), Type("datetime"))


def _to_date(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    if len(args) != 1:
        raise HogQLError.at(
            node, f"Function '{node['name']}' expects 1 argument, found {len(args)}"
        )
    value = printer.expr(args[0], scope)
    name = "toDate" if value.type.kind in ("datetime", "date", "integer") else "toDateOrNull"
    return Value(
        printer.out.call(name, value.sql), Type("date", value.type.nullable or name != "toDate")
    )


def _concat(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    """PostHog's concat treats NULL as an empty string."""
    if len(args) < 2:
        raise HogQLError.at(
            node, f"Function 'concat' expects at least 2 arguments, found {len(args)}"
        )
    call = printer.out.call
    parts = []
    for arg in args:
        value = printer.expr(arg, scope)
        if value.constant and value.value is None:
            parts.append("''")
        elif value.constant and isinstance(value.value, str):
            parts.append(value.sql)
        elif value.constant:
            parts.append(call("toString", value.sql))
        else:
            parts.append(call("ifNull", call("toString", value.sql), "''"))
    return Value(call("concat", *parts), Type("string", False))


def _week_start(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    if not 1 <= len(args) <= 2:
        raise HogQLError.at(
            node, f"Function 'toStartOfWeek' expects at most 2 arguments, found {len(args)}"
        )
    printed = [printer.expr(a, scope).sql for a in args]
    if len(printed) == 1:
        printed.append("3")  # the demo project's week starts on Monday (ISO)
    return Value(printer.out.call("toStartOfWeek", *printed), Type("date"))


def _sparkline(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    if len(args) != 1:
        raise HogQLError.at(node, f"Function 'sparkline' expects 1 argument, found {len(args)}")
    data = printer.expr(args[0], scope)
    return Value(
        printer.out.call("tuple", "'__hx_tag'", "'Sparkline'", "'data'", data.sql),
        Type("tuple", False),
    )


def _semver(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    if len(args) != 1:
        raise HogQLError.at(
            node, f"Function 'sortableSemVer' expects 1 argument, found {len(args)}"
        )
    call = printer.out.call
    value = printer.expr(args[0], scope)
    parts = call(
        "splitByChar",
        "'.'",
        call("extract", call("assumeNotNull", value.sql), r"'(\\d+(\\.\\d+)+)'"),
    )
    return Value(
        call("arrayMap", f"`x` -> {call('toInt64OrZero', '`x`')}", parts), Type("array", False)
    )


def _language(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    if len(args) != 1:
        raise HogQLError.at(
            node, f"Function 'languageCodeToName' expects 1 argument, found {len(args)}"
        )
    codes, names = zip(*_demo_objects.LANGUAGES.items(), strict=True)
    out = printer.out
    value = printer.expr(args[0], scope)
    return Value(
        out.call(
            "transform",
            value.sql,
            out.param("Array(String)", _array(codes)),
            out.param("Array(String)", _array(names)),
            "'Unknown'",
        ),
        Type("string", False),
    )


def _array(items: tuple[str, ...]) -> str:
    return (
        "[" + ",".join("'" + i.replace("\\", "\\\\").replace("'", "\\'") + "'" for i in items) + "]"
    )


def _array_reduce(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    if len(args) < 2:
        raise HogQLError.at(node, "Missing arguments in function 'arrayReduce'")
    first = args[0]
    if first.get("node") != "Constant":
        raise HogQLError.at(
            first,
            "Expected constant string as first arg in function 'arrayReduce', "
            f"got {first.get('node')}",
        )
    if not isinstance(first.get("value"), str):
        kind = _CONSTANT_TYPES.get(type(first.get("value")), "UnknownType")
        raise HogQLError.at(
            first,
            "Expected constant string as first arg in function 'arrayReduce', "
            f"got {kind} '{first.get('value')}'",
        )
    name = first["value"]
    if name not in _PARAMETRIC:  # exact case, as PostHog compares
        raise HogQLError.at(
            first, f"Invalid parametric function in 'arrayReduce', '{name}' is not supported."
        )
    rest = [printer.expr(a, scope).sql for a in args[1:]]
    return Value(printer.out.call("arrayReduce", f"'{name}'", *rest), Type())


# PostHog functions that read PostHog's own tables or classifiers (channel and domain lookups,
# exchange rates, bot and traffic detection, survey helpers): refused with the reason
_NOT_EMULATED = frozenset(
    (
        *("getTrafficType", "getTrafficCategory", "isLikelyBot", "getBotName", "getBotType"),
        *("lookupDomainType", "lookupPaidSourceType", "lookupPaidMediumType"),
        *("lookupOrganicSourceType", "lookupOrganicMediumType", "convertCurrency"),
        *("getSurveyResponse", "uniqueSurveySubmissionsFilter", "hogql_lookupDomainType"),
    )
)


# PostHog's HOGQL_PERMITTED_PARAMETRIC_FUNCTIONS: the aggregates ``arrayReduce`` may name
_PARAMETRIC = frozenset(
    (
        *("count", "countMap", "countMapState", "sum", "sumMap", "sumMapState"),
        *("min", "minMap", "minMapState", "max", "maxMap", "maxMapState"),
        *("avg", "avgState", "avgMap", "avgMapState", "median"),
        *("uniq", "uniqState", "uniqMap", "uniqMapState"),
    )
)


def _matches_action(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    if len(args) != 1:
        raise HogQLError.at(node, f"Function 'matchesAction' expects 1 argument, found {len(args)}")
    key = args[0]
    if key.get("node") != "Constant":
        raise HogQLError.at(key, "action() takes only constant arguments")
    action = _demo_objects.find_action(key.get("value"), key)
    return printer.expr(action.condition(), scope)


def in_cohort(
    printer: Printer, op: str, left: dict[str, Any], right: dict[str, Any], scope: Scope
) -> Value:
    """``x IN COHORT 2`` or ``'name'``: membership in one of the demo project's cohorts."""
    if right.get("node") != "Constant":
        raise HogQLError.at(right, "cohort() takes only constant arguments")
    cohort = _demo_objects.find_cohort(right.get("value"), right)
    negated = op.startswith("not")
    return printer.compare("not in" if negated else "in", left, cohort.members(), scope)


_CONSTANT_TYPES = {
    bool: "BooleanType",
    int: "IntegerType",
    float: "FloatType",
    type(None): "UnknownType",
    list: "ArrayType",
}

_CASTS_POSTGRES = {
    "int": "toInt64",
    "integer": "toInt64",
    "bigint": "toInt64",
    "float": "toFloat64",
    "double": "toFloat64",
    "real": "toFloat64",
    "text": "toString",
    "varchar": "toString",
    "string": "toString",
    "bool": "toBool",
    "boolean": "toBool",
    "date": "toDate",
    "timestamp": "toDateTime",
    "datetime": "toDateTime",
}


def type_cast(printer: Printer, node: dict[str, Any], scope: Scope) -> Value:
    """Postgres-style ``x::int`` (PostHog prints the matching ClickHouse conversion)."""
    function = _CASTS_POSTGRES.get(str(node.get("type_name") or "").lower())
    if function is None:
        raise HogQLError.at(node, f"Unsupported type cast to '{node.get('type_name')}'")
    value = printer.expr(node["expr"], scope)
    if function == "toDateTime":
        return Value(printer.out.call("toDateTime", value.sql, "'UTC'"), Type("datetime"))
    return Value(printer.out.call(function, value.sql), Type(_TYPE_OF.get(function, "unknown")))


def _recording_button(
    printer: Printer, node: dict[str, Any], args: list[dict[str, Any]], scope: Scope
) -> Value:
    """PostHog's ``recordingButton(session_id[, status])``: a HogQLX button tag."""
    if not 1 <= len(args) <= 2:
        message = "at least 1 argument" if not args else "at most 2 arguments"
        raise HogQLError.at(
            node, f"Function 'recordingButton' expects {message}, found {len(args)}"
        )
    out = printer.out
    items = ["'__hx_tag'", "'RecordingButton'", "'sessionId'", printer.expr(args[0], scope).sql]
    if len(args) == 2:
        items += ["'recordingStatus'", printer.expr(args[1], scope).sql]
    return Value(out.call("tuple", *items), Type("tuple", False))


def hogqlx_tag(printer: Printer, node: dict[str, Any], scope: Scope) -> Value:
    """``<Sparkline data={...} />``: PostHog sends HogQLX tags back as tagged tuples."""
    kind = str(node.get("kind"))
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", kind):
        raise HogQLError.at(node, f"Unsupported HogQLX tag <{kind}>.")
    items = [printer.out.param("String", "__hx_tag"), printer.out.param("String", kind)]
    for attribute in node.get("attributes") or []:
        items.append(printer.out.param("String", str(attribute["name"])))
        value = attribute["value"]
        if isinstance(value, list):  # children: text and nested tags, of mixed types
            items.append(printer.out.call("tuple", *(printer.expr(v, scope).sql for v in value)))
        else:
            items.append(printer.expr(value, scope).sql)
    return Value(printer.out.call("tuple", *items), Type("tuple", False))


# -- window functions ---------------------------------------------------------------------------

_FRAME_TYPES = {"PRECEDING", "FOLLOWING", "CURRENT ROW"}


def window_function(printer: Printer, node: dict[str, Any], scope: Scope) -> Value:
    name = str(node["name"])
    # `f(a)(b) OVER`: the parser keeps the first group in `exprs` and the second in `args`
    params_nodes, exprs = (
        ([], list(node.get("exprs") or []))
        if not node.get("args")
        else (list(node.get("exprs") or []), list(node["args"]))
    )
    function = _functions.lookup(name)
    if function is None or function.kind not in ("window", "aggregate") or function.template:
        hint = _functions.suggestion(name)
        more = f" Perhaps you meant '{hint}(...)'?" if hint else ""
        raise HogQLError.at(node, f"Unsupported function call '{name}(...)'.{more}")
    if function.name == "count" and len(exprs) == 1 and exprs[0].get("chain") == ["*"]:
        exprs = []  # count(*) OVER ...
    _check_arity(node, function, len(exprs), len(params_nodes))
    printed = [printer.expr(e, scope).sql for e in exprs]
    out = printer.out
    if name in ("lag", "lead"):
        printed[0] = out.call("toNullable", printed[0])
    params = [printer.expr(p, scope).sql for p in params_nodes]
    head = out.word(function.clickhouse or name) + (f"({', '.join(params)})" if params else "")
    sql = f"{head}({', '.join(printed)}) {out.word('OVER')} "
    if node.get("over_identifier"):
        sql += printer_quote(node["over_identifier"])
    else:
        spec = dict(node.get("over_expr") or {})
        if name in ("lag", "lead") and spec.get("frame_method") is None:
            spec.update(
                frame_method="ROWS",
                frame_start={"frame_type": "PRECEDING"},
                frame_end={"frame_type": "FOLLOWING"},
            )
        sql += f"({window_spec(printer, spec, scope)})"
    return Value(sql, Type())


def printer_quote(name: str) -> str:
    from ._scope import quote  # noqa: PLC0415

    return quote(name)


def window_spec(printer: Printer, spec: dict[str, Any], scope: Scope) -> str:
    out = printer.out
    parts = []
    if spec.get("partition_by"):
        parts.append(
            f"{out.word('PARTITION')} {out.word('BY')} "
            + ", ".join(printer.expr(e, scope).sql for e in spec["partition_by"])
        )
    if spec.get("order_by"):
        parts.append(
            f"{out.word('ORDER')} {out.word('BY')} " + printer._order(spec["order_by"], scope)
        )
    method = spec.get("frame_method")
    if method:
        if method not in ("ROWS", "RANGE"):
            raise HogQLError(f"Unsupported window frame {method!r}.")
        start = _frame(printer, spec.get("frame_start"), scope)
        end = spec.get("frame_end")
        frame = f"{out.word(method)} "
        frame += (
            f"{out.word('BETWEEN')} {start} {out.word('AND')} {_frame(printer, end, scope)}"
            if end
            else start
        )
        parts.append(frame)
    return " ".join(parts)


def _frame(printer: Printer, frame: dict[str, Any] | None, scope: Scope) -> str:
    if not frame:
        raise HogQLError("A window frame needs a start.")
    kind = str(frame.get("frame_type"))
    if kind not in _FRAME_TYPES:
        raise HogQLError(f"Unsupported window frame bound {kind!r}.")
    words = " ".join(printer.out.word(w) for w in kind.split())
    if kind == "CURRENT ROW":
        return words
    value = frame.get("frame_value")
    if value is None:
        return f"{printer.out.word('UNBOUNDED')} {words}"
    if not isinstance(value, int):
        raise HogQLError("A window frame offset must be a number.")
    return f"{int(value)} {words}"


_SPECIAL = {
    "toInt": _cast,
    "toFloat": _cast,
    "toUUID": _cast,
    "toDecimal": _cast,
    "now": _now,
    "current_timestamp": _now,
    "toDateTime": _to_datetime,
    "toDate": _to_date,
    "to_date": _to_date,
    "concat": _concat,
    "toStartOfWeek": _week_start,
    "sparkline": _sparkline,
    "sortablesemver": _semver,
    "languageCodeToName": _language,
    "arrayReduce": _array_reduce,
    "matchesAction": _matches_action,
    "toFloatOrDefault": _float_or_default,
    "recordingButton": _recording_button,
    "recording_button": _recording_button,
    "_caseWithExpression": _case_with_expression,
    **dict.fromkeys(_funnels.FUNNELS, _funnels.funnel),
}
