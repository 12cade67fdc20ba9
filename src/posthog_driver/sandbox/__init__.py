"""Sandboxes for code and engines that must not touch the host.

``confine(argv, Confinement(...))`` turns a command into one that runs under bubblewrap: own
namespaces, no network, a read-only view of the interpreter, a private ``/tmp`` and resource
limits. The local server runs its query engine this way; agent-written code will too.

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
    popen,
    python_paths,
)

__all__ = ["Confinement", "confine", "find_bubblewrap", "popen", "python_paths"]
