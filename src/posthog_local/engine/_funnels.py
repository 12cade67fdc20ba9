"""PostHog's funnel functions (``aggregate_funnel*``), rebuilt for the engine process.

PostHog computes funnels with a UDF binary on its ClickHouse servers: the insight SQL groups each
person's events into one sorted array and the UDF walks it, returning how far the person got,
the conversion times, the matching events and, for funnel trends, one row per entry period.
Here the same walk is plain Python, registered in chdb as two engine functions that take the
arguments as one JSON text (chdb's Python functions take scalars only). The printer casts the
arguments to the UDF's declared types first, so a query PostHog's ClickHouse would refuse for
its types is refused here too.

Written from the behaviour of PostHog's ``funnel-udf`` (ordered, strict and unordered walks,
exclusions, optional steps, the four breakdown attributions); differences: an event without a
timestamp is skipped, a step outside ``1..num_steps`` is an error rather than a crash, and each
call is bounded in size and time because Python code cannot be cancelled between rows.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "STEPS_FUNCTION",
    "TRENDS_FUNCTION",
    "FunnelError",
    "FunnelTimeoutError",
    "register",
    "steps",
    "trends",
]

STEPS_FUNCTION = "posthog_local_funnel_steps"
TRENDS_FUNCTION = "posthog_local_funnel_trends"

MAX_INPUT_CHARS = 16 << 20
"""One person's events as JSON; past it the call is refused instead of exhausting memory."""
MAX_STEPS = 32  # the result's step bit field is a UInt32
_REPLAY_EVENTS = 10  # matching events kept per step, as PostHog keeps for session replays
_CHECK_EVERY = 512  # events between two looks at the clock


class FunnelError(ValueError):
    """Arguments the funnel functions cannot use; the message says which and why."""


class FunnelTimeoutError(FunnelError):
    """The query's time limit passed while a funnel function was still walking events."""


@dataclass(frozen=True, slots=True)
class _Event:
    timestamp: float
    uuid: str
    breakdown: Any
    steps: tuple[int, ...]
    interval_start: int = 0


@dataclass(frozen=True, slots=True)
class _Args:
    num_steps: int
    window: float
    attribution: str
    order: str
    prop_vals: list[Any]
    events: list[_Event]
    optional_steps: frozenset[int] = frozenset()
    from_step: int = 0
    to_step: int = 0

    @property
    def breakdown_step(self) -> int | None:
        """``step_N`` attribution: the breakdown must match on the event that enters step N+1."""
        if self.attribution.startswith("step_") and self.attribution[5:].isdigit():
            return int(self.attribution[5:])
        return None

    def events_for(self, prop_val: Any) -> list[_Event]:
        if self.attribution == "all_events":
            return [e for e in self.events if e.breakdown == prop_val]
        return self.events


class _Clock:
    """The query's deadline: the query's start (``now64()``, fixed per query) plus its limit."""

    def __init__(self, started_ms: int, limit_s: float) -> None:
        self.deadline = started_ms / 1000 + limit_s
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks % _CHECK_EVERY == 0:
            self.check()

    def check(self) -> None:
        if time.time() > self.deadline:
            raise FunnelTimeoutError(
                "The funnel took longer than the query time limit; "
                "narrow the date range or the number of people."
            )


# ---- funnel steps: how far each person got ------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entered:
    """A person's way into a step: when its first step happened, and what came since."""

    timestamp: float = 0.0
    excluded: bool = False
    timings: tuple[float, ...] = ()
    uuids: tuple[str, ...] = ()
    steps: int = 0


_NOT_ENTERED = _Entered()


