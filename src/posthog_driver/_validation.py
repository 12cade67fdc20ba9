"""`validate()`'s answer: PostHog's `HogQLMetadata` errors and warnings, with their positions.

PostHog's `HogQLMetadata` node takes no `values` (its schema forbids extra keys) and reports a
`{placeholder}` as unresolved. So, to check a query with `values`, each placeholder named in
`values` is replaced by the constant's HogQL literal, printed from its Python type (str, int,
float, bool, None, lists of those), and every position PostHog reports is mapped back to the
caller's text. That text is only checked, never run: the query itself still travels with
`values`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from posthog_driver._errors import ValidationError
from posthog_driver._lexing import tokens

__all__ = ["QueryProblem", "ValidationResult", "with_literals"]

_ESCAPES = {
    "\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
    "\f": "\\f", "\0": "\\0", "\a": "\\a", "\v": "\\v",
}  # fmt: skip  # PostHog's escape_hogql_string


@dataclass(frozen=True, slots=True)
class QueryProblem:
    """One error, warning or notice: `start`/`end` are character offsets in the query (None
    where PostHog gave none); `line` and `column` (1-based) say where `start` is."""

    message: str
    start: int | None = None
    end: int | None = None
    fix: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}: " if self.line is not None else ""
        return where + self.message


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """What `AsyncDriver.validate()` found, without running the query."""

    query: str
    is_valid: bool
    errors: list[QueryProblem] = field(default_factory=list)
    warnings: list[QueryProblem] = field(default_factory=list)
    notices: list[QueryProblem] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.is_valid

    def pointer(self) -> str:
        """The first error's line of the query with a caret under its position, or ''."""
        first = next((e for e in self.errors if e.line is not None), None)
        if first is None or first.line is None or first.column is None:
            return ""
        lines = self.query.split("\n")  # as line and column count: only \n ends a line
        text = lines[first.line - 1] if first.line <= len(lines) else ""
        width = max(1, min((first.end or 0) - (first.start or 0), len(text) - first.column + 1))
        return f"{text}\n{' ' * (first.column - 1)}{'^' * width}"

    @classmethod
    def from_response(cls, body: Any, query: str, positions: _Positions) -> ValidationResult:
        if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
            raise ValidationError("PostHog's HogQLMetadata answer had no 'errors' list.")

        def problems(key: str) -> list[QueryProblem]:
            return [_problem(item, query, positions) for item in body.get(key) or []]

        errors = problems("errors")
        return cls(
            query=query,
            is_valid=bool(body.get("isValid", not errors)) and not errors,
            errors=errors,
            warnings=problems("warnings"),
            notices=problems("notices"),
            tables=[str(t) for t in body.get("table_names") or []],
        )


def _problem(item: Any, query: str, positions: _Positions) -> QueryProblem:
    item = item if isinstance(item, dict) else {"message": str(item)}
    start, end = positions.original(item.get("start")), positions.original(item.get("end"))
    line = column = None
    if start is not None and 0 <= start <= len(query):
        line = query.count("\n", 0, start) + 1
        column = start - (query.rfind("\n", 0, start) + 1) + 1
    return QueryProblem(
        message=str(item.get("message", "")),
        start=start,
        end=end,
        fix=item.get("fix") if isinstance(item.get("fix"), str) else None,
        line=line,
        column=column,
    )


class _Positions:
    """Maps offsets in the checked text back to the caller's text."""

    def __init__(self, spans: list[tuple[int, int, int, int]]) -> None:
        self.spans = spans  # (original start, original end, checked start, checked end)

    def original(self, offset: Any) -> int | None:
        if not isinstance(offset, int) or isinstance(offset, bool):
            return None
        shift = 0
        for start, end, checked_start, checked_end in self.spans:
            if offset < checked_start:
                break
            if offset < checked_end:
                return start  # inside a literal: point at its placeholder
            shift = checked_end - end
        return offset - shift


def with_literals(query: str, values: dict[str, Any] | None) -> tuple[str, _Positions]:
    """`query` with each `{name}` of `values` replaced by its constant, outside strings and
    comments, and the map from the new text's offsets back to `query`'s."""
    if not values:
        return query, _Positions([])
    out, spans, last, delta = [], [], 0, 0
    for token in tokens(query):
        start, end, name = token.start, token.end, token.text
        if token.kind != "placeholder" or name not in values:
            continue
        literal = _literal(values[name])
        out.append(query[last:start])
        out.append(literal)
        checked_start = start + delta
        delta += len(literal) - (end - start)
        spans.append((start, end, checked_start, checked_start + len(literal)))
        last = end
    out.append(query[last:])
    return "".join(out), _Positions(spans)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    # a negative number in brackets: after a `-` in the query, `--5` would start a comment
    if isinstance(value, int):
        return f"({value})" if value < 0 else str(value)
    if isinstance(value, float) and math.isfinite(value):
        return f"({value!r})" if value < 0 else repr(value)
    if isinstance(value, str):
        return "'" + "".join(_ESCAPES.get(c, c) for c in value) + "'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise ValidationError(
        f"validate() checks values of str, int, float, bool, None and lists of them, not "
        f"{type(value).__name__}."
    )
