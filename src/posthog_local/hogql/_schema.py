"""The HogQL database as the compiler sees it: tables, their fields, types and relations.

Built on ``catalog`` (what is stored) and adding what PostHog's schema has on top:

- expression fields, written in HogQL over the same table (``sessions.duration``,
  ``events.elements_chain_href``...), compiled like any user expression;
- lazy joins added only when a query reaches through them (``events.person``, ``events.pdi``,
  ``events.session``, ``persons.pdi``, ``person_distinct_ids.person``), some with shortcuts to
  columns the event already carries (PostHog's persons-on-events);
- the ``poe`` virtual table (the person columns stored on each event);
- property columns, whose definitions type single-key access (Numeric reads back as Float).

A field's type says whether it can be NULL: PostHog's printer makes comparisons NULL-safe only
where a side can be NULL, and the answers show it (``types``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..catalog import (
    EVENT_PROPERTIES,
    GROUP_PROPERTIES,
    PERSON_PROPERTIES,
    TABLES,
    hogql_identifier,
)
from ..catalog import Table as StoredTable

__all__ = [
    "Column",
    "Expression",
    "Field",
    "Join",
    "Properties",
    "SchemaTable",
    "Type",
    "Virtual",
    "expression_fields",
    "table",
    "table_names",
]


@dataclass(frozen=True, slots=True)
class Type:
    """What an expression holds: ``kind`` (string, integer, float, boolean, datetime, date, uuid,
    array, tuple, json or unknown) and whether it can be NULL."""

    kind: str = "unknown"
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class Column:
    """A stored column."""

    name: str
    stored: str
    type: Type


@dataclass(frozen=True, slots=True)
class Properties:
    """A JSON text column; a chain after it is a property path."""

    name: str
    stored: str
    definitions: dict[str, str]
    """Property name to PostHog property type (String, Numeric, DateTime, Boolean)."""


@dataclass(frozen=True, slots=True)
class Expression:
    """A field computed from the table's own fields, written in HogQL."""

    name: str
    hogql: str
    field_type: str = "string"
    """PostHog's serialized field type, for ``DatabaseSchemaQuery``."""


@dataclass(frozen=True, slots=True)
class Join:
    """A lazy join: ``local`` field of this table equals ``remote`` field of ``table``."""

    name: str
    table: str
    local: str
    remote: str
    how: str = "LEFT JOIN"
    shortcuts: dict[str, str] = field(default_factory=dict)
    """Fields of the joined table that this table carries itself: no join needed for them."""


@dataclass(frozen=True, slots=True)
class Virtual:
    """A table-shaped view of this table's own columns (``events.poe``)."""

    name: str
    fields: dict[str, str]
    """Virtual field name to a field of the underlying table."""


Field = Column | Properties | Expression | Join | Virtual


@dataclass(frozen=True, slots=True)
class SchemaTable:
    """A HogQL table: its fields and the ones ``*`` expands to."""

    name: str
    stored: str
    fields: dict[str, Field]
    asterisk: tuple[str, ...]


_KINDS = {
    "string": "string",
    "integer": "integer",
    "float": "float",
    "boolean": "boolean",
    "datetime": "datetime",
    "array": "array",
    "json": "json",
}


def _column_type(engine_type: str, field_type: str, lazy: bool) -> Type:
    kind = "uuid" if engine_type == "UUID" else _KINDS.get(field_type, "unknown")
    return Type(kind, nullable=lazy or engine_type.startswith("Nullable("))


def _stored_fields(stored: StoredTable, *, lazy: bool = False) -> dict[str, Field]:
    out: dict[str, Field] = {}
    for column in (*stored.columns, *stored.hidden):
        if column.name in ("properties", "person_properties"):
            continue  # property columns are added as such, with their definitions
        out[column.name] = Column(
            column.name, column.name, _column_type(column.engine_type, column.field_type, lazy)
        )
    return out