@dataclass(slots=True)
class _OrderedWalk:
    args: _Args
    prop_val: Any
    clock: _Clock
    entered: list[_Entered] = field(default_factory=list)
    best_step: int = 0
    best: _Entered = _NOT_ENTERED
    replay: list[list[str]] = field(default_factory=list)

    def run(self) -> list[Any]:
        args, n = self.args, self.args.num_steps
        self.entered = [_NOT_ENTERED] * (n + 1)
        self.replay = [[] for _ in range(n)]
        for timestamp, same_time in itertools.groupby(
            self.args.events_for(self.prop_val), key=lambda e: e.timestamp
        ):
            self.clock.tick()
            group = list(same_time)
            self.entered[0] = _Entered(timestamp=timestamp)
            if all(e.steps == group[0].steps for e in group):
                for event in group:
                    self.step(event, together=False)
            else:
                # Different events at one instant: try each matched step alone, lowest first;
                # exclusions and strictness do not apply between them (as in PostHog).
                split = sorted(
                    (replace(e, steps=(s,)) for e in group for s in e.steps if s > 0),
                    key=lambda e: e.steps[0],
                )
                for event in split:
                    self.step(event, together=True)
            if self.entered[n].timestamp > 0:
                break
        if self.best.excluded:
            return [-1, self.prop_val, [], [], 0]
        optional = sum(1 for s in args.optional_steps if s <= self.best_step)
        for i in range(self.best_step - optional):
            self.replay[i].insert(0, self.best.uuids[i])
        return [
            self.best_step - 1 - optional,
            self.prop_val,
            _gaps(self.best.timings),
            self.replay,
            self.best.steps,
        ]

    def step(self, event: _Event, *, together: bool) -> None:
        args, entered = self.args, self.entered
        for raw in reversed(event.steps):
            step = abs(raw)
            previous = step - 1
            since = entered[previous].timestamp
            in_window = since != 0 and event.timestamp - since <= args.window
            # an optional step may be skipped: look back to the nearest entered step
            while previous > 0 and not in_window and previous in args.optional_steps:
                previous -= 1
                since = entered[previous].timestamp
                in_window = since != 0 and event.timestamp - since <= args.window
            already = entered[step].timestamp == since and since != 0
            if not in_window or already:
                continue
            before = entered[previous]
            if raw < 0:
                self._exclude(previous, event)
                continue
            wrong_breakdown = args.breakdown_step == previous and self.prop_val != event.breakdown
            if wrong_breakdown or (together and event.uuid in before.uuids):
                continue
            counted = step not in args.optional_steps
            now = _Entered(
                timestamp=before.timestamp,
                excluded=before.excluded,
                timings=before.timings + ((event.timestamp,) if counted else ()),
                uuids=before.uuids + ((event.uuid,) if counted else ()),
                steps=before.steps | (1 << (step - 1)),
            )
            if not before.excluded:
                entered[step] = now
                if len(self.replay[previous]) < _REPLAY_EVENTS - 1:
                    self.replay[previous].append(event.uuid)
            if step > self.best_step or (step == self.best_step and self.best.excluded):
                self.best_step, self.best = step, now
        if args.order == "strict" and not together:
            for i in range(1, len(entered)):
                if i not in event.steps:
                    entered[i] = _NOT_ENTERED

    def _exclude(self, previous: int, event: _Event) -> None:
        if self.entered[previous].excluded:
            return
        self.entered[previous] = replace(self.entered[previous], excluded=True)
        if self.best_step == previous and event.timestamp - self.best.timestamp <= self.args.window:
            self.best = replace(self.best, excluded=True)


def _unordered_steps(args: _Args, prop_val: Any, clock: _Clock) -> list[Any]:
    """Any order: the most distinct steps seen together inside one conversion window."""
    n = args.num_steps
    window = _Window(args, prop_val)
    best_step, best_timings, best_uuids = 0, list[float](), list[str]()

    def improve() -> None:
        nonlocal best_step, best_timings, best_uuids
        if window.completed > best_step:
            best_step = window.completed
            best_timings, best_uuids = window.firsts()

    events = args.events_for(prop_val)
    for i, event in enumerate(events):
        clock.tick()
        window.slide(event, last=False, on_drop=lambda _start: improve())
        window.add(event)
        if best_step == n:
            break
        if i == len(events) - 1:
            improve()
    return [
        best_step - 1,
        prop_val,
        _gaps(best_timings),
        [[u] for u in best_uuids],
        (1 << best_step) - 1,
    ]


