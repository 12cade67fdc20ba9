"""Compact text renderings of query results and schemas, sized for a model's context window.

A query result is written as one header line of column names, then one line per row, cells
separated by ` | `. Three caps keep it small, and a closing line always says what was cut:

- `max_cell_chars`: a longer cell is shortened to that many characters and marked `…(+N)`;
- `max_rows`: at most that many rows are written;
- `max_chars`: rows stop before the text would pass that many characters (the closing line
  is always included and stays within the cap).

Fields and catalogs use the same idea: one line per field (`hogql | type | description`),
known event names listed once and capped, and a closing line when fields were left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from posthog_driver._results import QueryResult

__all__ = [
    "DEFAULT_MAX_CELL_CHARS",
    "DEFAULT_MAX_CHARS",
    "DEFAULT_MAX_ROWS",
    "RenderLimits",
    "render_catalog",
    "render_fields",
    "render_objects",
    "render_result",
]

DEFAULT_MAX_ROWS = 100
DEFAULT_MAX_CHARS = 16_000
DEFAULT_MAX_CELL_CHARS = 200

_SEP = " | "
_ELLIPSIS = "…"
# Room kept for the closing line, so it always fits inside `max_chars`.
_FOOTER_ROOM = 400
_MAX_EVENT_NAMES = 60
_MAX_DESCRIPTION_CHARS = 120


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """The three caps of a rendering.

    The defaults keep any result under 16,000 characters: about 4,000 tokens of ASCII and at
    worst about 16,000 tokens of CJK text, well under Claude Code's 25,000-token cap.
    """

    max_rows: int = DEFAULT_MAX_ROWS
    max_chars: int = DEFAULT_MAX_CHARS
    max_cell_chars: int = DEFAULT_MAX_CELL_CHARS

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.max_cell_chars < 8 or self.max_chars < _FOOTER_ROOM * 2:
            raise ValueError(
                "RenderLimits need max_rows >= 1, max_cell_chars >= 8 and "
                f"max_chars >= {_FOOTER_ROOM * 2}."
            )


def cell_text(value: Any, max_chars: int) -> str:
    """One cell as text on one line, shortened to `max_chars` with a note of how much was cut."""
    if value is None:
        text = "null"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and not math.isfinite(value):
        text = str(value)
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    # Rows are lines and cells are split by " | ": keep both unambiguous.
    text = text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
    text = text.replace("\t", "\\t").replace("|", "\\|")
    if len(text) <= max_chars:
        return text
    keep = max_chars - 8
    return f"{text[:keep]}{_ELLIPSIS}(+{len(text) - keep})"


def render_result(result: QueryResult, limits: RenderLimits = RenderLimits()) -> str:
    """A query result as compact text: columns once, then rows, then a closing line."""
    header = _SEP.join(cell_text(c, limits.max_cell_chars) for c in result.columns)
    lines = [header]
    used = len(header) + 1
    budget = limits.max_chars - _FOOTER_ROOM
    shown = 0
    for row in result.rows[: limits.max_rows]:
        line = _SEP.join(cell_text(v, limits.max_cell_chars) for v in row)
        if used + len(line) + 1 > budget:
            break
        lines.append(line)
        used += len(line) + 1
        shown += 1
    lines.append(_result_footer(result, shown, limits))
    return "\n".join(lines)


def _result_footer(result: QueryResult, shown: int, limits: RenderLimits) -> str:
    total = len(result.rows)
    more_upstream = (
        " PostHog has more rows than it returned (its default LIMIT applied): add an explicit "
        "LIMIT, or aggregate."
        if result.has_more
        else ""
    )
    if shown == total:
        return f"({total:,} row{'s' if total != 1 else ''}.{more_upstream})"
    cap = (
        f"the {limits.max_rows:,}-row cap"
        if shown == limits.max_rows
        else f"the {limits.max_chars:,}-character cap"
    )
    return (
        f"({total:,} rows returned; showing the first {shown:,}, cut at {cap}. Better: "
        "aggregate or filter so fewer rows come back. To page through the rest, ORDER BY "
        "timestamp and query again with WHERE timestamp > the last value shown and a LIMIT "
        f"(PostHog refuses OFFSET for API-key queries).{more_upstream})"
    )


def render_objects(names: list[str]) -> str:
    """The object names, one line, with a hint of what to do next."""
    if not names:
        return "This project has no queryable objects."
    return (
        f"{len(names)} objects: {', '.join(names)}\n"
        "Next: get_fields(object_name) for the fields of the one you need (events holds the "
        "tracked events, persons the people, sessions the visits)."
    )


def render_fields(
    name: str,
    fields: Mapping[str, Mapping[str, Any]],
    limits: RenderLimits = RenderLimits(),
    *,
    search: str | None = None,
) -> str:
    """One object's fields, one line each (`hogql | type | description`), within `max_chars`."""
    return _render_catalog({name: fields}, limits, search=search, single=True)


