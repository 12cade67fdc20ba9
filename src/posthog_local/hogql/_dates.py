"""The date range of ``{filters}``, resolved as PostHog's ``replace_filters`` resolves it.

Dates are ISO 8601 (naive means the project's zone, UTC here) or relative: ``-7d``, ``-2w``,
``-1m``, ``-1q``, ``-1y``, ``-3h``, ``-30M`` (minutes), ``-10s``, with an optional ``Start`` or
``End`` (``mStart`` is this month's first day, ``-1mEnd`` last month's last moment). As in
PostHog today:

- a lower bound of a day or longer snaps to the start of its day (``-7d`` is midnight seven days
  ago, so "this month" keeps the rows of its first morning); sub-day bounds (``-1h``) roll;
- an upper bound that is a date or relative ends its day (``23:59:59.999999``), compared with
  ``<=``; an explicit datetime is used verbatim with ``<``;
- a range with a lower bound but no upper one ends at the end of today, except ``all`` and
  sub-day ranges, which stay open; ``explicitDate`` keeps date-only bounds at midnight and ends
  an open range now.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from ._errors import HogQLError

__all__ = ["Bound", "date_bounds"]

_RELATIVE = re.compile(r"^-?(\d+)?([hdwmqyMs])(Start|End)?$")
_SUB_DAY = frozenset("hMs")
_WEEK_START = 0  # the demo project's weeks start on Monday (PostHog's week_start_day = 1)


@dataclass(frozen=True, slots=True)
class Bound:
    """One end of the range: the moment and how ``{filters}`` compares with it."""

    moment: dt.datetime
    op: str  # ">=" for the start; "<=" or "<" for the end


def date_bounds(date_range: Any, now: dt.datetime) -> tuple[Bound | None, Bound | None]:
    """The range's (start, end); None where it is open."""
    if not isinstance(date_range, dict):
        return None, None
    start_text, end_text = date_range.get("date_from"), date_range.get("date_to")
    explicit = bool(date_range.get("explicitDate"))
    start: Bound | None = None
    rolling = False
    if start_text not in (None, "", "all"):
        moment, exact = _resolve(str(start_text), now, upper=False, explicit=explicit)
        rolling = exact and _RELATIVE.match(str(start_text).strip()) is not None
        start = Bound(moment, ">=")
    end: Bound | None = None
    if end_text not in (None, ""):
        text = str(end_text)
        moment, exact = _resolve(text, now, upper=True, explicit=explicit)
        verbatim = exact and _RELATIVE.match(text.strip()) is None
        end = Bound(moment, "<" if verbatim else "<=")
    elif start is not None and not rolling:
        today_ends = _day_end(now)
        end = Bound(now if explicit else today_ends, "<=")
    return start, end


def _resolve(
    text: str, now: dt.datetime, *, upper: bool, explicit: bool
) -> tuple[dt.datetime, bool]:
    """The moment ``text`` names and whether it is exact (used as it is, not snapped to a day)."""
    text = text.strip()
    match = _RELATIVE.match(text)
    if match:
        amount, unit, position = int(match.group(1) or 0), match.group(2), match.group(3)
        moment = _shift(now, unit, amount)
        if position:
            moment = _snap(moment, unit, end=position == "End")
        if unit in _SUB_DAY:
            return moment, True
        return (_day_end(moment) if upper else _day_start(moment)), False
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HogQLError(
            f"Unsupported date {text!r}: use ISO 8601 (2024-01-31 or 2024-01-31T12:00:00Z) or a "
            "relative date like -7d, -1mStart or mStart."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    date_only = len(text) <= 10
    if date_only and upper and not explicit:
        return _day_end(moment), False
    return moment, not date_only


def _day_start(moment: dt.datetime) -> dt.datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _day_end(moment: dt.datetime) -> dt.datetime:
    return moment.replace(hour=23, minute=59, second=59, microsecond=999_999)


def _shift(now: dt.datetime, unit: str, amount: int) -> dt.datetime:
    """``now`` moved back by ``amount`` units; months clamp the day (31 March - 1m = 29 Feb)."""
    if unit in "hdwMs":
        seconds = {"h": 3600, "d": 86_400, "w": 604_800, "M": 60, "s": 1}[unit]
        return now - dt.timedelta(seconds=seconds * amount)
    months = {"m": 1, "q": 3, "y": 12}[unit] * amount
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)


def _snap(moment: dt.datetime, unit: str, *, end: bool) -> dt.datetime:
    """The start (or last microsecond) of the hour, day, week, month, quarter or year."""
    if unit in "hMs":
        start = moment.replace(minute=0, second=0, microsecond=0)
        return start + dt.timedelta(hours=1, microseconds=-1) if end else start
    day = _day_start(moment)
    if unit == "d":
        first, days = day, 1
    elif unit == "w":
        first = day - dt.timedelta(days=(day.weekday() - _WEEK_START) % 7)
        days = 7
    else:
        months = {"m": 1, "q": 3, "y": 12}[unit]
        month = (day.month - 1) // months * months + 1
        first = day.replace(month=month, day=1)
        year, last_month = divmod(first.year * 12 + month - 1 + months, 12)
        days = (first.replace(year=year, month=last_month + 1) - first).days
    return first + dt.timedelta(days=days, microseconds=-1) if end else first
