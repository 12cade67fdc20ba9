"""The HogQL function table (``functions.tsv``): what a name prints as, and how many arguments.

A call whose name is not in the table is refused, with PostHog's message and its "Perhaps you
meant" hint; so is a call with the wrong number of arguments or parameters. Most names are
case-sensitive, as in PostHog; the few it lists as case-insensitive match in any case.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

__all__ = ["Function", "lookup", "suggestion"]


@dataclass(frozen=True, slots=True)
class Function:
    """One row of the table."""

    name: str
    clickhouse: str | None
    min_args: int
    max_args: int | None
    min_params: int
    max_params: int | None
    kind: str  # function, aggregate or window
    case_sensitive: bool
    tz_aware: bool
    template: str | None

    @property
    def aggregate(self) -> bool:
        return self.kind == "aggregate"


def _number(text: str) -> int | None:
    return None if text == "-" else int(text)


@cache
def _table() -> tuple[dict[str, Function], dict[str, Function]]:
    exact: dict[str, Function] = {}
    folded: dict[str, Function] = {}
    text = files("posthog_local.hogql").joinpath("functions.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, ch, lo, hi, plo, phi, kind, sensitive, tz, template = line.split("\t")
        function = Function(
            name=name,
            clickhouse=None if ch == "-" else ch,
            min_args=int(lo),
            max_args=_number(hi),
            min_params=int(plo),
            max_params=_number(phi),
            kind=kind,
            case_sensitive=sensitive == "1",
            tz_aware=tz == "1",
            template=None if template == "-" else template,
        )
        exact[name] = function
        if not function.case_sensitive:
            folded[name.lower()] = function
    return exact, folded


def lookup(name: str) -> Function | None:
    """The table's entry for ``name`` as written, or None."""
    exact, folded = _table()
    return exact.get(name) or folded.get(name.lower())


def suggestion(name: str) -> str | None:
    """The closest known name, for "Perhaps you meant" (as PostHog's difflib hint)."""
    exact, _ = _table()
    close = difflib.get_close_matches(name, [n for n in exact if not n.startswith("_")], n=1)
    return close[0] if close else None
