"""The server's side of the compiler processes: a small pool, a deadline per query.

``Compiler.compile()`` sends a query to an idle compiler process (``hogql._worker``) and waits
at most ``timeout`` seconds; past it, or if the process dies, the process is killed, replaced,
and the query refused with a 400 that says to simplify it. Processes run under the same sandbox
as the engine where it works, with no network and a 2 GiB address-space limit.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import subprocess
import sys
import threading
from typing import IO, Any

import anyio

from posthog_driver import SandboxUnavailableError
from posthog_driver.sandbox import Confinement, popen, python_paths

from ._wire import WireError, read_message, write_message
from .hogql import HogQLError

__all__ = ["Compiler", "CompilerBusy"]

log = logging.getLogger("posthog_local.compiler")


def _start(sandbox: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-I", "-m", "posthog_local.hogql._worker"]
    pipes: dict[str, Any] = {
        "stdin": subprocess.PIPE,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.DEVNULL,
        "start_new_session": True,
    }
    if sandbox != "off":
        confinement = Confinement(read_only=python_paths(), memory_bytes=2 << 30, open_files=64)
        try:
            return popen(argv, confinement, **pipes)
        except SandboxUnavailableError:
            if sandbox == "required":
                raise
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.Popen(argv, env=env, **pipes)  # noqa: S603 - our own interpreter and module


class CompilerBusy(Exception):
    """Every compiler process stayed busy for the whole wait (PostHog's concurrency 429)."""


class _Process:
    """One compiler process and a thread that reads its answers into a queue."""

    def __init__(self, sandbox: str) -> None:
        self.popen = _start(sandbox)
        self.answers: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.reader = threading.Thread(target=self._read, args=(self.popen.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stdout: IO[bytes] | None) -> None:
        assert stdout is not None
        while True:
            try:
                message, _ = read_message(stdout, max_payload=0)
            except WireError:
                self.answers.put(None)
                return
            self.answers.put(message)

    def ready(self, timeout: float) -> bool:
        try:
            return self.answers.get(timeout=timeout) is not None
        except queue.Empty:
            return False

    def ask(self, message: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """The answer, or None if the process overran ``timeout`` or died."""
        assert self.popen.stdin is not None
        try:
            write_message(self.popen.stdin, message)
            return self.answers.get(timeout=timeout)
        except (OSError, ValueError, queue.Empty):
            return None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self.reader.join(timeout=5)
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class Compiler:
    """A pool of compiler processes.

    Example::

        compiler = Compiler(size=2, timeout=3.0)
        compiler.start()
        answer = await compiler.compile({"op": "compile", "query": "SELECT 1"})
        compiler.close()
    """

    def __init__(
        self, size: int = 2, timeout: float = 5.0, sandbox: str = "auto", wait: float = 2.0
    ) -> None:
        self.size = size
        self.timeout = timeout
        self.wait = wait
        self.sandbox = sandbox
        self.replaced = 0
        self._idle: queue.SimpleQueue[_Process] = queue.SimpleQueue()
        self._all: list[_Process] = []
        self._slots = anyio.Semaphore(size)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Compiler(size={self.size}, timeout={self.timeout}, replaced={self.replaced})"

    def start(self) -> None:
        """Start the processes and wait until each has loaded the parser (blocking)."""
        processes = [self._spawn() for _ in range(self.size)]
        for process in processes:
            if not process.ready(timeout=60):
                raise RuntimeError("a compiler process did not start; see the log")
            self._idle.put(process)

    def _spawn(self) -> _Process:
        process = _Process(self.sandbox)
        with self._lock:
            self._all.append(process)
        return process

    async def compile(self, message: dict[str, Any]) -> dict[str, Any]:
        """The worker's answer to ``message``; ``HogQLError`` when it overran or crashed."""
        with anyio.move_on_after(self.wait) as waiting:
            await self._slots.acquire()
        if waiting.cancelled_caught:
            raise CompilerBusy
        try:
            # Not abandoned on cancel: the process must come back to the pool either way.
            answer = await anyio.to_thread.run_sync(self._ask, message)
        finally:
            self._slots.release()
        if answer is None:
            raise HogQLError(
                f"The query took longer than {self.timeout:g} s to parse, or could not be parsed; "
                "simplify it (fewer nested calls or parentheses, fewer terms).",
                "hogql_syntax_error",
            )
        return answer

    def _ask(self, message: dict[str, Any]) -> dict[str, Any] | None:
        try:
            process = self._idle.get(timeout=60)  # a replacement is starting; never wait for ever
        except queue.Empty:
            return None
        answer = process.ask(message, self.timeout)
        if answer is None:
            threading.Thread(target=self._replace, args=(process,), daemon=True).start()
        else:
            self._idle.put(process)
        return answer

    def _replace(self, broken: _Process) -> None:
        broken.kill()
        with self._lock:
            if broken in self._all:
                self._all.remove(broken)
            self.replaced += 1
        log.warning("compiler_replaced")
        fresh = self._spawn()
        fresh.ready(timeout=60)
        self._idle.put(fresh)

    def close(self) -> None:
        """Stop every process (idempotent)."""
        with self._lock:
            processes, self._all = self._all, []
        for process in processes:
            process.kill()
