# ruff: noqa: S608  (SQL here is built from our own names; user SQL arrives already checked)
"""The chdb (embedded ClickHouse) engine: loads the demo data and runs checked queries off the loop.

chdb runs one embedded server per process; every ``Session`` sees the same databases, and one
session runs one query at a time. So the engine keeps its tables in a database of its own
(``phd_<hex>``, several servers can live in one process), runs user queries on a small pool of
read-only sessions in worker threads, and keeps one admin session for loading and ``KILL QUERY``.

Walls kept by the engine itself, below the parsed-query check in ``hogql``: query sessions are
``readonly=1`` (stricter than PostHog's 2: no setting can change, and ``file()``/``url()`` are
refused), ``max_execution_time`` and ``implicit_select=0`` are set before readonly locks them.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import anyio
import chdb  # noqa: F401  (the import error for a missing extra is raised in __init__)
from chdb import session as chdb_session

from .catalog import EVENT_PROPERTIES, SYSTEM_TABLES, TABLES
from .data import DemoData
from .seed_sql import build_statements, insert_rows, system_rows

__all__ = ["Engine", "EngineError", "EngineTimeout", "LoadStats", "QueryOutput"]

# chdb ships without type hints; its Session is used through this one untyped name
_new_session: Any = chdb_session.Session

_ERROR = re.compile(
    r"Code: (\d+)\. DB::Exception: (.*?)(?: \(([A-Z_0-9]+)\))?(?: \(version [^)]*\))?\.?\s*$", re.S
)


class EngineError(Exception):
    """The engine refused or failed a query; ``message`` is cleaned of engine internals."""

    def __init__(self, message: str, code_name: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code_name = code_name


class EngineTimeout(EngineError):
    """The query ran past ``max_execution_time``."""


@dataclass(frozen=True, slots=True)
class QueryOutput:
    """Columns, engine types and rows (lists) of one query."""

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    elapsed: float


@dataclass(frozen=True, slots=True)
class LoadStats:
    """What loading the demo data cost and produced."""

    events: int
    persons: int
    sessions: int
    generate_seconds: float
    load_seconds: float
    row_counts: dict[str, int]


class Engine:
    """A chdb database holding the HogQL tables, and a pool of sessions that query it.

    Example::

        engine = Engine(pool_size=4, timeout=10.0)
        engine.load(generate(50_000, seed=42))
        output = await engine.run("SELECT count() FROM phd_x.events", {})
        engine.close()
    """

    def __init__(self, pool_size: int, timeout: float) -> None:
        self.database = "phd_" + secrets.token_hex(6)
        self._pool_size = pool_size
        self._timeout = timeout
        self._admin: Any = None
        self._admin_lock = threading.Lock()
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._sessions: list[Any] = []
        self._slots = anyio.Semaphore(pool_size)
        self.stats: LoadStats | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def load(self, data: DemoData, generate_seconds: float = 0.0) -> LoadStats:
        """Create the database and tables, load ``data`` and open the query sessions (blocking)."""
        started = time.perf_counter()
        self._admin = _new_session()
        self._admin_query(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        for table in TABLES.values():
            self._admin_query(table.ddl(self.database))
        self._stage(data)
        for statement in build_statements(self.database):
            self._admin_query(statement)
        for name in ("stage_events", "stage_persons", "stage_sessions"):
            self._admin_query(f"DROP TABLE {self.database}.{name}")
        self._load_system_tables(data)
        for _ in range(self._pool_size):
            session = self._query_session()
            self._sessions.append(session)
            self._idle.put(session)
        counts = self._row_counts()
        self.stats = LoadStats(
            events=counts["events"],
            persons=counts["persons"],
            sessions=counts["sessions"],
            generate_seconds=generate_seconds,
            load_seconds=time.perf_counter() - started,
            row_counts=counts,
        )
        return self.stats

    def _query_session(self) -> Any:
        """A read-only session for user queries, with the engine's limits set."""
        session = _new_session()
        for setting in (
            f"max_execution_time = {self._timeout}",
            "implicit_select = 0",
            "session_timezone = 'UTC'",
            "max_result_rows = 50001",
            "result_overflow_mode = 'throw'",
            "readonly = 1",  # last: after it no setting can change, not even by us
        ):
            session.query(f"SET {setting}")
        return session

    def close(self) -> None:
        """Drop the database and close every session this engine opened (idempotent)."""
        if self._admin is None:
            return
        with contextlib.suppress(Exception):
            self._admin_query(f"DROP DATABASE IF EXISTS {self.database} SYNC")
        # chdb sessions share one embedded server: closing them could stop it for other engines in
        # this process, so they are dropped, not closed.
        self._sessions.clear()
        self._admin = None

    # -- querying ------------------------------------------------------------------------------

    async def run(self, sql: str, params: dict[str, Any]) -> QueryOutput:
        """Run checked SQL in a worker thread; cancelling the caller kills the engine query."""
        marker = f"/* phd:{secrets.token_hex(8)} */"
        async with self._slots:
            try:
                return await anyio.to_thread.run_sync(
                    self._run_sync, f"{marker} {sql}", params, abandon_on_cancel=True
                )
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self.kill, marker)
                raise

    def run_blocking(self, sql: str) -> QueryOutput:
        """Run our own SQL on a query session in the calling thread (used while loading)."""
        return self._run_sync(sql, {})

    def kill(self, marker: str) -> None:
        """Cancel running queries whose text starts with ``marker`` (our own comment)."""
        self._admin_query(f"KILL QUERY WHERE startsWith(query, '{marker}') ASYNC")

    def _run_sync(self, sql: str, params: dict[str, Any]) -> QueryOutput:
        session = self._idle.get()
        healthy = False
        try:
            started = time.perf_counter()
            try:
                raw = session.query(sql, "JSONCompact", params=params or None)
            except (RuntimeError, ValueError) as exc:  # chdb's ChdbError is a RuntimeError
                raise _translate(exc, self.database) from None
            text = raw.bytes().decode() if hasattr(raw, "bytes") else str(raw)
            elapsed = time.perf_counter() - started
            payload = _one_document(text)
            healthy = True
        finally:
            # A session whose query failed may keep that query's partial output and prepend it to
            # the next answer (measured after timeouts): replace it rather than reuse it.
            self._idle.put(session if healthy else self._replacement(session))
        meta = payload.get("meta", [])
        return QueryOutput(
            columns=[m["name"] for m in meta],
            types=[m["type"] for m in meta],
            rows=payload.get("data", []),
            elapsed=elapsed,
        )

    def _replacement(self, broken: Any) -> Any:
        try:
            fresh = self._query_session()
        except Exception:  # noqa: BLE001 - keep serving with the old session rather than none
            return broken
        self._sessions = [fresh if s is broken else s for s in self._sessions]
        return fresh

    # -- loading -------------------------------------------------------------------------------

    def _admin_query(self, sql: str) -> Any:
        with self._admin_lock:
            return self._admin.query(sql)

    def _stage(self, data: DemoData) -> None:
        db = self.database
        # chdb's Python() table function finds the DataFrame by its variable name, `frame`
        for name, frame in (  # noqa: B007
            ("stage_events", data.events),
            ("stage_persons", data.persons),
            ("stage_sessions", data.sessions),
        ):
            with self._admin_lock:
                self._admin.query(
                    f"CREATE TABLE {db}.{name} ENGINE = Memory AS SELECT * FROM Python(frame)"
                )

    def _load_system_tables(self, data: DemoData) -> None:
        counts = self._row_counts()
        for table in SYSTEM_TABLES:
            rows = system_rows(table.name, counts, data.now)
            columns = [c.name for c in table.columns]
            self._admin_query(insert_rows(self.database, table.stored_name, columns, rows))

    def _row_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for table in TABLES.values():
            raw = self._admin_query(f"SELECT count() FROM {self.database}.{table.stored_name}")
            counts[table.name] = int(str(raw).strip() or 0)
        extra = self._admin_query(
            f"SELECT countIf(properties.plan != 'free' AND properties.plan IS NOT NULL), "
            f"countIf(is_identified = false) FROM {self.database}.persons FORMAT CSV"
        )
        paying, anonymous = (int(x) for x in str(extra).strip().split(","))
        counts["_paying"], counts["_anonymous"] = paying, anonymous
        return counts


