"""The funnel walk itself, called as the engine calls it (JSON in, JSON out), without a server.

``test_funnels.py`` drives the same functions through HogQL on a live server, where they run in
the sandboxed engine process and coverage cannot see them; this file pins the walk's rules for
every order, attribution and error path in this process, in milliseconds.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from posthog_local.engine import _funnels as funnels


def _now_ms() -> int:
    """The query's start as the engine passes it: now (collection may be minutes earlier)."""
    return int(time.time() * 1000)


def _uuid(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012d}"


def _events(*events: tuple[Any, ...]) -> list[list[Any]]:
    """(timestamp, steps[, breakdown]) per event, as the steps function's input tuples."""
    out = []
    for i, (timestamp, steps, *breakdown) in enumerate(events, start=1):
        out.append([timestamp, _uuid(i), breakdown[0] if breakdown else "", list(steps)])
    return out


def _steps(events: list[list[Any]], **kw: Any) -> list[Any]:
    args: dict[str, Any] = {
        "steps": 3,
        "window": 3600,
        "attribution": "first_touch",
        "order": "ordered",
        "props": [""],
        "optional": [],
    }
    args.update(kw)
    payload = [
        args["steps"],
        args["window"],
        args["attribution"],
        args["order"],
        args["props"],
        args["optional"],
        events,
    ]
    result: list[Any] = json.loads(funnels.steps(json.dumps(payload), _now_ms(), 60.0))
    return result


def _trends(events: list[list[Any]], **kw: Any) -> list[Any]:
    args: dict[str, Any] = {
        "from_step": 1,
        "to_step": 2,
        "steps": 2,
        "window": 3600,
        "attribution": "first_touch",
        "order": "ordered",
        "props": [""],
    }
    args.update(kw)
    payload = [
        args["from_step"],
        args["to_step"],
        args["steps"],
        args["window"],
        args["attribution"],
        args["order"],
        args["props"],
        events,
    ]
    result: list[Any] = json.loads(funnels.trends(json.dumps(payload), _now_ms(), 60.0))
    return result


def test_an_ordered_walk_reports_step_timings_events_and_bits() -> None:
    result = _steps(_events((1.0, [1]), (2.5, [2]), (4.0, [3])))
    u1, u2, u3 = _uuid(1), _uuid(2), _uuid(3)
    assert result == [[2, "", [1.5, 1.5], [[u1, u1], [u2, u2], [u3, u3]], 7]]


@pytest.mark.parametrize("order", ["ordered", "strict", "unordered"])
def test_no_event_of_the_first_step_means_the_person_never_entered(order: str) -> None:
    assert _steps(_events((1.0, [2]), (2.0, [])), order=order)[0][0] == -1


def test_the_window_and_the_order_bound_an_ordered_walk() -> None:
    assert _steps(_events((1.0, [1]), (3602.0, [2])))[0][0] == 0
    assert _steps(_events((1.0, [2]), (2.0, [1]), (3.0, [3])))[0][0] == 0
    # a later first step starts a fresh attempt that can go further
    retry = _steps(_events((1.0, [1]), (5000.0, [1]), (5001.0, [2]), (5002.0, [3])))
    assert retry[0][0] == 2


def test_a_strict_walk_breaks_on_any_other_event() -> None:
    between = _events((1.0, [1]), (2.0, []), (3.0, [2]))
    assert _steps(between, order="ordered")[0][0] == 1
    assert _steps(between, order="strict")[0][0] == 0
    straight = _events((1.0, [1]), (2.0, [2]), (3.0, [3]))
    assert _steps(straight, order="strict")[0][0] == 2


def test_an_unordered_walk_takes_the_steps_in_any_order_within_the_window() -> None:
    backwards = _events((1.0, [3]), (2.0, [2]), (3.0, [1]))
    result = _steps(backwards, order="unordered")
    assert (result[0][0], result[0][4]) == (2, 0b111)
    assert _steps(_events((1.0, [3]), (9000.0, [2])), order="unordered")[0][0] == 0


def test_exclusions_remove_the_person_in_ordered_and_strict_walks() -> None:
    excluded = _events((1.0, [1]), (2.0, [-2]), (3.0, [2]))
    assert _steps(excluded, steps=2) == [[-1, "", [], [], 0]]
    assert _steps(excluded, steps=2, order="strict")[0][0] == -1
    # an exclusion after the person converted does not undo it
    after = _events((1.0, [1]), (2.0, [2]), (3.0, [-2]))
    assert _steps(after, steps=2)[0][0] == 1


