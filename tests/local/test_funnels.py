# ruff: noqa: S608  (HogQL built from the test's own constants)
"""PostHog's funnel UDFs (``aggregate_funnel*``) on the local server.

Small hand-built event arrays pin the walk's rules (order, window, strictness, exclusions,
optional steps, breakdown attribution, trends periods); on the demo data the UDF's answer is
checked against ClickHouse's own ``windowFunnel``, computed by the same server in another way.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _uuid(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012d}"


def _events(*events: tuple[Any, ...]) -> str:
    """HogQL for PostHog's steps input: (timestamp, uuid, breakdown, steps) per event."""
    parts = []
    for i, (timestamp, steps, *breakdown) in enumerate(events, start=1):
        prop = breakdown[0] if breakdown else ""
        parts.append(f"({timestamp}, toUUID('{_uuid(i)}'), '{prop}', {list(steps)})")
    return "[" + ", ".join(parts) + "]"


async def _steps(hogql: Any, events: str, **kw: Any) -> list[Any]:
    args = {
        "steps": 3,
        "window": 3600,
        "attribution": "first_touch",
        "order": "ordered",
        "props": "['']",
        "optional": "[]",
    }
    args.update(kw)
    query = (
        f"SELECT aggregate_funnel({args['steps']}, {args['window']}, '{args['attribution']}', "
        f"'{args['order']}', {args['props']}, {args['optional']}, {events})"
    )
    response = await hogql(query)
    assert response.status_code == 200, response.json()
    result: list[Any] = response.json()["results"][0][0]
    return result


async def test_an_ordered_funnel_reports_the_last_step_timings_events_and_bit_field(
    hogql: Any,
) -> None:
    result = await _steps(hogql, _events((1.0, [1]), (2.5, [2]), (4.0, [3])))
    # step 2 (0-based) reached, 1.5 s then 1.5 s between steps, every step's event, bits 0b111;
    # PostHog puts the event that counted first in each step's list, so it may repeat
    u1, u2, u3 = _uuid(1), _uuid(2), _uuid(3)
    assert result == [[2, "", [1.5, 1.5], [[u1, u1], [u2, u2], [u3, u3]], 7]]


async def test_steps_outside_the_conversion_window_or_out_of_order_do_not_count(
    hogql: Any,
) -> None:
    late = await _steps(hogql, _events((1.0, [1]), (3602.0, [2])), window=3600)
    assert [r[0] for r in late] == [0]
    swapped = await _steps(hogql, _events((1.0, [2]), (2.0, [1]), (3.0, [3])))
    assert [r[0] for r in swapped] == [0]


async def test_a_strict_funnel_breaks_on_any_other_event_and_an_unordered_one_takes_any_order(
    hogql: Any,
) -> None:
    between = _events((1.0, [1]), (2.0, []), (3.0, [2]))
    assert (await _steps(hogql, between, order="ordered"))[0][0] == 1
    assert (await _steps(hogql, between, order="strict"))[0][0] == 0
    backwards = _events((1.0, [3]), (2.0, [2]), (3.0, [1]))
    assert (await _steps(hogql, backwards, order="ordered"))[0][0] == 0
    unordered = await _steps(hogql, backwards, order="unordered")
    assert unordered[0][0] == 2
    assert unordered[0][4] == 0b111


async def test_an_exclusion_between_two_steps_excludes_the_person(hogql: Any) -> None:
    result = await _steps(hogql, _events((1.0, [1]), (2.0, [-2]), (3.0, [2])), steps=2)
    assert result == [[-1, "", [], [], 0]]


async def test_an_optional_step_may_be_skipped(hogql: Any) -> None:
    result = await _steps(hogql, _events((1.0, [1]), (5.0, [3])), optional="[2]")
    step, _, timings, _, bits = result[0]
    assert (step, timings, bits) == (1, [4.0], 0b101)


async def test_breakdowns_all_events_and_step_attribution(hogql: Any) -> None:
    events = _events((1.0, [1], "a"), (2.0, [2], "b"))
    per_value = await _steps(hogql, events, steps=2, attribution="all_events", props="['a', 'b']")
    assert [(r[0], r[1]) for r in per_value] == [(0, "a"), (-1, "b")]
    # step_1: the event that enters the second step must carry the breakdown value
    second_a = await _steps(hogql, events, steps=2, attribution="step_1", props="['a']")
    second_b = await _steps(hogql, events, steps=2, attribution="step_1", props="['b']")
    assert (second_a[0][0], second_b[0][0]) == (0, 1)


