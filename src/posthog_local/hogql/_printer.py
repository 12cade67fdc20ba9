"""HogQL AST in, ClickHouse SQL out, node kind by node kind, as PostHog's printer is designed.

Only what this module knows is printed: a node kind, table, field or function it has no rule
for is refused, so a new attack shape fails closed. Identifiers are always quoted, every string
and list constant is a typed query parameter, and every bare word written is recorded for the
lexical guard. HogQL's semantics are printed in: NULL-safe comparisons (``ifNull(equals(a, b),
0)``...), properties read as PostHog reads its JSON, lazy joins for ``person``/``pdi``/
``session``, property types from definitions, and PostHog's column names.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from ..params import ParameterError, parameter
from . import _calls, _schema
from ._errors import HogQLError
from ._parse import parse_expr
from ._schema import Type
from ._scope import Cte, Output, Scope, Source, Value, quote
from ._text import column_name

__all__ = ["DATABASE", "Printer"]

DATABASE = "posthog"
NOT_NULL = Type("boolean", nullable=False)
_JOIN_WORDS = {
    "GLOBAL",
    "ANY",
    "ALL",
    "ASOF",
    "SEMI",
    "ANTI",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "CROSS",
    "OUTER",
    "JOIN",
}
_ARITHMETIC = {"+": "plus", "-": "minus", "*": "multiply", "/": "divide", "%": "modulo"}
_NUMERIC = {"integer", "float"}


@cache
def _expression_field(hogql: str) -> dict[str, Any]:
    return parse_expr(hogql)


class Printer:
    """Prints one query. ``select()`` returns the SQL and the exported column names and types."""

    def __init__(self, output: Output, database: str = DATABASE) -> None:
        self.out = output
        self.database = database
        self._subqueries = 0
        self.macro_depth = 0  # templates being printed inside templates (PostHog allows 8)
        self.names: dict[int, list[str]] = {}
        """Column names of each printed select list (by the list's id), PostHog's way."""

    # -- queries ---------------------------------------------------------------------------

    def select(self, node: dict[str, Any], parent: Scope | None) -> tuple[str, dict[str, Type]]:
        kind = node.get("node")
        if kind == "SelectSetQuery":
            return self._select_set(node, parent)
        if kind != "SelectQuery":
            raise HogQLError.at(node, f"A {kind} cannot be used as a query here.")
        scope = Scope(parent)
        parts: list[str] = []
        self._ctes(node.get("ctes"), scope)
        from_sql = self._sources(node["select_from"], scope) if node.get("select_from") else ""
        for item in node.get("select") or []:
            self._collect_aliases(item, scope)
        array_join = self._array_join(node, scope)
        columns, select_sql = self._projections(node.get("select") or [], scope)
        head = self.out.word("SELECT") + (
            " " + self.out.word("DISTINCT") if node.get("distinct") else ""
        )
        parts.append(f"{head} {select_sql}")
        clauses = self._clauses(node, scope)
        if from_sql:
            lazy = " ".join(scope.lazy.values())
            parts.append(f"{self.out.word('FROM')} {from_sql}" + (f" {lazy}" if lazy else ""))
        if array_join:
            parts.append(array_join)
        parts.extend(clauses)
        return " ".join(parts), columns

    def _select_set(
        self, node: dict[str, Any], parent: Scope | None
    ) -> tuple[str, dict[str, Type]]:
        first = node["initial_select_query"]
        if first.get("ctes"):  # HogQL puts a union's WITH on its first member; all members see it
            parent = Scope(parent)
            self._ctes(first["ctes"], parent)
            first = {**first, "ctes": None}
        first_sql, columns = self._set_member(first, parent)
        parts = [first_sql]
        for item in node.get("subsequent_select_queries") or []:
            operator = str(item.get("set_operator") or "")
            words = operator.split()
            if operator in ("INTERSECT ALL", "EXCEPT ALL"):
                raise HogQLError.at(
                    item, f"{operator} is not supported in the 'clickhouse' dialect"
                )
            if "NAME" in words:
                raise HogQLError.at(
                    item,
                    f"{operator} is not supported by the local server's ClickHouse; name the "
                    "columns in the same order in each SELECT instead.",
                )
            if not words or any(
                w not in ("UNION", "ALL", "DISTINCT", "INTERSECT", "EXCEPT") for w in words
            ):
                raise HogQLError.at(item, f"Unsupported set operator {operator!r}.")
            sql, _ = self._set_member(item["select_query"], parent)
            parts.append(" ".join(self.out.word(w) for w in words) + " " + sql)
        return " ".join(parts), columns

    def _set_member(
        self, node: dict[str, Any], parent: Scope | None
    ) -> tuple[str, dict[str, Type]]:
        sql, columns = self.select(node, parent)
        return (f"({sql})" if node.get("node") == "SelectSetQuery" else sql), columns

    def _ctes(self, ctes: list[dict[str, Any]] | None, scope: Scope) -> None:
        """WITH: each subquery is printed once, in order, and placed where it is read (as
        ClickHouse does with a CTE anyway); a WITH expression is an alias."""
        for cte in ctes or []:
            name = str(cte["name"])
            _check_cte(cte)
            if cte.get("cte_type") == "column":
                scope.ctes[name] = Cte(name, {}, expr=cte["expr"])
                continue
            sql, columns = self.select(cte["expr"], scope)
            scope.ctes[name] = Cte(name, columns, sql=sql)

    def _collect_aliases(self, node: Any, scope: Scope) -> None:
        """Select aliases can be used anywhere in their SELECT (ClickHouse's alias rules)."""
        _aliases_in(node, scope.aliases)

    def _projections(
        self, items: list[dict[str, Any]], scope: Scope
    ) -> tuple[dict[str, Type], str]:
        columns: dict[str, Type] = {}
        printed: list[str] = []
        names: list[str] = []  # PostHog's `columns`: repeats included
        for item in items:
            chain = item.get("chain") if item.get("node") == "Field" else None
            if chain and chain[-1] == "*":
                for name, value in self._star(item, chain[:-1], scope):
                    printed.append(f"{value.sql} {self.out.word('AS')} {quote(name)}")
                    columns.setdefault(name, value.type)
                    names.append(name)
                continue
            name = column_name(item)
            if item.get("node") == "Alias":
                # `sum(counts) AS counts`: inside its own expression, the name is the column
                scope.expanding.add(name)
                try:
                    value = self.expr(item["expr"], scope)
                finally:
                    scope.expanding.discard(name)
                scope.alias_types[name] = value.type
            else:
                value = self.expr(item, scope)
            names.append(name)
            if name in columns and item.get("node") != "Alias":
                printed.append(value.sql)  # a repeated name is left to the engine, as PostHog does
                continue
            printed.append(f"{value.sql} {self.out.word('AS')} {quote(name)}")
            columns[name] = value.type
        if not printed:
            raise HogQLError("A SELECT needs at least one column.")
        self.names[id(items)] = names
        return columns, ", ".join(printed)

    def _star(
        self, node: dict[str, Any], qualifier: list[Any], scope: Scope
    ) -> list[tuple[str, Value]]:
        if qualifier:
            named = self._source_named(qualifier, scope)
            if named is None:
                raise HogQLError.at(node, f"Unable to resolve field: {qualifier[0]}")
            sources = [named[0]]
        else:
            sources = list(scope.sources.values())
            if not sources:
                raise HogQLError.at(node, "Cannot use '*' when there are no tables in the query")
            if len(sources) > 1:
                raise HogQLError.at(
                    node,
                    "Cannot use '*' without table name when there are multiple tables in the query",
                )
        out = []
        for source in sources:
            names = (
                list(source.columns)
                if source.columns is not None
                else list(source.table.asterisk if source.table else [])
            )
            shown = {old: new for new, old in source.renames.items()}
            out += [
                (
                    shown.get(name, name),
                    self._on_source(source, [shown.get(name, name)], node, scope),
                )
                for name in names
            ]
        return out

    def _clauses(self, node: dict[str, Any], scope: Scope) -> list[str]:
        w = self.out.word
        parts = []
        for key, keyword in (("prewhere", "PREWHERE"), ("where", "WHERE")):
            if node.get(key) is not None:
                parts.append(f"{w(keyword)} {self.expr(node[key], scope).sql}")
        if node.get("group_by") or node.get("group_by_mode") == "all":
            parts.append(self._group_by(node, scope))
        if node.get("having") is not None:
            parts.append(f"{w('HAVING')} {self.expr(node['having'], scope).sql}")
        if node.get("window_exprs"):
            aliases, scope.aliases = scope.aliases, {}  # PostHog resolves WINDOW before SELECT
            try:
                windows = [
                    f"{quote(name)} {w('AS')} ({self._window(spec, scope)})"
                    for name, spec in node["window_exprs"].items()
                ]
            finally:
                scope.aliases = aliases
            parts.append(f"{w('WINDOW')} " + ", ".join(windows))
        if node.get("qualify") is not None:
            raise HogQLError.at(
                node["qualify"], "QUALIFY is not supported in the 'clickhouse' dialect"
            )
        if node.get("order_by"):
            parts.append(f"{w('ORDER')} {w('BY')} " + self._order(node["order_by"], scope))
        if node.get("interpolate") is not None:
            parts.append(self._interpolate(node["interpolate"], scope))
        if node.get("limit_by"):
            limit_by = node["limit_by"]
            exprs = ", ".join(self.expr(e, scope).sql for e in limit_by["exprs"])
            parts.append(
                f"{w('LIMIT')} {self._limit_value(limit_by['n'], scope)} {w('BY')} {exprs}"
            )
        if node.get("limit") is not None:
            ties = f" {w('WITH')} {w('TIES')}" if node.get("limit_with_ties") else ""
            limit = (
                self._limit_percent(node["limit"])
                if node.get("limit_percent")
                else self._limit_value(node["limit"], scope)
            )
            parts.append(f"{w('LIMIT')} {limit}{ties}")
        return parts

    @staticmethod
    def _limit_percent(node: dict[str, Any]) -> str:
        """``LIMIT 40 %``: ClickHouse's fractional LIMIT (0.4 of the rows), as PostHog prints."""
        value = node.get("value")
        if node.get("node") != "Constant" or isinstance(value, bool):
            raise HogQLError.at(
                node, "LIMIT percent with expressions is not supported in clickhouse dialect"
            )
        if not isinstance(value, int | float) or not 0 < value <= 100:
            raise HogQLError.at(node, "LIMIT percent must be a number above 0 and at most 100.")
        return repr(value / 100)

    def _interpolate(self, items: list[dict[str, Any]], scope: Scope) -> str:
        """``INTERPOLATE (c AS c + 1)`` after ``ORDER BY ... WITH FILL``."""
        word = self.out.word("INTERPOLATE")
        if not items:
            return word
        printed = []
        for item in items:
            target, value = item.get("expr") or {}, item.get("value")
            if target.get("node") == "Alias" and value is None:  # `c AS c` read as an alias
                target, value = {"node": "Field", "chain": [target["alias"]]}, target["expr"]
            if target.get("node") != "Field" or len(target["chain"]) != 1:
                raise HogQLError.at(item, "INTERPOLATE takes column names: INTERPOLATE (c AS c).")
            sql = quote(str(target["chain"][0]))
            if value is not None:
                sql += f" {self.out.word('AS')} {self.expr(value, scope).sql}"
            printed.append(sql)
        return f"{word} ({', '.join(printed)})"

    def _limit_value(self, node: dict[str, Any], scope: Scope) -> str:
        if node.get("node") == "Constant" and isinstance(node.get("value"), int):
            return str(int(node["value"]))
        return self.expr(node, scope).sql

    def _group_by(self, node: dict[str, Any], scope: Scope) -> str:
        w = self.out.word
        exprs = ", ".join(self._grouping(e, scope) for e in node.get("group_by") or [])
        mode = str(node.get("group_by_mode") or "").lower()
        if mode in ("rollup", "cube"):
            return f"{w('GROUP')} {w('BY')} {w(mode.upper())}({exprs})"
        if mode == "totals":
            return f"{w('GROUP')} {w('BY')} {exprs} {w('WITH')} {w('TOTALS')}"
        if mode in ("", "none"):
            return f"{w('GROUP')} {w('BY')} {exprs}"
        if mode == "all":
            return f"{w('GROUP')} {w('BY')} {w('ALL')}"
        if mode == "grouping_sets":
            return f"{w('GROUP')} {w('BY')} {w('GROUPING')} {w('SETS')} ({exprs})"
        raise HogQLError.at(node, f"Unsupported GROUP BY mode {mode!r}.")

    def _grouping(self, node: dict[str, Any], scope: Scope) -> str:
        if node.get("node") == "GroupingSet":
            return "(" + ", ".join(self.expr(e, scope).sql for e in node["exprs"]) + ")"
        return self.expr(node, scope).sql

    def _order(self, items: list[dict[str, Any]], scope: Scope) -> str:
        printed = []
        for item in items:
            if item.get("node") != "OrderExpr":
                raise HogQLError.at(item, "Unsupported ORDER BY item.")
            order = str(item.get("order") or "ASC").upper()
            if order not in ("ASC", "DESC"):
                raise HogQLError.at(item, f"Unsupported order {order!r}.")
            sql = f"{self.expr(item['expr'], scope).sql} {self.out.word(order)}"
            fill = item.get("with_fill")
            if fill is not None:
                sql += " " + self._with_fill(fill, scope)
            printed.append(sql)
        return ", ".join(printed)

    def _with_fill(self, fill: dict[str, Any], scope: Scope) -> str:
        w = self.out.word
        parts = [f"{w('WITH')} {w('FILL')}"]
        for key, word in (("from_value", "FROM"), ("to_value", "TO"), ("step_value", "STEP")):
            if fill.get(key) is not None:
                parts.append(f"{w(word)} {self.expr(fill[key], scope).sql}")
        if fill.get("staleness_value") is not None:
            parts.append(f"{w('STALENESS')} {self.expr(fill['staleness_value'], scope).sql}")
        return " ".join(parts)

    def _array_join(self, node: dict[str, Any], scope: Scope) -> str:
        items = node.get("array_join_list")
        if not items:
            return ""
        operator = str(node.get("array_join_op") or "ARRAY JOIN").upper().split()
        if operator not in (
            ["ARRAY", "JOIN"],
            ["LEFT", "ARRAY", "JOIN"],
            ["INNER", "ARRAY", "JOIN"],
        ):
            raise HogQLError.at(node, f"Unsupported {' '.join(operator)}.")
        printed = []
        for item in items:
            if item.get("node") != "Alias":
                raise HogQLError.at(item, "ARRAY JOIN arrays must have an alias")
            value = self.expr(item["expr"], scope)
            alias = str(item["alias"])
            scope.array_joined[alias] = Type()
            printed.append(f"{value.sql} {self.out.word('AS')} {quote(alias)}")
        return " ".join(self.out.word(w) for w in operator) + " " + ", ".join(printed)

    # -- sources ---------------------------------------------------------------------------

    def _sources(self, join: dict[str, Any], scope: Scope) -> str:
        parts: list[str] = []
        while join:
            sql = self._source(join, scope)
            if parts:
                kind = self._join_type(join)
                constraint = join.get("constraint")
                if constraint:
                    sql += " " + self._constraint(constraint, scope)
                sql = f"{kind} {sql}"
            parts.append(sql)
            join = join.get("next_join") or {}
        return " ".join(parts)

    def _join_type(self, join: dict[str, Any]) -> str:
        raw = str(join.get("join_type") or "JOIN").strip()
        if raw == ",":
            return f"{self.out.word('CROSS')} {self.out.word('JOIN')}"
        words = raw.upper().split()
        if not words or words[-1] != "JOIN" or not set(words) <= _JOIN_WORDS:
            raise HogQLError.at(join, f"Unsupported join type {raw!r}.")
        return " ".join(self.out.word(w) for w in words)

    def _constraint(self, constraint: dict[str, Any], scope: Scope) -> str:
        kind = str(constraint.get("constraint_type") or "ON").upper()
        expr = constraint["expr"]
        if kind == "USING":
            fields = expr.get("exprs") if expr.get("node") == "Tuple" else [expr]
            names = []
            for item in fields:
                if item.get("node") != "Field" or len(item["chain"]) != 1:
                    raise HogQLError.at(item, "USING takes column names.")
                names.append(quote(item["chain"][0]))
            return f"{self.out.word('USING')} ({', '.join(names)})"
        if kind != "ON":
            raise HogQLError.at(constraint, f"Unsupported join constraint {kind}.")
        scope.join_on = True
        try:
            return f"{self.out.word('ON')} {self.expr(expr, scope).sql}"
        finally:
            scope.join_on = False

    def _source(self, join: dict[str, Any], scope: Scope) -> str:
        table = join["table"]
        if join.get("table_final"):
            raise HogQLError.at(
                join, "The FINAL keyword is not supported in HogQL as it causes slow queries"
            )
        renames: list[str] = [str(name) for name in join.get("column_aliases") or []]
        alias = join.get("alias")
        kind = table.get("node")
        if kind in ("SelectQuery", "SelectSetQuery"):
            sql, columns = self.select(table, scope)
            if alias is None:
                self._subqueries += 1
                alias = f"__subquery_{self._subqueries}"
            if renames:
                sql, columns = self._renamed(sql, columns, renames, join)
            self._register(scope, Source(str(alias), columns=columns, scope=scope))
            return f"({sql}) {self.out.word('AS')} {quote(alias)}"
        if kind == "HogQLXTag":
            raise HogQLError.at(
                table,
                "HogQLX tags as a table (<HogQLQuery ... />) are not "
                "supported by the local server; write the query as a subquery.",
            )
        if kind != "Field":
            raise HogQLError.at(table, f"A {kind} cannot be used as a SELECT source")
        name = ".".join(str(part) for part in table["chain"])
        if join.get("table_args") is not None:
            return self._table_function(name, join, str(alias or name), scope)
        cte = scope.cte(name) if len(table["chain"]) == 1 else None
        if cte is not None and cte.expr is None:
            alias = str(alias or name)
            self._register(scope, Source(alias, columns=dict(cte.columns), scope=scope))
            return f"({cte.sql}) {self.out.word('AS')} {quote(alias)}"
        spec = _schema.table(name)
        if spec is None and name == "numbers":
            raise HogQLError.at(table, "Table function 'numbers' requires arguments")
        if spec is None:
            raise HogQLError.at(table, f"Unknown table `{name}`.")
        alias = str(alias or name)
        if name not in self.out.tables:
            self.out.tables.append(name)
        stored = list(spec.asterisk)
        if len(renames) > len(stored):
            raise HogQLError.at(
                join,
                f"Table '{name}' has {len(stored)} column(s) but {len(renames)} column name(s) "
                "were provided",
            )
        mapping = dict(zip(renames, stored, strict=False))
        self._register(scope, Source(alias, table=spec, scope=scope, renames=mapping))
        return f"{quote(self.database)}.{quote(spec.stored)} {self.out.word('AS')} {quote(alias)}"

    def _renamed(
        self, sql: str, columns: dict[str, Type], names: list[str], join: dict[str, Any]
    ) -> tuple[str, dict[str, Type]]:
        """``(SELECT 1 AS x) AS s (a)``: the subquery's first columns under the new names."""
        if len(names) > len(columns):
            raise HogQLError.at(
                join,
                f"The subquery has {len(columns)} column(s) but {len(names)} column name(s) "
                "were provided",
            )
        old = list(columns)
        new_names = names + old[len(names) :]
        if len(set(new_names)) != len(new_names):
            raise HogQLError.at(join, "Column names given to a subquery must be unique.")
        self._subqueries += 1
        inner = f"__subquery_{self._subqueries}"
        picked = ", ".join(
            f"{quote(inner)}.{quote(o)} {self.out.word('AS')} {quote(n)}"
            for o, n in zip(old, new_names, strict=True)
        )
        renamed = f"{self.out.word('SELECT')} {picked} {self.out.word('FROM')} ({sql}) "
        renamed += f"{self.out.word('AS')} {quote(inner)}"
        return renamed, {n: columns[o] for o, n in zip(old, new_names, strict=True)}

    def _table_function(self, name: str, join: dict[str, Any], alias: str, scope: Scope) -> str:
        args = join["table_args"]
        if name in ("range", "generate_series"):
            raise HogQLError.at(join, f"{name}() is not supported in ClickHouse dialect")
        if name != "numbers":
            if _schema.table(name) is not None:
                raise HogQLError.at(join, f"Table '{name}' does not accept arguments")
            raise HogQLError.at(join, f"Unknown table `{name}`.")
        if not 1 <= len(args) <= 2:
            raise HogQLError.at(
                join,
                f"Table function '{name}' requires "
                + ("at least 1 argument" if not args else "at most 2 arguments"),
            )
        if _has_query(args):
            raise HogQLError.at(
                join, f"Table function '{name}' takes constant arguments, not subqueries"
            )
        printed = [self.expr(arg, scope).sql for arg in args]
        if "numbers" not in self.out.tables:
            self.out.tables.append("numbers")
        self._register(
            scope, Source(alias, columns={"number": Type("integer", False)}, scope=scope)
        )
        return f"{self.out.call('numbers', *printed)} {self.out.word('AS')} {quote(alias)}"

    def _register(self, scope: Scope, source: Source) -> None:
        if source.alias in scope.sources:
            raise HogQLError(
                f'Already have joined a table called "{source.alias}". Can\'t redefine.'
            )
        scope.sources[source.alias] = source

    # -- expressions -----------------------------------------------------------------------

    def expr(self, node: dict[str, Any], scope: Scope) -> Value:  # noqa: PLR0912
        """Print one expression node."""
        if not isinstance(node, dict):
            raise HogQLError("Unexpected value in the query.")
        kind = node.get("node")
        if kind == "Constant":
            return self.constant(node.get("value"), node)
        if kind == "Field":
            return self.field(node, scope)
        if kind == "Call":
            return _calls.call(self, node, scope)
        if kind == "CompareOperation":
            return self.compare(str(node["op"]), node["left"], node["right"], scope, node)
        if kind in ("And", "Or"):
            return self._logic(kind, node["exprs"], scope)
        if kind == "Not":
            inner = self.expr(node["expr"], scope)
            return Value(self.out.call("not", inner.sql), Type("boolean", inner.type.nullable))
        if kind == "ArithmeticOperation":
            return self._arithmetic(node, scope)
        if kind == "Alias":
            scope.expanding.add(str(node["alias"]))
            try:
                value = self.expr(node["expr"], scope)
            finally:
                scope.expanding.discard(str(node["alias"]))
            scope.alias_types[str(node["alias"])] = value.type
            return Value(f"({value.sql} {self.out.word('AS')} {quote(node['alias'])})", value.type)
        if kind == "Array":
            items = [self.expr(e, scope) for e in node.get("exprs") or []]
            return Value("[" + ", ".join(i.sql for i in items) + "]", Type("array", False))
        if kind == "Tuple":
            items = [self.expr(e, scope) for e in node.get("exprs") or []]
            return Value(self.out.call("tuple", *(i.sql for i in items)), Type("tuple", False))
        if kind in ("ArrayAccess", "TupleAccess"):
            return self._access(node, scope)
        if kind == "Lambda":
            return self._lambda(node, scope)
        if kind == "BetweenExpr":
            return self._between(node, scope)
        if kind in ("SelectQuery", "SelectSetQuery"):
            sql, columns = self.select(node, scope)
            return Value(f"({sql})", next(iter(columns.values()), Type()))
        if kind == "WindowFunction":
            return _calls.window_function(self, node, scope)
        if kind == "HogQLXTag":
            return _calls.hogqlx_tag(self, node, scope)
        if kind == "TypeCast":
            return _calls.type_cast(self, node, scope)
        if kind == "TryCast":
            raise HogQLError.at(node, "TRY_CAST is not allowed in clickhouse dialect")
        if kind == "ArraySlice":
            return self._slice(node, scope)
        if kind == "Dict":
            tagged = ["'__hx_tag'", "'__hx_obj'"]
            for key, value in node.get("items") or []:
                tagged += [self.expr(key, scope).sql, self.expr(value, scope).sql]
            return Value(self.out.call("tuple", *tagged), Type("tuple", False))
        if kind == "ExprCall":
            raise HogQLError.at(
                node, "You can only call simple functions in HogQL, not expressions"
            )
        if kind == "Placeholder":
            raise HogQLError.at(
                node,
                "Unresolved placeholder: {" + str(node.get("expr", {}).get("chain", [""])[0]) + "}",
            )
        raise HogQLError.at(node, f"Unsupported syntax: {kind}.")

    def constant(self, value: Any, node: dict[str, Any] | None = None) -> Value:
        if value is None:
            return Value(self.out.word("NULL"), Type("unknown", True), True, None)
        if isinstance(value, bool):
            return Value("1" if value else "0", Type("boolean", False), True, value)
        if isinstance(value, int):
            return Value(
                f"({value})" if value < 0 else str(value), Type("integer", False), True, value
            )
        if isinstance(value, float):
            if not math.isfinite(value):
                text = "nan" if math.isnan(value) else ("-inf" if value < 0 else "inf")
                return Value(
                    self.out.word(text.lstrip("-"))
                    if value > 0 or math.isnan(value)
                    else f"(-{self.out.word('inf')})",
                    Type("float", False),
                    True,
                    value,
                )
            return Value(
                f"({value!r})" if value < 0 else repr(value), Type("float", False), True, value
            )
        if isinstance(value, str | list):
            try:
                kind, text = parameter(value)
            except ParameterError as exc:
                raise HogQLError.at(node, f"Unsupported value: {exc}.") from None
            kind_name = "string" if isinstance(value, str) else "array"
            return Value(self.out.param(kind, text), Type(kind_name, False), True, value)
        raise HogQLError.at(node, f"Unsupported constant of type {type(value).__name__}.")

    def _logic(self, kind: str, exprs: list[dict[str, Any]], scope: Scope) -> Value:
        stop, skip = ("0", "1") if kind == "And" else ("1", "0")
        printed = [self.expr(e, scope) for e in exprs]
        kept = [p for p in printed if p.sql != skip]
        if any(p.sql == stop for p in kept):
            return Value(stop, NOT_NULL, True, stop == "1")
        if not kept:
            return Value(skip, NOT_NULL, True, skip == "1")
        nullable = any(p.type.nullable for p in kept)
        if len(kept) == 1:
            return kept[0]
        return Value(self.out.call(kind.lower(), *(p.sql for p in kept)), Type("boolean", nullable))

    def _arithmetic(self, node: dict[str, Any], scope: Scope) -> Value:
        op = node.get("op")
        if op not in _ARITHMETIC:
            raise HogQLError.at(node, f"Unsupported operator {op!r}.")
        left, right = self.expr(node["left"], scope), self.expr(node["right"], scope)
        kind = (
            "float"
            if op == "/" or "float" in (left.type.kind, right.type.kind)
            else ("integer" if left.type.kind == right.type.kind == "integer" else "unknown")
        )
        return Value(
            self.out.call(_ARITHMETIC[op], left.sql, right.sql),
            Type(kind, left.type.nullable or right.type.nullable),
        )

    def _between(self, node: dict[str, Any], scope: Scope) -> Value:
        values = [self.expr(node[k], scope) for k in ("expr", "low", "high")]
        negated = f" {self.out.word('NOT')}" if node.get("negated") else ""
        between, and_ = self.out.word("BETWEEN"), self.out.word("AND")
        sql = f"({values[0].sql}{negated} {between} {values[1].sql} {and_} {values[2].sql})"
        if any(v.type.nullable for v in values) and not scope.join_on:
            sql = self.out.call("ifNull", sql, "0")
        return Value(sql, NOT_NULL)

    def _slice(self, node: dict[str, Any], scope: Scope) -> Value:
        """``arr[2:4]``: ``arraySlice(arr, 2, 4 - 2 + 1)``, both ends included, as PostHog."""
        array = self.expr(node["array"], scope).sql
        start = self.expr(node["start_expr"], scope).sql if node.get("start_expr") else "1"
        if node.get("end_expr") is None:
            return Value(self.out.call("arraySlice", array, start), Type("array", False))
        end = self.expr(node["end_expr"], scope).sql
        length = self.out.call("plus", self.out.call("minus", end, start), "1")
        return Value(self.out.call("arraySlice", array, start, length), Type("array", False))

    def _lambda(self, node: dict[str, Any], scope: Scope) -> Value:
        args = [str(a) for a in node.get("args") or []]
        if not args:
            raise HogQLError.at(node, "A lambda needs arguments.")
        # An alias made inside a lambda is the lambda's own: ClickHouse does not see it outside,
        # so neither does the printer (else a bare name could fall through to system.one).
        local: dict[str, dict[str, Any]] = {}
        _aliases_in(node["expr"], local)
        scope.lambdas.append(set(args))
        scope.lambda_aliases.append(local)
        try:
            body = self.expr(node["expr"], scope)
        finally:
            scope.lambdas.pop()
            scope.lambda_aliases.pop()
        head = quote(args[0]) if len(args) == 1 else "(" + ", ".join(map(quote, args)) + ")"
        return Value(f"{head} -> {body.sql}", body.type)

    def _access(self, node: dict[str, Any], scope: Scope) -> Value:
        folded = self._property_path(node)
        if folded is not None:
            base, path = folded
            return self.field({**base, "chain": [*base["chain"], *path]}, scope)
        if node["node"] == "TupleAccess":
            index = node.get("index")
            if index == 0:
                raise HogQLError.at(node, "SQL indexes start from one, not from zero. E.g: array.1")
            inner = self.expr(node["tuple"], scope)
            return Value(self.out.call("tupleElement", inner.sql, str(int(index or 0))), Type())
        array = self.expr(node["array"], scope)
        index_node = node["property"]
        if index_node.get("node") == "Constant" and index_node.get("value") == 0:
            raise HogQLError.at(node, "SQL indexes start from one, not from zero. E.g: array[1]")
        index = self.expr(index_node, scope)
        return Value(self.out.call("arrayElement", array.sql, index.sql), Type())

    @staticmethod
    def _property_path(node: dict[str, Any]) -> tuple[dict[str, Any], list[Any]] | None:
        """``properties['a'][1]`` and ``properties.a.1``: constant accesses on a property chain."""
        path: list[Any] = []
        while node.get("node") in ("ArrayAccess", "TupleAccess"):
            if node["node"] == "TupleAccess":
                if node["index"] == 0:
                    raise HogQLError.at(
                        node, "SQL indexes start from one, not from zero. E.g: array.1"
                    )
                path.insert(0, int(node["index"]))
                node = node["tuple"]
            else:
                key = node["property"]
                if (
                    key.get("node") != "Constant"
                    or not isinstance(key.get("value"), str | int)
                    or (isinstance(key.get("value"), bool))
                ):
                    return None
                path.insert(0, key["value"])
                node = node["array"]
        if node.get("node") == "Field" and "properties" in [str(c) for c in node["chain"]]:
            if 0 in path:
                raise HogQLError.at(
                    node, "SQL indexes start from one, not from zero. E.g: array[1]"
                )
            return node, path
        return None

    # -- comparisons -----------------------------------------------------------------------

    def compare(
        self,
        op: str,
        left_node: dict[str, Any],
        right_node: dict[str, Any],
        scope: Scope,
        node: dict[str, Any] | None = None,
    ) -> Value:
        """A comparison with HogQL's NULL semantics (PostHog's printer, rule by rule)."""
        if op in ("in cohort", "not in cohort"):
            return _calls.in_cohort(self, op, left_node, right_node, scope)
        if op in ("in", "not in", "global in", "global not in"):
            return self._in(op, left_node, right_node, scope)
        left, right = self.expr(left_node, scope), self.expr(right_node, scope)
        plain = self._compare_sql(op, left.sql, right.sql, node)
        if left.constant and right.constant and op in ("==", "!=", "<", ">", "<=", ">="):
            folded = _fold(op, left.value, right.value)
            if folded is not None:
                return Value("1" if folded else "0", NOT_NULL, True, folded)
        if scope.join_on or not (left.type.nullable or right.type.nullable):
            return Value(plain, NOT_NULL)
        return Value(self._null_safe(op, left, right, plain), NOT_NULL)

    def _compare_sql(self, op: str, left: str, right: str, node: dict[str, Any] | None) -> str:
        call = self.out.call
        simple = {
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
        }
        if op in simple:
            return call(simple[op], left, right)
        if op in ("=~", "!~", "=~*", "!~*"):
            pattern = right if "*" not in op else call("concat", "'(?i)'", right)
            matched = call("match", left, pattern)
            return matched if op.startswith("=") else call("not", matched)
        raise HogQLError.at(node, f"Unsupported comparison operator {op!r}.")

    def _null_safe(self, op: str, left: Value, right: Value, plain: str) -> str:
        call = self.out.call
        left_null = left.constant and left.value is None
        right_null = right.constant and right.value is None
        positive = op in ("==", "like", "ilike", "=~", "=~*")
        if op in ("==", "like", "ilike", "!=", "not like", "not ilike"):
            test = "isNull" if positive else "isNotNull"
            if right_null:
                return call(test, left.sql)
            if left_null:
                return call(test, right.sql)
            if left.constant or right.constant:
                return call("ifNull", plain, "0" if positive else "1")
            return call("ifNull", plain, self._both_null(positive, left, right))
        if op in ("<", ">", "<=", ">="):
            return "0" if left_null or right_null else call("ifNull", plain, "0")
        if left_null and right_null:
            return "1" if positive else "0"
        return call("ifNull", plain, self._both_null(positive, left, right))

    def _both_null(self, positive: bool, left: Value, right: Value) -> str:
        """``isNull(a) and isNull(b)`` (NULL = NULL is true) or its negation, as PostHog's."""
        if positive:
            test, joiner = "isNull", self.out.word("and")
        else:
            test, joiner = "isNotNull", self.out.word("or")
        return f"{self.out.call(test, left.sql)} {joiner} {self.out.call(test, right.sql)}"

    def _in(
        self, op: str, left_node: dict[str, Any], right_node: dict[str, Any], scope: Scope
    ) -> Value:
        left = self.expr(left_node, scope)
        kind = right_node.get("node")
        if kind in ("Field",) and not self._is_value_field(right_node, scope):
            raise HogQLError.at(
                right_node,
                "The right side of IN must be a list, a tuple, an array or a subquery, e.g. "
                "`x IN (SELECT id FROM persons)` or `x IN ('a', 'b')`.",
            )
        right = self.expr(right_node, scope)
        if kind == "Constant" and isinstance(right_node.get("value"), list):
            # one hash set instead of comparing each row with every item (measured: 0.3 s vs 22 s)
            right = Value(f"({self.out.word('SELECT')} {self.out.call('arrayJoin', right.sql)})")
        elif kind == "Constant":
            right = Value(f"({right.sql})")
        words = {
            "in": ["IN"],
            "not in": ["NOT", "IN"],
            "global in": ["GLOBAL", "IN"],
            "global not in": ["GLOBAL", "NOT", "IN"],
        }[op]
        sql = f"({left.sql} {' '.join(self.out.word(w) for w in words)} {right.sql})"
        if "not" in op and left.type.nullable and not scope.join_on:
            # the engine runs with transform_null_in = 1 as PostHog's does; a NULL left side of
            # NOT IN is then true, and PostHog's printer also wraps it so (ifNull(..., 1))
            sql = self.out.call("ifNull", sql, "1")
        return Value(sql, NOT_NULL)

    def _is_value_field(self, node: dict[str, Any], scope: Scope) -> bool:
        """Whether a bare name on the right of IN is a value (an alias), not a table."""
        chain = node["chain"]
        return len(chain) == 1 and (chain[0] in scope.aliases or scope.is_lambda_arg(str(chain[0])))

    # -- fields ----------------------------------------------------------------------------

    def field(self, node: dict[str, Any], scope: Scope) -> Value:
        chain = list(node["chain"])
        _check_identifiers(node, chain)
        first = str(chain[0])
        if (
            len(chain) == 1
            and first not in scope.expanding
            and any(first in local for local in scope.lambda_aliases)
        ):
            return Value(quote(first), Type())
        if scope.is_lambda_arg(first) or first in scope.array_joined:
            return self._rest(
                Value(quote(first), scope.array_joined.get(first, Type())), chain[1:], node
            )
        if first in scope.aliases and first not in scope.expanding and len(chain) == 1:
            if first not in scope.alias_types:
                scope.expanding.add(first)
                try:
                    scope.alias_types[first] = self.expr(scope.aliases[first], scope).type
                finally:
                    scope.expanding.discard(first)
            return Value(quote(first), scope.alias_types[first])
        cte = scope.cte(first) if len(chain) == 1 else None
        if cte is not None and cte.expr is not None and first not in scope.expanding:
            scope.expanding.add(first)
            try:
                return self.expr(cte.expr, scope)
            finally:
                scope.expanding.discard(first)
        named = self._source_named(chain, scope)
        if named is not None:
            source, length = named
            rest = chain[length:]
            if not rest:
                raise HogQLError.at(
                    node, f"Can't select a table when a column is expected: {first}"
                )
            return self._on_source(source, rest, node, scope)
        found = [s for s in scope.sources.values() if self._has_field(s, first)]
        if len(found) > 1:
            raise HogQLError.at(node, f"Ambiguous query. Found multiple sources for field: {first}")
        if found:
            return self._on_source(found[0], chain, node, scope)
        cte_named = scope.cte(first)
        if cte_named is not None and cte_named.expr is not None:
            raise HogQLError.at(node, f"Cannot access fields on CTE {first} yet")
        raise HogQLError.at(node, f"Unable to resolve field: {first}")

    @staticmethod
    def _source_named(chain: list[Any], scope: Scope) -> tuple[Source, int] | None:
        """The source a chain starts with (``e.event``, ``system.cohorts.name``) and its length."""
        for length in (2, 1):
            name = ".".join(str(c) for c in chain[:length])
            if len(chain) >= length and name in scope.sources:
                return scope.sources[name], length
        return None

    @staticmethod
    def _has_field(source: Source, name: str) -> bool:
        if name in source.renames:
            return True
        if name in source.renames.values():
            return False
        if source.columns is not None:
            return name in source.columns
        return source.table is not None and name in source.table.fields

    def _on_source(
        self, source: Source, chain: list[Any], node: dict[str, Any], scope: Scope
    ) -> Value:
        name = str(chain[0])
        if source.renames:
            if name in source.renames:
                name = source.renames[name]
            elif name in source.renames.values():
                raise HogQLError.at(node, f"Field not found: {name}")
            source = Source(source.alias, source.table, source.columns, source.scope)
        rest = chain[1:]
        qualified = f"{quote(source.alias)}.{quote(name)}"
        if source.columns is not None:
            if name not in source.columns:
                raise HogQLError.at(node, f"Field not found: {name}")
            return self._rest(Value(qualified, Type(source.columns[name].kind, True)), rest, node)
        assert source.table is not None
        spec = source.table.fields.get(name)
        if spec is None:
            raise HogQLError.at(node, f"Field not found: {name}")
        if isinstance(spec, _schema.Column):
            value = Value(f"{quote(source.alias)}.{quote(spec.stored)}", spec.type)
            return self._rest(value, rest, node)
        if isinstance(spec, _schema.Properties):
            column = f"{quote(source.alias)}.{quote(spec.stored)}"
            if not rest:
                return Value(column, Type("json", False))
            definitions = {} if node.get("untyped") else spec.definitions
            return self.property(column, rest, definitions, node)
        if isinstance(spec, _schema.Expression):
            inner = Scope(scope, sources={source.alias: source})
            value = self.expr(_expression_field(spec.hogql), inner)
            return self._rest(value, rest, node)
        if isinstance(spec, _schema.Virtual):
            if not rest or str(rest[0]) not in spec.fields:
                raise HogQLError.at(node, f"Field not found: {rest[0] if rest else name}")
            return self._on_source(source, [spec.fields[str(rest[0])], *rest[1:]], node, scope)
        return self._through_join(source, spec, rest, node, scope)

    def _through_join(
        self,
        source: Source,
        join: _schema.Join,
        rest: list[Any],
        node: dict[str, Any],
        scope: Scope,
    ) -> Value:
        if not rest:
            raise HogQLError.at(
                node, f"Can't select a table when a column is expected: {join.name}"
            )
        shortcut = join.shortcuts.get(str(rest[0]))
        if shortcut is not None:
            return self._on_source(source, [shortcut, *rest[1:]], node, scope)
        target = _schema.table(join.table)
        assert target is not None
        owner = source.scope or scope
        alias = f"{source.alias}__{join.name}"
        if alias not in owner.lazy:
            local = self._on_source(source, [join.local], node, scope).sql
            how = " ".join(self.out.word(w) for w in join.how.split())
            owner.lazy[alias] = (
                f"{how} {quote(self.database)}.{quote(target.stored)} {self.out.word('AS')} "
                f"{quote(alias)} {self.out.word('ON')} "
                + self.out.call("equals", local, f"{quote(alias)}.{quote(join.remote)}")
            )
        joined = Source(alias, table=target, scope=owner)
        return self._on_source(joined, rest, node, scope)

    def _rest(self, value: Value, rest: list[Any], node: dict[str, Any]) -> Value:
        for part in rest:
            if isinstance(part, int):
                value = Value(self.out.call("tupleElement", value.sql, str(part)), Type())
            else:
                raise HogQLError.at(node, f"Field not found: {part}")
        return value

    def property(
        self, column: str, path: list[Any], definitions: dict[str, str], node: dict[str, Any]
    ) -> Value:
        """A property read as PostHog reads its JSON: missing or JSON null is NULL, text else."""
        if str(path[0]).startswith("$virt_"):
            # PostHog computes these (traffic type, channel...); a NULL here would be a silent lie
            raise HogQLError.at(
                node,
                f"PostHog's computed property `{path[0]}` is not emulated by the local server.",
            )
        call = self.out.call
        keys = []
        for key in path:
            if isinstance(key, int) and not isinstance(key, bool):
                keys.append(f"({key})" if key < 0 else str(key))
            else:
                keys.append(self.out.param(*parameter(str(key))))
        raw = call("JSONExtractRaw", column, *keys)
        sql = call(
            "replaceRegexpAll",
            call("nullIf", call("nullIf", raw, "''"), "'null'"),
            "'^\"|\"$'",
            "''",
        )
        kind = definitions.get(str(path[0])) if len(path) == 1 else None
        if kind == "Numeric":
            return Value(call("accurateCastOrNull", sql, "'Float64'"), Type("float"))
        if kind == "DateTime":
            return Value(
                call("parseDateTime64BestEffortOrNull", sql, "6", "'UTC'"), Type("datetime")
            )
        if kind == "Boolean":
            return Value(
                call("transform", sql, "['true', 'false']", "[1, 0]", "NULL"), Type("boolean")
            )
        return Value(sql, Type("string", True))

    def _window(self, spec: dict[str, Any], scope: Scope) -> str:
        return _calls.window_spec(self, spec, scope)


def _aliases_in(node: Any, found: dict[str, dict[str, Any]]) -> None:
    """The aliases made in an expression, not inside its subqueries or lambdas (their own)."""
    if isinstance(node, dict):
        kind = node.get("node")
        if kind in ("SelectQuery", "SelectSetQuery", "Lambda"):
            return
        if kind == "Alias":
            _check_identifiers(node, [node["alias"]])
            found.setdefault(str(node["alias"]), node["expr"])
        for value in node.values():
            _aliases_in(value, found)
    elif isinstance(node, list):
        for value in node:
            _aliases_in(value, found)


def _has_query(node: Any) -> bool:
    if isinstance(node, dict):
        return node.get("node") in ("SelectQuery", "SelectSetQuery") or any(
            _has_query(v) for v in node.values()
        )
    return isinstance(node, list) and any(_has_query(v) for v in node)


def _check_identifiers(node: dict[str, Any], names: list[Any]) -> None:
    for name in names:
        if isinstance(name, str) and "%" in name:
            raise HogQLError.at(
                node,
                f'The HogQL identifier "{name}" is not permitted as it contains the "%" character',
            )


def _fold(op: str, left: Any, right: Any) -> bool | None:
    """PostHog folds a comparison of two constants: NULL equals NULL, NULL orders as false."""
    if left is None or right is None:
        if op == "==":
            return left is None and right is None
        if op == "!=":
            return not (left is None and right is None)
        return False
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
    if not numeric and not (isinstance(left, str) and isinstance(right, str)):
        return None
    outcomes: dict[str, bool] = {
        "==": left == right,
        "!=": left != right,
        "<": left < right,
        ">": left > right,
        "<=": left <= right,
        ">=": left >= right,
    }
    return outcomes[op]


def _check_cte(cte: dict[str, Any]) -> None:
    """WITH forms PostHog refuses in its ClickHouse dialect."""
    if cte.get("materialized") is not None:
        raise HogQLError.at(
            cte, "CTE materialization hints are not supported in the 'clickhouse' dialect"
        )
    if cte.get("using_key") is not None:
        raise HogQLError.at(cte, "CTE USING KEY is not supported in the 'clickhouse' dialect")
    if cte.get("recursive"):
        raise HogQLError.at(cte, "Recursive CTEs are only supported in PostgreSQL dialect")
    if cte.get("cte_type") == "subquery" and cte.get("columns") is not None:
        raise HogQLError.at(cte, "CTE column name lists are not supported in this dialect")
