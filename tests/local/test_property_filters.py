"""PostHog's property filters, as ``{filters}`` resolves them, compared with PostHog's own.

The expected HogQL is what PostHog's ``test_property.py`` states for ``property_to_expr``
(PostHog writes ``a = 'b'``, this printer the same node as ``equals(a, 'b')``). These compile in
process (no server): the compiler's subprocess is where the server runs them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from posthog_local.hogql import HogQLError, compile_query

NOW = dt.datetime(2026, 3, 19, 12, 0, tzinfo=dt.UTC)


def where(properties: list[Any], table: str = "events", date_range: Any = None) -> str:
    """The HogQL that ``{filters}`` stands for, with these property filters."""
    filters: dict[str, Any] = {"properties": properties}
    if date_range is not None:
        filters["dateRange"] = date_range
    query = f"SELECT 1 FROM {table} WHERE {{filters}}"  # noqa: S608
    hogql = compile_query(query, filters=filters, now=NOW).hogql
    return hogql.split(" WHERE ", 1)[1].rsplit(" LIMIT ", 1)[0]


def refusal(properties: list[Any], table: str = "events") -> str:
    with pytest.raises(HogQLError) as caught:
        where(properties, table)
    return caught.value.detail


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        ({"key": "a", "value": "b"}, "equals(properties.a, 'b')"),
        ({"key": "a", "value": "b", "operator": "is_set"}, "notEquals(properties.a, NULL)"),
        ({"key": "a", "value": "b", "operator": "is_not_set"}, "equals(properties.a, NULL)"),
        ({"key": "a", "value": "b", "operator": "is_not"}, "notEquals(properties.a, 'b')"),
        ({"key": "a", "value": "3", "operator": "gt"}, "greater(properties.a, '3')"),
        ({"key": "a", "value": "3", "operator": "lt"}, "less(properties.a, '3')"),
        ({"key": "a", "value": "3", "operator": "gte"}, "greaterOrEquals(properties.a, '3')"),
        ({"key": "a", "value": "3", "operator": "lte"}, "lessOrEquals(properties.a, '3')"),
        (
            {"key": "a", "value": "3", "operator": "icontains"},
            "ilike(toString(properties.a), '%3%')",
        ),
        (
            {"key": "a", "value": "3", "operator": "not_icontains"},
            "notILike(toString(properties.a), '%3%')",
        ),
        (
            {"key": "a", "value": ".*", "operator": "regex"},
            "ifNull(match(toString(properties.a), '.*'), false)",
        ),
        (
            {"key": "a", "value": ".*", "operator": "not_regex"},
            "ifNull(not(match(toString(properties.a), '.*')), true)",
        ),
        ({"key": "a", "value": [], "operator": "exact"}, "true"),
        ({"key": "a", "operator": "icontains"}, "1"),  # no value: PostHog matches everything
        (
            {"key": "a", "value": "2026-03-19", "operator": "is_date_exact"},
            "equals(toDateTime(toString(properties.a)), toDateTime('2026-03-19'))",
        ),
        (
            {"key": "a", "value": "2026-03-19T14:00:00Z", "operator": "is_date_before"},
            "less(toDateTime(toString(properties.a)), toDateTime('2026-03-19T14:00:00Z'))",
        ),
        ({"type": "person", "key": "email", "value": "b"}, "equals(person.properties.email, 'b')"),
        (
            {"type": "group", "group_type_index": 3, "key": "a", "value": "b"},
            "equals(group_3.properties.a, 'b')",
        ),
        (
            {"type": "session", "key": "$session_duration", "value": 30, "operator": "gt"},
            "greater(session.$session_duration, 30)",
        ),
        ({"type": "hogql", "key": "event = '$pageview'"}, "equals(event, '$pageview')"),
        ({"type": "cohort", "key": "id", "value": 2}, "person_id IN COHORT 2"),
        (
            {"type": "cohort", "key": "id", "value": 2, "operator": "not_in"},
            "person_id NOT IN COHORT 2",
        ),
    ],
)
def test_event_scope_filters_are_posthogs(prop: dict[str, Any], expected: str) -> None:
    assert where([prop]) == expected


def test_many_values_are_one_condition_each_or_one_membership() -> None:
    assert where([{"key": "a", "value": ["b", "c"]}]) == "in(properties.a, tuple('b', 'c'))"
    assert where([{"key": "a", "value": ["b", "c"], "operator": "is_not"}]) == (
        "notIn(properties.a, tuple('b', 'c'))"
    )
    assert where([{"key": "a", "value": ["3", "4"], "operator": "lte"}]) == (
        "or(lessOrEquals(properties.a, '3'), lessOrEquals(properties.a, '4'))"
    )
    # negated operators must hold for every value, positive ones for any
    assert where([{"key": "a", "value": ["x", "y"], "operator": "not_regex"}]) == (
        "and(ifNull(not(match(toString(properties.a), 'x')), true), "
        "ifNull(not(match(toString(properties.a), 'y')), true))"
    )
    assert where([{"key": "a", "value": ["x", "y"], "operator": "not_icontains"}]) == (
        "equals(multiSearchAnyCaseInsensitive(toString(properties.a), ['x', 'y']), 0)"
    )
    assert where([{"key": "a", "value": [1, 5], "operator": "between"}]) == (
        "and(greaterOrEquals(properties.a, 1), lessOrEquals(properties.a, 5))"
    )
    assert where([{"key": "a", "value": [1, 5], "operator": "not_between"}]) == (
        "or(less(properties.a, 1), greater(properties.a, 5))"
    )
    assert where([{"key": "a", "value": [1, 5], "operator": "in"}]) == "in(properties.a, [1, 5])"


def test_groups_of_filters_nest_and_empty_groups_are_neutral() -> None:
    group = {"type": "OR", "values": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]}
    assert where([group]) == "or(equals(properties.a, '1'), equals(properties.b, '2'))"
    assert where([group, {"key": "c", "value": "3"}]) == (
        "and(or(equals(properties.a, '1'), equals(properties.b, '2')), equals(properties.c, '3'))"
    )
    assert where([{"type": "AND", "values": []}]) == "true"
    assert where([{"type": "OR", "values": []}]) == "false"


def test_element_filters_match_the_elements_chain_as_posthog_does() -> None:
    tag = {"type": "element", "key": "tag_name", "value": "button"}
    assert where([tag]) == r"match(elements_chain, '(^|;)button(\\.|$|;|:)')"
    assert where([{**tag, "operator": "is_not"}]) == (
        r"not(match(elements_chain, '(^|;)button(\\.|$|;|:)'))"
    )
    assert where([{"type": "element", "key": "text", "value": 'Say "hi"'}]) == (
        r"""match(elements_chain, '(text="Say\\ \\\\"hi\\\\"")')"""
    )
    href = {"type": "element", "key": "href", "value": "/pricing", "operator": "icontains"}
    assert where([href]) == """imatch(elements_chain, '(href="[^"]*/pricing[^"]*")')"""
    assert where([{**href, "operator": "is_not_set"}]) == (
        """not(match(elements_chain, '(href="[^"]+")'))"""
    )
    assert where([{**href, "operator": "not_regex", "value": ["^/a", "^/b"]}]) == (
        """and(not(match(elements_chain, '(href="^/a")')), """
        """not(match(elements_chain, '(href="^/b")')))"""
    )
    assert "supports the exact and is_not operators" in refusal([{**tag, "operator": "gt"}])
    assert "not supported by the local server" in refusal([{**tag, "key": "selector"}])
    assert "Unsupported operator 'gt'" in refusal([{**href, "operator": "gt"}])
    assert "does not work in 'person' scope" in refusal([tag], table="persons")


def test_each_table_reads_filters_in_its_own_scope_with_its_own_timestamp() -> None:
    week = {"date_from": "-7d"}
    bounds = (
        "lessOrEquals({ts}, toDateTime('2026-03-19 23:59:59.999999')), "
        "greaterOrEquals({ts}, toDateTime('2026-03-12 00:00:00.000000'))"
    )
    person = {"type": "person", "key": "a", "value": "b"}
    assert where([person], "persons", week) == (
        f"and(equals(properties.a, 'b'), {bounds.format(ts='created_at')})"
    )
    cohort = {"type": "cohort", "key": "id", "value": 3}
    assert where([cohort], "persons", week).startswith("and(id IN COHORT 3, ")
    session = {"type": "session", "key": "$entry_current_url", "value": "b"}
    assert where([session], "sessions", week) == (
        f"and(equals($entry_current_url, 'b'), {bounds.format(ts='$start_timestamp')})"
    )
    group = {"type": "group", "group_type_index": 1, "key": "a", "value": "b"}
    assert where([group], "groups", week).startswith("and(equals(properties.a, 'b'), ")
    assert where([], "events", {"date_from": "all"}) == "true"


def test_filters_that_do_not_fit_their_scope_are_refused_with_posthogs_message() -> None:
    event = {"key": "a", "value": "b"}
    message = "The 'event' property filter does not work in '{}' scope"
    assert refusal([event], "persons") == message.format("person")
    assert refusal([event], "groups") == message.format("group")
    session = {"type": "session", "key": "$entry_current_url", "value": "b"}
    assert "'session' property filter does not work in 'person' scope" in refusal(
        [session], "persons"
    )


@pytest.mark.parametrize(
    ("prop", "message"),
    [
        ("x", "A property filter must be an object."),
        ({"key": "", "value": "b"}, "A property filter needs a `key`."),
        ({"key": "a", "value": "b", "operator": "nope"}, "Unsupported property filter operator"),
        ({"type": "weird", "key": "a", "value": "b"}, "Property filters of type 'weird'"),
        ({"type": "group", "group_type_index": 7, "key": "a", "value": "b"}, "from 0 to 4"),
        ({"type": "group", "key": "a", "value": "b"}, "from 0 to 4"),
    ],
)
def test_malformed_filters_are_refused_with_the_fix(prop: Any, message: str) -> None:
    assert message in refusal([prop])


def test_filters_need_a_table_they_apply_to() -> None:
    with pytest.raises(HogQLError, match="Cannot use 'filters' placeholder"):
        compile_query("SELECT 1 FROM (SELECT 1) WHERE {filters}", filters={}, now=NOW)
    no_filters = compile_query("SELECT 1 FROM events WHERE {filters}", filters=None, now=NOW)
    assert " WHERE true " in no_filters.hogql
