"""Rendering: columns once, then rows; caps on cells, rows and characters; saying what was cut."""

from __future__ import annotations

from typing import Any

import pytest

from posthog_driver import QueryResult
from posthog_driver.tools.rendering import (
    RenderLimits,
    cell_text,
    render_catalog,
    render_fields,
    render_objects,
    render_result,
)


def result(columns: list[str], rows: list[list[Any]], **extra: Any) -> QueryResult:
    return QueryResult(columns=columns, types=["String"] * len(columns), rows=rows, **extra)


def test_a_small_result_is_shown_whole_with_its_row_count() -> None:
    text = render_result(result(["event", "n"], [["$pageview", 3]]))
    assert text == "event | n\n$pageview | 3\n(1 row.)"


def test_an_empty_result_still_names_its_columns() -> None:
    assert render_result(result(["n"], [])) == "n\n(0 rows.)"


def test_ten_thousand_rows_stay_under_the_character_cap_and_say_what_was_cut() -> None:
    rows = [[f"user-{i}@example.com", i, "x" * 50] for i in range(10_000)]
    text = render_result(result(["email", "i", "pad"], rows))
    limits = RenderLimits()
    assert len(text) <= limits.max_chars
    lines = text.splitlines()
    assert lines[0] == "email | i | pad"
    assert len(lines) == 1 + limits.max_rows + 1
    assert lines[-1].startswith(
        "(10,000 rows returned; showing the first 100, cut at the 100-row cap."
    )
    assert "WHERE timestamp > the last value shown" in lines[-1]
    assert "LIMIT 100 OFFSET" not in lines[-1]


def test_wide_rows_stop_at_the_character_cap_before_the_row_cap() -> None:
    rows = [["y" * 150] * 6 for _ in range(10_000)]
    limits = RenderLimits(max_rows=10_000, max_chars=20_000)
    text = render_result(result([f"c{i}" for i in range(6)], rows), limits)
    assert len(text) <= 20_000
    assert "cut at the 20,000-character cap" in text.splitlines()[-1]


def test_the_defaults_are_well_under_claude_codes_tool_result_cap() -> None:
    # 25,000 tokens; even at one token per character (CJK, emoji) we stay far below.
    rows = [["漢字😀" * 100] * 5 for _ in range(10_000)]
    text = render_result(result(list("abcde"), rows))
    assert len(text) <= RenderLimits().max_chars
    assert RenderLimits().max_chars < 25_000


def test_a_long_cell_is_shortened_and_says_by_how_much() -> None:
    text = render_result(result(["blob"], [["a" * 1000]]), RenderLimits(max_cell_chars=50))
    cell = text.splitlines()[1]
    assert len(cell) <= 50
    assert cell == "a" * 42 + "…(+958)"


def test_unicode_is_kept_as_is() -> None:
    text = render_result(result(["名前", "emoji"], [["Zoë Łukasz 東京", "🎉"]]))
    assert text.splitlines()[1] == "Zoë Łukasz 東京 | 🎉"


def test_very_long_unicode_cells_are_cut_on_characters() -> None:
    cell = cell_text("東" * 10_000, 100)
    assert len(cell) == 100
    assert cell.endswith("…(+9908)")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (1.5, "1.5"),
        (float("nan"), "nan"),
        (10**20, "100000000000000000000"),
        ({"a": [1, "é"]}, '{"a":[1,"é"]}'),
        (["x", None], '["x",null]'),
        ("line1\nline2\tend", "line1\\nline2\\tend"),
        ("a | b", "a \\| b"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_cells_are_one_unambiguous_line(value: Any, expected: str) -> None:
    assert cell_text(value, 100) == expected


def test_posthogs_own_limit_is_reported() -> None:
    text = render_result(result(["n"], [[1]], has_more=True))
    assert "PostHog has more rows than it returned" in text.splitlines()[-1]


def test_limits_refuse_sizes_that_cannot_hold_a_closing_line() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        RenderLimits(max_chars=100)


def test_objects_are_listed_on_one_line() -> None:
    assert render_objects(["events", "persons"]).splitlines()[0] == "2 objects: events, persons"
    assert render_objects([]) == "This project has no queryable objects."


def test_event_names_are_listed_once_and_capped() -> None:
    fields = {
        "event": {
            "type": "string",
            "description": "Event name.",
            "values": [f"event_{i:03}" for i in range(500)],
        }
    }
    text = render_fields("events", fields)
    assert text.count("event_000") == 1
    assert text.splitlines()[-1].endswith("event_059 (+440 more)")


def test_a_catalog_renders_each_object_in_order() -> None:
    catalog = {
        "b": {"x": {"type": "string", "description": "X."}},
        "a": {"y": {"type": "integer"}},
    }
    assert render_catalog(catalog) == (
        "b: 1 fields (hogql | type | description)\nx | string | X.\n"
        "a: 1 fields (hogql | type | description)\ny | integer"
    )
