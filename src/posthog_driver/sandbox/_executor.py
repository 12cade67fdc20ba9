"""Run agent-written Python where it cannot touch the host: the executor protocol and the
bubblewrap executor.

An executor runs one Python program with input files and environment variables, under a
wall-clock limit, and returns its stdout, stderr, exit status and the files it wrote. Nothing the
caller passes (code, data, a key) is ever pasted into program text: the code is written to
``main.py``, data to files, secrets go in ``env``.

``LocalSandboxExecutor`` (Linux, bubblewrap) gives each run a fresh working directory (the only
writable place besides a private ``/tmp``), no network (its own loopback only), nothing of the
host's home, ``/etc`` or working tree, its own ``/proc`` and PID namespace, and limits: address
space, CPU time, file size, open files, processes (a pids cgroup where the caller is root, since
the kernel exempts root from ``RLIMIT_NPROC``). Output is capped while it is read, not after;
past the cap, or past the wall-clock limit, or when the awaiting task is cancelled, the whole
sandbox is killed. Without a working bubblewrap it refuses with ``SandboxUnavailableError``; it
never runs code unsandboxed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol, Self

import anyio

from posthog_driver._errors import ValidationError
from posthog_driver.sandbox._bubblewrap import (
    Confinement,
    find_bubblewrap,
    kill_cgroup,
    popen,
    python_paths,
    remove_cgroup,
    sandbox_cgroups,
)

__all__ = ["ExecutionResult", "Executor", "LocalSandboxExecutor"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
PROGRAM = "main.py"


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What one run produced. ``exit_code`` is None when the sandbox was killed."""

    exit_code: int | None
    stdout: str
    stderr: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    """Files the program wrote at the top of its working directory (inputs excluded)."""
    timed_out: bool = False
    truncated: bool = False
    """Output (or output files) went past the cap; the sandbox was killed or files dropped."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class Executor(Protocol):
    """Runs a Python program in isolation. Executors are async context managers."""

    async def run(
        self,
        code: str,
        *,
        files: Mapping[str, bytes] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> ExecutionResult: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def check_inputs(code: str, files: Mapping[str, bytes], env: Mapping[str, str]) -> None:
    """Refuse what cannot be passed safely: names that are not plain file names, non-text."""
    if not isinstance(code, str) or not code.strip():
        raise ValidationError("The program is empty; pass Python source as a string.")
    for name, data in files.items():
        if (
            not isinstance(name, str)
            or not name
            or name in (".", "..", PROGRAM)
            or not set(name) <= _NAME_CHARS
            or not isinstance(data, bytes)
        ):
            raise ValidationError(
                f"Input file {name!r} is not allowed: use plain names (letters, digits, '.', "
                f"'_', '-', not {PROGRAM!r}) and bytes for the content."
            )
    for key, value in env.items():
        if not (isinstance(key, str) and key.isidentifier() and isinstance(value, str)):
            raise ValidationError(f"Environment variable {key!r} must be a name with a str value.")


class LocalSandboxExecutor:
    """Run Python in a bubblewrap sandbox on this (Linux) host.

    ```python
    async with LocalSandboxExecutor() as sandbox:
        result = await sandbox.run("import pandas as pd; print(pd.read_csv('rows.csv').sum())",
                                   files={"rows.csv": b"n\\n1\\n2\\n"}, timeout=20)
    print(result.stdout)
    ```
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
    ) -> None:
        self.memory_bytes = memory_bytes
        self.max_disk_bytes = max_disk_bytes
        self.max_disk_files = max_disk_files
        self.cpu_seconds = cpu_seconds
        self.file_size_bytes = file_size_bytes
        self.max_processes = max_processes
        self.max_output_bytes = max_output_bytes
        self.max_files_bytes = max_files_bytes
        self.running = 0  #: sandboxes alive right now (0 once every run has returned)

    async def __aenter__(self) -> Self:
        await anyio.to_thread.run_sync(find_bubblewrap)  # refuse early, with the reason
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def run(
        self,
        code: str,
        *,
        files: Mapping[str, bytes] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> ExecutionResult:
        """Run ``code`` as ``main.py`` with ``files`` beside it and ``env`` as its whole
        environment; kill it after ``timeout`` seconds or when the caller is cancelled."""
        files, env = dict(files or {}), dict(env or {})
        check_inputs(code, files, env)
        await anyio.to_thread.run_sync(find_bubblewrap)
        # The working directory sits in a private (0700) parent that the sandbox never sees:
        # whatever the code leaves in it (a setuid file, say) no other host user can reach.
        parent = Path(tempfile.mkdtemp(prefix="posthog-sandbox-"))
        workdir = parent / "work"
        workdir.mkdir()
        cgroups = sandbox_cgroups(self.max_processes, self.memory_bytes * 2)
        try:
            for name, data in files.items():
                (workdir / name).write_bytes(data)
            (workdir / PROGRAM).write_text(code, encoding="utf-8")
            return await self._run(workdir, env, timeout, cgroups, set(files))
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_clean_up, parent, cgroups)

    async def _run(
        self,
        workdir: Path,
        env: dict[str, str],
        timeout: float,
        cgroups: list[Path],
        inputs: set[str],
    ) -> ExecutionResult:
        confinement = Confinement(
            read_only=python_paths(),
            writable=(str(workdir),),
            env={"MPLBACKEND": "Agg", "PYTHONIOENCODING": "utf-8", **env},
            workdir=str(workdir),
            memory_bytes=self.memory_bytes,
            cpu_seconds=self.cpu_seconds,
            file_size_bytes=self.file_size_bytes,
            processes=self.max_processes,
            tmp_bytes=self.max_disk_bytes,
            cgroups=tuple(str(group) for group in cgroups),
        )
        process = popen(
            [sys.executable, "-I", PROGRAM],
            confinement,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.running += 1
        out, err = _Capture(self.max_output_bytes), _Capture(self.max_output_bytes)
        readers = [
            threading.Thread(target=out.read, args=(process.stdout, process), daemon=True),
            threading.Thread(target=err.read, args=(process.stderr, process), daemon=True),
        ]
        disk = _DiskWatch(workdir, self.max_disk_bytes, self.max_disk_files)
        readers.append(threading.Thread(target=disk.watch, args=(process,), daemon=True))
        for reader in readers:
            reader.start()
        timed_out = False
        try:
            with anyio.move_on_after(timeout) as scope:
                await anyio.to_thread.run_sync(process.wait, abandon_on_cancel=True)
            timed_out = scope.cancelled_caught
        finally:
            _kill(process)  # the sandbox and everything in it; also when we are cancelled
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_reap, process, readers, cgroups)
            self.running -= 1
        # only now, with nothing of the sandbox left running, are its files read
        outputs, dropped = _outputs(workdir, inputs, self.max_files_bytes)
        killed = out.overflow or err.overflow or disk.overflow
        stderr = err.text()
        if disk.overflow:
            stderr += (
                f"\n[sandbox: stopped: its working directory went past {self.max_disk_bytes:,} "
                f"bytes or {self.max_disk_files:,} files]"
            )
        return ExecutionResult(
            exit_code=None if timed_out or killed else process.returncode,
            stdout=out.text(),
            stderr=stderr,
            files=outputs,
            timed_out=timed_out,
            truncated=killed or dropped,
        )


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