@dataclass(slots=True)
class _Window:
    """Unordered funnels: for each step, its events still inside the conversion window."""

    args: _Args
    prop_val: Any
    queues: list[deque[_Event]] = field(default_factory=list)
    completed: int = 0

    def __post_init__(self) -> None:
        self.queues = [deque() for _ in range(self.args.num_steps)]

    def slide(self, event: _Event, *, last: bool, on_drop: Callable[[int], None]) -> None:
        """Drop the oldest events while they are out of the window (or all, at the end)."""
        while True:
            fronts = [(q[0].timestamp, i) for i, q in enumerate(self.queues) if q]
            if not fronts:
                return
            _, oldest = min(fronts, key=lambda f: f[0])
            front = self.queues[oldest][0]
            done = self.completed >= self.args.num_steps
            if not (last or done or front.timestamp + self.args.window < event.timestamp):
                return
            on_drop(front.interval_start)
            self.queues[oldest].popleft()
            if not self.queues[oldest]:
                self.completed -= 1

    def add(self, event: _Event) -> None:
        if all(s < 0 for s in event.steps):  # an exclusion wipes what was gathered
            self.queues = [deque() for _ in range(self.args.num_steps)]
            self.completed = 0
            return
        matched = [s for s in event.steps if s > 0]
        step = min(
            matched, key=lambda s: self.queues[s - 1][-1].timestamp if self.queues[s - 1] else 0.0
        )
        attribution = self.args.breakdown_step
        if self.completed == attribution and self.prop_val != event.breakdown:
            return  # the step that carries the breakdown must match it
        if not self.queues[step - 1]:
            self.completed += 1
        self.queues[step - 1].append(event)

    def firsts(self) -> tuple[list[float], list[str]]:
        fronts = sorted(((q[0].timestamp, q[0].uuid) for q in self.queues if q), key=lambda f: f[0])
        return [t for t, _ in fronts], [u for _, u in fronts]


# ---- funnel trends: per entry period, did the person convert -------------------------------

_NOT, _PARTIAL, _FULL = 0, 1, 2  # how an exclusion touched a period's furthest step


@dataclass(slots=True)
class _Period:
    step: int
    timestamp: float
    uuid: str
    entered: list[tuple[float, bool]]
    excluded: int = _NOT


