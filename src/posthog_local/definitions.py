"""Event and property definitions, derived once from the loaded data and served from memory.

Answers PostHog's ``event_definitions/`` and ``property_definitions/`` list endpoints (DRF
limit/offset pagination) without touching the engine, so they stay fast during slow queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .catalog import EVENT_PROPERTIES, GROUP_PROPERTIES, PERSON_PROPERTIES, SESSIONS

__all__ = ["Definitions"]

_KIND_DIGIT = {"event": 0, "person": 1, "session": 2, "group": 3}
_SESSION_TYPES = {
    "integer": "Numeric",
    "float": "Numeric",
    "boolean": "Boolean",
    "datetime": "DateTime",
}


@dataclass(frozen=True, slots=True)
class Definitions:
    """What the data holds: events with first/last seen times, and which properties each uses."""

    events: list[dict[str, Any]]
    event_properties: dict[str, set[str]]

    @classmethod
    def from_rows(cls, event_rows: list[list[Any]], pair_rows: list[list[Any]]) -> Definitions:
        """Build from ``(event, first_seen, last_seen, count)`` and ``(event, property)`` rows."""
        events = [
            {
                "id": f"00000000-0000-4000-8000-{index:012d}",
                "name": name,
                "created_at": _iso(first),
                "last_seen_at": _iso(last),
                "last_updated_at": _iso(last),
                "volume_30_day": int(volume),
                "query_usage_30_day": None,
                "tags": [],
                "is_action": False,
                "action_id": None,
                "is_calculating": False,
                "last_calculated_at": None,
                "created_by": None,
                "post_to_slack": False,
                "description": None,
            }
            for index, (name, first, last, volume) in enumerate(sorted(event_rows), start=1)
        ]
        used: dict[str, set[str]] = {}
        for event, prop in pair_rows:
            used.setdefault(prop, set()).add(event)
        return cls(events=events, event_properties=used)

    def event_page(self, search: str | None) -> list[dict[str, Any]]:
        """Event definitions matching ``search`` (case-insensitive substring), by name."""
        return [e for e in self.events if not search or search.lower() in e["name"].lower()]

    def property_page(
        self,
        kind: str,
        search: str | None,
        event_names: list[str] | None,
        filter_by_event_names: bool,
        is_numerical: bool | None,
    ) -> list[dict[str, Any]]:
        """Property definitions of ``kind`` (event|person|session|group) after PostHog's filters."""
        types = self._types(kind)
        rows = []
        for index, (name, prop_type) in enumerate(sorted(types.items()), start=1):
            seen = self.event_properties.get(name, set())
            if kind == "event" and not seen:
                continue
            on_events = None if not event_names else bool(seen & set(event_names))
            if filter_by_event_names and event_names and not on_events:
                continue
            if search and search.lower() not in name.lower():
                continue
            numeric = prop_type == "Numeric"
            if is_numerical is not None and numeric != is_numerical:
                continue
            rows.append(
                {
                    "id": f"00000000-0000-4000-9{_KIND_DIGIT[kind]}00-{index:012d}",
                    "name": name,
                    "is_numerical": numeric,
                    "property_type": prop_type,
                    "type": {"event": 1, "person": 2, "group": 3, "session": 4}[kind],
                    "tags": [],
                    "is_seen_on_filtered_events": on_events,
                    "description": None,
                }
            )
        return rows

    @staticmethod
    def _types(kind: str) -> dict[str, str]:
        if kind == "event":
            return EVENT_PROPERTIES
        if kind == "person":
            return PERSON_PROPERTIES
        if kind == "group":
            return GROUP_PROPERTIES
        return {
            c.name: _SESSION_TYPES.get(c.field_type, "String")
            for c in SESSIONS.columns
            if c.name.startswith("$")
        }


def _iso(value: Any) -> str:
    text = str(value).replace(" ", "T")
    return text if text.endswith("Z") else text + "Z"