async def test_funnel_trends_give_each_entry_period_a_conversion_or_not(hogql: Any) -> None:
    events = (
        f"[(1.0, 100, toUUID('{_uuid(1)}'), '', [1]), (2.0, 100, toUUID('{_uuid(2)}'), '', [2]), "
        f"(3.0, 200, toUUID('{_uuid(3)}'), '', [1])]"
    )
    response = await hogql(
        f"SELECT aggregate_funnel_trends(1, 2, 2, 3600, 'first_touch', 'ordered', [''], {events})"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["results"][0][0] == [[100, 1, "", _uuid(2)], [200, -1, "", _uuid(3)]]


_INNER = """
    SELECT timestamp, person_id AS aggregation_target, uuid,
        if(event = 'signed_up', 1, 0) AS step_0,
        if(event = 'onboarding_completed', 1, 0) AS step_1,
        if(event = 'subscription_started', 1, 0) AS step_2
    FROM events
    WHERE event IN ('signed_up', 'onboarding_completed', 'subscription_started')
"""
_STEPS = "arrayFilter(x -> x != 0, [step_0 * 1, step_1 * 2, step_2 * 3])"
_WINDOW_FUNNEL = """
    windowFunnel(1209600)(toDateTime(timestamp), event = 'signed_up',
        event = 'onboarding_completed', event = 'subscription_started') AS level
"""


async def _rows(hogql: Any, query: str) -> list[list[Any]]:
    response = await hogql(query)
    assert response.status_code == 200, response.json()
    rows: list[list[Any]] = response.json()["results"]
    return rows


async def test_on_the_demo_data_a_funnel_agrees_with_clickhouses_window_funnel(
    hogql: Any,
) -> None:
    def funnel(order: str) -> str:
        return f"""
        SELECT countIf(af.1 >= 0), countIf(af.1 >= 1), countIf(af.1 >= 2) FROM (
            SELECT arrayJoin(aggregate_funnel(3, 1209600, 'first_touch', '{order}', [''], [],
                arraySort(t -> t.1, groupArray(tuple(toFloat(timestamp), uuid, '', {_STEPS})))
            )) AS af
            FROM ({_INNER}) GROUP BY aggregation_target)
        """

    expected = await _rows(
        hogql,
        f"""SELECT countIf(level >= 1), countIf(level >= 2), countIf(level >= 3)
        FROM (SELECT person_id, {_WINDOW_FUNNEL} FROM events GROUP BY person_id)""",
    )
    ordered = await _rows(hogql, funnel("ordered"))
    assert ordered == expected
    assert expected[0][2] > 0  # the demo's funnel converts some people to the end
    unordered = await _rows(hogql, funnel("unordered"))
    assert all(u >= o for u, o in zip(unordered[0], ordered[0], strict=True))


async def test_on_the_demo_data_funnel_trends_agree_with_window_funnel_per_entry_day(
    hogql: Any,
) -> None:
    trends = await _rows(
        hogql,
        f"""
        SELECT toDateTime(af.1) AS day, countIf(af.2 != 0), countIf(af.2 = 1) FROM (
            SELECT arrayJoin(aggregate_funnel_trends(1, 3, 3, 1209600, 'first_touch', 'ordered',
                [''], arraySort(t -> t.1, groupArray(tuple(toFloat(timestamp),
                _toUInt64(toDateTime(toStartOfDay(timestamp))), uuid, '', {_STEPS}))))) AS af
            FROM ({_INNER}) GROUP BY aggregation_target)
        GROUP BY day ORDER BY day
        """,
    )
    # each demo person signs up once, so a person's entry day is their sign-up day
    expected = await _rows(
        hogql,
        f"""
        SELECT day, count(), countIf(level = 3) FROM (
            SELECT person_id, toStartOfDay(minIf(timestamp, event = 'signed_up')) AS day,
                {_WINDOW_FUNNEL}
            FROM events GROUP BY person_id HAVING level >= 1)
        GROUP BY day ORDER BY day
        """,
    )
    assert trends == expected
    assert len(trends) > 7


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT aggregate_funnel(2, 60, 'first_touch', 'ordered', [''], [])",
            "Function 'aggregate_funnel' expects 7 arguments, found 6",
        ),
        (
            "SELECT aggregate_funnel(2, 60, 'first_touch', 'ordered', [''], [], "
            f"[(1.0, toUUID('{_uuid(1)}'), '', [3])])",
            "steps are numbered from 1",
        ),
        (
            "SELECT aggregate_funnel(2, 60, 'first_touch', 'sideways', [''], [], [])",
            "Unknown funnel order type 'sideways'",
        ),
        (
            "SELECT aggregate_funnel_trends(2, 1, 2, 60, 'first_touch', 'ordered', [''], [])",
            "1 <= from_step <= to_step <= num_steps",
        ),
        (
            "SELECT aggregate_funnel_array(2, 60, 'first_touch', 'ordered', [''], [], [])",
            "CAST",  # a string where PostHog's UDF declares an array of arrays: refused on type
        ),
    ],
)
async def test_bad_funnel_arguments_get_a_400_that_says_what_is_wrong(
    hogql: Any, query: str, message: str
) -> None:
    response = await hogql(query)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert message in detail
    assert ".py" not in detail  # the engine's Python function says why, not where
