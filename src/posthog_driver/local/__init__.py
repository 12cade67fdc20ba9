"""An embedded, PostHog-compatible server for demos and tests (extra ``local``).

It serves PostHog's query and definitions API over real HTTP from an in-process chdb (ClickHouse)
engine holding a seeded demo dataset. Example::

    from posthog_driver.local import LocalServer, ServerOptions

    with LocalServer(ServerOptions(events=10_000)) as srv:
        print(srv.env())  # POSTHOG_HOST, POSTHOG_API_KEY, POSTHOG_PROJECT_ID
"""

from __future__ import annotations

try:
    import chdb  # noqa: F401
    import sqlglot  # noqa: F401
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise ImportError(
        'posthog_driver.local needs the "local" extra: pip install "posthog-driver[local]"'
    ) from exc

from .app import build_app
from .options import ServerOptions
from .server import LocalServer

__all__ = ["LocalServer", "ServerOptions", "build_app"]
