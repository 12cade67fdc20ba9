"""PostHog-shaped response bodies for respx tests (validated against PostHog's schema)."""

from __future__ import annotations

from typing import Any

HOST = "https://posthog.test"
PROJECT = "4242"
QUERY_URL = f"{HOST}/api/projects/{PROJECT}/query/"
PROJECT_URL = f"{HOST}/api/projects/{PROJECT}/"
EVENT_DEFS_URL = f"{HOST}/api/projects/{PROJECT}/event_definitions/"
PROPERTY_DEFS_URL = f"{HOST}/api/projects/{PROJECT}/property_definitions/"


def hogql_response(
    columns: list[str],
    types: list[str],
    rows: list[list[Any]],
    *,
    has_more: bool = False,
    hogql: str = "SELECT 1",
) -> dict[str, Any]:
    """A `HogQLQueryResponse` as PostHog sends it (types as [name, type] pairs)."""
    return {
        "results": rows,
        "columns": columns,
        "types": [[c, t] for c, t in zip(columns, types, strict=True)],
        "hogql": hogql,
        "hasMore": has_more,
        "limit": 100,
        "offset": 0,
        "timings": [{"k": "./query", "t": 0.01}],
    }


def field(name: str, kind: str, **extra: Any) -> dict[str, Any]:
    """One `DatabaseSchemaField`."""
    hogql_value = f"`{name}`" if not name.replace("_", "a").isalnum() else name
    return {"name": name, "hogql_value": hogql_value, "type": kind, "schema_valid": True, **extra}


def table(name: str, kind: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    """One `DatabaseSchemaTable`."""
    return {"type": kind, "id": name, "name": name, "fields": {f["name"]: f for f in fields}}


def schema_response() -> dict[str, Any]:
    """A `DatabaseSchemaQueryResponse` with PostHog, system and warehouse tables."""
    tables = [
        table(
            "events",
            "posthog",
            [
                field("uuid", "string"),
                field("event", "string"),
                field("properties", "json"),
                field("timestamp", "datetime"),
                field("distinct_id", "string"),
                field("$session_id", "string"),
                field("person_id", "field_traverser", chain=["person", "id"]),
                field("person", "lazy_table", table="persons", fields=["id", "properties"]),
            ],
        ),
        table(
            "persons",
            "posthog",
            [
                field("id", "string"),
                field("properties", "json"),
                field("created_at", "datetime"),
            ],
        ),
        table("sessions", "posthog", [field("session_id", "string")]),
        table("system.cohorts", "system", [field("id", "integer"), field("name", "string")]),
        table("stripe_charges", "data_warehouse", [field("amount", "integer")]),
    ]
    tables[-1] |= {"format": "Parquet", "url_pattern": "https://bucket.test/stripe/charges/*"}
    return {"tables": {t["name"]: t for t in tables}, "joins": []}


def page(results: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    """A DRF LimitOffset page."""
    return {"count": len(results), "next": next_url, "previous": None, "results": results}


def prop(name: str, property_type: str | None) -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "name": name,
        "is_numerical": property_type == "Numeric",
        "property_type": property_type,
        "tags": [],
    }


def error_body(kind: str, code: str, detail: str) -> dict[str, Any]:
    """PostHog's drf-exceptions-hog error body."""
    return {"type": kind, "code": code, "detail": detail, "attr": None}
