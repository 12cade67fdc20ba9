"""`QueryResult`: what a HogQL query returned, and its rows as dicts.

PostHog answers `{"columns": [...], "types": [[name, type], ...], "results": [[...], ...],
"hasMore": bool, "hogql": "..."}`; `QueryResult.from_response` reads that shape and refuses
any other with a `DriverError` that quotes an excerpt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from posthog_driver import _frames
from posthog_driver._errors import DriverError

__all__ = ["QueryResult", "Rows", "unique_names"]


class Rows(list[dict[str, Any]]):
    """The rows `query()` returns: a plain list of dicts that also says whether it is whole.

    `has_more` is True when PostHog cut the answer at its default LIMIT of 100 rows: add an
    explicit LIMIT (up to 50,000) or narrow the query. `columns` are the keys, in order.

    >>> rows = Rows([{"n": 1}], columns=["n"], has_more=False)
    >>> rows == [{"n": 1}], rows.has_more
    (True, False)
    """

    __slots__ = ("columns", "has_more")

    def __init__(self, rows: list[dict[str, Any]], *, columns: list[str], has_more: bool) -> None:
        super().__init__(rows)
        self.columns = columns
        self.has_more = has_more

    def __repr__(self) -> str:
        more = " has_more=True" if self.has_more else ""
        return f"Rows({list.__repr__(self)}{more})"


def unique_names(columns: list[str]) -> list[str]:
    """Column names made distinct, deterministically: a repeat of `n` becomes `n_2`, `n_3`...

    >>> unique_names(["count()", "count()", "event"])
    ['count()', 'count()_2', 'event']
    """
    taken = set(columns)
    seen: set[str] = set()
    out = []
    for name in columns:
        candidate, n = name, 1
        # Skip suffixes that another real column already uses, so no two keys collide.
        while candidate in seen or (candidate != name and candidate in taken):
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


@dataclass(frozen=True, slots=True)
class QueryResult:
    """One query's answer.

    `columns` are the names PostHog gave, in order; `types` the ClickHouse type of each;
    `rows` the values as lists; `has_more` is True when PostHog applied its default LIMIT and
    there are more rows (add an explicit LIMIT, or narrow with WHERE); `hogql` is the query as
    PostHog ran it (with its default LIMIT, where one was added).
    """

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    has_more: bool = False
    hogql: str | None = None
    limit: int | None = None
    offset: int | None = None
    timings: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def as_dicts(self) -> Rows:
        """The rows as dicts keyed by column name (repeated names made unique with `_2`...);
        a list that also carries `has_more` and `columns`."""
        names = unique_names(self.columns)
        rows = [dict(zip(names, row, strict=False)) for row in self.rows]
        return Rows(rows, columns=names, has_more=self.has_more)

    def to_arrow(self) -> Any:
        """A `pyarrow.Table` typed from PostHog's column types (extra `arrow`): DateTime as
        timezone-aware timestamps, integers as integers, nullable only where PostHog says
        `Nullable`. Repeated column names are made unique as in `as_dicts()`."""
        pa = _frames.require("pyarrow")
        names = unique_names(self.columns)
        return pa.Table.from_batches(
            [_frames.record_batch(names, self.types, self.rows)],
            schema=_frames.arrow_schema(names, self.types),
        )

    def to_pandas(self) -> Any:
        """A `pandas.DataFrame` (extra `pandas`), typed as `to_arrow()`; integer and boolean
        columns PostHog says are `Nullable` use pandas' nullable dtypes (`Int64`, `boolean`)."""
        _frames.require("pandas")  # before any work, so the error names the right extra
        return _frames.to_pandas(self.to_arrow())

    def to_polars(self) -> Any:
        """A `polars.DataFrame` (extra `polars`), typed as `to_arrow()`."""
        _frames.require("polars")
        return _frames.to_polars(self.to_arrow())

    @classmethod
    def from_response(cls, body: Any) -> QueryResult:
        """Read a `HogQLQueryResponse` body; raise `DriverError` for any other shape."""
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise _shape_error(body, "no 'results' list")
        rows = body["results"]
        if not all(isinstance(row, list) for row in rows):
            raise _shape_error(body, "'results' holds something other than rows")
        columns = body.get("columns")
        if columns is None:
            width = len(rows[0]) if rows else 0
            columns = [f"column_{i + 1}" for i in range(width)]
        if not isinstance(columns, list):
            raise _shape_error(body, "'columns' is not a list")
        columns = [str(c) for c in columns]
        return cls(
            columns=columns,
            types=_types(body.get("types"), len(columns)),
            rows=rows,
            has_more=bool(body.get("hasMore") or False),
            hogql=body.get("hogql") if isinstance(body.get("hogql"), str) else None,
            limit=body.get("limit") if isinstance(body.get("limit"), int) else None,
            offset=body.get("offset") if isinstance(body.get("offset"), int) else None,
            timings=timings if isinstance(timings := body.get("timings"), list) else [],
        )


def _types(raw: Any, width: int) -> list[str]:
    # PostHog sends [name, type] pairs; older versions sent plain type strings.
    if not isinstance(raw, list):
        return ["Unknown"] * width
    out = []
    for item in raw:
        if isinstance(item, list | tuple) and len(item) == 2:
            out.append(str(item[1]))
        else:
            out.append(str(item))
    return out + ["Unknown"] * (width - len(out))


def _shape_error(body: Any, problem: str) -> DriverError:
    excerpt = json.dumps(body, default=str)[:200]
    return DriverError(
        f"PostHog's answer to the query has an unexpected shape ({problem}): {excerpt}. "
        "Check that POSTHOG_HOST is PostHog's app host, e.g. https://us.posthog.com."
    )
