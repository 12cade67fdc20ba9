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
from posthog_driver.sandbox import Confinement, popen, python_paths

from .._wire import WireError, read_message, write_message
from ._settings import EngineLimits

__all__ = ["Engine", "EngineBusy", "EngineError", "EngineTimeout", "LoadStats", "QueryOutput"]

log = logging.getLogger("posthog_local.engine")

_GRACE = 1.0  # seconds past the engine's own timeout before the server gives up on a query
_STOP_SECONDS = 1.0  # a stopping engine still running a query is killed after this


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

    A query holds an engine session from the moment it is sent until the engine answers it, even
    when the caller stopped waiting (a cancelled or timed-out query is killed, and its session is
    free once the engine says so). If the engine's pipe breaks or the process dies, queries in
    flight fail at once and a new engine process starts loading the same data.

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
        session_wait: float = 1.0,
        answer_bytes: int = 64 << 20,
        process_memory_bytes: int = 16 << 30,
    ) -> None:
        self.pool_size = pool_size
        self.limits = limits
        self.sandbox = sandbox
        self.session_wait = session_wait
        self.answer_bytes = answer_bytes
        self.process_memory_bytes = process_memory_bytes
        self.stats: LoadStats | None = None
        self.ready: dict[str, Any] = {}
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._write_lock = threading.Lock()
        self._lifecycle = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._slots = threading.BoundedSemaphore(pool_size)
        self._closed = False
        self._restarting = False
        self._start_args: tuple[int, int, str | None] = (0, 0, None)
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
        with self._lifecycle:
            self._closed = False
            self._start_args = (events, seed, now)
            return self._spawn_engine()

    def _spawn_engine(self) -> dict[str, Any]:
        started = time.perf_counter()
        events, seed, now = self._start_args
        process, sandboxed = self._popen()
        assert process.stdin is not None
        assert process.stdout is not None
        self._process = process
        self._spawn(_drain, process.stderr)
        self._write(
            {
                "op": "start",
                "events": events,
                "seed": seed,
                "now": now,
                "pool_size": self.pool_size,
                "limits": asdict(self.limits),
                "answer_bytes": self.answer_bytes,
            }
        )
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

    def _popen(self) -> tuple[subprocess.Popen[bytes], bool]:
        argv = [sys.executable, "-I", "-m", "posthog_local.engine._worker"]
        # A new session: Ctrl-C in a terminal reaches the server, which then stops the engine.
        pipes: dict[str, Any] = {
            "stdin": subprocess.PIPE,
            "stdout": subprocess.PIPE,
            "stderr": subprocess.PIPE,
            "start_new_session": True,
        }
        if self.sandbox != "off":
            try:
                confinement = engine_confinement(self.process_memory_bytes)
                return popen(argv, confinement, **pipes), True
            except SandboxUnavailableError as exc:
                if self.sandbox == "required":
                    raise
                log.warning("engine_not_sandboxed reason=%s", exc)
        env = {"PATH": os.defpath, "LANG": "C.UTF-8", "HOME": os.path.expanduser("~")}
        return subprocess.Popen(argv, env=env, **pipes), False  # noqa: S603 - our own module

    def _await_ready(self, stdout: IO[bytes]) -> dict[str, Any]:
        while True:
            try:
                header, _ = read_message(stdout, max_payload=0)
            except WireError:
                code = self._process.wait(timeout=10) if self._process else None
                self._stop_process()
                raise EngineError(
                    f"The engine process exited while loading (status {code}); run with "
                    "--log-level DEBUG to see its output."
                ) from None
            if header.get("op") == "ready":
                return header

    def close(self) -> None:
        """Stop the engine process and fail queries still in flight (idempotent)."""
        with self._lifecycle:
            self._closed = True
            self._stop_process()

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()  # the worker exits at end of input, once its query is done
        try:
            process.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        threads, self._threads = self._threads, []
        for thread in threads:  # they end at end of output, now that the process is gone
            if thread is not threading.current_thread():
                thread.join(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        self._fail_pending("The engine stopped.")

    def _restart_soon(self) -> None:
        """Replace a broken engine in the background; queries meanwhile get ``EngineError``."""
        with self._lifecycle:
            if self._closed or self._restarting:
                return
            self._restarting = True
        threading.Thread(target=self._restart, daemon=True).start()

    def _restart(self) -> None:
        try:
            with self._lifecycle:
                if self._closed:
                    return
                log.error("engine_restarting")
                process = self._process
                if process is not None and process.poll() is None:
                    process.kill()
                self._stop_process()
                self._spawn_engine()
                self.restarts += 1
        except Exception:
            log.exception("engine_restart_failed")
        finally:
            self._restarting = False

    # -- querying ------------------------------------------------------------------------------

    async def run(
        self,
        sql: str,
        params: dict[str, Any],
        limit: int | None = None,
        *,
        deadline: float | None = None,
    ) -> QueryOutput:
        """Run engine SQL; ``limit`` trims the rows and reports ``has_more`` (one extra row).

        ``deadline`` (``time.monotonic()``) ends the wait earlier than the engine's own timeout.
        """
        if not self.running:
            self._restart_soon()
            raise EngineError(
                "The engine is restarting after a failure; retry in a few seconds.",
                "ENGINE_STOPPED",
            )
        # Not abandoned on cancel: a slot taken after the caller left would never be given back.
        if not await anyio.to_thread.run_sync(self._slots.acquire, True, self.session_wait):
            raise EngineBusy("Every engine session is busy.", "CONCURRENCY")
        self._next_id += 1
        request_id, pending = self._next_id, _Pending()
        self._pending[request_id] = pending
        wait = self.limits.timeout + _GRACE
        if deadline is not None:
            wait = max(0.0, min(wait, deadline - time.monotonic()))
        try:
            self._write(
                {"op": "query", "id": request_id, "sql": sql, "params": params, "limit": limit}
            )
        except EngineError:
            self._finish(request_id)
            raise
        try:
            finished = await anyio.to_thread.run_sync(
                pending.done.wait, wait, abandon_on_cancel=True
            )
        except anyio.get_cancelled_exc_class():
            self._kill(request_id)
            raise
        if not finished:
            self._kill(request_id)
            raise EngineTimeout("The query did not finish in time.", "TIMEOUT_EXCEEDED")
        return _output(pending)

    def _kill(self, request_id: int) -> None:
        """Kill a query the caller no longer waits for; its slot frees when the engine answers."""
        with contextlib.suppress(EngineError):
            self._write({"op": "kill", "id": request_id})

    def _finish(self, request_id: int) -> None:
        if self._pending.pop(request_id, None) is not None:
            self._slots.release()

    def _write(self, message: dict[str, Any]) -> None:
        process = self._process
        if process is None or process.stdin is None:
            raise EngineError("The engine is not running.", "ENGINE_STOPPED")
        try:
            with self._write_lock:
                write_message(process.stdin, message)
        except (OSError, ValueError):
            raise EngineError(
                "The engine stopped; retry in a few seconds.", "ENGINE_STOPPED"
            ) from None

    def _read_answers(self, stdout: IO[bytes]) -> None:
        """Reader thread: hand each answer to its query and free the query's session."""
        while True:
            try:
                header, payload = read_message(stdout, max_payload=self.answer_bytes)
            except WireError:
                break
            request_id = header.get("id", -1)
            pending = self._pending.get(request_id)
            if pending is not None:
                pending.header, pending.payload = header, payload
                pending.done.set()
                self._finish(request_id)
        self._fail_pending("The engine stopped unexpectedly; retry in a few seconds.")
        if not self._closed:
            log.error("engine_stopped unexpectedly")
            self._restart_soon()

    def _fail_pending(self, message: str) -> None:
        for request_id, pending in list(self._pending.items()):
            if not pending.done.is_set():
                pending.header = {"ok": False, "error": message, "code": "ENGINE_STOPPED"}
                pending.done.set()
            self._finish(request_id)


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
