"""HogQL in, checked ClickHouse SQL out: parse, check against allow-lists, rewrite the sugar.

The user's text is parsed once (sqlglot's ClickHouse dialect, taught HogQL's ``$`` identifiers and
``{name}`` placeholders); the tree is checked (one SELECT, known tables only, allow-listed
functions, no SETTINGS/FORMAT/INTO, no OFFSET) and rewritten (tables into the engine database,
``properties.$x`` / ``person.properties.x`` into JSON paths, placeholders into typed query
parameters, the default LIMIT). Only SQL generated from the checked tree reaches the engine;
comments are dropped on the way, so nothing hides in them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import TokenType

from .catalog import EVENT_PROPERTIES, PERSON_PROPERTIES, TABLES
from .functions import is_allowed_function
from .guard import UnsafeSQLError, check_engine_sql
from .params import ParameterError, parameter

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "OFFSET_MESSAGE",
    "CompiledQuery",
    "HogQLError",
    "compile_query",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 50_000
MAX_TOKENS = 20_000  # measured: sqlglot compiles 20,000 tokens in about 0.6 s, 98,000 in 4 s
OFFSET_MESSAGE = (
    "OFFSET is not supported on queries made with a personal API key. For pagination, use keyset "
    "pagination on the `timestamp` column, e.g. `WHERE timestamp > :last_seen_timestamp ORDER BY "
    "timestamp LIMIT N`."
)


_TOKEN = re.compile(r"\w+|[^\w\s]")


class HogQLError(Exception):
    """A query the server refuses; ``code`` and ``detail`` go into PostHog's 400 body."""

    def __init__(self, detail: str, code: str = "hogql_query_error") -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


class _Dialect(ClickHouse):
    """ClickHouse as sqlglot knows it, plus HogQL's ``$browser`` identifiers and ``{name}``."""

    class Tokenizer(ClickHouse.Tokenizer):
        HEREDOC_STRINGS = []  # noqa: RUF012 (sqlglot's own class API)
        SINGLE_TOKENS = {k: v for k, v in ClickHouse.Tokenizer.SINGLE_TOKENS.items() if k != "$"}  # noqa: RUF012

    class Parser(ClickHouse.Parser):  # type: ignore[misc,valid-type]  # sqlglot nests its classes
        def _parse_query_parameter(self) -> exp.Expr | None:
            index = self._index
            this = self._parse_id_var()
            if this is not None and self._match(TokenType.R_BRACE):
                placeholder: exp.Expr = self.expression(exp.Placeholder(this=exp.var(this.name)))
                return placeholder
            self._retreat(index)
            typed: exp.Expr | None = super()._parse_query_parameter()
            return typed

    class Generator(ClickHouse.Generator):  # type: ignore[misc,valid-type]
        def placeholder_sql(self, expression: exp.Placeholder) -> str:
            if expression.args.get("kind") is None:
                return "{" + expression.name + "}"
            return str(super().placeholder_sql(expression))


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """The engine SQL and its parameters, plus what the response reports about the query."""

    sql: str
    params: dict[str, Any]
    hogql: str
    paginated: bool
    limit: int | None


_REFUSED_NODES: tuple[type[exp.Expr], ...] = tuple(
    cls
    for name in (
        "Insert", "Update", "Delete", "Create", "Drop", "Alter", "Command", "Set", "Use",
        "Merge", "Copy", "Describe", "Kill", "Pragma", "Transaction", "Commit", "Rollback",
        "Grant", "Revoke", "TruncateTable", "Analyze", "Cache", "Uncache", "LoadData", "Refresh",
    )
    if isinstance(cls := getattr(exp, name, None), type)
)  # fmt: skip


def compile_query(text: str, values: dict[str, Any] | None, database: str) -> CompiledQuery:
    """Check ``text`` and turn it into engine SQL against ``database``; raise ``HogQLError``."""
    tree = _parse_one(text)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    _check(tree, ctes, values or {})
    tree, paginated, limit = _apply_limit(tree)
    hogql = tree.sql(dialect=_Dialect, comments=False)
    params = _bind_placeholders(tree, values or {})
    _rewrite_properties(tree)
    _rewrite_safe_casts(tree)
    _rewrite_tables(tree, ctes, database)
    # Every identifier quoted: an unquoted one is re-read by ClickHouse, which knows syntax
    # sqlglot does not (a `$a$` identifier opens a ClickHouse heredoc string, for one).
    sql = tree.sql(dialect=_Dialect, comments=False, identify=True)
    _guard(sql, params)
    return CompiledQuery(sql=sql, params=params, hogql=hogql, paginated=paginated, limit=limit)


