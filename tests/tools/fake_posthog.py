"""A small PostHog stand-in on respx, for the toolset's edge cases (errors, huge results).

End-to-end behaviour is tested against the local server; this fake answers only what the
toolset tests need: the schema, definitions, and HogQL queries through a swappable handler.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import respx

from posthog_driver import DriverSettings

HOST = "https://posthog.test"
PROJECT = "1"
# Looks like a real personal key, so a leak of it is easy to spot in captured text.
KEY = "phx_TOOLKEY0123456789abcdefghijklmnopqrstuvwxyzAB"

SCHEMA = {
    "tables": {
        "events": {
            "type": "posthog",
            "name": "events",
            "fields": {
                "event": {"name": "event", "hogql_value": "event", "type": "string"},
                "timestamp": {"name": "timestamp", "hogql_value": "timestamp", "type": "datetime"},
                "properties": {"name": "properties", "hogql_value": "properties", "type": "json"},
                "person": {
                    "name": "person",
                    "hogql_value": "person",
                    "type": "lazy_table",
                    "table": "persons",
                },
            },
        },
        "persons": {
            "type": "posthog",
            "name": "persons",
            "fields": {
                "id": {"name": "id", "hogql_value": "id", "type": "string"},
                "properties": {"name": "properties", "hogql_value": "properties", "type": "json"},
            },
        },
        "sessions": {
            "type": "posthog",
            "name": "sessions",
            "fields": {
                "session_id": {"name": "session_id", "hogql_value": "session_id", "type": "string"}
            },
        },
    }
}

EVENT_NAMES = ["$pageview", "$pageleave", "signed_up", "feature_used"]


def page(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One DRF page holding `results` and no next link."""
    return {"count": len(results), "next": None, "previous": None, "results": results}


def hogql_answer(columns: list[str], rows: list[list[Any]], **extra: Any) -> dict[str, Any]:
    """A `HogQLQueryResponse` body."""
    return {
        "columns": columns,
        "types": [[c, "String"] for c in columns],
        "results": rows,
        "hasMore": False,
        **extra,
    }


QueryHandler = Callable[[dict[str, Any]], httpx.Response]


class FakePostHog:
    """The respx routes of one fake project; set `on_query` to answer HogQL queries."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.hogql: list[dict[str, Any]] = []
        self.on_query: QueryHandler = lambda node: httpx.Response(
            200, json=hogql_answer(["n"], [[1]])
        )
        self.event_properties = [
            {"name": "$browser", "property_type": "String"},
            {"name": "$feature/new-nav", "property_type": "Boolean"},
            {"name": "amount", "property_type": "Numeric"},
        ]
        base = f"{HOST}/api/projects/{PROJECT}"
        router.post(f"{base}/query/").mock(side_effect=self._query)
        router.get(f"{base}/property_definitions/").mock(side_effect=self._properties)
        router.get(f"{base}/event_definitions/").mock(
            return_value=httpx.Response(200, json=page([{"name": n} for n in EVENT_NAMES]))
        )

    def _query(self, request: httpx.Request) -> httpx.Response:
        node = json.loads(request.content)["query"]
        if node["kind"] == "DatabaseSchemaQuery":
            return httpx.Response(200, json=SCHEMA)
        self.hogql.append(node)
        return self.on_query(node)

    def _properties(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("type") == "person":
            return httpx.Response(200, json=page([{"name": "email", "property_type": "String"}]))
        return httpx.Response(200, json=page(self.event_properties))


def settings(**overrides: Any) -> DriverSettings:
    """Settings for the fake project: no retries or waiting, so error paths are immediate."""
    values: dict[str, Any] = {
        "host": HOST,
        "api_key": KEY,
        "project_id": PROJECT,
        "max_retries": 0,
        "retry_base_delay": 0,
        "schema_cache_ttl": 0,
    }
    values.update(overrides)
    return DriverSettings(**values)
