"""``LocalSandboxExecutor``: agent-written Python in a bubblewrap sandbox on this Linux host.

Each run gets a sandbox of its own: a fresh working directory (the only writable place besides a
private ``/tmp``), no network (its own loopback only), nothing of the host's home, ``/etc`` or
working tree, its own ``/proc`` and PID namespace, and limits: address space, CPU time, file
size, open files, processes (a pids cgroup where the caller is root, since the kernel exempts
root from ``RLIMIT_NPROC``). Output is capped while it is read, not after; past the cap, past the
wall-clock limit, or when the awaiting task is cancelled, the whole sandbox is killed. Without a
working bubblewrap it refuses with ``SandboxUnavailableError``; it never runs code unsandboxed.

Every sandbox runs the fixed ``RUNNER``: it imports the ``preload`` modules, then waits on its
stdin for one line, the run's environment as JSON, and runs ``main.py``. Started on demand the
wait is nil; an entered executor with ``warm=N`` keeps N started ahead, so pandas and matplotlib
(several seconds to import) are loaded before the model's code arrives. A sandbox serves one run
and is then destroyed: nothing of one run (a process left behind, a file in ``/tmp``) can see the
next run's data or key.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import anyio

from posthog_driver.sandbox._bubblewrap import (
    Confinement,
    find_bubblewrap,
    kill_cgroup,
    popen,
    python_paths,
    remove_cgroup,
    sandbox_cgroups,
)
from posthog_driver.sandbox._executor import PROGRAM, ExecutionResult, check_inputs

__all__ = ["LocalSandboxExecutor"]

# Runs inside every sandbox as `python -I -c RUNNER MODULE...`. Its arguments are module names to
# import ahead (their output discarded); its stdin brings the environment, never code.
RUNNER = """\
import os, sys
null = os.open(os.devnull, os.O_WRONLY)
saved = os.dup(1), os.dup(2)
os.dup2(null, 1)
os.dup2(null, 2)
for name in sys.argv[1:]:
    try:
        __import__(name)
    except Exception:
        pass
os.dup2(saved[0], 1)
os.dup2(saved[1], 2)
for fd in (null, *saved):
    os.close(fd)
line = sys.stdin.readline()
if not line:
    raise SystemExit(0)
import json, runpy, traceback
os.environ.update(json.loads(line))
del line
path = "main.py"
sys.argv = [path]
try:
    runpy.run_path(path, run_name="__main__")
except SystemExit:
    raise
except BaseException as exc:
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != path:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
    raise SystemExit(1)