def _one_document(text: str) -> dict[str, Any]:
    """The engine's JSONCompact answer; anything else (two documents, a torn one) is an error."""
    if not text.strip():
        return {"meta": [], "data": []}
    try:
        payload, end = json.JSONDecoder().raw_decode(text.strip())
    except ValueError:
        payload, end = None, 0
    if not isinstance(payload, dict) or text.strip()[end:].strip():
        raise EngineError("The engine returned an unreadable result; run the query again.")
    return payload


def _translate(exc: Exception, database: str) -> EngineError:
    """Turn a chdb exception into a short message without engine internals or our database name."""
    text = str(exc).strip()
    match = _ERROR.search(text)
    code_name = ""
    if match:
        text, code_name = match.group(2), match.group(3) or ""
        # ClickHouse nests "Code: N. DB::Exception:" when it re-throws
        text = re.sub(r"Code: \d+\. DB::Exception: ", "", text)
    text = text.split(" In scope ")[0].split("Stack trace")[0]
    text = text.replace(f"{database}.", "").replace(database, "")
    text = re.sub(r"(?:/[\w.\-]+){2,}", "<path>", text)  # never echo file system paths
    text = re.sub(r"\s*\(version [^)]*\)", "", text).strip().rstrip(".") + "."
    if code_name == "TIMEOUT_EXCEEDED":
        return EngineTimeout(text, code_name)
    return EngineError(text, code_name)


def definition_queries(database: str) -> tuple[str, str]:
    """SQL for the definitions: events with first/last seen and volume; (event, property) pairs."""
    events = (
        f"SELECT event, min(timestamp), max(timestamp), count() FROM {database}.events "
        "GROUP BY event"
    )
    # typed JSON paths exist on every row (NULL when unset), so presence is counted per path
    checks = ", ".join(
        f"tuple('{name}', countIf(properties.`{name}` IS NOT NULL))" for name in EVENT_PROPERTIES
    )
    pairs = (
        f"SELECT event, pair.1 FROM (SELECT event, [{checks}] AS found FROM {database}.events "
        f"GROUP BY event) ARRAY JOIN found AS pair WHERE pair.2 > 0"
    )
    return events, pairs
