"""The four tools: names, JSON schemas and descriptions that teach a model the workflow.

Descriptions are written for the model, not for people: discover objects, read the fields of
the one needed, then query with HogQL, aggregating before listing and always with a LIMIT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PYTHON_SPEC", "TOOL_SPECS", "ToolSpec"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: its `name`, the `description` a model reads, and its JSON `input_schema`."""

    name: str
    description: str
    input_schema: dict[str, Any] = field(default_factory=dict)


_HOGQL_REMINDERS = """\
HogQL reminders:
- Event properties are `properties.$browser` / `properties.plan`; the event's person is \
`person.properties.email`; keys with odd characters use `properties['$feature/x']`.
- Filter on `timestamp` (e.g. `timestamp > now() - INTERVAL 7 DAY`): it keeps queries fast.
- Aggregate before listing (`count()`, `uniq(person_id)`, `GROUP BY`, `toStartOfDay(timestamp)`) \
instead of fetching raw events.
- Always end with a LIMIT (e.g. LIMIT 100); long results are cut to fit your context.
- Put user-supplied constants in `values` and write `{name}` in the query: \
`WHERE event = {ev}` with values {"ev": "$pageview"}."""

TOOL_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="list_objects",
        description=(
            "List the PostHog objects (HogQL tables) you can query, such as events, persons "
            "and sessions. Call this first, then get_fields for the object you need, then query."
        ),
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
    ),
    ToolSpec(
        name="get_fields",
        description=(
            "Show the fields of one object: for each, the exact HogQL to write (e.g. "
            "`properties.$browser`), its type and a short description; for events also the "
            "known event names. Read this before writing a query so you use real field and "
            "event names. Use `search` to narrow a long list (matches names and descriptions)."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "object_name": {
                    "type": "string",
                    "description": "An object name from list_objects, e.g. events.",
                },
                "search": {
                    "type": "string",
                    "description": "Optional: only fields whose name or description contains this.",
                },
            },
            "required": ["object_name"],
            "additionalProperties": False,
        },
    ),
    ToolSpec(
        name="query",
        description=(
            "Run a read-only HogQL query (PostHog's SQL) and get the rows back as compact text: "
            "the column names once, then one line per row. Check field names with get_fields "
            "first. If PostHog rejects the query you get its error message: fix the query and "
            "call this again.\n" + _HOGQL_REMINDERS
        ),
        input_schema={
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "One HogQL SELECT, e.g. SELECT event, count() AS n FROM events "
                    "WHERE timestamp > now() - INTERVAL 7 DAY GROUP BY event "
                    "ORDER BY n DESC LIMIT 20",
                },
                "values": {
                    "type": "object",
                    "description": "Optional constants for {placeholders} in the query, "
                    'e.g. {"ev": "$pageview"}.',
                },
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    ),
    ToolSpec(
        name="describe",
        description=(
            "Show the fields of several objects at once (default: all of them), in the same "
            "form as get_fields. Handy for a first overview; prefer get_fields when you know "
            "which object you need."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "objects": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Optional object names from list_objects; omit for all.",
                },
            },
            "additionalProperties": False,
        },
    ),
)

PYTHON_SPEC = ToolSpec(
    name="python",
    description=(
        "Run Python on the rows of your earlier query calls, in a sandbox (no network, no "
        "files but its own; pandas and matplotlib available). Each query result is a pandas "
        "DataFrame named as the query said (query_1, query_2, ...), also as query_1.csv. "
        "print() what you want to read (long output is cut). A matplotlib figure left open "
        "(or saved as .png) comes back as an image. Use it to pivot, compute ratios or "
        "cohorts, fit a trend or draw a chart; fetch the data with query first, aggregated "
        "in HogQL where you can."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "description": "Python source, e.g. print(query_1.groupby('event')['n'].sum())",
            },
        },
        "required": ["code"],
        "additionalProperties": False,
    },
)
"""Offered only when the toolset has an executor (a sandbox) to run it in."""