@dataclass(slots=True)
class _TrendsWalk:
    """Ordered and strict funnel trends: one way in per entry period, until the target step."""

    args: _Args
    prop_val: Any
    clock: _Clock
    results: dict[int, list[Any]] = field(default_factory=dict)
    periods: dict[int, _Period] = field(default_factory=dict)

    def run(self) -> list[Any]:
        for event in self.args.events_for(self.prop_val):
            self.clock.tick()
            for raw in reversed(event.steps):
                wrong_breakdown = (
                    self.args.breakdown_step == abs(raw) - 1 and self.prop_val != event.breakdown
                )
                if abs(raw) == 1:
                    if not wrong_breakdown and event.interval_start not in self.results:
                        self._enter(event)
                else:
                    for start, period in list(self.periods.items()):
                        self.clock.tick()
                        self._advance(start, period, event, raw, wrong_breakdown=wrong_breakdown)
            if self.args.order == "strict":
                self._reset_unmatched(event)
        # periods entered but not converted; none if an exclusion fully cut a way through
        if not any(p.excluded == _FULL for p in self.periods.values()):
            for start, period in self.periods.items():
                if (
                    start not in self.results
                    and period.step >= self.args.from_step
                    and period.excluded != _PARTIAL
                ):
                    self.results[start] = [start, -1, self.prop_val, period.uuid]
        return list(self.results.values())

    def _reset_unmatched(self, event: _Event) -> None:
        for period in self.periods.values():
            for i in range(1, self.args.num_steps + 1):
                if i not in event.steps:
                    period.entered[i] = (0.0, False)

    def _enter(self, event: _Event) -> None:
        period = self.periods.get(event.interval_start)
        if period is None or (period.step == 1 and period.excluded != _NOT):
            entered = [(0.0, False)] * (self.args.num_steps + 1)
            entered[1] = (event.timestamp, False)
            self.periods[event.interval_start] = _Period(1, event.timestamp, event.uuid, entered)
        else:
            period.entered[1] = (event.timestamp, False)

    def _advance(
        self, start: int, period: _Period, event: _Event, raw: int, *, wrong_breakdown: bool
    ) -> None:
        step, window = abs(raw), self.args.window
        since, since_excluded = period.entered[step - 1]
        in_window = since != 0 and event.timestamp - since <= window
        if not in_window or period.entered[step][0] == since:
            return
        if raw < 0:
            if not since_excluded:
                period.entered[step - 1] = (since, True)
                recent = event.timestamp - period.timestamp <= window
                if period.step == step - 1 and recent:
                    period.excluded = _PARTIAL
            return
        if wrong_breakdown:
            return
        if not since_excluded:
            period.entered[step] = (since, False)
        if period.entered[self.args.to_step][0] != 0:
            self.results[start] = [start, 1, self.prop_val, event.uuid]
            del self.periods[start]
        elif step > period.step or (step == period.step and period.excluded == _PARTIAL):
            period.step, period.uuid, period.timestamp = step, event.uuid, event.timestamp
            period.excluded = _FULL if since_excluded else _NOT


def _ordered_trends(args: _Args, prop_val: Any, clock: _Clock) -> list[Any]:
    return _TrendsWalk(args, prop_val, clock).run()


def _unordered_trends(args: _Args, prop_val: Any, clock: _Clock) -> list[Any]:
    best: dict[int, tuple[int, str]] = {}
    window = _Window(args, prop_val)
    event: _Event | None = None

    def improve(start: int) -> None:
        assert event is not None
        if start not in best or window.completed > best[start][0]:
            best[start] = (window.completed, event.uuid)

    events = args.events_for(prop_val)
    for i, event in enumerate(events):
        clock.tick()
        window.slide(event, last=False, on_drop=improve)
        window.add(event)
        if i == len(events) - 1:
            window.slide(event, last=True, on_drop=improve)
    return [
        [start, 1 if step >= args.to_step else -1, prop_val, uuid]
        for start, (step, uuid) in best.items()
        if step >= args.from_step
    ]


# ---- the engine functions -----------------------------------------------------------------


def steps(payload: str, started_ms: int, limit_s: float) -> str:
    """``aggregate_funnel*``: JSON ``[num_steps, window, attribution, order, prop_vals,
    optional_steps, events]`` to JSON ``[(step_reached, breakdown, timings, uuids, bits)]``."""
    raw = _load(payload, 7)
    events = _events(raw[6], trends=False)
    args = _args(raw[:5], events, optional=raw[5])
    clock = _Clock(started_ms, limit_s)
    clock.check()
    out = []
    for prop_val in args.prop_vals:
        if args.order == "unordered":
            out.append(_unordered_steps(args, prop_val, clock))
        else:
            out.append(_OrderedWalk(args, prop_val, clock).run())
    return json.dumps(out)


def trends(payload: str, started_ms: int, limit_s: float) -> str:
    """``aggregate_funnel*_trends``: JSON ``[from_step, to_step, num_steps, window, attribution,
    order, prop_vals, events]`` to the JSON of ``[(period_start, 1 or -1, breakdown, uuid)]``."""
    raw = _load(payload, 8)
    events = _events(raw[7], trends=True)
    args = _args(raw[2:7], events, optional=[], from_step=raw[0], to_step=raw[1])
    if not 1 <= args.from_step <= args.to_step <= args.num_steps:
        raise FunnelError(
            f"from_step and to_step must satisfy 1 <= from_step <= to_step <= num_steps "
            f"({args.num_steps}); got {args.from_step} and {args.to_step}."
        )
    clock = _Clock(started_ms, limit_s)
    clock.check()
    walk = _unordered_trends if args.order == "unordered" else _ordered_trends
    return json.dumps([row for prop_val in args.prop_vals for row in walk(args, prop_val, clock)])


