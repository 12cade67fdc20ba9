"""The server's side of the engine: start the engine process (sandboxed), send queries, wait.

``Engine.start()`` runs ``posthog_local.engine._worker`` in its own process: under bubblewrap
where it works (no network, no file outside its private ``/tmp``, an address-space limit), else
as a plain child process, which is logged. ``run()`` waits a bounded time for a free engine
session (``EngineBusy`` past it), sends the query and waits up to the engine's own timeout plus
a grace period; cancelling or timing out kills the query in the engine.

Rows come back as JSON bytes ready to forward; the server never parses them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import anyio

from posthog_driver import SandboxUnavailableError
from posthog_driver.sandbox import Confinement, confine, python_paths

from ._settings import EngineLimits
from ._wire import WireError, read_message, write_message

__all__ = ["Engine", "EngineBusy", "EngineError", "EngineTimeout", "LoadStats", "QueryOutput"]

log = logging.getLogger("posthog_local.engine")

_GRACE = 2.0  # seconds past the engine's own timeout before the server gives up on a query
_KILL_WAIT = 2.0  # seconds a cancelled query may take to stop before its session is reused


class EngineError(Exception):
    """The engine refused or failed a query; ``message`` is free of engine internals."""

    def __init__(self, message: str, code_name: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code_name = code_name


class EngineTimeout(EngineError):
    """The query ran past ``max_execution_time`` (or did not answer within the grace period)."""


class EngineBusy(EngineError):
    """Every engine session stayed busy for the whole wait; PostHog answers its concurrency 429."""


@dataclass(frozen=True, slots=True)
class QueryOutput:
    """Columns, engine types and the rows as JSON bytes (a list of lists)."""

    columns: list[str]
    types: list[str]
    rows_json: bytes
    row_count: int
    has_more: bool | None
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
    sandboxed: bool = False
    start_seconds: float = 0.0


@dataclass(slots=True)
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    header: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""


class Engine:
    """One engine process and the queries in flight to it.

    Example::

        engine = Engine(pool_size=4, limits=EngineLimits(timeout=10))
        ready = engine.start(events=50_000, seed=42)   # blocking: generates and loads
        output = await engine.run('SELECT count() FROM "posthog"."events"', {})
        engine.close()
    """

    def __init__(
        self,
        pool_size: int,
        limits: EngineLimits,
        *,
        sandbox: str = "auto",
        session_wait: float = 2.0,
        answer_bytes: int = 64 << 20,
        process_memory_bytes: int = 6 << 30,
    ) -> None:
        self.pool_size = pool_size
        self.limits = limits
        self.sandbox = sandbox
        self.session_wait = session_wait
        self.answer_bytes = answer_bytes
        self.process_memory_bytes = process_memory_bytes
        self.stats: LoadStats | None = None
        self.ready: dict[str, Any] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._write_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._slots = anyio.Semaphore(pool_size)
        self._closed = False
        self._threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Engine({state}, pool_size={self.pool_size}, in_flight={len(self._pending)})"

    @property
    def running(self) -> bool:
        """Whether the engine process is alive."""
        return self._process is not None and self._process.poll() is None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, events: int, seed: int, now: str | None = None) -> dict[str, Any]:
        """Start the engine process, load the data and return its ``ready`` message (blocking)."""
        started = time.perf_counter()
        argv, env, sandboxed = self._command()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # Ctrl-C in a terminal reaches the server, which stops us
        )
        assert process.stdin is not None
        assert process.stdout is not None
        self._process = process
        self._spawn(_drain, process.stderr)
        limits = asdict(self.limits)
        self._write({"op": "start", "events": events, "seed": seed, "now": now,
                     "pool_size": self.pool_size, "limits": limits,
                     "answer_bytes": self.answer_bytes})  # fmt: skip
        ready = self._await_ready(process.stdout)
        counts = ready["counts"]
        self.stats = LoadStats(
            events=counts["events"],
            persons=counts["persons"],
            sessions=counts["sessions"],
            generate_seconds=ready["generate_seconds"],
            load_seconds=ready["load_seconds"],
            row_counts=counts,
            sandboxed=sandboxed,
            start_seconds=time.perf_counter() - started,
        )
        self.ready = ready
        self._spawn(self._read_answers, process.stdout)
        return ready

    def _spawn(self, target: Any, stream: IO[bytes] | None) -> None:
        thread = threading.Thread(target=target, args=(stream,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _command(self) -> tuple[list[str], dict[str, str] | None, bool]:
        argv = [sys.executable, "-I", "-m", "posthog_local.engine._worker"]
        if self.sandbox != "off":
            try:
                command, env = confine(argv, engine_confinement(self.process_memory_bytes))
            except SandboxUnavailableError as exc:
                if self.sandbox == "required":
                    raise
                log.warning("engine_not_sandboxed reason=%s", exc)
            else:
                return command, env, True
        env = {"PATH": os.defpath, "LANG": "C.UTF-8", "HOME": os.path.expanduser("~")}
        return argv, env, False

    def _await_ready(self, stdout: IO[bytes]) -> dict[str, Any]:
        while True:
            try:
                header, _ = read_message(stdout, max_payload=0)
            except WireError:
                code = self._process.wait(timeout=10) if self._process else None
                self.close()
                raise EngineError(
                    f"The engine process exited while loading (status {code}); run with "
                    "--log-level DEBUG to see its output."
                ) from None
            if header.get("op") == "ready":
                return header

    def close(self) -> None:
        """Stop the engine process and fail queries still in flight (idempotent)."""
        self._closed = True
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()  # the worker exits at end of input
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        for thread in self._threads:  # they end at end of output, now that the process is gone
            thread.join(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        self._fail_pending("The engine stopped.")

    # -- querying ------------------------------------------------------------------------------

    async def run(self, sql: str, params: dict[str, Any], limit: int | None = None) -> QueryOutput:
        """Run engine SQL; ``limit`` trims the rows and reports ``has_more`` (one extra row)."""
        acquired = False
        with anyio.move_on_after(self.session_wait):
            await self._slots.acquire()
            acquired = True
        if not acquired:
            raise EngineBusy("Every engine session is busy.", "CONCURRENCY")
        try:
            return await self._send_and_wait(sql, params, limit)
        finally:
            self._slots.release()

    async def _send_and_wait(
        self, sql: str, params: dict[str, Any], limit: int | None
    ) -> QueryOutput:
        if not self.running:
            raise EngineError("The engine is not running; restart the server.")
        self._next_id += 1
        request_id, pending = self._next_id, _Pending()
        self._pending[request_id] = pending
        deadline = self.limits.timeout + _GRACE
        try:
            self._write(
                {"op": "query", "id": request_id, "sql": sql, "params": params, "limit": limit}
            )
            finished = await anyio.to_thread.run_sync(
                pending.done.wait, deadline, abandon_on_cancel=True
            )
            if not finished:
                await self._stop_query(request_id, pending)
                raise EngineTimeout("The query did not finish in time.", "TIMEOUT_EXCEEDED")
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._stop_query(request_id, pending)
            raise
        finally:
            self._pending.pop(request_id, None)
        return _output(pending)

    async def _stop_query(self, request_id: int, pending: _Pending) -> None:
        """Kill the query and give the engine a moment to free its session."""
        with contextlib.suppress(EngineError):
            self._write({"op": "kill", "id": request_id})
        await anyio.to_thread.run_sync(pending.done.wait, _KILL_WAIT, abandon_on_cancel=True)

    def _write(self, message: dict[str, Any]) -> None:
        process = self._process
        if process is None or process.stdin is None:
            raise EngineError("The engine is not running; restart the server.")
        try:
            with self._write_lock:
                write_message(process.stdin, message)
        except (OSError, ValueError):
            raise EngineError("The engine stopped; restart the server.") from None

    def _read_answers(self, stdout: IO[bytes]) -> None:
        """Reader thread: hand each answer to the query waiting for it."""
        while True:
            try:
                header, payload = read_message(stdout, max_payload=self.answer_bytes)
            except WireError:
                break
            pending = self._pending.get(header.get("id", -1))
            if pending is not None:
                pending.header, pending.payload = header, payload
                pending.done.set()
        if not self._closed:
            log.error("engine_stopped unexpectedly")
        self._fail_pending("The engine stopped unexpectedly; restart the server.")

    def _fail_pending(self, message: str) -> None:
        for pending in list(self._pending.values()):
            if not pending.done.is_set():
                pending.header = {"ok": False, "error": message, "code": "ENGINE_STOPPED"}
                pending.done.set()


def engine_confinement(memory_bytes: int) -> Confinement:
    """What the engine process may see and use: the interpreter, read-only; nothing else."""
    return Confinement(
        read_only=python_paths(),
        env={"LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1"},
        memory_bytes=memory_bytes,
        file_size_bytes=1 << 30,
        open_files=4096,
    )


def _output(pending: _Pending) -> QueryOutput:
    header = pending.header
    if not header.get("ok"):
        code = str(header.get("code") or "")
        error = EngineTimeout if code == "TIMEOUT_EXCEEDED" else EngineError
        raise error(str(header.get("error") or "The engine failed the query."), code)
    return QueryOutput(
        columns=list(header["columns"]),
        types=list(header["types"]),
        rows_json=pending.payload or b"[]",
        row_count=int(header["rows"]),
        has_more=header.get("has_more"),
        elapsed=float(header.get("elapsed", 0.0)),
    )


def _drain(stream: IO[bytes] | None) -> None:
    """Log what the engine process prints (ClickHouse notices), never letting the pipe fill."""
    if stream is None:
        return
    for line in iter(stream.readline, b""):
        log.debug("engine_stderr %s", line.decode("utf-8", errors="replace").rstrip()[:500])
