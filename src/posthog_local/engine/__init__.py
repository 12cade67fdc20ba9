"""The query engine: chdb (embedded ClickHouse) in a process of its own, sandboxed where possible.

Three walls stand between a query and the host. The HogQL compiler and its lexical guard (wall 1)
decide what SQL is sent; the engine's own settings and grants (wall 2, ``_settings``) bound what
any SQL can do or cost; the engine process (wall 3) runs under bubblewrap with no network and no
view of the host's files, so even SQL that passed the other two has nothing to reach.
"""

from __future__ import annotations

from ._client import Engine, EngineBusy, EngineError, EngineTimeout, LoadStats, QueryOutput
from ._settings import DATABASE, EngineLimits

__all__ = [
    "DATABASE",
    "Engine",
    "EngineBusy",
    "EngineError",
    "EngineLimits",
    "EngineTimeout",
    "LoadStats",
    "QueryOutput",
]
