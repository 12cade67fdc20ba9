"""`RowStream`: any number of rows, page by page, by keyset pagination (never OFFSET).

PostHog returns at most 50,000 rows per query and refuses OFFSET for personal API keys. A
stream runs the caller's query as a subquery, ordered by a cursor of its columns, one page at a
time; each next page starts strictly after the last key seen, bound as `values` placeholders:

    SELECT * FROM (<your query>)
    WHERE `timestamp` >= {stream_after_0}
      AND (`timestamp` > {stream_after_0} OR (`timestamp` = {stream_after_0} AND `uuid` >= {...}))
    ORDER BY `timestamp`, `uuid` LIMIT <batch_size>

(The last comparison is `>=`: each page starts at the last key seen, and the copies of that key
already given are dropped, so duplicate events, which PostHog's events table can hold, come back
once per copy.) The text around the caller's query is ours, built from checked identifiers; the
keys are values, never text. The cursor must be unique up to such duplicates (add a tiebreaker
such as `uuid`): rows that share a key but differ are refused, never silently dropped.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from posthog_driver import _frames
from posthog_driver._errors import DriverError, QueryError, ValidationError
from posthog_driver._lexing import tokens
from posthog_driver._results import QueryResult, unique_names

if TYPE_CHECKING:
    from posthog_driver._driver import AsyncDriver

__all__ = ["MAX_BATCH", "RowStream", "StreamProgressCallback"]

MAX_BATCH = 50_000  # PostHog clamps any larger LIMIT to this, silently
PLACEHOLDER = "stream_after_{}"
StreamProgressCallback = Callable[[int], None]
"""Called after each page with the number of rows streamed so far."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHAPE = (
    "Write it as SELECT <columns, including the cursor's> FROM ... [WHERE ...], without LIMIT or "
    "OFFSET: the stream adds ORDER BY <cursor> LIMIT <batch_size> and the keyset condition."
)


# How a key (a JSON value) is bound back so it compares as its column does; DateTime before
# Date, as both start alike. A UUID compared as text would not follow ClickHouse's UUID order.
_CASTS = {"DateTime": "toDateTime({})", "Date": "toDate({})", "UUID": "toUUID({})"}


