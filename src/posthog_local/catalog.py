"""The HogQL tables the local server exposes: their columns, engine types and PostHog field types.

One description serves two readers: the engine creates its tables from ``Column.engine_type`` and
``DatabaseSchemaQuery`` is answered from ``Column.field_type`` (PostHog's
``DatabaseSerializedFieldType``) plus the relation fields PostHog shows (``events.person``...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EVENT_PROPERTIES",
    "PERSON_PROPERTIES",
    "SYSTEM_TABLES",
    "TABLES",
    "Column",
    "Relation",
    "Table",
    "hogql_identifier",
]

UTC_TIME = "DateTime64(6, 'UTC')"

#: Known event properties and their PostHog property types (Numeric ones read back as Float64).
EVENT_PROPERTIES: dict[str, str] = {
    "$browser": "String",
    "$os": "String",
    "$device_type": "String",
    "$current_url": "String",
    "$pathname": "String",
    "$host": "String",
    "$referring_domain": "String",
    "$session_id": "String",
    "$lib": "String",
    "$event_type": "String",
    "$screen_width": "Numeric",
    "$screen_height": "Numeric",
    "$viewport_width": "Numeric",
    "$viewport_height": "Numeric",
    "utm_source": "String",
    "feature": "String",
    "plan": "String",
    "amount": "Numeric",
}

#: Known person properties and their PostHog property types.
PERSON_PROPERTIES: dict[str, str] = {
    "email": "String",
    "name": "String",
    "company": "String",
    "country": "String",
    "plan": "String",
    "created_at": "DateTime",
    "$initial_utm_source": "String",
    "$initial_browser": "String",
    "$initial_os": "String",
}

#: Group (company) properties and their PostHog property types.
GROUP_PROPERTIES: dict[str, str] = {
    "name": "String",
    "industry": "String",
    "employees": "Numeric",
}

#: Properties are stored as PostHog stores them: JSON text in a String column, so HogQL reads
#: them with PostHog's extraction semantics (a missing key or JSON null is NULL, numbers are text).
JSON_TEXT = "String"


def hogql_identifier(name: str) -> str:
    """How HogQL spells a column name: backticks when it has characters beyond ``[A-Za-z0-9_]``."""
    plain = name.replace("_", "a").isalnum() and not name[0].isdigit()
    return name if plain else f"`{name}`"


@dataclass(frozen=True, slots=True)
class Column:
    """A stored column: its HogQL name, engine type and PostHog serialized field type."""

    name: str
    engine_type: str
    field_type: str

    def serialize(self) -> dict[str, Any]:
        """This column as a PostHog ``DatabaseSchemaField``."""
        return {
            "name": self.name,
            "hogql_value": hogql_identifier(self.name),
            "type": self.field_type,
            "schema_valid": True,
        }


@dataclass(frozen=True, slots=True)
class Relation:
    """A relation field PostHog shows in the schema (a lazy join or a traverser); not stored."""

    name: str
    field_type: str
    table: str | None = None
    chain: tuple[str, ...] = ()

    def serialize(self, tables: dict[str, Table]) -> dict[str, Any]:
        """This relation as a PostHog ``DatabaseSchemaField``, listing the joined table's fields."""
        out: dict[str, Any] = {
            "name": self.name,
            "hogql_value": hogql_identifier(self.name),
            "type": self.field_type,
            "schema_valid": True,
        }
        if self.table is not None:
            out["table"] = self.table
            out["fields"] = [c.name for c in tables[self.table].columns]
        if self.chain:
            out["chain"] = list(self.chain)
        return out


@dataclass(frozen=True, slots=True)
class Table:
    """A HogQL table: ``name`` as users write it, ``stored_name`` inside the engine database."""

    name: str
    stored_name: str
    columns: tuple[Column, ...]
    relations: tuple[Relation, ...] = ()
    kind: str = "posthog"
    order_by: str = "tuple()"
    hidden: tuple[Column, ...] = field(default=())

    def ddl(self, database: str) -> str:
        """The CREATE TABLE statement for this table in ``database``."""
        cols = ", ".join(f"`{c.name}` {c.engine_type}" for c in (*self.columns, *self.hidden))
        return (
            f"CREATE TABLE {database}.{self.stored_name} ({cols}) "
            f"ENGINE = MergeTree ORDER BY {self.order_by}"
        )


def _cols(*spec: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(name, engine, kind) for name, engine, kind in spec)


EVENTS = Table(
    name="events",
    stored_name="events",
    columns=_cols(
        ("uuid", "UUID", "string"),
        ("event", "String", "string"),
        ("properties", JSON_TEXT, "json"),
        ("timestamp", UTC_TIME, "datetime"),
        ("distinct_id", "String", "string"),
        ("elements_chain", "String", "string"),
        ("created_at", UTC_TIME, "datetime"),
        ("$session_id", "String", "string"),
        ("$window_id", "String", "string"),
        ("person_id", "UUID", "string"),
        ("$group_0", "String", "string"),  # the company's group key, '' for anonymous events
    ),
    relations=(
        Relation("person", "lazy_table", table="persons"),
        Relation("session", "lazy_table", table="sessions"),
        Relation("pdi", "lazy_table", table="person_distinct_ids"),
        Relation("poe", "virtual_table", table="persons"),
    ),
    order_by="(timestamp, event)",
    # PostHog keeps person properties on each event ("persons on events"); HogQL reaches them as
    # person.properties.x, so the column itself stays out of the schema.
    hidden=_cols(
        ("person_properties", JSON_TEXT, "json"),
        ("person_created_at", UTC_TIME, "datetime"),
    ),
)

