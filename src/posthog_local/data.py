"""A seeded, deterministic generator of a believable SaaS product's analytics data.

The product ("Acme Analytics") has anonymous visitors and signed-up users. Users move through a
``signed_up -> onboarding_completed -> subscription_started`` funnel with drop-off that depends on
browser, device and acquisition source; some subscribers churn (``subscription_cancelled``) and
go quiet afterwards. Traffic has weekly seasonality (quiet weekends) and office-hours peaks.

Everything is vectorised with numpy so that a million events take seconds. Events, persons and
sessions come back as flat pandas DataFrames; the engine turns property columns into JSON.
The same ``(events, seed, now)`` always gives the same frames.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["VOCAB", "DemoData", "generate"]

DAY = 86_400.0
WINDOW_DAYS = 30

BROWSERS = np.array(["Chrome", "Safari", "Firefox", "Microsoft Edge", "Opera"])
BROWSER_P = np.array([0.55, 0.22, 0.11, 0.09, 0.03])
DEVICES = np.array(["Desktop", "Mobile", "Tablet"])
DEVICE_P = np.array([0.68, 0.27, 0.05])
DESKTOP_OS = np.array(["Mac OS X", "Windows", "Linux"])
MOBILE_OS = np.array(["iOS", "Android"])
SOURCES = np.array(["google", "", "producthunt", "twitter", "linkedin", "newsletter"])
SOURCE_P = np.array([0.34, 0.26, 0.12, 0.1, 0.1, 0.08])
REFERRERS = {
    "google": "www.google.com",
    "": "$direct",
    "producthunt": "www.producthunt.com",
    "twitter": "t.co",
    "linkedin": "www.linkedin.com",
    "newsletter": "mail.google.com",
}
COUNTRIES = np.array(["US", "GB", "DE", "FR", "IN", "BR", "CA", "NL", "ES", "AU", "JP", "PL"])
COUNTRY_P = np.array([0.34, 0.1, 0.09, 0.07, 0.09, 0.06, 0.05, 0.05, 0.04, 0.04, 0.04, 0.03])
FIRST_NAMES = np.array(
    [
        "Ada",
        "Alan",
        "Grace",
        "Linus",
        "Ken",
        "Barbara",
        "Margaret",
        "Dennis",
        "Edsger",
        "Radia",
        "Katherine",
        "Guido",
        "Tim",
        "Frances",
        "Donald",
        "Sophie",
        "Hedy",
        "Niklaus",
        "Anita",
        "Yukihiro",
        "Brian",
        "Leslie",
        "John",
        "Mary",
        "Carlos",
        "Ana",
        "Priya",
        "Wei",
    ]
)
LAST_NAMES = np.array(
    [
        "Lovelace",
        "Turing",
        "Hopper",
        "Torvalds",
        "Thompson",
        "Liskov",
        "Hamilton",
        "Ritchie",
        "Dijkstra",
        "Perlman",
        "Johnson",
        "Rossum",
        "Berners-Lee",
        "Allen",
        "Knuth",
        "Wilson",
        "Lamarr",
        "Wirth",
        "Borg",
        "Matsumoto",
        "Kernighan",
        "Lamport",
        "Backus",
        "Shaw",
        "Silva",
        "Costa",
        "Sharma",
        "Zhang",
    ]
)
COMPANY_A = np.array(
    ["Blue", "Bright", "Swift", "Quiet", "Bold", "North", "Green", "Clever", "Silver", "Rapid"]
)
COMPANY_B = np.array(
    ["Rocket", "Harbor", "Labs", "Works", "Metrics", "Forge", "Cloud", "Pixel", "Signal", "Orbit"]
)
PLANS = np.array(["starter", "pro", "enterprise"])
PLAN_P = np.array([0.6, 0.32, 0.08])
PLAN_AMOUNT = np.array([29.0, 99.0, 499.0])
FEATURES = np.array(
    ["dashboards", "funnels", "retention", "session_replay", "feature_flags", "sql"]
)
FEATURE_P = np.array([0.3, 0.2, 0.12, 0.18, 0.1, 0.1])
APP_PAGES = np.array(["/dashboard", "/insights", "/projects", "/settings", "/events", "/docs"])
SITE_PAGES = np.array(["/", "/pricing", "/blog/product-analytics-101", "/features", "/docs"])
GENERIC_EVENTS = np.array(
    ["$pageview", "$autocapture", "feature_used", "project_created", "invite_sent"]
)
GENERIC_P = np.array([0.42, 0.34, 0.16, 0.03, 0.05])
ORIGIN = "https://app.acme-analytics.com"
# Weekly seasonality: Monday..Sunday relative activity, and a day curve peaking in office hours.
WEEKDAY_WEIGHT = np.array([1.0, 1.05, 1.0, 0.95, 0.85, 0.4, 0.35])
HOUR_WEIGHT = np.clip(np.sin((np.arange(24) - 5) / 24 * 2 * np.pi) + 0.35, 0.08, None)


@dataclass(frozen=True, slots=True)
class DemoData:
    """The generated frames. Timestamps are naive UTC ``datetime64[ns]``."""

    persons: pd.DataFrame
    """One row per person: index, id halves, identified, created_at (epoch µs), coded properties."""

    sessions: pd.DataFrame
    """One row per session: index, id halves and the coded ``utm_source`` of its landing."""

    events: pd.DataFrame
    """One row per event, by time: coded event, timestamp (epoch µs), person, session, props."""

    now: dt.datetime
    """The "now" the 30-day window ends at."""


# The data is made on this fixed clock, then moved to end at "now" by one shift of every
# timestamp: a seed gives the same rows, gaps and funnels on every start, whatever the time.
# (So the quiet days repeat every 7 days of the data, not necessarily on the calendar weekend.)
REFERENCE_END = dt.datetime(2026, 1, 5)


def generate(events: int, seed: int, now: dt.datetime | None = None) -> DemoData:
    """Generate exactly ``events`` events for a product seeded with ``seed``, ending at ``now``."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None, microsecond=0)
    rng = np.random.default_rng(seed)
    end = REFERENCE_END.replace(tzinfo=dt.UTC).timestamp()
    start = end - WINDOW_DAYS * DAY
    persons = _persons(rng, max(20, events // 35), start, end)
    funnel = _funnel(rng, persons, start, end)
    frame, sessions = _events(rng, persons, funnel, events, start, end)
    people = _person_frame(persons)
    shift = int((now - REFERENCE_END).total_seconds() * 1_000_000)
    frame["timestamp"] += shift
    people["created_at"] += shift
    return DemoData(persons=people, sessions=sessions, events=frame, now=now)


def _seasonal_times(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Draw one epoch second per row in [low, high), denser on weekdays and in office hours."""
    out = rng.uniform(low, high)
    todo = np.arange(len(out))
    for _ in range(12):  # rejection sampling; a dozen rounds leave a negligible remainder
        day = ((out[todo] // DAY + 3) % 7).astype(int)  # 1970-01-01 was a Thursday
        hour = ((out[todo] % DAY) // 3600).astype(int)
        keep = (
            rng.random(len(todo))
            < WEEKDAY_WEIGHT[day] / 1.05 * HOUR_WEIGHT[hour] / HOUR_WEIGHT.max()
        )
        todo = todo[~keep]
        if not len(todo):
            break
        out[todo] = rng.uniform(low[todo], high[todo])
    return out


def _persons(rng: np.random.Generator, n: int, start: float, end: float) -> dict[str, np.ndarray]:
    """Persons: anonymous visitors, users who signed up in the window, and older users."""
    kind = rng.choice(3, size=n, p=[0.3, 0.5, 0.2])  # 0 visitor, 1 new user, 2 older user
    created = _seasonal_times(rng, np.full(n, start), np.full(n, end - 3600))
    older = kind == 2
    created[older] = rng.uniform(start - 120 * DAY, start - DAY, older.sum())
    device = rng.choice(DEVICES, size=n, p=DEVICE_P)
    mobile = device != "Desktop"
    os_ = np.where(
        mobile, rng.choice(MOBILE_OS, size=n), rng.choice(DESKTOP_OS, size=n, p=[0.5, 0.42, 0.08])
    )
    browser = rng.choice(BROWSERS, size=n, p=BROWSER_P)
    browser[(os_ == "iOS") & (rng.random(n) < 0.7)] = "Safari"
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    company_a = rng.integers(0, len(COMPANY_A), n)
    company_b = rng.integers(0, len(COMPANY_B), n)
    ids = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64)
    return {
        "kind": kind,
        "created": created,
        "device": device,
        "os": os_,
        "browser": browser,
        "source": rng.choice(SOURCES, size=n, p=SOURCE_P),
        "country": rng.choice(COUNTRIES, size=n, p=COUNTRY_P),
        "company": company_a * len(COMPANY_B) + company_b,
        "activity": rng.lognormal(0.0, 0.9, size=n),
        "plan": np.full(n, "free", dtype=object),
        "active_until": np.full(n, end),
        "id_hi": ids[:, 0],
        "id_lo": ids[:, 1],
        "first": first,
        "last": last,
    }


@dataclass(frozen=True, slots=True)
class _Funnel:
    person: np.ndarray
    time: np.ndarray
    event: np.ndarray
    plan: np.ndarray
    amount: np.ndarray


def _funnel(
    rng: np.random.Generator, p: dict[str, np.ndarray], start: float, end: float
) -> _Funnel:
    """The signup funnel and churn, with conversion that depends on who the person is."""
    n = len(p["kind"])
    new = p["kind"] == 1
    p_onboard = 0.64 - 0.2 * (p["browser"] == "Safari") - 0.1 * (p["device"] != "Desktop")
    p_onboard = p_onboard + 0.1 * (p["source"] == "producthunt") - 0.08 * (p["source"] == "twitter")
    onboarded = new & (rng.random(n) < p_onboard)
    t_onboard = p["created"] + rng.exponential(1.5 * 3600, n)
    p_sub = 0.36 + 0.1 * (p["source"] == "google") + 0.16 * (p["source"] == "linkedin")
    p_sub = p_sub - 0.15 * (p["source"] == "twitter") + 0.05 * (p["browser"] == "Firefox")
    subscribed = onboarded & (rng.random(n) < p_sub)
    t_sub = t_onboard + rng.exponential(2 * DAY, n)
    subscribed &= t_sub < end
    onboarded &= t_onboard < end
    plan_index = rng.choice(3, size=n, p=PLAN_P)
    older_paying = (p["kind"] == 2) & (rng.random(n) < 0.45)
    paying = subscribed | older_paying
    p["plan"][paying] = PLANS[plan_index[paying]]
    t_cancel = np.where(
        older_paying, rng.uniform(start, end, n), t_sub + rng.uniform(2 * DAY, 25 * DAY, n)
    )
    churned = paying & (rng.random(n) < 0.2 + 0.1 * older_paying) & (t_cancel < end)
    p["plan"][churned] = "free"
    p["active_until"][churned] = np.minimum(t_cancel[churned] + DAY, end)

    parts = [
        (new, p["created"], "signed_up"),
        (new, p["created"] + 2.0, "$identify"),
        (onboarded, t_onboard, "onboarding_completed"),
        (subscribed, t_sub, "subscription_started"),
        (churned, t_cancel, "subscription_cancelled"),
    ]
    person = np.concatenate([np.flatnonzero(mask) for mask, _, _ in parts])
    time = np.concatenate([when[mask] for mask, when, _ in parts])
    event = np.concatenate(
        [np.full(int(mask.sum()), name, dtype=object) for mask, _, name in parts]
    )
    billed = np.isin(event, ["subscription_started", "subscription_cancelled"])
    plan = np.asarray(np.where(billed, PLANS[plan_index[person]], None))
    amount = np.where(event == "subscription_started", PLAN_AMOUNT[plan_index[person]], np.nan)
    return _Funnel(person=person, time=time, event=event, plan=plan, amount=amount)


def _codes(values: np.ndarray, vocab: tuple[str, ...]) -> np.ndarray:
    """Map strings (or None) to positions in ``vocab``; -1 stands for "no value"."""
    lookup = {name: i for i, name in enumerate(vocab)}
    return np.array([lookup.get(v, -1) if v is not None else -1 for v in values], dtype=np.int16)


def _events(  # noqa: PLR0915, PLR0917  (one vectorised pipeline reads best in one place)
    rng: np.random.Generator,
    p: dict[str, np.ndarray],
    funnel: _Funnel,
    total: int,
    start: float,
    end: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build sessions (anchored at funnel moments, plus regular visits) and fill them."""
    keep = min(len(funnel.person), total)
    order = np.argsort(funnel.time, kind="stable")[:keep]
    f_person, f_time, f_event = funnel.person[order], funnel.time[order], funnel.event[order]
    generic = total - keep
    # Signup and identify share a session; every other funnel moment gets a session of its own.
    anchored = f_event != "$identify"
    n_anchored = int(anchored.sum())
    n_sessions = max(n_anchored, generic // 7, 1 if generic else 0)
    n_regular = n_sessions - n_anchored

    low = np.maximum(p["created"], start)
    weight = p["activity"] * np.maximum(p["active_until"] - low, 0)
    r_person = rng.choice(len(weight), size=n_regular, p=weight / weight.sum())
    r_start = _seasonal_times(
        rng, low[r_person], np.maximum(p["active_until"][r_person], low[r_person] + 1)
    )
    a_person = f_person[anchored]
    a_start = f_time[anchored] - rng.uniform(30, 300, n_anchored)
    s_person = np.concatenate([a_person, r_person]).astype(np.int64)
    s_start = np.concatenate([a_start, r_start])
    s_first = np.zeros(n_sessions, dtype=bool)
    s_first[:n_anchored] = f_event[anchored] == "signed_up"
    source_codes = _codes(p["source"], VOCAB["utm_source"])
    s_source = np.where(
        rng.random(n_sessions) < 0.7, -1, rng.choice(len(SOURCES), n_sessions, p=SOURCE_P)
    ).astype(np.int16)
    s_source = np.where(s_first, source_codes[s_person], s_source)
    sessions = pd.DataFrame(
        {
            "session_index": np.arange(n_sessions, dtype=np.int64),
            "hi": rng.integers(0, 2**63, n_sessions, dtype=np.int64),
            "lo": rng.integers(0, 2**63, n_sessions, dtype=np.int64),
            "source": s_source,
        }
    )

    counts = np.zeros(n_sessions, dtype=np.int64)
    if generic:
        base = min(n_sessions, generic)
        counts[rng.choice(n_sessions, size=base, replace=False)] = 1
        counts += rng.multinomial(generic - base, _norm(rng, n_sessions))
    g_session = np.repeat(np.arange(n_sessions), counts)
    firsts = np.cumsum(counts) - counts
    position = np.arange(len(g_session)) - np.repeat(firsts, counts)
    gaps = rng.exponential(40.0, len(g_session))
    ends = np.cumsum(gaps)
    offset = ends - np.repeat((ends - gaps)[firsts[counts > 0]], counts[counts > 0])
    g_time = s_start[g_session] + offset
    event_vocab = VOCAB["event"]
    g_event = rng.choice(
        [event_vocab.index(e) for e in GENERIC_EVENTS], size=len(g_session), p=GENERIC_P
    ).astype(np.int16)
    g_event[position == 0] = event_vocab.index("$pageview")
    is_last = position == np.repeat(counts - 1, counts)
    g_event[is_last & (position > 0)] = event_vocab.index("$pageleave")

    # identify rides along with the signup session just before it
    f_session = np.maximum(np.cumsum(anchored) - 1, 0)
    session = np.concatenate([f_session, g_session])
    person = s_person[session]
    time = np.minimum(np.concatenate([f_time, g_time]), end - 1)
    event = np.concatenate([_codes(f_event, event_vocab), g_event])
    n = len(event)
    visitor = p["kind"][person] == 0
    pages = VOCAB["pathname"]
    page = np.where(
        visitor,
        rng.choice([pages.index(x) for x in SITE_PAGES], n),
        rng.choice([pages.index(x) for x in APP_PAGES], n),
    ).astype(np.int16)
    for name, path in [
        ("signed_up", "/signup"),
        ("$identify", "/signup"),
        ("onboarding_completed", "/onboarding"),
        ("subscription_started", "/billing"),
        ("subscription_cancelled", "/billing"),
    ]:
        page[event == event_vocab.index(name)] = pages.index(path)
    feature = np.where(
        event == event_vocab.index("feature_used"), rng.choice(len(FEATURES), n, p=FEATURE_P), -1
    )
    plan = np.concatenate([_codes(funnel.plan[order], VOCAB["plan"]), np.full(len(g_event), -1)])
    events = pd.DataFrame(
        {
            "event": event,
            "timestamp": np.round(time * 1e6).astype(np.int64),
            "person_index": person.astype(np.int64),
            "session_index": session.astype(np.int64),
            # every event is captured in the browser (billing runs in the app): all are "web"
            "web": np.ones(n, dtype=bool),
            "pathname": page,
            "feature": feature.astype(np.int16),
            "plan": plan.astype(np.int16),
            "amount": np.concatenate([funnel.amount[order], np.full(len(g_event), np.nan)]),
        }
    )
    return events.sort_values("timestamp", kind="stable").reset_index(drop=True), sessions


def _norm(rng: np.random.Generator, n: int) -> np.ndarray:
    """Session engagement weights: most sessions are short, a few are long."""
    w = rng.gamma(1.2, 1.0, n)
    return np.asarray(w / w.sum())


def _person_frame(p: dict[str, np.ndarray]) -> pd.DataFrame:
    """Persons as a frame of codes into ``VOCAB``; the engine spells them out."""
    return pd.DataFrame(
        {
            "person_index": np.arange(len(p["kind"]), dtype=np.int64),
            "hi": p["id_hi"],
            "lo": p["id_lo"],
            "identified": p["kind"] != 0,
            "created_at": np.round(p["created"] * 1e6).astype(np.int64),
            "first": p["first"].astype(np.int16),
            "last": p["last"].astype(np.int16),
            "company": p["company"].astype(np.int16),
            "country": _codes(p["country"], VOCAB["country"]),
            "plan": _codes(p["plan"], VOCAB["plan"]),
            "utm_source": _codes(p["source"], VOCAB["utm_source"]),
            "browser": _codes(p["browser"], VOCAB["browser"]),
            "os": _codes(p["os"], VOCAB["os"]),
            "device_type": _codes(p["device"], VOCAB["device_type"]),
        }
    )


#: Every coded column's vocabulary; code -1 means "no value" (NULL / absent property).
VOCAB: dict[str, tuple[str, ...]] = {
    "event": (
        "$pageview",
        "$pageleave",
        "$autocapture",
        "$identify",
        "signed_up",
        "onboarding_completed",
        "project_created",
        "invite_sent",
        "feature_used",
        "subscription_started",
        "subscription_cancelled",
    ),
    "browser": tuple(BROWSERS),
    "os": (*DESKTOP_OS, *MOBILE_OS),
    "device_type": tuple(DEVICES),
    "pathname": (*dict.fromkeys([*SITE_PAGES, *APP_PAGES, "/signup", "/onboarding", "/billing"]),),
    "utm_source": tuple(s for s in SOURCES if s),
    "referring_domain": tuple(REFERRERS[s] for s in SOURCES if s),
    "feature": tuple(FEATURES),
    "plan": ("free", *PLANS),
    "country": tuple(COUNTRIES),
    "first": tuple(FIRST_NAMES),
    "last": tuple(LAST_NAMES),
    "company": tuple(f"{a} {b}" for a in COMPANY_A for b in COMPANY_B),
}