def _build() -> dict[str, SchemaTable]:
    tables: dict[str, SchemaTable] = {}
    events = _stored_fields(TABLES["events"])
    events.update(
        {
            "properties": Properties("properties", "properties", EVENT_PROPERTIES),
            "person_mode": Expression("person_mode", "'full'"),
            **{f"$group_{i}": Expression(f"$group_{i}", "''") for i in range(1, 5)},
            **{f"group_{i}": Join(f"group_{i}", "groups", f"$group_{i}", "key") for i in range(5)},
            "elements_chain_href": Expression(
                "elements_chain_href", 'extract(elements_chain, \'(?::|")href="(.*?)"\')'
            ),
            "elements_chain_texts": Expression(
                "elements_chain_texts",
                'arrayDistinct(extractAll(elements_chain, \'(?::|")text="(.*?)"\'))',
                "array",
            ),
            "elements_chain_ids": Expression(
                "elements_chain_ids",
                'arrayDistinct(extractAll(elements_chain, \'(?::|")attr_id="(.*?)"\'))',
                "array",
            ),
            "elements_chain_elements": Expression(
                "elements_chain_elements",
                "arrayDistinct(extractAll(elements_chain, "
                "'(?:^|;)(a|button|form|input|select|textarea|label)(?:\\\\.|;|:|$)'))",
                "array",
            ),
            "person": Join(
                "person",
                "persons",
                "person_id",
                "id",
                shortcuts={
                    "id": "person_id",
                    "properties": "person_properties",
                    "created_at": "person_created_at",
                },
            ),
            "pdi": Join("pdi", "person_distinct_ids", "distinct_id", "distinct_id", "INNER JOIN"),
            "session": Join("session", "sessions", "$session_id", "session_id"),
            "poe": Virtual(
                "poe",
                {
                    "id": "person_id",
                    "properties": "person_properties",
                    "created_at": "person_created_at",
                },
            ),
            "person_properties": Properties(
                "person_properties", "person_properties", PERSON_PROPERTIES
            ),
        }
    )
    tables["events"] = SchemaTable(
        "events",
        "events",
        events,
        asterisk=(
            "uuid",
            "event",
            "properties",
            "timestamp",
            "distinct_id",
            "elements_chain",
            "created_at",
            "$session_id",
            "$window_id",
            "person_mode",
            "$group_0",
            "$group_1",
            "$group_2",
            "$group_3",
            "$group_4",
            "elements_chain_href",
            "elements_chain_texts",
            "elements_chain_ids",
            "elements_chain_elements",
        ),
    )
    persons = _stored_fields(TABLES["persons"])
    persons["properties"] = Properties("properties", "properties", PERSON_PROPERTIES)
    persons["pdi"] = Join("pdi", "person_distinct_ids", "id", "person_id")
    persons["$virt_initial_channel_type"] = Expression(
        "$virt_initial_channel_type",
        "multiIf(properties.$initial_utm_source = 'google', 'Organic Search', "
        "properties.$initial_utm_source IN ('twitter', 'linkedin'), 'Organic Social', "
        "properties.$initial_utm_source = 'newsletter', 'Email', "
        "properties.$initial_utm_source = 'producthunt', 'Referral', 'Direct')",
    )
    tables["persons"] = SchemaTable(
        "persons",
        "persons",
        persons,
        asterisk=("id", "created_at", "properties", "is_identified", "last_seen_at"),
    )
    pdi = _stored_fields(TABLES["person_distinct_ids"])
    pdi["person"] = Join("person", "persons", "person_id", "id")
    tables["person_distinct_ids"] = SchemaTable(
        "person_distinct_ids", "person_distinct_ids", pdi, asterisk=("distinct_id", "person_id")
    )
    sessions = _stored_fields(TABLES["sessions"], lazy=True)
    sessions.update(
        {
            "id": Expression("id", "session_id"),
            "duration": Expression("duration", "$session_duration", "integer"),
            "$exit_current_url": Expression("$exit_current_url", "$end_current_url"),
            "$exit_pathname": Expression("$exit_pathname", "$end_pathname"),
            **{
                f"$entry_utm_{part}": Expression(f"$entry_utm_{part}", "NULL")
                for part in ("campaign", "medium", "term", "content")
            },
            "$last_external_click_url": Expression("$last_external_click_url", "NULL"),
            **{
                f"$entry_{click}": Expression(f"$entry_{click}", "NULL")
                for click in ("gclid", "gad_source", "fbclid")
            },
            "$page_screen_autocapture_count_up_to": Expression(
                "$page_screen_autocapture_count_up_to",
                "$pageview_count + $screen_count + $autocapture_count",
                "integer",
            ),
        }
    )
    stored_sessions = tuple(c.name for c in TABLES["sessions"].columns)
    tables["sessions"] = SchemaTable("sessions", "sessions", sessions, asterisk=stored_sessions)
    groups = _stored_fields(TABLES["groups"])
    groups["properties"] = Properties("properties", "properties", GROUP_PROPERTIES)
    tables["groups"] = SchemaTable(
        "groups", "groups", groups, asterisk=tuple(c.name for c in TABLES["groups"].columns)
    )
    for name, stored in TABLES.items():
        if stored.kind == "system":
            tables[name] = SchemaTable(
                name,
                stored.stored_name,
                _stored_fields(stored),
                asterisk=tuple(c.name for c in stored.columns),
            )
    return tables


_TABLES = _build()


_ALIASES = {
    "raw_persons": "persons",
    "raw_person_distinct_ids": "person_distinct_ids",
    "raw_sessions": "sessions",
}


def table(name: str) -> SchemaTable | None:
    """The HogQL table called ``name`` (``events``, ``posthog.events``, ``system.cohorts``...)."""
    name = name.removeprefix("posthog.")
    return _TABLES.get(_ALIASES.get(name, name))


def table_names() -> list[str]:
    """Every HogQL table name."""
    return list(_TABLES)


def expression_fields(name: str) -> dict[str, dict[str, Any]]:
    """A table's expression fields as PostHog's ``DatabaseSchemaField`` (for the schema)."""
    spec = _TABLES[name]
    return {
        field_name: {
            "name": field_name,
            "hogql_value": hogql_identifier(field_name),
            "type": spec.field_type,
            "schema_valid": True,
        }
        for field_name, spec in spec.fields.items()
        if isinstance(spec, Expression)
    }