PERSONS = Table(
    name="persons",
    stored_name="persons",
    columns=_cols(
        ("id", "UUID", "string"),
        ("created_at", UTC_TIME, "datetime"),
        ("properties", JSON_TEXT, "json"),
        ("is_identified", "UInt8", "boolean"),  # an Int8 in PostHog's person table: 0/1
        ("last_seen_at", f"Nullable({UTC_TIME})", "datetime"),
    ),
    relations=(Relation("pdi", "lazy_table", table="person_distinct_ids"),),
    order_by="id",
)

SESSIONS = Table(
    name="sessions",
    stored_name="sessions",
    columns=_cols(
        ("session_id", "String", "string"),
        ("distinct_id", "String", "string"),
        ("$start_timestamp", UTC_TIME, "datetime"),
        ("$end_timestamp", UTC_TIME, "datetime"),
        ("$session_duration", "Int64", "integer"),
        ("$entry_current_url", "Nullable(String)", "string"),
        ("$entry_pathname", "Nullable(String)", "string"),
        ("$end_current_url", "Nullable(String)", "string"),
        ("$end_pathname", "Nullable(String)", "string"),
        ("$entry_utm_source", "Nullable(String)", "string"),
        ("$entry_referring_domain", "Nullable(String)", "string"),
        ("$entry_hostname", "Nullable(String)", "string"),
        ("$end_hostname", "Nullable(String)", "string"),
        ("$urls", "Array(String)", "array"),
        ("$num_uniq_urls", "UInt64", "integer"),
        ("$pageview_count", "UInt64", "integer"),
        ("$autocapture_count", "UInt64", "integer"),
        ("$screen_count", "UInt64", "integer"),
        ("$is_bounce", "UInt8", "boolean"),  # PostHog's is 0/1 (NULL for no pageview)
        ("$channel_type", "String", "string"),
    ),
    order_by="`$start_timestamp`",
)

PERSON_DISTINCT_IDS = Table(
    name="person_distinct_ids",
    stored_name="person_distinct_ids",
    columns=_cols(("distinct_id", "String", "string"), ("person_id", "UUID", "string")),
    relations=(Relation("person", "lazy_table", table="persons"),),
    order_by="distinct_id",
)

GROUPS = Table(
    name="groups",
    stored_name="groups",
    columns=_cols(
        ("index", "Int64", "integer"),
        ("key", "String", "string"),
        ("created_at", UTC_TIME, "datetime"),
        ("updated_at", UTC_TIME, "datetime"),
        ("properties", JSON_TEXT, "json"),
    ),
    order_by="(index, key)",
)


def _system(name: str, *spec: tuple[str, str, str]) -> Table:
    return Table(
        name=f"system.{name}",
        stored_name=f"system_{name}",
        columns=_cols(*spec),
        kind="system",
        order_by="id",
    )


_COMMON = (("id", "Int64", "integer"), ("name", "String", "string"))
_DESCRIBED = (("description", "String", "string"), ("created_at", UTC_TIME, "datetime"))
_DELETED = (("deleted", "Bool", "boolean"),)

SYSTEM_TABLES: tuple[Table, ...] = (
    _system("actions", *_COMMON, *_DESCRIBED, ("steps_json", "String", "json"), *_DELETED),
    _system(
        "cohorts",
        *_COMMON,
        *_DESCRIBED,
        ("is_static", "Bool", "boolean"),
        ("count", "Int64", "integer"),
        ("filters", "String", "json"),
        *_DELETED,
    ),
    _system(
        "dashboards",
        *_COMMON,
        *_DESCRIBED,
        ("pinned", "Bool", "boolean"),
        ("tags", "Array(String)", "array"),
        *_DELETED,
    ),
    _system(
        "feature_flags",
        ("id", "Int64", "integer"),
        ("key", "String", "string"),
        ("name", "String", "string"),
        ("active", "Bool", "boolean"),
        ("rollout_percentage", "Int64", "integer"),
        ("created_at", UTC_TIME, "datetime"),
        ("filters", "String", "json"),
        *_DELETED,
    ),
    _system(
        "insights",
        *_COMMON,
        ("short_id", "String", "string"),
        *_DESCRIBED,
        ("query", "String", "json"),
        ("saved", "Bool", "boolean"),
        ("dashboard_ids", "Array(Int64)", "array"),
        *_DELETED,
    ),
)

#: Every table by its HogQL name, in the order the schema lists them.
TABLES: dict[str, Table] = {
    t.name: t for t in (EVENTS, GROUPS, PERSONS, PERSON_DISTINCT_IDS, SESSIONS, *SYSTEM_TABLES)
}
