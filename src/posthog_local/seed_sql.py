# ruff: noqa: E501, S608  (SQL reads best unwrapped; it holds only this module's constants)
"""SQL that turns the generator's coded staging frames into the HogQL tables, inside the engine.

The generator hands over small integer codes (fast to make with numpy, fast to load); ClickHouse
spells them out, builds the JSON property columns and aggregates sessions, all vectorised. Only
this module's own constants are written into SQL text here, never anything a client sent.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from .catalog import EVENT_PROPERTIES, GROUP_PROPERTIES, PERSON_PROPERTIES
from .data import ORIGIN, REFERRERS, SOURCES, VOCAB
from .hogql._demo_objects import ACTIONS, COHORTS

__all__ = ["build_statements", "insert_rows", "literal", "system_rows"]

INDUSTRIES = ("SaaS", "Fintech", "E-commerce", "Healthcare", "Education", "Media", "Gaming")


def literal(value: Any) -> str:
    """A ClickHouse literal for one of our own constants (str, bool, int, float, list, datetime)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"toDateTime64('{value:%Y-%m-%d %H:%M:%S}', 6, 'UTC')"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _word(vocab: str, code: str) -> str:
    """SQL spelling out a coded column; code -1 is NULL."""
    return f"if({code} < 0, NULL, {literal(list(VOCAB[vocab]))}[{code} + 1])"


_SCREENS = {
    "Desktop": [(1920, 1080), (1440, 900), (2560, 1440), (1536, 864)],
    "Mobile": [(390, 844), (412, 915), (375, 667)],
    "Tablet": [(820, 1180), (768, 1024)],
}


def _screen(device: str, person: str, part: int) -> str:
    """SQL picking one of the device's common screen sizes per person (``part`` 1 = width)."""
    arrays = {name: "[" + ", ".join(f"{size[part - 1]}." for size in sizes) + "]"
              for name, sizes in _SCREENS.items()}  # fmt: skip
    tests = ", ".join(f"{device} = {literal(name)}, {array}" for name, array in arrays.items())
    options = f"multiIf({tests}, [0.])"
    return f"arrayElement({options}, {person} % length({options}) + 1)"


def _group_key(company: str) -> str:
    """A company's group key, the same on its events (``$group_0``) and in ``groups``."""
    return f"lower(replaceAll({company}, ' ', '-'))"


def _uuid(hi: str, lo: str) -> str:
    """SQL making a UUID out of two integer expressions (deterministic, version-4 shaped)."""
    h = f"concat(leftPad(lower(hex(toUInt64({hi}))), 16, '0'), leftPad(lower(hex(toUInt64({lo}))), 16, '0'))"
    parts = ", '-', ".join(
        f"substring({h}, {start}, {length})"
        for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    )
    return f"toUUID(concat({parts}))"


def _props(values: dict[str, str], types: dict[str, str]) -> str:
    """SQL building PostHog-shaped JSON text: one key per property, NULL values left out."""
    assert set(values) <= set(types)
    pairs = ", ".join(
        f"if(({value}) IS NULL, '', concat({literal(json.dumps(name) + ':')}, toJSONString({value})))"
        for name, value in values.items()
    )
    return f"concat('{{', arrayStringConcat(arrayFilter(x -> x != '', [{pairs}]), ','), '}}')"


