"""PostHog's own HogQL grammar: the ``hogql-parser`` package (its C++ ANTLR parser), as JSON.

The extension imports ``posthog.hogql.errors`` for its exception classes when it loads; the
``posthog`` package on PyPI (the capture SDK) has no such module. So the module is provided for
the duration of that one import only, and every name put into ``sys.modules`` is removed again:
a ``posthog`` SDK the user has (imported or not) is never shadowed. The JSON entry points report
errors inside the JSON, so the classes are never raised to us.
"""

from __future__ import annotations

import json
import sys
import threading
import types
from typing import Any

from ._errors import HogQLError

__all__ = ["parse_expr", "parse_select"]

_LOCK = threading.Lock()
_SHIM = ("posthog", "posthog.hogql", "posthog.hogql.errors")


def _error_module() -> types.ModuleType:
    module = types.ModuleType("posthog.hogql.errors")

    class BaseHogQLError(Exception):
        def __init__(
            self, message: str, *, start: int | None = None, end: int | None = None, **_: Any
        ) -> None:
            super().__init__(message)
            self.start, self.end = start, end

    module.BaseHogQLError = BaseHogQLError  # type: ignore[attr-defined]
    for name in (
        "SyntaxError",
        "NotImplementedError",
        "ParsingError",
        "ExposedHogQLError",
        "InternalHogQLError",
        "QueryError",
        "ResolutionError",
    ):
        setattr(module, name, type(name, (BaseHogQLError,), {}))
    return module


def _load() -> Any:
    with _LOCK:
        if "hogql_parser" in sys.modules:
            return sys.modules["hogql_parser"]
        added = []
        if "posthog.hogql.errors" not in sys.modules:
            for name in _SHIM:
                if name not in sys.modules:
                    sys.modules[name] = (
                        _error_module() if name.endswith("errors") else types.ModuleType(name)
                    )
                    added.append(name)
        try:
            import hogql_parser  # noqa: PLC0415 - loaded once, with the shim in place
        finally:
            for name in added:
                del sys.modules[name]
        return hogql_parser


def _run(function: str, text: str) -> dict[str, Any]:
    parser = _load()
    try:
        raw = getattr(parser, function)(text)
    except UnicodeEncodeError as exc:
        raise HogQLError(
            f"The query has an invalid character at position {exc.start} (a lone UTF-16 "
            "surrogate); send it as valid UTF-8.",
            "hogql_syntax_error",
            start=exc.start,
            end=exc.end,
        ) from None
    node: dict[str, Any] = json.loads(raw)
    if node.get("error"):
        message = str(node.get("message") or "Syntax error")
        if "<EOF>" in message and message.startswith("mismatched input '<EOF>'"):
            message = "Unexpected end of query"
        start = node.get("start", {}).get("offset")
        end = node.get("end", {}).get("offset")
        raise HogQLError(message, "hogql_syntax_error", start=start, end=end)
    return node


def parse_select(text: str) -> dict[str, Any]:
    """A SELECT (or a set of them) as PostHog's JSON AST; ``HogQLError`` with the position."""
    if not text.strip():
        raise HogQLError("Empty query", "hogql_syntax_error", start=0, end=0)
    return _run("parse_select_json", text)


def parse_expr(text: str) -> dict[str, Any]:
    """One expression as PostHog's JSON AST."""
    return _run("parse_expr_json", text)
