"""The engine process: ``python -m posthog_local.engine._worker``, normally inside a sandbox.

It reads a ``start`` message (data size, seed, limits), generates and loads the demo data,
answers ``ready`` with the counts and definitions, then serves ``query`` and ``kill`` messages
from standard input until it closes. A pool of chdb sessions runs queries in threads; each
answer is converted here (dates to ISO strings, JSON to text, the extra row that tells
``hasMore`` cut off) and sent as ready-made JSON bytes, so the server never parses rows.

Everything a query can cost happens in this process, under its memory limit; a query that
reads a file sees only the sandbox's empty view of the file system.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import queue
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .._wire import WireError, read_message, write_message
from . import _funnels
from ._settings import DATABASE, EngineLimits, session_settings, write_config

__all__ = ["main", "run"]

_ERROR = re.compile(
    r"Code: (\d+)\. DB::(?:Errno)?Exception: (.*?)"
    r"(?: \(([A-Z_0-9]+)\))?(?: \(version [^)]*\))?\.?\s*$",
    re.S,
)


_PYTHON_ERROR = re.compile(r"raised an exception at row \d+: (\w+Error): ([^\n]*)")
_MAX_ERROR_CHARS = 2_000


class Worker:
    """The sessions and the output pipe of one engine process."""

    def __init__(
        self,
        inp: IO[bytes],
        out: IO[bytes],
        limits: EngineLimits,
        pool_size: int,
        answer_bytes: int,
    ) -> None:
        self.inp = inp
        self.out = out
        self.limits = limits
        self.answer_bytes = answer_bytes
        self.lock = threading.Lock()
        self.jobs: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.pool_size = pool_size
        self.folder = Path(tempfile.mkdtemp(prefix="posthog-engine-"))
        self._new_session = _chdb_session_class()
        config = write_config(self.folder, limits)
        # The first session starts the embedded server; its config (users, memory) holds for all.
        self.admin: Any = self._new_session(f":memory:?config-file={config}")
        _funnels.register(limits.timeout)  # PostHog's funnel UDFs, as Python functions

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        with self.lock:
            write_message(self.out, header, payload)

    def query_session(self) -> Any:
        session = self._new_session(":memory:")
        for setting in session_settings(self.limits):
            session.query(f"SET {setting}")
        session.query(f"USE {DATABASE}")  # unqualified names resolve here, never in `default`
        return session

    def serve(self) -> None:
        threads = [
            threading.Thread(target=self._run_jobs, name=f"engine-{i}", daemon=True)
            for i in range(self.pool_size)
        ]
        for thread in threads:
            thread.start()
        try:
            while True:
                try:
                    message, _ = read_message(self.inp, max_payload=0)
                except WireError:
                    return
                if message.get("op") == "query":
                    self.jobs.put(message)
                elif message.get("op") == "kill":
                    self._kill(str(message.get("id")))
        finally:
            for _ in threads:
                self.jobs.put(None)

    def _kill(self, request_id: str) -> None:
        marker = _marker(request_id)
        with contextlib.suppress(Exception):
            self.admin.query(f"KILL QUERY WHERE startsWith(query, '{marker}') ASYNC")

    def _run_jobs(self) -> None:
        session = self.query_session()
        while (job := self.jobs.get()) is not None:
            started = time.perf_counter()
            try:
                header, payload = self._answer(session, job)
            except _Failure as failure:
                header, payload = {"ok": False, **failure.body}, b""
                if failure.replace_session:
                    session = self._fresh(session)
            except (MemoryError, RecursionError) as exc:
                header, payload = {"ok": False, **_too_big(exc)}, b""
                session = self._fresh(session)
            except Exception as exc:  # noqa: BLE001 - one query's failure must not end this thread
                header, payload = {"ok": False, **_translate(exc)}, b""
                session = self._fresh(session)
            header.update(id=job.get("id"), elapsed=time.perf_counter() - started)
            self.send(header, payload)

    def _fresh(self, broken: Any) -> Any:
        """A new session for one whose query failed: it may keep partial output (measured after
        timeouts) and prepend it to the next answer."""
        try:
            return self.query_session()
        except Exception:  # noqa: BLE001 - keep serving with the old session rather than none
            return broken

    def _answer(self, session: Any, job: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        sql = f"{_marker(str(job.get('id')))} {job['sql']}"
        try:
            raw = session.query(
                sql, "JSONCompactEachRowWithNamesAndTypes", params=job.get("params") or None
            )
            data = raw.bytes()
        except (RuntimeError, ValueError) as exc:  # chdb's ChdbError is a RuntimeError
            raise _Failure(_translate(exc), replace_session=True) from None
        if len(data) > self.answer_bytes:
            raise _Failure(_answer_too_big(len(data), self.answer_bytes))
        limit = job.get("limit")
        columns, types, rows, has_more = _rows(data, limit if isinstance(limit, int) else None)
        payload = b"[" + b",".join(rows) + b"]"
        del data
        if len(payload) > self.answer_bytes:
            raise _Failure(_answer_too_big(len(payload), self.answer_bytes))
        header = {
            "ok": True,
            "columns": columns,
            "types": types,
            "rows": len(rows),
            "has_more": has_more,
        }
        return header, payload


def _rows(data: bytes, limit: int | None) -> tuple[list[str], list[str], list[bytes], bool | None]:
    """Names, types and rows (JSON arrays) of an answer, row by row: only rows with dates or
    JSON columns are parsed, so memory stays near the answer's own size."""
    lines = data.split(b"\n")
    if len(lines) < 2 or not lines[0]:
        return [], [], [], (False if limit is not None else None)
    columns, types = json.loads(lines[0]), json.loads(lines[1])
    rows = [line for line in lines[2:] if line]
    has_more = None
    if limit is not None:
        has_more, rows = len(rows) > limit, rows[:limit]
    converters = [_converter(t) for t in types]
    if any(c is not None for c in converters):
        rows = [_convert_row(row, converters) for row in rows]
    return columns, types, rows, has_more


