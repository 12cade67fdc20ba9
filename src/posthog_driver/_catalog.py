"""Turning PostHog's schema answers into the fields an agent reads.

Inputs: a `DatabaseSchemaQuery` table (`{"type", "name", "fields": {name: {"name",
"hogql_value", "type", "table"?, "fields"?, "chain"?}}}`) and, where the table has properties,
event/property definitions (`{"name", "property_type", "is_numerical"}`). Output: one dict per
field, keyed by the HogQL that references it:

    {"event": {"type": "string", "hogql": "event", "description": "...", "values": [...]},
     "properties.$browser": {"type": "string", "hogql": "properties.$browser", ...},
     "person": {"type": "lazy_table", "table": "persons", "description": "Relation to ..."}}

Relations are described (what they point to, how to reach into them), never expanded.
"""

from __future__ import annotations

import re
from typing import (
    Any,
    NotRequired,  # pydantic (FastAPI) reads it on 3.11
)

from typing_extensions import TypedDict

__all__ = ["PROPERTY_SOURCES", "FieldInfo", "column_fields", "property_fields", "reference"]

_PLAIN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")

# Which definitions enrich which table, and under which prefix: events have their own
# properties and reach their person's through `person.properties`; persons have their own.
PROPERTY_SOURCES: dict[str, list[tuple[str, str]]] = {
    "events": [("event", "properties"), ("person", "person.properties")],
    "persons": [("person", "properties")],
}

# PostHog's property_type -> the field types DatabaseSchemaQuery uses.
_PROPERTY_TYPES = {
    "String": "string",
    "Numeric": "float",
    "Boolean": "boolean",
    "DateTime": "datetime",
    "Duration": "float",
}

_COLUMN_NOTES = {
    ("events", "uuid"): "Unique id of the event.",
    ("events", "event"): "Event name, e.g. $pageview or signed_up; see `values` for known names.",
    ("events", "properties"): "All event properties as JSON; read one with properties.<name>.",
    ("events", "timestamp"): "When the event happened (UTC). Filter on it to keep queries fast.",
    ("events", "distinct_id"): "The id the event was sent with (before person merging).",
    ("events", "person_id"): "Id of the person behind the event (after merging).",
    ("events", "created_at"): "When PostHog ingested the event.",
    ("events", "$session_id"): "Session the event belongs to (join to sessions.session_id).",
    ("events", "elements_chain"): "Autocapture: the clicked element and its ancestors.",
    ("persons", "id"): "Unique id of the person; events.person_id points here.",
    ("persons", "properties"): "All person properties as JSON; read one with properties.<name>.",
    ("persons", "created_at"): "When the person was first seen.",
    ("persons", "is_identified"): "True once the person was identified ($identify).",
    ("sessions", "session_id"): "Unique id of the session; events.$session_id points here.",
    ("sessions", "$session_duration"): "Length of the session in seconds.",
    ("sessions", "$is_bounce"): "True when the session bounced (one pageview, short).",
}

_TYPE_NOTES = {
    "lazy_table": "Relation to the {table} table; reach its fields as {ref}.<field> (a join).",
    "virtual_table": "Virtual table over {table}; reach its fields as {ref}.<field>.",
    "field_traverser": "Shortcut for {chain}.",
    "view": "Saved view {table}; reach its fields as {ref}.<field>.",
    "json": "JSON column; read a key with {ref}.<key> or {ref}['<key>'].",
}


class FieldInfo(TypedDict):
    """One field as `get_fields()` describes it.

    `type` is PostHog's field type ("string", "integer", "datetime", "lazy_table"...), `hogql`
    the expression that reads it (the dict's key), `description` a sentence for humans and
    models; relations add `table` (and `chain` for shortcuts); `events.event` adds `values`, the
    known event names.
    """

    type: str
    hogql: str
    description: str
    table: NotRequired[str]
    chain: NotRequired[str]
    values: NotRequired[list[str]]


def reference(name: str, prefix: str = "") -> str:
    """The HogQL that reads field `name` (under `prefix`, e.g. `properties`).

    >>> reference("$browser", "properties")
    'properties.$browser'
    >>> reference("$feature/new-nav", "properties")
    "properties['$feature/new-nav']"
    """
    if _PLAIN.match(name):
        return f"{prefix}.{name}" if prefix else name
    quoted = name.replace("\\", "\\\\").replace("'", "\\'")
    return f"{prefix}['{quoted}']" if prefix else f"`{name.replace('`', '``')}`"


def column_fields(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The table's own columns and relations from its `DatabaseSchemaQuery` entry."""
    table_name = str(table.get("name", ""))
    fields: dict[str, dict[str, Any]] = {}
    raw_fields = table.get("fields")
    for name, raw in (raw_fields if isinstance(raw_fields, dict) else {}).items():
        if not isinstance(raw, dict):
            continue
        ref = str(raw.get("hogql_value") or reference(str(raw.get("name", name))))
        kind = str(raw.get("type") or "unknown")
        field: dict[str, Any] = {"type": kind, "hogql": ref}
        target = raw.get("table")
        if isinstance(target, str):
            field["table"] = target
        chain = raw.get("chain")
        if isinstance(chain, list) and chain:
            field["chain"] = ".".join(str(c) for c in chain)
        field["description"] = _describe_column(table_name, str(name), field)
        fields[ref] = field
    return fields


def _describe_column(table: str, name: str, field: dict[str, Any]) -> str:
    note = _COLUMN_NOTES.get((table, name))
    if note:
        return note
    template = _TYPE_NOTES.get(field["type"])
    if template:
        return template.format(
            table=field.get("table", "another"), ref=field["hogql"], chain=field.get("chain", "")
        )
    return f"{field['type'].capitalize()} column {name} of {table}."


def property_fields(
    definitions: list[dict[str, Any]], prefix: str, kind: str
) -> dict[str, dict[str, Any]]:
    """Fields for `kind` properties (`event` or `person`) read under `prefix`."""
    fields: dict[str, dict[str, Any]] = {}
    for definition in definitions:
        name = definition.get("name")
        if not isinstance(name, str) or not name:
            continue
        property_type = definition.get("property_type")
        kind_of_value = _PROPERTY_TYPES.get(str(property_type), "string")
        ref = reference(name, prefix)
        described = f"{kind.capitalize()} property {name}"
        described += f" ({property_type})." if property_type else " (type unknown; read as text)."
        fields[ref] = {"type": kind_of_value, "hogql": ref, "description": described}
    return fields