def build_statements(db: str) -> list[str]:
    """The statements that fill persons, person_distinct_ids, events, sessions and groups."""
    person_words = f"""
        SELECT person_index, {_uuid("hi", "lo")} AS pid,
               if(identified, toString(pid), toString({_uuid("lo", "hi")})) AS did,
               identified, fromUnixTimestamp64Micro(created_at, 'UTC') AS created,
               {_word("first", "first")} AS first_name, {_word("last", "last")} AS last_name,
               {_word("company", "company")} AS company_name, company AS company_code,
               {_word("country", "country")} AS country_name, {_word("plan", "plan")} AS plan_name,
               {_word("utm_source", "utm_source")} AS source_name, {_word("browser", "browser")} AS browser_name,
               {_word("os", "os")} AS os_name, {_word("device_type", "device_type")} AS device_name
        FROM {db}.stage_persons"""
    email = (
        "concat(lower(first_name), '.', lower(replaceAll(last_name, '-', '')), toString(person_index),"
        " '@', lower(replaceAll(company_name, ' ', '')), '.io')"
    )
    person_props = _props(
        {
            "email": f"if(identified, {email}, NULL)",
            "name": "if(identified, concat(first_name, ' ', last_name), NULL)",
            "company": "if(identified, company_name, NULL)",
            "country": "country_name",
            "plan": "if(identified, plan_name, NULL)",
            "created_at": "formatDateTime(created, '%Y-%m-%dT%H:%i:%SZ')",
            "$initial_utm_source": "source_name",
            "$initial_browser": "browser_name",
            "$initial_os": "os_name",
        },
        PERSON_PROPERTIES,
    )
    persons = f"""
        INSERT INTO {db}.persons (id, created_at, properties, is_identified, last_seen_at)
        SELECT pid, created, {person_props}, identified,
               if(seen.last = 0, NULL, fromUnixTimestamp64Micro(seen.last, 'UTC'))
        FROM ({person_words}) AS p
        LEFT JOIN (SELECT person_index, max(timestamp) AS last FROM {db}.stage_events GROUP BY person_index)
            AS seen USING (person_index)"""
    distinct_ids = f"""
        INSERT INTO {db}.person_distinct_ids (distinct_id, person_id)
        SELECT toString({_uuid("lo", "hi")}), {_uuid("hi", "lo")} FROM {db}.stage_persons
        UNION ALL
        SELECT toString({_uuid("hi", "lo")}), {_uuid("hi", "lo")} FROM {db}.stage_persons WHERE identified"""
    referrers = [REFERRERS[s] for s in SOURCES if s]
    page = _word("pathname", "e.pathname")
    event_props = _props(
        {
            "$browser": "if(web, p.browser_name, NULL)",
            "$os": "if(web, p.os_name, NULL)",
            "$device_type": "if(web, p.device_name, NULL)",
            "$current_url": f"if(web, concat({literal(ORIGIN)}, {page}), NULL)",
            "$pathname": f"if(web, {page}, NULL)",
            "$host": f"if(web, {literal(ORIGIN.split('//')[1])}, NULL)",
            "$referring_domain": f"if(web, if(s.source < 0, '$direct', {literal(referrers)}[s.source + 1]), NULL)",
            "$session_id": "if(web, sid, NULL)",
            "$screen_width": f"if(web, {_screen('p.device_name', 'p.person_index', 1)}, NULL)",
            "$screen_height": f"if(web, {_screen('p.device_name', 'p.person_index', 2)}, NULL)",
            "$viewport_width": f"if(web, {_screen('p.device_name', 'p.person_index', 1)}, NULL)",
            "$viewport_height": f"if(web, {_screen('p.device_name', 'p.person_index', 2)} - 120, NULL)",
            "$lib": "if(web, 'web', 'posthog-python')",
            "$event_type": "if(event_name = '$autocapture', 'click', NULL)",
            "utm_source": f"if(web, {_word('utm_source', 's.source')}, NULL)",
            "feature": _word("feature", "e.feature"),
            "plan": _word("plan", "e.plan"),
            "amount": "if(isNaN(e.amount), NULL, e.amount)",
        },
        EVENT_PROPERTIES,
    )
    chain = 'button.btn.btn-primary:attr__class="btn btn-primary"nth-child="1"nth-of-type="1"text="Save"'
    events = f"""
        INSERT INTO {db}.events (uuid, event, properties, timestamp, distinct_id, elements_chain,
                                 created_at, `$session_id`, `$window_id`, person_id, person_properties,
                                 person_created_at, `$group_0`)
        SELECT {_uuid("cityHash64(e.timestamp, e.person_index, e.event)", "cityHash64(e.session_index, e.timestamp)")},
               {_word("event", "e.event")} AS event_name,
               {event_props},
               fromUnixTimestamp64Micro(e.timestamp, 'UTC') AS ts,
               p.did,
               if(event_name = '$autocapture', {literal(chain)}, ''),
               ts + toIntervalMillisecond(cityHash64(e.timestamp) % 1500),
               if(web, sid, ''),
               if(web, toString({_uuid("cityHash64(s.hi)", "s.lo")}), ''),
               p.pid,
               persons.properties,
               persons.created_at,
               if(p.identified, {_group_key("p.company_name")}, '')
        FROM {db}.stage_events AS e
        INNER JOIN ({person_words}) AS p ON p.person_index = e.person_index
        INNER JOIN (SELECT session_index, hi, lo, source, toString({_uuid("hi", "lo")}) AS sid
                    FROM {db}.stage_sessions) AS s ON s.session_index = e.session_index
        INNER JOIN {db}.persons AS persons ON persons.id = p.pid
        ORDER BY e.timestamp"""
    sessions = f"""
        INSERT INTO {db}.sessions
        SELECT `$session_id`, any(distinct_id), min(timestamp) AS start, max(timestamp) AS end,
               dateDiff('second', start, end) AS duration,
               argMin(url, timestamp), argMin(path, timestamp),
               argMax(url, timestamp), argMax(path, timestamp),
               argMin(utm, timestamp) AS source,
               argMin(referring, timestamp) AS referrer,
               argMin(host, timestamp), argMax(host, timestamp),
               arrayFilter(x -> x IS NOT NULL, groupUniqArray(url)) AS urls, length(urls),
               countIf(event = '$pageview') AS pageviews, countIf(event = '$autocapture') AS autocaptures,
               0, pageviews <= 1 AND autocaptures = 0 AND duration < 10,
               multiIf(source = 'google', 'Organic Search', source IN ('twitter', 'linkedin'), 'Organic Social',
                       source = 'newsletter', 'Email', source = 'producthunt', 'Referral',
                       referrer = '$direct' OR referrer IS NULL, 'Direct', 'Referral')
        FROM (SELECT `$session_id`, distinct_id, timestamp, event,
                     JSONExtract(properties, '$current_url', 'Nullable(String)') AS url,
                     JSONExtract(properties, '$pathname', 'Nullable(String)') AS path,
                     JSONExtract(properties, '$host', 'Nullable(String)') AS host,
                     JSONExtract(properties, 'utm_source', 'Nullable(String)') AS utm,
                     JSONExtract(properties, '$referring_domain', 'Nullable(String)') AS referring
              FROM {db}.events WHERE `$session_id` != '')
        GROUP BY `$session_id`"""
    group_props = _props(
        {
            "name": "any(company_name)",
            "industry": f"{literal(list(INDUSTRIES))}[company_code % {len(INDUSTRIES)} + 1]",
            "employees": "toFloat64(5 + cityHash64(company_code) % 400)",
        },
        GROUP_PROPERTIES,
    )
    groups = f"""
        INSERT INTO {db}.groups (index, key, created_at, updated_at, properties)
        SELECT 0, {_group_key("any(company_name)")}, min(created), max(created), {group_props}
        FROM ({person_words}) WHERE identified GROUP BY company_code"""
    return [persons, distinct_ids, events, sessions, groups]


