"""The local server of cases 7 and 10: one per case, or in --quick one shared by both.

A full run starts a fresh server for each case. `--quick` keeps the first one started and hands
it to the next case that asks for the same data (same events, same seed), so the generation and
load are paid once; `stop_kept()` stops it once every case has run. That must happen before the
interpreter shuts down: its engine process dies with the thread that spawned it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SEED = 7
_kept: dict[int, tuple[Any, float]] = {}


@contextmanager
def local_server(events: int, *, keep: bool) -> Iterator[tuple[Any, float]]:
    """A started `LocalServer` with `events` generated events, and the seconds its start took."""
    from posthog_local import LocalServer, ServerOptions  # noqa: PLC0415 - an optional extra

    if keep and events in _kept:
        yield _kept[events]
        return
    started = time.perf_counter()
    server = LocalServer(ServerOptions(events=events, seed=SEED))
    server.start()
    entry = (server, time.perf_counter() - started)
    if keep:
        _kept[events] = entry
        yield entry
        return
    try:
        yield entry
    finally:
        server.stop()


def stop_kept() -> None:
    """Stop the servers kept by `--quick`."""
    while _kept:
        _kept.popitem()[1][0].stop()
