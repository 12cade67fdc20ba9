"""The driver's main job, as `posthog-driver demo` shows it: discover, describe, answer questions.

`walkthrough(driver, console)` runs against any PostHog (the CLI points it at the embedded local
server): it lists the objects, describes them all concurrently with a progress bar, then answers
a handful of product questions with HogQL, printing each query and its answer as a table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.syntax import Syntax
from rich.table import Table

from posthog_driver._driver import AsyncDriver

__all__ = ["QUESTIONS", "Question", "funnel_steps", "render_rows", "walkthrough"]

FUNNEL_STEPS = ("signed_up", "onboarding_completed", "subscription_started")


@dataclass(frozen=True, slots=True)
class Question:
    """A product question, the HogQL that answers it, its placeholder values, and an optional
    step that turns the rows into the table a person wants to read."""

    title: str
    hogql: str
    values: dict[str, Any] = field(default_factory=dict)
    reshape: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None


def funnel_steps(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """windowFunnel levels -> users reaching each step, with conversion from the step before."""
    by_level = {int(r["level"]): int(r["users"]) for r in rows}
    steps = []
    previous: int | None = None
    for index, name in enumerate(FUNNEL_STEPS, start=1):
        reached = sum(n for level, n in by_level.items() if level >= index)
        rate = 100.0 if previous is None else (100 * reached / previous if previous else 0.0)
        steps.append({"step": f"{index}. {name}", "users": reached, "from_previous_pct": rate})
        previous = reached
    return steps


QUESTIONS = (
    Question(
        "Top events this week",
        """SELECT event, count() AS events, uniq(person_id) AS users
FROM events
WHERE timestamp >= now() - INTERVAL 7 DAY
GROUP BY event
ORDER BY events DESC
LIMIT 10""",
    ),
    Question(
        "Daily active users, last 14 days (today so far)",
        """SELECT toDate(timestamp) AS day, uniq(person_id) AS active_users
FROM events
WHERE timestamp >= toStartOfDay(now()) - INTERVAL 13 DAY
GROUP BY day
ORDER BY day""",
    ),
    Question(
        "Signup funnel (7-day window): where do users drop off?",
        """SELECT level, count() AS users
FROM (
    SELECT person_id,
           windowFunnel(604800)(toDateTime(timestamp),
                                event = {step1}, event = {step2}, event = {step3}) AS level
    FROM events
    WHERE timestamp >= now() - INTERVAL 30 DAY
    GROUP BY person_id
)
GROUP BY level
ORDER BY level""",
        {"step1": FUNNEL_STEPS[0], "step2": FUNNEL_STEPS[1], "step3": FUNNEL_STEPS[2]},
        reshape=funnel_steps,
    ),
    Question(
        "Conversion by browser, last 30 days",
        """SELECT properties.$browser AS browser,
       uniq(person_id) AS visitors,
       uniqIf(person_id, event = 'signed_up') AS signups,
       round(100 * signups / visitors, 1) AS signup_rate_pct
FROM events
WHERE timestamp >= now() - INTERVAL 30 DAY
GROUP BY browser
ORDER BY visitors DESC
LIMIT 10""",
    ),
    Question(
        "Paid conversion by acquisition source (each person's signup source)",
        """SELECT source,
       count() AS signups,
       countIf(subscribed) AS subscribers,
       round(100 * subscribers / signups, 1) AS paid_rate_pct
FROM (
    SELECT person_id,
           coalesce(anyIf(properties.utm_source, event = 'signed_up'), '(direct)') AS source,
           countIf(event = 'subscription_started') > 0 AS subscribed
    FROM events
    WHERE event IN ('signed_up', 'subscription_started')
    GROUP BY person_id
    HAVING countIf(event = 'signed_up') > 0
)
GROUP BY source
ORDER BY signups DESC
LIMIT 10""",
    ),
    Question(
        "Churn by plan: subscriptions started vs cancelled",
        """SELECT properties.plan AS plan,
       countIf(event = 'subscription_started') AS started,
       countIf(event = 'subscription_cancelled') AS cancelled,
       round(100 * cancelled / started, 1) AS churn_pct,
       round(sumIf(toFloat(properties.amount), event = 'subscription_started'), 2) AS revenue
FROM events
WHERE event IN ('subscription_started', 'subscription_cancelled')
GROUP BY plan
ORDER BY started DESC""",
    ),
)


def render_rows(rows: list[dict[str, Any]], *, title: str | None = None, limit: int = 20) -> Table:
    """A rich table of query rows (first `limit` rows; a caption says if there were more)."""
    table = Table(title=title, title_justify="left", show_lines=False)
    columns = list(rows[0]) if rows else []
    for column in columns:
        numeric = all(isinstance(r.get(column), int | float) for r in rows[:limit])
        table.add_column(escape(column), justify="right" if numeric else "left")
    for row in rows[:limit]:
        table.add_row(*(escape(_cell(row.get(c))) for c in columns))
    if len(rows) > limit:
        table.caption = f"{limit} of {len(rows)} rows shown"
    if not rows:
        table.caption = "no rows"
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "(null)"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


async def walkthrough(driver: AsyncDriver, console: Console) -> None:
    """Run the main job against `driver` and print it for a person to read."""
    objects = await driver.list_objects()
    console.rule("[bold]1. What can an agent query?")
    console.print(f"list_objects() found {len(objects)} tables: " + escape(", ".join(objects)))

    console.rule("[bold]2. describe(): every table's fields, fetched concurrently")
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        task = progress.add_task("describing", total=len(objects))
        catalog = await driver.describe(
            objects, on_progress=lambda name, done, total: progress.update(task, completed=done)
        )
    elapsed = time.perf_counter() - started
    summary = Table(
        title=f"{len(catalog)} tables described in {elapsed:.2f} s", title_justify="left"
    )
    summary.add_column("table")
    summary.add_column("fields", justify="right")
    summary.add_column("for example")
    for name, fields in catalog.items():
        summary.add_row(escape(name), str(len(fields)), escape(", ".join(list(fields)[:4])))
    console.print(summary)
    event = catalog.get("events", {}).get("event")
    names = event.get("values", []) if event is not None else []
    if names:
        console.print(f"Known events ({len(names)}): " + escape(", ".join(names)))

    console.rule("[bold]3. Questions answered with HogQL")
    for number, question in enumerate(QUESTIONS, start=1):
        console.print()
        console.print(f"[bold]Q{number}. {escape(question.title)}[/bold]")
        console.print(
            Syntax(
                question.hogql, "sql", theme="ansi_dark", background_color="default", word_wrap=True
            )
        )
        if question.values:
            console.print(f"values = {question.values!r}", markup=False)
        rows: list[dict[str, Any]] = await driver.query(
            question.hogql, values=question.values or None
        )
        if question.reshape is not None:
            # say so: the table is computed from the query's rows, not the rows themselves
            doc = (question.reshape.__doc__ or "").strip().splitlines()[0]
            console.print(f"[dim]The query's {len(rows)} rows, reshaped here: {escape(doc)}[/dim]")
            rows = question.reshape(rows)
        console.print(render_rows(rows))