def _convert_row(row: bytes, converters: list[Any]) -> bytes:
    values = json.loads(row)
    out = [v if c is None else c(v) for v, c in zip(values, converters, strict=True)]
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode()


def _chdb_session_class() -> Any:
    """chdb's ``Session`` (untyped); only the engine process loads chdb."""
    from chdb import session  # noqa: PLC0415

    return session.Session


class _Failure(Exception):
    def __init__(self, body: dict[str, Any], *, replace_session: bool = False) -> None:
        super().__init__(body.get("error", ""))
        self.body = body
        self.replace_session = replace_session


def _marker(request_id: str) -> str:
    # A comment of our own that KILL QUERY finds the query by; request ids are our integers.
    return f"/* phd:{int(request_id)} */"


def _converter(engine_type: str) -> Any:
    """How PostHog's JSON shows a value of this type: datetimes as ISO 8601 with ``Z`` (fraction
    only when not zero), nested in arrays and tuples too."""
    bare = engine_type.removeprefix("LowCardinality(")
    bare = bare.removeprefix("Nullable(")
    if bare.startswith("DateTime"):
        zone = _zone(bare)
        return _iso if zone == "UTC" else (lambda value: _iso_in(value, zone))
    if bare.startswith(("Float", "Decimal")):
        return _float  # ClickHouse writes 99.0 as 99; PostHog's JSON keeps it a float
    if bare.startswith(("Array(", "Tuple(", "Map(")) and "DateTime" in bare:
        return _iso_nested
    return None


def _float(value: Any) -> Any:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _zone(datetime_type: str) -> str:
    """The zone of ``DateTime64(6, 'US/Samoa')`` (``UTC``, the session's, when none is named)."""
    match = re.search(r"'([^']+)'", datetime_type)
    return match.group(1) if match else "UTC"