def system_rows(table: str, counts: dict[str, int], now: dt.datetime) -> list[dict[str, Any]]:
    """Believable rows for one of the ``system.`` tables, using live counts where they show."""
    day = dt.timedelta(days=1)
    if table == "system.actions":
        return [
            _row(a.id, a.name, a.description, now - a.days_ago * day,
                 steps_json=json.dumps(a.steps), deleted=False)
            for a in ACTIONS
        ]  # fmt: skip
    if table == "system.cohorts":
        sizes = {1: counts["_paying"], 2: counts["_anonymous"]}
        return [
            _row(c.id, c.name, c.description, now - c.days_ago * day,
                 is_static=c.filters is None,
                 count=min(c.static_size, counts["persons"]) if c.filters is None else sizes[c.id],
                 filters=json.dumps(c.filters or {}), deleted=False)
            for c in COHORTS
        ]  # fmt: skip
    if table == "system.dashboards":
        return [
            _row(
                1,
                "Product overview",
                "Signups, activation and revenue",
                now - 70 * day,
                pinned=True,
                tags=["growth"],
                deleted=False,
            ),
            _row(
                2,
                "Web analytics",
                "Traffic, sources and bounce rate",
                now - 40 * day,
                pinned=False,
                tags=["marketing"],
                deleted=False,
            ),
        ]
    if table == "system.feature_flags":
        flags = [
            ("new-onboarding", "New onboarding flow", True, 50),
            ("sql-editor-v2", "SQL editor v2", True, 100),
            ("dark-mode", "Dark mode", False, 0),
            ("pricing-experiment", "Pricing page test", True, 30),
        ]
        return [
            {
                "id": i,
                "key": key,
                "name": name,
                "active": active,
                "rollout_percentage": rollout,
                "created_at": now - (60 - 10 * i) * day,
                "filters": json.dumps(
                    {"groups": [{"properties": [], "rollout_percentage": rollout}]}
                ),
                "deleted": False,
            }
            for i, (key, name, active, rollout) in enumerate(flags, start=1)
        ]
    insights = [
        (
            "Weekly active users",
            "SELECT toStartOfWeek(timestamp) AS week, uniq(person_id) FROM events GROUP BY week",
        ),
        (
            "Signup funnel",
            "SELECT countIf(event = 'signed_up'), countIf(event = 'subscription_started') FROM events",
        ),
        (
            "Top browsers",
            "SELECT properties.$browser, count() FROM events GROUP BY 1 ORDER BY 2 DESC",
        ),
    ]
    return [
        _row(
            i,
            name,
            f"Saved insight: {name.lower()}",
            now - (30 - 5 * i) * day,
            short_id=f"ins{i:05d}",
            query=json.dumps({"kind": "HogQLQuery", "query": query}),
            saved=True,
            dashboard_ids=[1 if i < 3 else 2],
            deleted=False,
        )
        for i, (name, query) in enumerate(insights, start=1)
    ]


def _row(
    id_: int, name: str, description: str, created: dt.datetime, **extra: Any
) -> dict[str, Any]:
    return {"id": id_, "name": name, "description": description, "created_at": created, **extra}


def insert_rows(
    db: str, stored_name: str, columns: Sequence[str], rows: list[dict[str, Any]]
) -> str:
    """An INSERT ... VALUES statement for our own constant rows."""
    names = ", ".join(f"`{c}`" for c in columns)
    values = ", ".join("(" + ", ".join(literal(row[c]) for c in columns) + ")" for row in rows)
    return f"INSERT INTO {db}.{stored_name} ({names}) VALUES {values}"