"""
PRELOAD = ("pandas", "matplotlib.pyplot")


class LocalSandboxExecutor:
    """Run Python in a bubblewrap sandbox on this (Linux) host.

    ```python
    async with LocalSandboxExecutor(warm=1) as sandbox:
        result = await sandbox.run("import pandas as pd; print(pd.read_csv('rows.csv').sum())",
                                   files={"rows.csv": b"n\\n1\\n2\\n"}, timeout=20)
    print(result.stdout)
    ```

    ``warm`` sandboxes are kept started while the executor is entered, each with ``preload``
    imported; ``network=True`` shares the host's network (only for programs of our own, such as
    the driver's tool calls, never for the model's code).
    """

    def __init__(
        self,
        *,
        memory_bytes: int = 2 << 30,
        cpu_seconds: int = 60,
        file_size_bytes: int = 16 << 20,
        max_processes: int = 64,
        max_output_bytes: int = 1 << 20,
        max_files_bytes: int = 8 << 20,
        max_disk_bytes: int = 256 << 20,
        max_disk_files: int = 10_000,
        warm: int = 0,
        preload: Sequence[str] = PRELOAD,
        network: bool = False,
    ) -> None:
        self.memory_bytes = memory_bytes
        self.max_disk_bytes = max_disk_bytes
        self.max_disk_files = max_disk_files
        self.cpu_seconds = cpu_seconds
        self.file_size_bytes = file_size_bytes
        self.max_processes = max_processes
        self.max_output_bytes = max_output_bytes
        self.max_files_bytes = max_files_bytes
        self.warm = warm
        self.preload = tuple(preload)
        self.network = network
        self.running = 0  #: sandboxes running a program now (0 once every run has returned)
        self._ready: collections.deque[_Sandbox] = collections.deque()
        self._entered = False

    def __repr__(self) -> str:
        return f"<LocalSandboxExecutor warm={self.warm} ready={self.ready} running={self.running}>"

    @property
    def ready(self) -> int:
        """Warm sandboxes waiting for a run."""
        return len(self._ready)

    async def __aenter__(self) -> Self:
        await anyio.to_thread.run_sync(find_bubblewrap)  # refuse early, with the reason
        self._entered = True
        with anyio.CancelScope(shield=True):  # a sandbox started is one that __aexit__ closes
            for _ in range(self.warm):
                await anyio.to_thread.run_sync(self._top_up)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._entered = False
        with anyio.CancelScope(shield=True):
            while self._ready:
                await anyio.to_thread.run_sync(self._ready.popleft().remove)

    async def run(
        self,
        code: str,
        *,
        files: Mapping[str, bytes] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> ExecutionResult:
        """Run ``code`` as ``main.py`` with ``files`` beside it and ``env`` added to its
        environment; kill it after ``timeout`` seconds or when the caller is cancelled."""
        files, env = dict(files or {}), dict(env or {})
        check_inputs(code, files, env)
        await anyio.to_thread.run_sync(find_bubblewrap)
        sandbox = await self._sandbox()
        self.running += 1
        try:
            return await sandbox.run(code, files, env, timeout)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(sandbox.remove)
            self.running -= 1

    async def _sandbox(self) -> _Sandbox:
        with anyio.CancelScope(shield=True):  # once started, only run's `finally` ends it
            taken = self._take()
            sandbox = taken if taken else await anyio.to_thread.run_sync(_Sandbox, self, ())
            if self._entered:
                await anyio.to_thread.run_sync(self._top_up)
        return sandbox

    def _take(self) -> _Sandbox | None:
        while self._ready:
            sandbox = self._ready.popleft()
            if sandbox.alive():
                return sandbox
            sandbox.remove()  # died while waiting (killed from outside): never hand it out
        return None

    def _top_up(self) -> None:
        if self._entered and len(self._ready) < self.warm:
            self._ready.append(_Sandbox(self, self.preload))


class _Sandbox:
    """One bubblewrap sandbox running ``RUNNER``, waiting for its one run."""

    def __init__(self, limits: LocalSandboxExecutor, preload: tuple[str, ...]) -> None:
        # The working directory sits in a private (0700) parent that the sandbox never sees:
        # whatever the code leaves in it (a setuid file, say) no other host user can reach.
        self.parent = Path(tempfile.mkdtemp(prefix="posthog-sandbox-"))
        self.workdir = self.parent / "work"
        self.workdir.mkdir()
        self.cgroups = sandbox_cgroups(limits.max_processes, limits.memory_bytes * 2)
        confinement = Confinement(
            read_only=python_paths(),
            writable=(str(self.workdir),),
            env={"MPLBACKEND": "Agg", "PYTHONIOENCODING": "utf-8"},
            network=limits.network,
            workdir=str(self.workdir),
            memory_bytes=limits.memory_bytes,
            cpu_seconds=limits.cpu_seconds,
            file_size_bytes=limits.file_size_bytes,
            processes=limits.max_processes,
            tmp_bytes=limits.max_disk_bytes,
            cgroups=tuple(str(group) for group in self.cgroups),
        )
        try:
            self.process = popen(
                [sys.executable, "-I", "-c", RUNNER, *preload],
                confinement,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except BaseException:
            _clean_up(self.parent, self.cgroups)
            raise
        self.max_disk_bytes, self.max_files_bytes = limits.max_disk_bytes, limits.max_files_bytes
        self.out = _Capture(limits.max_output_bytes)
        self.err = _Capture(limits.max_output_bytes)
        self.disk = _DiskWatch(self.workdir, limits.max_disk_bytes, limits.max_disk_files)
        self.readers = [
            threading.Thread(target=self.out.read, args=(self.process.stdout, self.process)),
            threading.Thread(target=self.err.read, args=(self.process.stderr, self.process)),
            threading.Thread(target=self.disk.watch, args=(self.process,)),
        ]
        for reader in self.readers:
            reader.daemon = True
            reader.start()
        self.stopped = False

    def alive(self) -> bool:
        return self.process.poll() is None

    async def run(
        self, code: str, files: dict[str, bytes], env: dict[str, str], timeout: float
    ) -> ExecutionResult:
        await anyio.to_thread.run_sync(self._send, code, files, env)
        with anyio.move_on_after(timeout) as scope:
            await anyio.to_thread.run_sync(self.process.wait, abandon_on_cancel=True)
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.stop)
        # only now, with nothing of the sandbox left running, are its files read
        outputs, dropped = _outputs(self.workdir, set(files), self.max_files_bytes)
        killed = self.out.overflow or self.err.overflow or self.disk.overflow
        stderr = self.err.text()
        if self.disk.overflow:
            stderr += (
                f"\n[sandbox: stopped: its working directory went past {self.max_disk_bytes:,} "
                f"bytes or {self.disk.max_files:,} files]"
            )
        timed_out = scope.cancelled_caught
        return ExecutionResult(
            exit_code=None if timed_out or killed else self.process.returncode,
            stdout=self.out.text(),
            stderr=stderr,
            files=outputs,
            timed_out=timed_out,
            truncated=killed or dropped,
        )

    def _send(self, code: str, files: dict[str, bytes], env: dict[str, str]) -> None:
        # Only our RUNNER has run in here so far: writing into the directory is safe.
        for name, data in files.items():
            (self.workdir / name).write_bytes(data)
        (self.workdir / PROGRAM).write_text(code, encoding="utf-8")
        stdin = self.process.stdin
        assert stdin is not None  # started with stdin=PIPE
        with contextlib.suppress(OSError):  # it died already: its exit status tells the rest
            stdin.write(json.dumps(env).encode() + b"\n")
            stdin.flush()
        with contextlib.suppress(OSError):
            stdin.close()  # the program reads an empty stdin, as from /dev/null

    def stop(self) -> None:
        """Kill the sandbox and everything in it, reap it, stop the readers (idempotent). The
        working directory stays until ``remove``, so its files can still be read."""
        if self.stopped:
            return
        self.stopped = True
        _kill(self.process)
        _reap(self.process, self.readers, self.cgroups)
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()

    def remove(self) -> None:
        self.stop()
        _clean_up(self.parent, self.cgroups)


class _Capture:
    """One stream, read up to a cap; past it, the sandbox is killed (capped where produced)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.overflow = False

    def read(self, stream: IO[bytes] | None, process: subprocess.Popen[bytes]) -> None:
        if stream is None:
            return
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            room = self.cap - len(self.data)
            self.data += chunk[:room]
            if len(chunk) > room:
                self.overflow = True
                _kill(process)
                return

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