class RowStream:
    """What `AsyncDriver.stream()` returns: pages of rows as `QueryResult`s, in cursor order.

    ```python
    stream = driver.stream("SELECT uuid, timestamp, event FROM events WHERE timestamp > {since}",
                           {"since": "2026-01-01"}, cursor=("timestamp", "uuid"))
    async for page in stream:            # QueryResult pages of at most batch_size rows
        ...
    async for row in driver.stream(..., cursor="id").rows():  # or one dict per row
        ...
    frame = await driver.stream(..., cursor=("timestamp", "uuid")).to_pandas()
    ```

    A stream is read once. `rows_so_far` and `pages` count what has come back; `columns` and
    `types` are known after the first page.
    """

    def __init__(
        self,
        driver: AsyncDriver,
        hogql: str,
        values: dict[str, Any] | None,
        *,
        cursor: str | Sequence[str],
        batch_size: int,
        on_progress: StreamProgressCallback | None,
        timeout: float | None,
    ) -> None:
        self._driver = driver
        self._inner = _check_shape(hogql)
        self._cursor = _check_cursor(cursor)
        self._values = _check_values(values)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise ValidationError(f"batch_size must be an integer, not {batch_size!r}.")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValidationError(
                f"batch_size must be between 1 and {MAX_BATCH:,} (PostHog's most rows per "
                f"query), not {batch_size:,}."
            )
        self._batch_size = batch_size
        self._on_progress = on_progress
        self._timeout = timeout
        self._started = False
        self.rows_so_far = 0
        self.pages = 0
        self.columns: list[str] = []
        self.types: list[str] = []

    def __repr__(self) -> str:
        return (
            f"<RowStream cursor={self._cursor} batch_size={self._batch_size} "
            f"rows_so_far={self.rows_so_far}>"
        )

    def __aiter__(self) -> AsyncIterator[QueryResult]:
        if self._started:
            raise DriverError("A stream is read once; call driver.stream(...) again to re-read.")
        self._started = True
        return self._pages()

    async def rows(self) -> AsyncIterator[dict[str, Any]]:
        """One dict per row (repeated column names made unique as in `as_dicts()`)."""
        async for page in self:
            for row in page.as_dicts():
                yield row

    async def to_arrow(self) -> Any:
        """Every row in one `pyarrow.Table`; each page becomes an Arrow batch as it arrives and
        its rows are dropped, so the rows are never held twice (extra `arrow`)."""
        pa = _frames.require("pyarrow")
        batches = []
        async for page in self:
            names = unique_names(page.columns)
            batches.append(_frames.record_batch(names, page.types, page.rows))
            del page
        schema = _frames.arrow_schema(unique_names(self.columns), self.types)
        return pa.Table.from_batches(batches, schema=schema)

    async def to_pandas(self) -> Any:
        """Every row in one `pandas.DataFrame`, typed as `QueryResult.to_pandas()`."""
        _frames.require("pandas")  # before a page is fetched, so a missing extra costs nothing
        return _frames.to_pandas(await self.to_arrow())

    async def to_polars(self) -> Any:
        """Every row in one `polars.DataFrame`."""
        _frames.require("polars")
        return _frames.to_polars(await self.to_arrow())

    async def _pages(self) -> AsyncIterator[QueryResult]:
        after: list[Any] | None = None
        positions: list[int] = []
        seen: list[list[Any]] = []  # the last page's rows that share its last key
        while True:
            hogql, values = self._page_query(after)
            try:
                page = await self._driver.execute(hogql, values, timeout=self._timeout)
            except QueryError as exc:
                explained = self._explained(exc) if self.pages == 0 else None
                if explained is not None:
                    raise explained from exc
                raise
            if self.pages == 0:
                self.columns, self.types = page.columns, page.types
                positions = self._positions(page)
            key = operator.itemgetter(*positions)
            self._check_keys(page.rows, key)
            rows = self._new_rows(page.rows, seen, key)
            self.pages += 1
            self.rows_so_far += len(rows)
            if self._on_progress is not None:
                self._on_progress(self.rows_so_far)
            if rows:
                yield page if len(rows) == len(page.rows) else replace(page, rows=rows)
            if len(page.rows) < self._batch_size:
                return
            last = key(page.rows[-1])
            seen = [row for row in page.rows if key(row) == last]
            after = [page.rows[-1][i] for i in positions]

    def _new_rows(
        self, rows: list[list[Any]], seen: list[list[Any]], key: Callable[[Any], Any]
    ) -> list[list[Any]]:
        """A page starts at the last key seen, so that duplicate rows (PostHog's events table
        can hold the same event twice) are neither lost nor repeated: the copies already given
        are dropped."""
        if not seen:
            return rows
        last = key(seen[0])
        again = 0
        while again < len(rows) and key(rows[again]) == last:
            again += 1
        if again and rows[0] != seen[0]:
            raise ValidationError(
                f"The stream's cursor {self._cursor} is not unique: rows on both sides of a page "
                f"boundary share the key {last} but differ. Add a unique tiebreaker, e.g. "
                "cursor=('timestamp', 'uuid')."
            )
        if again == len(rows) == self._batch_size:
            raise ValidationError(
                f"At least batch_size={self._batch_size:,} rows share the cursor key {last}: "
                "raise batch_size, or add a unique column to the cursor, e.g. uuid."
            )
        return rows[min(len(seen), again) :]

    def _page_query(self, after: list[Any] | None) -> tuple[str, dict[str, Any]]:
        order = ", ".join(f"`{name}`" for name in self._cursor)
        values = dict(self._values)
        where = ""
        if after is not None:
            bound = []
            for index, (name, key) in enumerate(zip(self._cursor, after, strict=True)):
                placeholder = PLACEHOLDER.format(index)
                values[placeholder] = key
                bound.append((f"`{name}`", self._bind(name, "{" + placeholder + "}")))
            where = f"\nWHERE {_after(bound)}"
        # ours around the caller's query: checked identifiers, placeholders and a number
        query = f"SELECT * FROM (\n{self._inner}\n){where}\nORDER BY {order}\nLIMIT "  # noqa: S608
        return query + str(self._batch_size), values

    def _bind(self, name: str, placeholder: str) -> str:
        kind = _base_type(self.types[self.columns.index(name)])
        for prefix, cast in _CASTS.items():
            if kind.startswith(prefix):
                return cast.format(placeholder)
        return placeholder

    def _positions(self, page: QueryResult) -> list[int]:
        positions = []
        for name in self._cursor:
            if name not in page.columns:
                raise ValidationError(
                    f"The stream's cursor column {name!r} is not among the query's columns "
                    f"({', '.join(page.columns)}): select it, e.g. SELECT {name}, ... {_SHAPE}"
                )
            index = page.columns.index(name)
            kind = _base_type(page.types[index])
            if not re.match(r"(U?Int\d|Float|String|FixedString|Enum|Date|UUID)", kind):
                raise ValidationError(
                    f"The cursor column {name!r} is of type {page.types[index]}; use columns of "
                    "number, string, date, datetime or UUID type (e.g. timestamp and uuid)."
                )
            positions.append(index)
        return positions

    def _check_keys(self, rows: list[list[Any]], key: Callable[[Any], Any]) -> None:
        # map/operator keep the common case in C: a page is up to 50,000 rows
        keys = list(map(key, rows))
        if any(map(_has_null, keys)):
            raise ValidationError(
                f"A row's cursor key holds NULL, which keyset pagination cannot resume after: "
                f"use non-null columns for the cursor {self._cursor}, or filter NULLs out "
                "(WHERE ... IS NOT NULL)."
            )
        if not any(map(operator.eq, keys, itertools.islice(keys, 1, None))):
            return
        # equal keys are fine only on identical rows (duplicates): the page boundary cannot
        # tell rows apart that its key does not
        for number, (before, row) in enumerate(itertools.pairwise(rows), start=1):
            if key(before) == key(row) and before != row:
                raise ValidationError(
                    f"The stream's cursor {self._cursor} is not unique: rows {number} and "
                    f"{number + 1} of page {self.pages + 1} share the key {key(row)} but differ, "
                    "and such rows could be lost or repeated between pages. Add a unique "
                    "tiebreaker, e.g. cursor=('timestamp', 'uuid')."
                )

    def _explained(self, exc: QueryError) -> DriverError | None:
        """The fix, where PostHog could not find a cursor column (the query does not select
        it); None for any other query error, which is the query's own."""
        missing = [
            name
            for name in self._cursor
            if re.search(rf"Unable to resolve field: `?{re.escape(name)}`?(?![\w$])", str(exc))
        ]
        if not missing:
            return None
        return ValidationError(
            f"PostHog could not order the stream by {missing[0]!r} ({exc}). Select the cursor "
            f"columns {list(self._cursor)} in the query. {_SHAPE}"
        )