def _guard(sql: str, params: dict[str, Any]) -> None:
    """The final lexical wall: the engine SQL is one SELECT made only of words we know."""
    try:
        check_engine_sql(sql, _ENGINE_WORDS, params)
    except UnsafeSQLError as exc:
        raise HogQLError(
            f"The query cannot be run safely: its SQL would contain {exc.reason}. Quote names "
            "with special characters in backticks, and write units and types as plain words "
            "(e.g. dateDiff('day', a, b), INTERVAL 1 DAY).",
            "hogql_query_error",
        ) from None


# Bare words the engine SQL may contain: SQL keywords, type and unit names, and function names.
# Anything else outside quotes (a `$a$` heredoc above all) is refused by the guard. Keywords that
# write, configure or leave the database (INTO, OUTFILE, SETTINGS, FORMAT, KILL, ...) are absent.
_KEYWORDS = """
select distinct from where group by having order limit with as and or not in is null true false
like ilike between case when then else end join inner left right full outer cross array any
all asof semi anti global using on union except intersect asc desc nulls first last interval
over partition rows range unbounded preceding following current row window exists cast
totals rollup cube fill step to collate extract
second minute hour day week month quarter year millisecond microsecond nanosecond
string int8 int16 int32 int64 int128 int256 uint8 uint16 uint32 uint64 uint128 uint256
float32 float64 decimal bool boolean date date32 datetime datetime64 uuid nullable
lowcardinality tuple map json dynamic nothing ipv4 ipv6 text varchar char integer double
float bigint smallint tinyint timestamp
"""
_DENIED_KNOWN_WORDS = {"read_csv", "read_parquet", "to_file", "sleep", "version"}
_SQLGLOT_WORDS = frozenset(_KEYWORDS.split()) | frozenset(
    name.lower()
    for func in exp.ALL_FUNCTIONS
    for name in func.sql_names()
    if name.lower() not in _DENIED_KNOWN_WORDS
)


class _EngineWords:
    """Keywords, sqlglot's own function names, and allowed functions with their combinators."""

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and (word in _SQLGLOT_WORDS or is_allowed_function(word))


_ENGINE_WORDS = _EngineWords()