def _iso_in(value: Any, zone: str) -> Any:
    """A wall-clock time in ``zone`` as ISO 8601 with its offset, as PostHog's JSON writes it."""
    if not isinstance(value, str):
        return value
    try:
        moment = dt.datetime.fromisoformat(value).replace(tzinfo=ZoneInfo(zone))
    except (ValueError, KeyError, ZoneInfoNotFoundError):
        return _iso(value)
    return moment.isoformat()


def _iso(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.replace(" ", "T")
    if text.endswith(".000000"):
        text = text[: -len(".000000")]
    return text + "Z"


def _iso_nested(value: Any) -> Any:
    if isinstance(value, list):
        return [_iso_nested(v) for v in value]
    if isinstance(value, dict):
        return {k: _iso_nested(v) for k, v in value.items()}
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == " ":
        return _iso(value)
    return value


def _translate(exc: Exception) -> dict[str, Any]:
    """A chdb exception as a short message without engine internals, paths or our database."""
    text = str(exc).strip()
    match = _ERROR.search(text)
    code_name = ""
    if match:
        text, code_name = match.group(2), match.group(3) or ""
        raised = _PYTHON_ERROR.search(text)
        if raised:  # one of our Python functions refused: its message, not its traceback
            text = raised.group(2)
            if raised.group(1) == "FunnelTimeoutError":
                code_name = "TIMEOUT_EXCEEDED"
        # ClickHouse nests "Code: N. DB::Exception:" when it re-throws
        text = re.sub(r"Code: \d+\. DB::(?:Errno)?Exception: ", "", text)
    text = text.split(" In scope ")[0].split("Stack trace")[0]
    text = text.replace(f"{DATABASE}.", "")
    text = re.sub(r"/\* phd:\d+ \*/ ?", "", text)
    text = re.sub(r"(?:/[\w.\-]+){2,}", "<path>", text)  # never echo file system paths
    text = re.sub(r"\s*\(version [^)]*\)", "", text).strip().rstrip(".:").rstrip() + "."
    if len(text) > _MAX_ERROR_CHARS:  # a 9 MB message once ended the server's reader
        text = text[:_MAX_ERROR_CHARS] + "... (cut)."
    return {"error": text, "code": code_name}


def _answer_too_big(size: int, limit: int) -> dict[str, Any]:
    return {
        "error": f"The answer is {size / 1e6:.0f} MB, over the local server's limit of "
        f"{limit / 1e6:.0f} MB; select fewer columns or rows, or aggregate.",
        "code": "TOO_MANY_ROWS_OR_BYTES",
    }


def _too_big(exc: BaseException) -> dict[str, Any]:
    what = "nested too deeply" if isinstance(exc, RecursionError) else "too large"
    return {
        "error": f"The answer is {what} to send; select fewer or simpler columns.",
        "code": "TOO_MANY_ROWS_OR_BYTES",
    }


def run(inp: IO[bytes], out: IO[bytes]) -> None:
    """Read ``start``, load the demo data, say ``ready``, then serve until ``inp`` closes."""
    try:
        start, _ = read_message(inp, max_payload=0)
    except WireError:
        return
    limits = EngineLimits(**start["limits"])
    worker = Worker(inp, out, limits, int(start["pool_size"]), int(start["answer_bytes"]))
    from ..data import generate  # noqa: PLC0415 - numpy and pandas load only in this process
    from ._store import load_demo_data  # noqa: PLC0415

    started = time.perf_counter()
    now = dt.datetime.fromisoformat(start["now"]) if start.get("now") else None
    data = generate(int(start["events"]), int(start["seed"]), now)
    generated = time.perf_counter() - started
    worker.send({"op": "progress", "stage": "loading", "seconds": generated})
    loaded = load_demo_data(worker.admin, data)
    del data
    worker.send({"op": "ready", "generate_seconds": generated, **loaded})
    worker.serve()


def main() -> None:  # pragma: no cover - the engine process's entry; run() is tested in-process
    """The engine process: messages on stdin and stdout, anything printed goes to stderr."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but messages may reach the pipe
    run(sys.stdin.buffer, out)


if __name__ == "__main__":  # pragma: no cover
    main()
