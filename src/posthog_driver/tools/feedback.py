"""Turning what went wrong into text a model can act on.

Each `DriverError` becomes one short paragraph: what happened, then what to change (fix the
HogQL, pick one of the close matches, wait N seconds, or stop and tell the user when the server's
own credentials or PostHog itself are the problem). Argument mistakes are described against the
tool's schema. The messages come from the driver, which never puts the key in them; the toolset
still scrubs the key from every text it returns, as a second wall.
"""

from __future__ import annotations

from typing import Any

from posthog_driver._errors import (
    AuthenticationError,
    CircuitOpenError,
    DriverError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    ValidationError,
)
from posthog_driver.tools.specs import ToolSpec

__all__ = ["UNEXPECTED_ERROR", "argument_problems", "explain"]

UNEXPECTED_ERROR = (
    "The tool failed with an internal error (it has been logged). This is not caused by your "
    "input; try once more, and if it fails again tell the user the PostHog tool is not working."
)

_JSON_TYPES: dict[str, tuple[type[Any], ...]] = {
    "string": (str,),
    "object": (dict,),
    "array": (list, tuple),
}


def explain(exc: DriverError) -> str:
    """What a model should read for `exc`: the problem, then the next step."""
    return _HINTS.get(type(exc), _generic)(exc)


def _query(exc: DriverError) -> str:
    detail = exc.detail or exc.message
    if exc.status_code == 504:
        return (
            f"PostHog stopped the query: it hit ClickHouse's time or memory limit ({detail}).\n"
            "Make it cheaper and call query again: a shorter date range on timestamp, filters "
            "before joins, aggregates (count, uniq) instead of raw rows, a LIMIT."
        )
    if exc.status_code == 500:
        return (
            f"PostHog failed running the HogQL: {detail}\n"
            "Simplify the query (or check its parts with get_fields) and call query again; "
            "sending it unchanged fails the same way."
        )
    where = exc.where if isinstance(exc, QueryError) else ""
    return (
        f"PostHog rejected the HogQL: {detail}\n"
        + (f"Here:\n{where}\n" if where else "")
        + "Fix the query and call query again (check names with get_fields; properties are "
        "properties.<name>, person properties person.properties.<name>)."
    )


def _validation(exc: DriverError) -> str:
    return f"Invalid input: {exc.message} Correct it and call the tool again."


def _not_found(exc: DriverError) -> str:
    assert isinstance(exc, NotFoundError)
    if exc.suggestions:
        close = ", ".join(exc.suggestions)
        return f"{exc.message} Close matches: {close}. Use one of these exact names."
    return f"{exc.message} Call list_objects to see the valid names."


def _rate_limit(exc: DriverError) -> str:
    assert isinstance(exc, RateLimitError)
    when = f"in {exc.retry_after:g} seconds" if exc.retry_after is not None else "in a minute"
    return (
        f"PostHog's rate limit was reached; retry {when}, not sooner. Meanwhile, prefer fewer, "
        "aggregated queries."
    )


def _circuit_open(exc: DriverError) -> str:
    assert isinstance(exc, CircuitOpenError)
    return (
        "PostHog failed several times in a row, so calls are paused; retry in "
        f"{exc.retry_after:g} seconds. If it keeps failing, tell the user PostHog is unavailable."
    )


def _unavailable(exc: DriverError) -> str:
    return (
        f"PostHog is unavailable right now ({exc.message}) Retry once later; if it fails again, "
        "tell the user PostHog is unavailable."
    )


def _timeout(exc: DriverError) -> str:
    return (
        f"The query took too long ({exc.message}) Narrow it: a shorter timestamp range, fewer "
        "columns, aggregation, or a smaller LIMIT."
    )


def _credentials(exc: DriverError) -> str:
    return (
        f"The PostHog credentials of this tool were refused ({exc.message}) Changing the query "
        "will not help: tell the user the tool's PostHog key or scopes need fixing."
    )


def _generic(exc: DriverError) -> str:
    return f"The PostHog tool failed: {exc.message}"


_HINTS = {
    QueryError: _query,
    ValidationError: _validation,
    NotFoundError: _not_found,
    RateLimitError: _rate_limit,
    CircuitOpenError: _circuit_open,
    ServerError: _unavailable,
    TransportError: _unavailable,
    RequestTimeoutError: _timeout,
    AuthenticationError: _credentials,
    PermissionDeniedError: _credentials,
}


def argument_problems(spec: ToolSpec, arguments: Any) -> list[str]:
    """What is wrong with `arguments` for `spec` (empty when they fit its schema).

    Checks the subset of JSON Schema our tools use: an object, `required`, no extra keys, and
    each property's type (`string`, `object`, `array` of strings).
    """
    if not isinstance(arguments, dict):
        return [f"arguments must be a JSON object, not {type(arguments).__name__}"]
    schema = spec.input_schema
    properties: dict[str, Any] = schema.get("properties", {})
    problems = [
        f"missing required argument {name!r}"
        for name in schema.get("required", [])
        if arguments.get(name) is None
    ]
    for name, value in arguments.items():
        prop = properties.get(name)
        if prop is None:
            allowed = ", ".join(properties) or "none"
            problems.append(f"unknown argument {name!r} (allowed: {allowed})")
        elif value is not None:
            problems.extend(_type_problems(name, prop, value))
    return problems


def _type_problems(name: str, prop: dict[str, Any], value: Any) -> list[str]:
    expected = prop.get("type", "string")
    if not isinstance(value, _JSON_TYPES[expected]):
        return [f"{name!r} must be a JSON {expected}, not {_json_type(value)}"]
    if isinstance(value, list | tuple):
        wrong = [v for v in value if not isinstance(v, str)]
        if wrong:
            return [f"{name!r} must hold only strings; {wrong[0]!r} is not one"]
    return []


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