class _DiskWatch:
    """The working directory is on the host's disk: stop the sandbox before it fills it.

    Each file is capped by ``RLIMIT_FSIZE``, but not their number; this second wall looks at
    the directory every 50 ms and kills the sandbox past ``max_bytes`` or ``max_files``.
    """

    def __init__(self, workdir: Path, max_bytes: int, max_files: int) -> None:
        self.workdir, self.max_bytes, self.max_files = workdir, max_bytes, max_files
        self.overflow = False

    def watch(self, process: subprocess.Popen[bytes]) -> None:
        while process.poll() is None:
            if not self._within_limits():
                self.overflow = True
                _kill(process)
                return
            time.sleep(0.05)

    def _within_limits(self) -> bool:
        total = files = 0
        folders = [str(self.workdir)]
        while folders:  # iterative: no depth of directories makes it recurse
            folder = folders.pop()
            with contextlib.suppress(OSError), os.scandir(folder) as entries:
                for entry in entries:
                    files += 1
                    with contextlib.suppress(OSError):
                        info = entry.stat(follow_symlinks=False)
                        total += info.st_blocks * 512
                        if stat.S_ISDIR(info.st_mode):
                            folders.append(entry.path)
                    if files > self.max_files or total > self.max_bytes:
                        return False
        return True


def _kill(process: subprocess.Popen[bytes]) -> None:
    # bubblewrap dies, and with it (die-with-parent, PID namespace) everything inside
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()


def _reap(
    process: subprocess.Popen[bytes], readers: list[threading.Thread], cgroups: list[Path]
) -> None:
    """Wait for bubblewrap, kill whatever of the sandbox outlived it, close the pipes."""
    process.wait()
    for group in cgroups:  # code that took over the sandbox's PID 1 dies here too
        kill_cgroup(group)
    for reader in readers:
        reader.join(timeout=5)
    if any(reader.is_alive() for reader in readers):
        return  # a writer survived (no cgroup to find it): never block on its pipe
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _clean_up(parent: Path, cgroups: list[Path]) -> None:
    # `rm -rf` walks iteratively: no depth of directories stops it (shutil.rmtree recurses)
    command = ["rm", "-rf", "--one-file-system", str(parent)]  # our own temporary folder
    subprocess.run(command, check=False)  # noqa: S603
    for group in cgroups:
        kill_cgroup(group)
        remove_cgroup(group)


MAX_OUTPUT_FILES = 50


def _outputs(workdir: Path, inputs: set[str], cap: int) -> tuple[dict[str, bytes], bool]:
    """Regular files the program left at the top of its directory, smallest first, up to
    ``cap`` bytes and ``MAX_OUTPUT_FILES`` files. Read through descriptors opened without
    following links and checked to be regular files: a name is never trusted to be a file."""
    found = []
    directory = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for name in os.listdir(directory):
            if name in inputs or name == PROGRAM:
                continue
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
            except OSError:
                continue  # a link, or not readable
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode):
                found.append((info.st_size, name, fd))
            else:
                os.close(fd)
        outputs: dict[str, bytes] = {}
        total, dropped = 0, len(found) > MAX_OUTPUT_FILES
        for size, name, fd in sorted(found)[:MAX_OUTPUT_FILES]:
            if total + size <= cap:
                with os.fdopen(fd, "rb", closefd=False) as file:
                    outputs[name] = file.read(cap - total)
                total += len(outputs[name])
            else:
                dropped = True
        return outputs, dropped
    finally:
        for _size, _name, fd in found:
            with contextlib.suppress(OSError):
                os.close(fd)
        os.close(directory)