def _parse_one(text: str) -> exp.Expr:
    if not text.strip():
        raise HogQLError("Empty query.", "hogql_syntax_error")
    tokens = len(_TOKEN.findall(text))
    if tokens > MAX_TOKENS:
        raise HogQLError(
            f"The query has about {tokens:,} tokens, over the local server's limit of "
            f"{MAX_TOKENS:,}; pass long lists as one value (`x IN {{names}}`) or shorten it.",
            "hogql_syntax_error",
        )
    try:
        statements = [s for s in sqlglot.parse(text, dialect=_Dialect) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        description = str(first.get("description", ""))
        if not description or "<class" in description:  # sqlglot internals are no help to users
            first = {**first, "description": "invalid or unsupported syntax"}
        where = f" (line {first.get('line')}, column {first.get('col')})" if first else ""
        raise HogQLError(
            f"Syntax error{where}: {first.get('description', 'invalid query')}.",
            "hogql_syntax_error",
        ) from None
    except TokenError:
        raise HogQLError(
            "Syntax error: the query could not be tokenized.", "hogql_syntax_error"
        ) from None
    if len(statements) != 1:
        raise HogQLError(
            "Only one statement is allowed per query; remove everything after the first `;`."
        )
    root = statements[0]
    if not isinstance(root, exp.Select | exp.SetOperation):
        kind = root.key.upper() if not isinstance(root, exp.Command) else str(root.this).upper()
        raise HogQLError(f"Only SELECT queries are allowed, got {kind}.")
    return root


def _check(tree: exp.Expr, ctes: set[str], values: dict[str, Any]) -> None:
    for node in tree.walk():
        if isinstance(node, _REFUSED_NODES):
            raise HogQLError(f"Only SELECT queries are allowed, got {node.key.upper()}.")
        if isinstance(node, exp.Query):
            for clause in ("settings", "format", "into"):
                if node.args.get(clause):
                    raise HogQLError(f"{clause.upper()} clauses are not allowed in HogQL queries.")
        if isinstance(node, exp.Offset) or (
            isinstance(node, exp.Limit) and node.args.get("offset")
        ):
            raise HogQLError(OFFSET_MESSAGE)
        if isinstance(node, exp.Placeholder):
            _check_placeholder(node, values)
        if isinstance(node, exp.Table):
            _check_table(node, _visible_ctes(node))
        if isinstance(node, exp.From | exp.Join):
            _check_source(node)
        if isinstance(node, exp.Identifier):
            _check_identifier(node)
        if isinstance(node, exp.In | exp.Func):
            _check_call(node)


def _check_call(node: exp.In | exp.Func) -> None:
    if isinstance(node, exp.In):
        _check_in_target(node.args.get("field") or _single(node.expressions))
        return
    name = _function_name(node)
    if name is not None and not is_allowed_function(name):
        raise HogQLError(f"Unsupported function call `{name}(...)`.")
    if isinstance(node, exp.Anonymous) and str(node.name).lower() in _IN_FUNCTIONS:
        _check_in_target(_single(node.expressions[1:]))


_IN_FUNCTIONS = frozenset({"in", "notin", "globalin", "globalnotin"})


def _single(items: list[exp.Expr]) -> exp.Expr | None:
    return items[0] if len(items) == 1 else None


def _check_in_target(target: exp.Expr | None) -> None:
    """ClickHouse reads a bare name on the right of IN as a table: ``x IN system.one``."""
    if isinstance(target, exp.Column | exp.Table | exp.Dot):
        shown = target.sql(dialect=_Dialect)[:60]
        raise HogQLError(
            f"`IN {shown}`: the right side of IN must be a list, a tuple, an array or a "  # noqa: S608 (an error text)
            "subquery, e.g. `x IN (SELECT id FROM persons)` or `x IN ('a', 'b')`."
        )


def _visible_ctes(node: exp.Expr) -> set[str]:
    """CTE names in scope at ``node``: those of the WITH clauses of the queries around it."""
    names: set[str] = set()
    parent = node.parent
    while parent is not None:
        with_ = parent.args.get("with_") or parent.args.get("with")
        if isinstance(parent, exp.Query) and isinstance(with_, exp.With):
            names.update(cte.alias_or_name for cte in with_.expressions)
        parent = parent.parent
    return names


_HOGQL_IDENTIFIER = re.compile(r"^\$?[A-Za-z_0-9]*$")


def _check_source(node: exp.From | exp.Join) -> None:
    """What a FROM or JOIN reads must be a table or a subquery (checked on its own)."""
    target = node.this
    if isinstance(node, exp.Join) and node.args.get("kind") == "ARRAY":
        # ARRAY JOIN takes array expressions; a query in it escapes the table checks.
        if target.find(exp.Query) is not None:
            raise HogQLError("ARRAY JOIN of a subquery is not supported; join the subquery.")
        return
    if not isinstance(target, exp.Table | exp.Subquery):
        raise HogQLError(
            f"Unsupported table expression `{target.sql(dialect=_Dialect)[:80]}`; select FROM "
            "a HogQL table or a subquery."
        )


def _check_identifier(node: exp.Identifier) -> None:
    # HogQL names are letters, digits and underscores, with an optional leading `$`; other
    # characters need quotes. ClickHouse would read `$tag$` as the start of a string.
    if not node.quoted and not _HOGQL_IDENTIFIER.match(node.name):
        raise HogQLError(
            f"Invalid identifier `{node.name[:60]}`; quote names with special characters "
            "in backticks."
        )


def _check_placeholder(node: exp.Placeholder, values: dict[str, Any]) -> None:
    if node.args.get("kind") is not None:
        raise HogQLError(
            "Typed query parameters like {name:Type} are not supported; write {name} and pass "
            "the value in `values`."
        )
    if node.name not in values:
        raise HogQLError(f"Placeholder {{{node.name}}} is not available in this context.")


def _check_table(node: exp.Table, ctes: set[str]) -> None:
    if not isinstance(node.this, exp.Identifier):
        name = (
            node.this.name if isinstance(node.this, exp.Func | exp.Anonymous) else node.this.sql()
        )
        raise HogQLError(
            f"Table functions are not allowed: `{name}(...)`. Query a HogQL table instead."
        )
    if node.args.get("catalog"):
        raise HogQLError(f"Unknown table `{node.sql(dialect=_Dialect)}`.")
    db = node.args.get("db")
    full = f"{db.name}.{node.name}" if db is not None else node.name
    if full in TABLES and (db is None or TABLES[full].kind == "system"):
        return
    if db is None and node.name in ctes:
        return
    if db is not None and db.name.lower() == "system":
        raise HogQLError(f"Access to the table `{full}` is not allowed.", "table_access_denied")
    raise HogQLError(f"Unknown table `{full}`.")


_DENIED_KNOWN = frozenset(
    {"read_csv", "read_parquet", "read_json", "current_user", "current_database", "current_schema",
     "session_user", "current_catalog", "sleep", "version"}
)  # fmt: skip
_NAMED_FUNCS = (exp.Anonymous, exp.AnonymousAggFunc, exp.ParameterizedAgg, exp.CombinedAggFunc)


def _function_name(node: exp.Func) -> str | None:
    """The name to check: user-spelled for functions sqlglot does not know, else its SQL name."""
    if isinstance(node, _NAMED_FUNCS):
        return str(node.name)
    # Functions sqlglot models itself (count, if, has, cast, ...) are ordinary SQL functions;
    # only the few that reach outside the data are refused.
    name = str(node.sql_name())
    return name if name.lower() in _DENIED_KNOWN else None


# HogQL's forgiving casts, as PostHog maps them (posthog/hogql/functions/mapping.py): a value that
# does not convert becomes NULL instead of failing the query. ClickHouse has no such names.
_SAFE_CASTS = {
    "toint": "Int64",
    "tointornull": "Int64",
    "tofloat": "Float64",
    "tofloatornull": "Float64",
}


def _rewrite_safe_casts(tree: exp.Expr) -> None:
    for node in list(tree.find_all(exp.Anonymous)):
        target = _SAFE_CASTS.get(str(node.name).lower())
        if target is not None and len(node.expressions) == 1:
            node.replace(
                exp.Anonymous(
                    this="accurateCastOrNull",
                    expressions=[node.expressions[0], exp.Literal.string(target)],
                )
            )


def _apply_limit(tree: exp.Expr) -> tuple[exp.Expr, bool, int | None]:
    """Add PostHog's default LIMIT (+1 to learn hasMore) or clamp the user's to 50 000."""
    limit = tree.args.get("limit")
    if isinstance(tree, exp.Select) and isinstance(limit, exp.Limit) and not limit.expressions:
        value = limit.expression
        if isinstance(value, exp.Literal) and value.is_int:
            value.replace(exp.Literal.number(min(int(value.name), MAX_LIMIT)))
        else:
            value.replace(exp.func("least", exp.Literal.number(MAX_LIMIT), value.copy()))
        return tree, False, None
    if isinstance(tree, exp.Select) and limit is None:
        return tree.limit(DEFAULT_LIMIT + 1, copy=False), True, DEFAULT_LIMIT
    # UNIONs and LIMIT ... BY: the outer LIMIT must apply to the whole result, so wrap it.
    wrapped = exp.select("*").from_(exp.Subquery(this=tree)).limit(DEFAULT_LIMIT + 1)
    return wrapped, True, DEFAULT_LIMIT


def _bind_placeholders(tree: exp.Expr, values: dict[str, Any]) -> dict[str, Any]:
    """Turn ``{name}`` into typed ClickHouse query parameters; the values never enter the SQL.

    A list becomes one ``Array`` parameter (``event IN {names}``). Keys are numbered, so two names
    that differ only in punctuation cannot share one; texts are as ``params.parameter`` writes them.
    """
    params: dict[str, Any] = {}
    for node in list(tree.find_all(exp.Placeholder)):
        value = values[node.name]
        if value is None:
            node.replace(exp.Null())
            continue
        try:
            kind, text = parameter(value)
        except ParameterError as exc:
            raise HogQLError(f"Unsupported value for placeholder {{{node.name}}}: {exc}.") from None
        key = f"hogql_val_{len(params)}"
        params[key] = text
        bound = exp.Placeholder(
            this=exp.var(key), kind=exp.DataType.build(kind, dialect="clickhouse")
        )
        parent = node.parent
        if (
            isinstance(value, list)
            and isinstance(parent, exp.In)
            and parent.args.get("field") is node
        ):
            # `x IN array` compares each row with every item (a 150,000-item list took 22 s);
            # `x IN (SELECT arrayJoin(array))` builds one hash set (0.3 s)
            node.pop()
            parent.set("query", exp.Subquery(this=exp.select(exp.Explode(this=bound))))
        else:
            node.replace(bound)
    return params


def _rewrite_properties(tree: exp.Expr) -> None:
    aliases = {t.alias_or_name for t in tree.find_all(exp.Table)}
    for select in list(tree.find_all(exp.Select)):
        for projection in list(select.expressions):
            if not isinstance(projection, exp.Alias | exp.Star) and _has_sugar(projection, aliases):
                # name the column as the user wrote it, not as the engine spells the JSON path
                projection.replace(
                    exp.alias_(projection.copy(), projection.sql(dialect=_Dialect), quoted=True)
                )
    for bracket in list(tree.find_all(exp.Bracket)):
        chain = _bracket_chain(bracket)
        if chain is not None:
            bracket.replace(_chain_to_column(chain))
    for column in list(tree.find_all(exp.Column)):
        replacement = _property_access(_names(column), aliases)
        if replacement is not None:
            column.replace(replacement)


def _bracket_chain(node: exp.Bracket) -> list[str] | None:
    """``properties['$os']`` (and ``person.properties['email']``) as a name chain, else None."""
    keys = node.expressions
    if len(keys) != 1 or not (isinstance(keys[0], exp.Literal) and keys[0].is_string):
        return None
    base = node.this
    if isinstance(base, exp.Column) and "properties" in [p.name for p in base.parts]:
        return [*(p.name for p in base.parts), keys[0].name]
    if isinstance(base, exp.Bracket):
        inner = _bracket_chain(base)
        return None if inner is None else [*inner, keys[0].name]
    return None


def _chain_to_column(chain: list[str]) -> exp.Expr:
    return exp.Column(
        this=exp.to_identifier(chain[-1], quoted=True),
        table=exp.to_identifier(chain[-2]) if len(chain) > 1 else None,
        db=exp.to_identifier(chain[-3]) if len(chain) > 2 else None,
        catalog=exp.to_identifier(chain[-4]) if len(chain) > 3 else None,
    )


def _has_sugar(node: exp.Expr, aliases: set[str]) -> bool:
    if any(_bracket_chain(b) is not None for b in node.find_all(exp.Bracket)):
        return True
    return any(_property_access(_names(c), aliases) is not None for c in node.find_all(exp.Column))


def _names(column: exp.Column) -> list[str]:
    return [part.name for part in column.parts]


def _property_access(names: list[str], aliases: set[str]) -> exp.Expr | None:
    """The engine expression for a HogQL name chain, or None when it needs no rewriting."""
    if (names[:1] == ["person"] and "person" not in aliases) or (
        len(names) > 1 and names[1] == "person" and names[0] in aliases
    ):
        qualifier = names[:1] if names[0] != "person" else []
        rest = names[len(qualifier) + 1 :]
        if rest == ["id"]:
            return exp.column("person_id", table=qualifier[0] if qualifier else None)
        if len(rest) >= 2 and rest[0] == "properties":
            return _json_path([*qualifier, "person_properties"], rest[1:], PERSON_PROPERTIES)
        raise HogQLError(
            f"`{'.'.join(names)}` is not available on the local server; use "
            "person.properties.<name>, "
            "person.id, or JOIN persons ON persons.id = events.person_id."
        )
    if "properties" in names[:-1]:
        at = names.index("properties")
        if at <= 1:
            known = PERSON_PROPERTIES if _is_persons(names[:at], aliases) else EVENT_PROPERTIES
            return _json_path(names[: at + 1], names[at + 1 :], known)
    return None


def _is_persons(qualifier: list[str], aliases: set[str]) -> bool:
    return qualifier == ["persons"] or (not qualifier and aliases == {"persons"})


def _json_path(base: list[str], path: list[str], known: dict[str, str]) -> exp.Expr:
    """A JSON sub-column access; unknown paths are Dynamic, so they are cast to a string."""
    parts = [exp.to_identifier(name) for name in base] + [
        exp.to_identifier(p, quoted=True) for p in path
    ]
    expression: exp.Expr = exp.Dot.build(parts) if len(parts) > 1 else exp.column(parts[0])
    if len(path) == 1 and path[0] in known:
        return expression
    return exp.cast(expression, exp.DataType.build("Nullable(String)", dialect="clickhouse"))


def _rewrite_tables(tree: exp.Expr, ctes: set[str], database: str) -> None:
    for table in list(tree.find_all(exp.Table)):
        db = table.args.get("db")
        full = f"{db.name}.{table.name}" if db is not None else table.name
        if db is None and table.name in _visible_ctes(table):
            continue
        spec = TABLES[full]
        alias = table.alias or table.name
        table.replace(
            exp.Table(
                this=exp.to_identifier(spec.stored_name),
                db=exp.to_identifier(database),
                alias=exp.TableAlias(this=exp.to_identifier(alias)),
            )
        )