def render_catalog(
    catalog: Mapping[str, Mapping[str, Mapping[str, Any]]], limits: RenderLimits = RenderLimits()
) -> str:
    """Many objects' fields, one section each, within `max_chars` in all."""
    return _render_catalog(catalog, limits, search=None, single=False)


def _render_catalog(
    catalog: Mapping[str, Mapping[str, Mapping[str, Any]]],
    limits: RenderLimits,
    *,
    search: str | None,
    single: bool,
) -> str:
    budget = limits.max_chars - _FOOTER_ROOM
    lines: list[str] = []
    used = 0
    left_out: dict[str, int] = {}
    for name, fields in catalog.items():
        selected = _matching(fields, search)
        section = [_section_header(name, len(fields), len(selected), search)]
        section.extend(_field_line(f, spec) for f, spec in selected.items())
        events = selected.get("event", {}).get("values")
        if isinstance(events, list) and events:
            section.append(_event_names(events))
        for i, line in enumerate(section):
            if used + len(line) + 1 > budget:
                left_out[name] = len(section) - i
                break
            lines.append(line)
            used += len(line) + 1
        if left_out:
            break
    lines.append(_catalog_footer(catalog, left_out, single=single))
    return "\n".join(line for line in lines if line)


def _matching(fields: Mapping[str, Mapping[str, Any]], search: str | None) -> dict[str, Any]:
    if not search:
        return dict(fields)
    needle = search.lower()
    return {
        ref: spec
        for ref, spec in fields.items()
        if needle in ref.lower() or needle in str(spec.get("description", "")).lower()
    }


def _section_header(name: str, total: int, selected: int, search: str | None) -> str:
    if search:
        return f"{name}: {selected} of {total} fields match {search!r} (hogql | type | description)"
    return f"{name}: {total} fields (hogql | type | description)"


def _field_line(ref: str, spec: Mapping[str, Any]) -> str:
    kind = str(spec.get("type", "unknown"))
    if spec.get("table"):
        kind = f"{kind} -> {spec['table']}"
    description = cell_text(spec.get("description") or "", _MAX_DESCRIPTION_CHARS)
    return f"{ref}{_SEP}{kind}{_SEP}{description}".rstrip(" |")


def _event_names(values: list[Any]) -> str:
    names = [cell_text(v, 60) for v in values[:_MAX_EVENT_NAMES]]
    more = f" (+{len(values) - _MAX_EVENT_NAMES} more)" if len(values) > _MAX_EVENT_NAMES else ""
    return f"known event names ({len(values)}): {', '.join(names)}{more}"


def _catalog_footer(catalog: Mapping[str, Any], left_out: dict[str, int], *, single: bool) -> str:
    if not left_out:
        return ""
    (cut_at, lines_left), *_ = left_out.items()
    names = list(catalog)
    after = names[names.index(cut_at) + 1 :]
    if single:
        return (
            f"({lines_left} more lines of {cut_at} not shown, cut at the character cap. Call "
            "get_fields again with `search` set to part of a field name to see the rest.)"
        )
    return (
        f"(Cut at the character cap: {lines_left} more lines of {cut_at}"
        + (f" and the objects {_names(after)}" if after else "")
        + " not shown. Call get_fields(object_name) for each of them.)"
    )


def _names(names: Iterable[str]) -> str:
    listed = list(names)
    if len(listed) > 20:
        return ", ".join(listed[:20]) + f" and {len(listed) - 20} more"
    return ", ".join(listed)
