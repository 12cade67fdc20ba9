"""Placeholder values as typed ClickHouse query parameters, written so the engine reads them as is.

ClickHouse parses a parameter's text in its "escaped" format: a backslash starts an escape
(``a\\b`` would become ``a`` + backspace), and a raw newline or tab ends the value. So a string is
escaped here and a list travels as ONE ``Array`` parameter written as an array literal (one
parameter however long the list: 150,000 items bind in a fraction of a second). The value never
becomes SQL text; only ``{name:Type}`` does.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["ParameterError", "parameter"]

_INT64 = range(-(2**63), 2**63)
_UINT64 = range(2**64)
# The escapes ClickHouse's escaped format reads back; everything else stands for itself.
_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"}
)


class ParameterError(ValueError):
    """A value that cannot be bound; the message says which types can."""


def parameter(value: Any) -> tuple[str, str]:
    """The ClickHouse type of ``value`` and its text as a query parameter.

    Example::

        parameter("a\\\\b") == ("String", "a\\\\\\\\b")
        parameter(["x", "y"]) == ("Array(String)", "['x','y']")
    """
    if isinstance(value, list):
        kind = _list_type(value)
        return f"Array({kind})", "[" + ",".join(_literal(item) for item in value) + "]"
    return _scalar_type(value), _scalar_text(value)


def _scalar_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        if value in _INT64:
            return "Int64"
        if value in _UINT64:
            return "UInt64"
        raise ParameterError(f"the integer {value} is out of range (at most 2**64 - 1)")
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, str):
        return "String"
    raise ParameterError(
        f"a {type(value).__name__} cannot be bound; use a string, number, boolean or list of them"
    )


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value).lower()
    if isinstance(value, int):
        return str(value)
    return str(value).translate(_ESCAPES)


def _list_type(items: list[Any]) -> str:
    if any(isinstance(item, list | dict) for item in items):
        raise ParameterError("a list of lists or objects cannot be bound; flatten it")
    kinds = {_scalar_type(item) for item in items if item is not None}
    if kinds <= {"Int64", "UInt64", "Float64"} and len(kinds) > 1:
        kinds = {"Float64"}
    if len(kinds) > 1:
        raise ParameterError(f"a list must hold one type, not {', '.join(sorted(kinds))}")
    kind = kinds.pop() if kinds else "String"
    return f"Nullable({kind})" if None in items else kind


def _literal(item: Any) -> str:
    """An array element as ClickHouse's quoted literal (inside an array, nothing is unescaped)."""
    if item is None:
        return "NULL"
    if isinstance(item, str):
        return "'" + item.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return _scalar_text(item)