def _after(bound: list[tuple[str, str]]) -> str:
    """The keyset condition: the first column at least its key (for the index), and the row at
    or after the key in cursor order (rows at the key are the duplicates `_new_rows` drops)."""
    alternatives = []
    for index, (column, key) in enumerate(bound):
        equal = [f"{c} = {k}" for c, k in bound[:index]]
        compare = ">=" if index == len(bound) - 1 else ">"
        alternatives.append(" AND ".join([*equal, f"{column} {compare} {key}"]))
    at_or_after = " OR ".join(f"({a})" for a in alternatives)
    first_column, first_key = bound[0]
    return f"{first_column} >= {first_key} AND ({at_or_after})"


def _has_null(key: Any) -> bool:
    return key is None or (isinstance(key, tuple) and None in key)


def _base_type(type_name: str) -> str:
    match = re.fullmatch(r"(?:Nullable|LowCardinality)\((.*)\)", type_name.strip())
    return _base_type(match.group(1)) if match else type_name.strip()


def _check_cursor(cursor: str | Sequence[str]) -> tuple[str, ...]:
    names = (cursor,) if isinstance(cursor, str) else tuple(cursor)
    if not names or not all(isinstance(n, str) and _IDENTIFIER.fullmatch(n) for n in names):
        raise ValidationError(
            f"cursor must name the query's ordering columns, e.g. cursor=('timestamp', 'uuid'), "
            f"not {cursor!r}; plain column names only: alias an expression "
            "(SELECT properties.$browser AS browser) and name the alias."
        )
    if len(set(names)) != len(names):
        raise ValidationError(f"cursor names a column twice: {names}.")
    return names


def _check_values(values: dict[str, Any] | None) -> dict[str, Any]:
    values = dict(values or {})
    taken = [name for name in values if name.startswith(PLACEHOLDER.format(""))]
    if taken:
        raise ValidationError(
            f"values may not use the names {taken}: stream() binds its keys as "
            f"{PLACEHOLDER.format('N')}; rename them."
        )
    return values


def _check_shape(hogql: Any) -> str:
    if not isinstance(hogql, str) or not hogql.strip():
        raise ValidationError("stream() needs a HogQL SELECT as a string. " + _SHAPE)
    text = hogql.strip().rstrip(";").rstrip()
    words = set()
    previous = ""
    for token in tokens(text):
        # a keyword at the top level: not a property (`properties.limit`), not an alias
        # (`AS offset`); `LIMIT n BY` is refused too: without an order its rows differ per run
        if token.kind == "word" and token.depth == 0:
            after_dot = text[: token.start].rstrip().endswith(".")
            if not after_dot and previous != "AS":
                words.add(token.text.upper())
            previous = token.text.upper()
    for word in ("LIMIT", "OFFSET"):
        if word in words:
            raise ValidationError(
                f"stream() pages through the whole result itself, so the query must not have "
                f"its own {word}. {_SHAPE} To stop early, break out of the loop."
            )
    return text
