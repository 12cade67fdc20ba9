"""Sandboxes for code and engines that must not touch the host.

``confine(argv, Confinement(...))`` turns a command into one that runs under bubblewrap: own
namespaces, no network, a read-only view of the interpreter, a private ``/tmp`` and resource
limits. The local server runs its query engine this way, and ``LocalSandboxExecutor`` runs
agent-written Python this way (an ``Executor``: code and files in, output and files out);
``E2BExecutor`` does the same in E2B's cloud. ``SandboxedDriver`` runs the driver's own calls
in an executor, the API key only in that process's environment.

Example::

    from posthog_driver.sandbox import Confinement, confine, python_paths

    argv, env = confine([sys.executable, "-I", "-c", "print(1)"],
                        Confinement(read_only=python_paths()))
    subprocess.run(argv, env=env, check=True)
"""

from __future__ import annotations

from posthog_driver.sandbox._bubblewrap import (
    Confinement,
    confine,
    find_bubblewrap,
    kill_cgroup,
    popen,
    python_paths,
    remove_cgroup,
    sandbox_cgroups,
)
from posthog_driver.sandbox._calls import SandboxedDriver
from posthog_driver.sandbox._e2b import E2BExecutor
from posthog_driver.sandbox._executor import ExecutionResult, Executor
from posthog_driver.sandbox._local import LocalSandboxExecutor

__all__ = [
    "Confinement",
    "E2BExecutor",
    "ExecutionResult",
    "Executor",
    "LocalSandboxExecutor",
    "SandboxedDriver",
    "confine",
    "find_bubblewrap",
    "kill_cgroup",
    "popen",
    "python_paths",
    "remove_cgroup",
    "sandbox_cgroups",
]
