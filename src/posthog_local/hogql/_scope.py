"""What a name means where it is written: the sources, aliases and lambda arguments of a SELECT.

A ``Scope`` belongs to one SELECT. Its sources are the tables and subqueries of FROM and JOIN
(by alias), plus the lazy joins that fields reached through (``events.person``...). A field
is resolved, as PostHog does: a lambda argument or ARRAY JOIN alias first, then a select alias,
then a source named by the chain's first part, then the one source that has such a field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._schema import SchemaTable, Type

__all__ = ["Cte", "Output", "Scope", "Source", "Value", "quote"]


def quote(name: str) -> str:
    """An identifier for the engine: always in backticks, escaped as ClickHouse reads them."""
    return "`" + str(name).replace("\\", "\\\\").replace("`", "\\`") + "`"


@dataclass(frozen=True, slots=True)
class Value:
    """A printed expression: engine SQL and its type; constants keep their value."""

    sql: str
    type: Type = field(default_factory=Type)
    constant: bool = False
    value: Any = None


@dataclass(slots=True)
class Source:
    """A table, subquery or table function a SELECT reads, under ``alias``."""

    alias: str
    table: SchemaTable | None = None
    columns: dict[str, Type] | None = None
    scope: Scope | None = None  # the SELECT whose FROM holds it (lazy joins attach there)
    renames: dict[str, str] = field(default_factory=dict)
    """``FROM events AS e (a, b)``: new name -> the column it renames (whose old name is gone)."""


@dataclass(frozen=True, slots=True)
class Cte:
    """A WITH subquery, printed once and placed where it is read; or a WITH expression."""

    name: str
    columns: dict[str, Type]
    sql: str = ""
    expr: dict[str, Any] | None = None


@dataclass(slots=True)
class Scope:
    """The names visible inside one SELECT."""

    parent: Scope | None = None
    sources: dict[str, Source] = field(default_factory=dict)
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    alias_types: dict[str, Type] = field(default_factory=dict)
    expanding: set[str] = field(default_factory=set)
    lazy: dict[str, str] = field(default_factory=dict)
    ctes: dict[str, Cte] = field(default_factory=dict)
    lambdas: list[set[str]] = field(default_factory=list)
    lambda_aliases: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    array_joined: dict[str, Type] = field(default_factory=dict)
    join_on: bool = False
    aggregates: list[str] = field(default_factory=list)

    def cte(self, name: str) -> Cte | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.ctes:
                return scope.ctes[name]
            scope = scope.parent
        return None

    def is_lambda_arg(self, name: str) -> bool:
        return any(name in args for args in self.lambdas)


@dataclass(slots=True)
class Output:
    """What printing one query produced besides SQL: parameters, bare words, notes."""

    params: dict[str, str] = field(default_factory=dict)
    words: set[str] = field(default_factory=set)
    tables: list[str] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)

    def param(self, kind: str, text: str) -> str:
        """A typed query parameter holding ``text``; the engine SQL names only its key."""
        key = f"hogql_val_{len(self.params)}"
        self.params[key] = text
        self.words.update(part.lower() for part in _words(kind))
        return "{" + key + ":" + kind + "}"

    def word(self, word: str) -> str:
        """A bare word the printer writes (a keyword or a function name from its tables)."""
        self.words.add(word.lower())
        return word

    def call(self, name: str, *args: str) -> str:
        return f"{self.word(name)}({', '.join(args)})"


def _words(text: str) -> list[str]:
    out, current = [], ""
    for char in text:
        if char.isalnum() or char == "_":
            current += char
        else:
            if current:
                out.append(current)
            current = ""
    return [*out, current] if current else out
