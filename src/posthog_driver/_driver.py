"""`AsyncDriver`: the three-method contract (`list_objects`, `get_fields`, `query`) and friends.

The driver composes parts and holds little itself: the `RequestPipeline` sends (breakers,
slots, limits, retries, deadlines), `TTLCache` keeps schema answers, `catalog` shapes fields
and `QueryResult` reads answers. Every public method takes `timeout=` (seconds for the whole
call, retries and waits included; `POSTHOG_CALL_TIMEOUT` by default) and raises only
`DriverError` subclasses. The driver runs on asyncio (see `docs/api.md`: backoff and the
HTTP stack are asyncio-only).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import difflib
import enum
import json
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, cast

import anyio
import httpx2

from posthog_driver import _catalog as catalog
from posthog_driver._breaker import BreakerState
from posthog_driver._cache import TTLCache
from posthog_driver._catalog import FieldInfo
from posthog_driver._errors import (
    ConfigError,
    DriverError,
    NotFoundError,
    QueryError,
    RequestTimeoutError,
    ValidationError,
)
from posthog_driver._http import (
    QueryFlight,
    RequestPipeline,
    call_deadline,
    ms_since,
    remaining,
)
from posthog_driver._logging import get_logger
from posthog_driver._results import QueryResult, Rows
from posthog_driver._settings import DriverSettings
from posthog_driver._shared import SharedLimits
from posthog_driver._status import BreakerStatus, DriverStatus, LimitStatus, WindowStatus
from posthog_driver._stream import RowStream, StreamProgressCallback
from posthog_driver._validation import ValidationResult, with_literals

__all__ = ["AsyncDriver", "ProgressCallback", "QueryProgressCallback"]

_UNKNOWN_TABLE = re.compile(r"Unknown table `([^`]+)`")
SUGGEST_SECONDS = 5.0  # at most, to fetch the table names behind a suggestion

ProgressCallback = Callable[[str, int, int], None]
"""Called by `describe()` after each object: (object name, objects done, objects in all)."""

QueryProgressCallback = Callable[[dict[str, Any]], None]
"""Called while an async-mode query runs, with PostHog's `query_progress` (`rows_read`,
`bytes_read`, `estimated_rows_total`, `time_elapsed`...), or `{}` when it sent none."""

QueryMode = Literal["blocking", "async"]
HEALTH_TIMEOUT = 5.0  # health_check() never waits longer (or its own timeout=, if shorter)

log = get_logger()
T = TypeVar("T")

_PLACEHOLDER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_NAME_CHARS = 256
_MAX_PAGES = 1000
_PAGE_SIZE = "500"
_POLL_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class AsyncDriver:
    """An asyncio-native PostHog driver for agents: discover tables and fields, run HogQL.

    ```python
    async with AsyncDriver(DriverSettings(api_key="phx_...", project_id="12345")) as driver:
        tables = await driver.list_objects()
        fields = await driver.get_fields("events")
        rows = await driver.query("SELECT event, count() AS n FROM events GROUP BY event")
    ```

    One driver shares one `httpx2.AsyncClient` across all its calls; pass `http_client=` to use
    yours (it is then not closed by the driver). Safe to share between tasks.
    """

    def __init__(
        self,
        settings: DriverSettings,
        *,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        if http_client is not None and not isinstance(http_client, httpx2.AsyncClient):
            raise ConfigError(
                f"http_client must be an httpx2.AsyncClient, not {type(http_client).__name__}: "
                "posthog-driver sends with httpx2 (the maintained continuation of httpx, same "
                "API: `import httpx2`)."
            )
        if not isinstance(settings, DriverSettings):
            raise ConfigError(
                "AsyncDriver needs its settings: AsyncDriver(DriverSettings(api_key=..., "
                "project_id=...)), or AsyncDriver.from_env() to read POSTHOG_* and .env."
            )
        self.settings = settings
        self._pipeline = RequestPipeline(self.settings, http_client)
        # A load cut short by its own caller's deadline is not shared: a waiter with more time
        # loads again rather than inherit someone else's impatience.
        self._cache = TTLCache(self.settings.schema_cache_ttl, shared=_not_own_deadline)
        self._state = _State.UNOPENED

    @classmethod
    def from_env(cls, *, http_client: httpx2.AsyncClient | None = None) -> AsyncDriver:
        """A driver configured from `POSTHOG_*` variables and `.env` (raises `ConfigError`).

        The only constructor that reads the environment: `AsyncDriver(settings)` uses exactly
        the settings given.
        """
        return cls(DriverSettings.from_env(), http_client=http_client)

    def __repr__(self) -> str:
        return (
            f"<AsyncDriver host={self.settings.host!r} project_id={self.settings.project_id!r} "
            f"state={self._state.value}>"
        )

    def status(self) -> DriverStatus:
        """A read-only snapshot: breaker and rate windows per endpoint class, query slots in
        use, cached schema answers. Cheap; for monitoring and health endpoints."""
        pipeline = self._pipeline
        shared = pipeline.shared
        breakers = {}
        for name, breaker in pipeline.breakers.items():
            state = breaker.state
            retry_after = breaker.retry_after if state is BreakerState.OPEN else 0.0
            breakers[name] = BreakerStatus(
                state.value, breaker.failures, retry_after, breaker.probe_in_flight
            )
            if shared is not None and shared.store.available:  # the fleet's, as last seen
                fleet = shared.breakers[name]
                breakers[name] = BreakerStatus(
                    fleet.seen_state, fleet.seen_failures, fleet.retry_after, False
                )
        limits = {}
        for name in ("query", "api"):
            bucket = pipeline.limits.for_endpoint(name)  # type: ignore[arg-type]
            windows = tuple(WindowStatus(u, limit, t) for u, limit, t in bucket.used())
            limits[name] = LimitStatus(bucket.paused_for, bucket.waiting, windows)
            if shared is not None:
                fleet_windows = shared.windows[name]
                waiting = bucket.waiting + fleet_windows.waiting
                limits[name] = LimitStatus(fleet_windows.paused_for, waiting, windows)
        return DriverStatus(
            state=self._state.value,
            breakers=breakers,
            limits=limits,
            query_slots_in_use=pipeline.query_slots_in_use,
            query_slots=self.settings.max_concurrent_queries,
            cache_entries=len(self._cache),
            shared_limits=_shared_state(shared),
        )

    async def __aenter__(self) -> Self:
        if self._state is not _State.UNOPENED:
            raise DriverError(
                f"This AsyncDriver is {self._state.value}; a driver can be entered only once. "
                "Create a new AsyncDriver."
            )
        self._state = _State.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client (if the driver made it). Safe to call more than once."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        self._cache.clear()
        await self._pipeline.aclose()

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise DriverError("This AsyncDriver is closed; create a new one to keep querying.")
        _require_asyncio()

    @contextmanager
    def _call(self, timeout: float | None) -> Iterator[None]:
        """The public call's deadline: `timeout` seconds, or `call_timeout` by default."""
        self._check_open()
        with call_deadline(self._timeout(timeout)):
            yield

    def _timeout(self, timeout: float | None) -> float:
        if timeout is None:
            return self.settings.call_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ValidationError(f"timeout must be a number of seconds, not {timeout!r}.")
        if not (timeout > 0 and not math.isnan(timeout)):
            raise ValidationError(f"timeout must be more than 0 seconds, not {timeout!r}.")
        return float(timeout)

    # ---- discovery -------------------------------------------------------------------------

    async def list_objects(
        self, *, refresh: bool = False, timeout: float | None = None
    ) -> list[str]:
        """Names of the HogQL tables this project has (PostHog, system, warehouse), sorted."""
        with self._call(timeout):
            tables = await self._schema(refresh=refresh)
        return sorted(tables)

    async def get_fields(
        self, name: str, *, refresh: bool = False, timeout: float | None = None
    ) -> dict[str, FieldInfo]:
        """The fields of table `name`, keyed by the HogQL that references each one.

        Each value (a `FieldInfo`) has `type` (PostHog's field type), `hogql` and
        `description`; relations add `table` (what they point to); `events.event` lists known
        event names in `values`. Raises `NotFoundError` with close matches for an unknown name.
        """
        with self._call(timeout):
            _check_name(name)
            fields = await self._cache.get(
                ("fields", name), lambda: self._load_fields(name, refresh), refresh=refresh
            )
        # A copy: a caller that edits its answer must not edit everyone's cached one.
        return cast("dict[str, FieldInfo]", copy.deepcopy(fields))

    async def _load_fields(self, name: str, refresh: bool) -> dict[str, dict[str, Any]]:
        tables = await self._schema(refresh=refresh)
        table = tables.get(name)
        if table is None:
            raise _unknown_object(name, list(tables))
        fields = catalog.column_fields(table)
        sources = catalog.PROPERTY_SOURCES.get(name, [])
        found: dict[str, Any] = {}

        async def fetch(key: str, which: str, kind: str) -> None:
            found[key] = await self._definitions(which, kind, refresh)

        # The definition lists behind one table are independent: fetch them side by side.
        async with _first_error_group() as group:
            for kind, _prefix in sources:
                group.start_soon(fetch, kind, "property", kind)
            if name == "events":
                group.start_soon(fetch, "names", "event", "")
        for kind, prefix in sources:
            fields.update(catalog.property_fields(found[kind], prefix, kind))
        if name == "events" and "event" in fields:
            fields["event"]["values"] = sorted(
                {str(d["name"]) for d in found["names"] if isinstance(d.get("name"), str)}
            )
        return fields

    async def describe(
        self,
        objects: Iterable[str] | None = None,
        *,
        refresh: bool = False,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> dict[str, dict[str, FieldInfo]]:
        """Fields of many objects (default: all), fetched concurrently, in the order given.

        At most `describe_concurrency` objects are fetched at once, all within one deadline
        (`timeout=`). The first failure cancels the rest and is raised.
        """
        with self._call(timeout):
            return await self._describe(objects, refresh, on_progress)

    async def _describe(
        self,
        objects: Iterable[str] | None,
        refresh: bool,
        on_progress: ProgressCallback | None,
    ) -> dict[str, dict[str, FieldInfo]]:
        if isinstance(objects, str) or not (objects is None or isinstance(objects, Iterable)):
            raise ValidationError(
                "describe() takes a list of object names (or nothing, for all of them), "
                f"not {objects!r}; use describe(['events']) or get_fields('events')."
            )
        if refresh:
            # Reload the schema and definitions once for all objects, not once per object.
            self._cache.clear()
        names = list(objects) if objects is not None else await self.list_objects()
        for name in names:
            _check_name(name)
        unique = list(dict.fromkeys(names))
        out: dict[str, dict[str, FieldInfo]] = {}
        slots = anyio.CapacityLimiter(self.settings.describe_concurrency)

        async def one(name: str) -> None:
            async with slots:
                out[name] = await self.get_fields(name)
            if on_progress is not None:
                on_progress(name, len(out), len(unique))

        async with _first_error_group() as group:
            for name in unique:
                group.start_soon(one, name)
        return {name: out[name] for name in names}

    async def _schema(self, *, refresh: bool) -> dict[str, dict[str, Any]]:
        self._check_open()
        return await self._cache.get(
            "schema",
            lambda: self._shared_load("schema", self._load_schema, refresh),
            refresh=refresh,
        )

    async def _shared_load(self, name: str, load: Callable[[], Awaitable[T]], refresh: bool) -> T:
        """`load()`, through the fleet's schema cache in Redis when there is one."""
        shared = self._pipeline.shared
        if shared is None or shared.cache is None:
            return await load()
        return cast("T", await shared.cache.get(name, load, refresh=refresh))

    async def _load_schema(self) -> dict[str, dict[str, Any]]:
        body = await self._pipeline.send(
            "POST",
            f"{self._project_path}/query/",
            endpoint="schema",
            json={"query": {"kind": "DatabaseSchemaQuery"}, "refresh": "blocking"},
        )
        tables = body.get("tables") if isinstance(body, dict) else None
        if not isinstance(tables, dict):
            raise DriverError(
                "PostHog's DatabaseSchemaQuery answer has no 'tables' object "
                f"({json.dumps(body, default=str)[:200]}); check POSTHOG_HOST."
            )
        return {str(k): v for k, v in tables.items() if isinstance(v, dict)}

    async def _definitions(self, which: str, kind: str, refresh: bool) -> list[dict[str, Any]]:
        params = {"limit": _PAGE_SIZE}
        if which == "property":
            params["type"] = kind
        path = f"{self._project_path}/{which}_definitions/"
        return await self._cache.get(
            ("definitions", which, kind),
            lambda: self._shared_load(
                f"definitions:{which}:{kind}", lambda: self._all_pages(path, params), refresh
            ),
            refresh=refresh,
        )

    async def _all_pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every result of a DRF-paginated list, following `next` links on PostHog's host only."""
        results: list[dict[str, Any]] = []
        url: str | None = path
        query: dict[str, str] | None = params
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= _MAX_PAGES:
                raise DriverError(f"PostHog's pagination of {path} does not end; giving up.")
            seen.add(url)
            page = await self._pipeline.send("GET", url, endpoint="api", params=query)
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise DriverError(
                    f"PostHog's answer for {path} is not a paginated list "
                    f"({json.dumps(page, default=str)[:200]}); check POSTHOG_HOST."
                )
            results.extend(r for r in page["results"] if isinstance(r, dict))
            url = self._same_host(page.get("next"))
            query = None  # a `next` link carries its own query string
        return results

    def _same_host(self, link: Any) -> str | None:
        if not link:
            return None
        base = httpx2.URL(self.settings.host + "/")
        try:
            target = base.join(str(link))  # resolves relative and scheme-relative links
        except httpx2.InvalidURL:
            raise DriverError(
                f"PostHog's next-page link {str(link)[:100]!r} is not a URL."
            ) from None
        # The bearer key goes with every request: never follow a link to another origin.
        if _origin(target) != _origin(base):
            raise DriverError(
                f"PostHog's next-page link points to another host ({target.host!r}); refusing "
                "to send the API key there. Check POSTHOG_HOST (behind a proxy, set it to the "
                "public URL PostHog reports)."
            )
        return str(target)

    # ---- queries ---------------------------------------------------------------------------

    async def query(
        self,
        hogql: str,
        values: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        mode: QueryMode | None = None,
        on_progress: QueryProgressCallback | None = None,
    ) -> Rows:
        """Run a HogQL query; one dict per row, keyed by column name.

        Put constants in `values` and refer to them as `{name}` in the text: PostHog binds them
        as typed constants, never as pasted text. The answer is a list (`Rows`) that also says
        `has_more` (PostHog cut it at its default 100 rows) and `columns`.

        >>> await driver.query("SELECT count() AS n FROM events WHERE event = {ev}",
        ...                    values={"ev": "$pageview"})  # doctest: +SKIP
        [{'n': 1234}]
        """
        result = await self.execute(
            hogql, values, timeout=timeout, mode=mode, on_progress=on_progress
        )
        return result.as_dicts()

    async def execute(
        self,
        hogql: str,
        values: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        mode: QueryMode | None = None,
        on_progress: QueryProgressCallback | None = None,
    ) -> QueryResult:
        """Run a HogQL query and return the whole `QueryResult` (columns, types, rows...).

        `mode="async"` (or `POSTHOG_QUERY_MODE=async`, or passing `on_progress`) starts the
        query and polls PostHog for it, calling `on_progress` with its progress: for long
        queries. If the call is cancelled or its deadline passes, the driver asks PostHog to
        cancel the query (`DELETE .../query/{id}/`), so it stops using the project's slots.
        """
        with self._call(timeout):
            return await self._execute(hogql, values, mode, on_progress)

    async def _execute(
        self,
        hogql: str,
        values: dict[str, Any] | None,
        mode: QueryMode | None,
        on_progress: QueryProgressCallback | None,
    ) -> QueryResult:
        node = self._hogql_node(hogql, values)
        chosen = mode or ("async" if on_progress is not None else self.settings.query_mode)
        if chosen not in ("blocking", "async"):
            raise ValidationError(f"mode must be 'blocking' or 'async', not {mode!r}.")
        started = time.perf_counter()
        try:
            body = await self._run_query(node, chosen, on_progress)
            result = QueryResult.from_response(body)
        except DriverError as exc:
            if isinstance(exc, QueryError):
                await self._suggest_tables(exc)
            log.info(
                "query_failed",
                chars=len(hogql),
                error=type(exc).__name__,
                status_code=exc.status_code,
                elapsed_ms=ms_since(started),
            )
            raise
        log.info(
            "query_sent",
            chars=len(hogql),
            rows=len(result.rows),
            has_more=result.has_more,
            elapsed_ms=ms_since(started),
        )
        if result.hogql is None:
            result = dataclasses.replace(result, hogql=hogql)
        return result

    async def _suggest_tables(self, exc: QueryError) -> None:
        """An unknown table in PostHog's message gets close names, as `get_fields` gives
        them (from the cached schema; nothing is added when it cannot be had quickly)."""
        extra = await self._table_hint(str(exc))
        if extra:
            exc.message += extra
            exc.args = (exc.message,)
            if exc.detail:  # what the agent tools show the model
                exc.detail += extra

    async def _table_hint(self, message: str) -> str:
        """' Did you mean ...? list_objects() gives every table name.' for a message about an
        unknown table; '' otherwise, or when the names cannot be had quickly."""
        match = _UNKNOWN_TABLE.search(message)
        if match is None:
            return ""
        try:
            with anyio.move_on_after(SUGGEST_SECONDS):
                matches = _close_names(match.group(1), await self.list_objects())
                hint = f" Did you mean {', '.join(matches)}?" if matches else ""
                return f"{hint} list_objects() gives every table name."
        except DriverError:
            pass
        return ""

    def _hogql_node(self, hogql: Any, values: Any) -> dict[str, Any]:
        if not isinstance(hogql, str):
            raise ValidationError(
                f"The query must be a string of HogQL, not {type(hogql).__name__}."
            )
        if not hogql.strip():
            raise ValidationError("The query is empty; write a HogQL SELECT, e.g. SELECT 1.")
        if len(hogql) > self.settings.max_query_chars:
            raise ValidationError(
                f"The query has {len(hogql):,} characters, over the limit of "
                f"{self.settings.max_query_chars:,} (POSTHOG_MAX_QUERY_CHARS); "
                "move long lists into `values` or shorten it."
            )
        _check_utf8(hogql, "The query")
        node: dict[str, Any] = {"kind": "HogQLQuery", "query": hogql}
        if values is not None:
            node["values"] = _check_values(values)
        return node

    async def _run_query(
        self, node: dict[str, Any], mode: QueryMode, on_progress: QueryProgressCallback | None
    ) -> Any:
        """POST the query with its own id and follow it to its answer. If the call ends any
        other way while PostHog may be running the query (cancelled, deadline passed, a poll
        failed, `on_progress` raised), the query is cancelled at PostHog. In async mode the
        query holds a slot for its whole run, as it uses one of PostHog's meanwhile."""
        query_id = uuid.uuid4().hex
        flight = QueryFlight()
        holding = self._pipeline.query_slot() if mode == "async" else contextlib.nullcontext()
        try:
            async with holding:
                body = await self._pipeline.send(
                    "POST",
                    f"{self._project_path}/query/",
                    endpoint="query",
                    json={"query": node, "refresh": mode, "client_query_id": query_id},
                    flight=flight,
                )
                return await self._until_complete(body, query_id, flight, on_progress)
        except BaseException:
            if flight.maybe_running:
                self._pipeline.cancel_query(f"{self._project_path}/query/{query_id}/")
            raise

    async def _until_complete(
        self,
        body: Any,
        query_id: str,
        flight: QueryFlight,
        on_progress: QueryProgressCallback | None,
    ) -> Any:
        """Follow an answer that says the query is still running (async mode) to its result.

        Polls go through the API windows, not the query windows: a poll is not a query. The
        call's deadline bounds the wait.
        """
        status = body.get("query_status") if isinstance(body, dict) else None
        if not isinstance(status, dict) or status.get("complete", True) or "results" in body:
            return body
        flight.running = True
        path = f"{self._project_path}/query/{status.get('id') or query_id}/"
        attempt = 0
        while True:
            if on_progress is not None:
                progress = status.get("query_progress")
                on_progress(dict(progress) if isinstance(progress, dict) else {})
            await anyio.sleep(_POLL_DELAYS[min(attempt, len(_POLL_DELAYS) - 1)])
            attempt += 1
            try:
                polled = await self._pipeline.send("GET", path, endpoint="api")
            except QueryError:
                flight.running = False  # PostHog reported the query failed: it is over
                raise
            found = polled.get("query_status") if isinstance(polled, dict) else None
            if not isinstance(found, dict):
                continue
            status = found
            if status.get("error") or status.get("complete"):
                flight.running = False
            if status.get("error"):
                message = status.get("error_message") or "no reason given"
                raise QueryError(f"PostHog failed the query: {message}.", detail=message)
            if status.get("complete"):
                return status.get("results")

    # ---- health ----------------------------------------------------------------------------

    def stream(
        self,
        hogql: str,
        values: dict[str, Any] | None = None,
        *,
        cursor: str | Sequence[str],
        batch_size: int = 10_000,
        on_progress: StreamProgressCallback | None = None,
        timeout: float | None = None,
    ) -> RowStream:
        """Every row of a query, page by page, by keyset pagination on `cursor` (never OFFSET).

        The query is a SELECT of the cursor's columns (and any others) without LIMIT or OFFSET;
        the stream adds `ORDER BY <cursor> LIMIT <batch_size>` and, after the first page,
        "from the last key seen" with the key bound as `values`. `cursor` must be unique, e.g.
        `("timestamp", "uuid")`, up to identical duplicate rows (each copy comes back once);
        rows that share a key but differ are refused, never skipped. Each
        page is one query (rate limits and query slots apply) with its own `timeout`; breaking
        out of the loop stops the stream, and a cancelled page is cancelled at PostHog.
        `on_progress(rows_so_far)` is called after each page. Nothing is sent until iterated.

        ```python
        async for page in driver.stream("SELECT uuid, timestamp, event FROM events",
                                        cursor=("timestamp", "uuid")):
            print(len(page.rows))
        ```
        """
        self._check_open()
        if values is not None:
            values = _check_values(values)
        return RowStream(
            self,
            hogql,
            values,
            cursor=cursor,
            batch_size=batch_size,
            on_progress=on_progress,
            timeout=timeout,
        )

    async def validate(
        self, hogql: str, values: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> ValidationResult:
        """Check a query without running it (PostHog's `HogQLMetadata`): errors, warnings and
        notices with their positions (`line`, `column`) in `hogql`.

        It is a request to /query/ that runs nothing in ClickHouse: it counts in the query rate
        windows but takes no query slot. A misspelt field comes back as an error that says
        where; `result.pointer()` shows the line with a caret under it.
        """
        with self._call(timeout):
            self._hogql_node(hogql, values)  # the same input checks as a query
            checked, positions = with_literals(hogql, values)
            node = {"kind": "HogQLMetadata", "language": "hogQL", "query": checked}
            body = await self._pipeline.send(
                "POST", f"{self._project_path}/query/", endpoint="schema", json={"query": node}
            )
        result = ValidationResult.from_response(body, hogql, positions)
        errors = [
            dataclasses.replace(e, message=e.message + await self._table_hint(e.message))
            for e in result.errors
        ]
        return dataclasses.replace(result, errors=errors)

    async def health_check(self, *, timeout: float | None = None) -> bool:
        """True when `GET /api/projects/{id}/` answers 200 with this key. Never raises.

        One attempt of at most 5 s (or `timeout`, if shorter): no retries, and it neither
        waits for nor feeds the circuit breaker, so a liveness probe can never open it. False
        at once while a breaker is open (PostHog is failing) or the driver is closed.
        """
        if self._state is _State.CLOSED:
            return False
        if self._breaker_open():
            return False
        try:
            seconds = (
                HEALTH_TIMEOUT if timeout is None else min(HEALTH_TIMEOUT, self._timeout(timeout))
            )
            _require_asyncio()
            healthy = await self._pipeline.probe(f"{self._project_path}/", seconds)
        except DriverError as exc:
            log.warning("health_check_failed", error=type(exc).__name__)
            return False
        if not healthy:
            log.warning("health_check_failed")
        return healthy

    def _breaker_open(self) -> bool:
        """Whether an endpoint class's breaker is open here, or (as last seen) fleet-wide."""
        pipeline = self._pipeline
        for name, breaker in pipeline.breakers.items():
            if breaker.state is BreakerState.OPEN:
                return True
            if pipeline.shared is not None:
                fleet = pipeline.shared.breakers[name]
                if fleet.seen_state == "open" and fleet.retry_after > 0:
                    return True
        return False

    @property
    def _project_path(self) -> str:
        return f"/api/projects/{self.settings.project_id}"


class _first_error_group:
    """A task group that re-raises its first `DriverError` as itself, not an ExceptionGroup."""

    def __init__(self) -> None:
        self._group = anyio.create_task_group()

    async def __aenter__(self) -> anyio.abc.TaskGroup:
        return await self._group.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            return await self._group.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            first = _first_leaf(group)
            raise first from None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_leaf(exc)
        return exc
    return group  # pragma: no cover - groups are never empty


def _not_own_deadline(exc: Exception) -> bool:
    """Whether a failed load's error is everyone's (not its caller's deadline passing)."""
    return not (isinstance(exc, RequestTimeoutError) and remaining() <= 0)


def _require_asyncio() -> None:
    """The driver runs on asyncio: say so plainly under another event loop (trio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise DriverError(
            "posthog-driver runs on asyncio only (its retries and HTTP stack are asyncio-only); "
            "call it from asyncio, e.g. anyio.run(main) or asyncio.run(main)."
        ) from None


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port or default


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(
            f"An object name must be a non-empty string such as 'events', not {name!r}; "
            "list_objects() gives the names."
        )
    if len(name) > _MAX_NAME_CHARS:
        raise ValidationError(
            f"An object name of {len(name)} characters cannot exist (limit {_MAX_NAME_CHARS}); "
            "list_objects() gives the names."
        )
    _check_utf8(name, "The object name")


def _check_utf8(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(
            f"{what} holds characters that are not valid Unicode text (at position {exc.start}); "
            "remove unpaired surrogates."
        ) from None


def _check_values(values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise ValidationError(
            "`values` must be a dict of placeholder names to constants, "
            f"not {type(values).__name__}."
        )
    for key in values:
        if not isinstance(key, str) or not _PLACEHOLDER.match(key):
            raise ValidationError(
                f"Placeholder name {key!r} is not valid; use letters, digits and underscores "
                "(refer to it as {name} in the query)."
            )
    try:
        # The same encoding httpx uses for the body, so nothing fails after validation.
        json.dumps(values, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"`values` must hold JSON values (str, int, float, bool, None, lists, dicts): {exc}. "
            "Convert dates with .isoformat()."
        ) from None
    return values


def _close_names(name: str, known: list[str]) -> list[str]:
    lowered = {k.lower(): k for k in known}
    matches = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if name.lower() in lowered and lowered[name.lower()] not in matches:
        matches.insert(0, lowered[name.lower()])
    return matches


def _unknown_object(name: str, known: list[str]) -> NotFoundError:
    matches = _close_names(name, known)
    hint = f" Did you mean {', '.join(matches)}?" if matches else ""
    return NotFoundError(
        f"There is no object named {name!r}.{hint} list_objects() gives every name.",
        suggestions=matches,
    )


def _shared_state(shared: SharedLimits | None) -> str:
    if shared is None:
        return "off"
    if shared.store.available:
        return "redis"
    if shared.store.policy == "local":
        return "redis unreachable: per-process limits"
    return "redis unreachable: calls refused"