def test_an_optional_step_may_be_skipped() -> None:
    step, _, timings, _, bits = _steps(_events((1.0, [1]), (5.0, [3])), optional=[2])[0]
    assert (step, timings, bits) == (1, [4.0], 0b101)


def test_breakdown_attribution_all_events_and_step() -> None:
    events = _events((1.0, [1], "a"), (2.0, [2], "b"), (3.0, [1], "b"))
    every = _steps(events, steps=2, attribution="all_events", props=["a", "b"])
    assert [(r[0], r[1]) for r in every] == [(0, "a"), (0, "b")]
    second_a = _steps(events, steps=2, attribution="step_1", props=["a"])
    second_b = _steps(events, steps=2, attribution="step_1", props=["b"])
    assert (second_a[0][0], second_b[0][0]) == (0, 1)
    # first and last touch: PostHog's SQL gives every event the person's attributed value
    same = _events((1.0, [1], "a"), (2.0, [2], "a"))
    for attribution in ("first_touch", "last_touch"):
        assert _steps(same, steps=2, attribution=attribution, props=["a"])[0][:2] == [1, "a"]


def test_many_matching_events_keep_at_most_ten_per_step() -> None:
    events = _events((1.0, [1]), *[(1.0 + i, [2]) for i in range(1, 30)])
    _, _, _, uuids, _ = _steps(events, steps=2)[0]
    assert all(len(step) <= 10 for step in uuids)


def test_events_without_a_timestamp_are_skipped() -> None:
    events = [[None, _uuid(1), "", [1]], *_events((1.0, [1]), (2.0, [2]))]
    assert _steps(events, steps=2)[0][0] == 1


def test_trends_give_each_entry_period_a_conversion_or_not() -> None:
    events = [
        [1.0, 100, _uuid(1), "", [1]],
        [2.0, 100, _uuid(2), "", [2]],
        [3.0, 200, _uuid(3), "", [1]],
    ]
    assert _trends(events) == [[100, 1, "", _uuid(2)], [200, -1, "", _uuid(3)]]
    unordered = [
        [1.0, 100, _uuid(1), "", [2]],
        [2.0, 100, _uuid(2), "", [1]],
        [3.0, 200, _uuid(3), "", [1]],
    ]
    rows = _trends(unordered, order="unordered")
    assert [(r[0], r[1]) for r in rows] == [(100, 1), (200, -1)]
    strict = [
        [1.0, 100, _uuid(1), "", [1]],
        [2.0, 100, _uuid(2), "", []],
        [3.0, 100, _uuid(3), "", [2]],
    ]
    assert [(r[0], r[1]) for r in _trends(strict, order="strict")] == [(100, -1)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: _steps([], steps=0), "A funnel has 1 to 32 steps; got 0"),
        (lambda: _steps([], order="sideways"), "Unknown funnel order type 'sideways'"),
        (lambda: _steps(_events((1.0, [7]))), "matched step [7] but the funnel has 3 steps"),
        (lambda: _steps([[1.0, "x", ""]]), "the UDF's declared shape"),
        (lambda: _steps([], props="a"), "breakdown values must be an array"),
        (lambda: _trends([], from_step=2, to_step=1), "1 <= from_step <= to_step <= num_steps"),
        (lambda: funnels.steps("[1, 2]", _now_ms(), 60.0), "malformed arguments"),
        (
            lambda: funnels.steps("x" * (funnels.MAX_INPUT_CHARS + 1), _now_ms(), 60.0),
            "narrow the date range",
        ),
    ],
)
def test_bad_arguments_raise_an_error_that_says_what_is_wrong(call: Any, message: str) -> None:
    with pytest.raises(funnels.FunnelError, match=None) as caught:
        call()
    assert message in str(caught.value)


def test_a_walk_past_the_query_deadline_stops_with_a_timeout() -> None:
    events = _events(*[(float(i), [1 + i % 3]) for i in range(5000)])
    payload = json.dumps([3, 3600, "first_touch", "ordered", [""], [], events])
    with pytest.raises(funnels.FunnelTimeoutError, match="query time limit"):
        funnels.steps(payload, _now_ms() - 120_000, 60.0)
