"""An embedded, PostHog-compatible server for demos and tests (extra ``local``).

It serves PostHog's query and definitions API over real HTTP from a chdb (ClickHouse) engine
holding a seeded demo dataset. Example::

    from posthog_local import LocalServer, ServerOptions

    with LocalServer(ServerOptions(events=10_000)) as srv:
        print(srv.env())  # POSTHOG_HOST, POSTHOG_API_KEY, POSTHOG_PROJECT_ID

Importing the package is cheap: the engine stack (chdb, starlette, uvicorn) loads on first use
of a public name, and a missing extra is reported then, with the command that installs it.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import build_app
    from .options import ServerOptions
    from .server import LocalServer

__all__ = ["LocalServer", "ServerOptions", "build_app"]

_WHERE = {"LocalServer": ".server", "ServerOptions": ".options", "build_app": ".app"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'posthog_local' has no attribute {name!r}")
    for requirement in ("chdb", "starlette", "uvicorn", "hogql_parser"):
        if importlib.util.find_spec(requirement) is None:
            raise ImportError(
                f'posthog_local needs the "local" extra ({requirement} is missing): '
                'pip install "posthog-driver[local]"'
            )
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