def register(limit_s: float) -> None:
    """Make the two engine functions known to chdb in this process (again if already known)."""
    import chdb  # noqa: PLC0415 - only the engine process loads chdb

    def bound(function: Callable[[str, int, float], str]) -> Callable[[str, int], str]:
        def call(payload: str, started_ms: int) -> str:
            return function(payload, started_ms, limit_s)

        return call

    for name, function in ((STEPS_FUNCTION, steps), (TRENDS_FUNCTION, trends)):
        with contextlib.suppress(Exception):  # not registered yet in this process
            chdb.drop_function(name)
        chdb.create_function(name, bound(function), ["String", "Int64"], "String")


# ---- reading the arguments ----------------------------------------------------------------


def _load(payload: str, arity: int) -> list[Any]:
    if len(payload) > MAX_INPUT_CHARS:
        raise FunnelError(
            f"One funnel row holds {len(payload) / 1e6:.0f} MB of events, over the local "
            f"server's {MAX_INPUT_CHARS / 1e6:.0f} MB; narrow the date range."
        )
    value = json.loads(payload)
    if not isinstance(value, list) or len(value) != arity:
        raise FunnelError("The funnel function received malformed arguments.")
    return [list(v.values()) if isinstance(v, dict) else v for v in value]


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise FunnelError(f"The funnel function's {what} must be an array.")
    return value


def _args(head: list[Any], events: list[_Event], **more: Any) -> _Args:
    num_steps, window, attribution, order, prop_vals = head
    if not 1 <= int(num_steps) <= MAX_STEPS:
        raise FunnelError(f"A funnel has 1 to {MAX_STEPS} steps; got {num_steps}.")
    if order not in ("ordered", "strict", "unordered"):
        raise FunnelError(
            f"Unknown funnel order type {order!r}; use 'ordered', 'strict' or 'unordered'."
        )
    optional = frozenset(int(s) for s in _list(more.pop("optional"), "optional steps"))
    for event in events:
        if any(not 1 <= abs(s) <= int(num_steps) for s in event.steps):
            raise FunnelError(
                f"An event matched step {list(event.steps)} but the funnel has {num_steps} "
                "steps; steps are numbered from 1 (negative for exclusions)."
            )
    return _Args(
        num_steps=int(num_steps),
        window=float(window),
        attribution=str(attribution),
        order=str(order),
        prop_vals=_list(prop_vals, "breakdown values"),
        events=events,
        optional_steps=optional,
        from_step=int(more.get("from_step", 0)),
        to_step=int(more.get("to_step", 0)),
    )


def _events(value: Any, *, trends: bool) -> list[_Event]:
    """The events that have a timestamp (one without cannot be placed in a funnel)."""
    events = (_event(e, trends=trends) for e in _list(value, "events"))
    return [e for e in events if e is not None]


def _event(value: Any, *, trends: bool) -> _Event | None:
    fields = list(value.values()) if isinstance(value, dict) else value
    if not isinstance(fields, list) or len(fields) != (5 if trends else 4):
        raise FunnelError("A funnel event must be a tuple of the UDF's declared shape.")
    if trends:
        timestamp, start, uuid, breakdown, matched = fields
    else:
        (timestamp, uuid, breakdown, matched), start = fields, 0
    if timestamp is None:
        return None
    return _Event(
        timestamp=float(timestamp),
        uuid=str(uuid),
        breakdown=breakdown,
        steps=tuple(int(s) for s in _list(matched, "steps")),
        interval_start=int(start),
    )


def _gaps(timings: Iterable[float]) -> list[float]:
    values = list(timings)
    return [b - a for a, b in itertools.pairwise(values)]
