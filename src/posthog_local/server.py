"""``LocalServer``: the app served by uvicorn on a daemon thread with its own event loop.

Starting loads the data first (so the first request is fast), binds the socket itself (so port 0
is resolved before ``url`` is read) and returns once uvicorn accepts connections. Stopping asks
uvicorn to exit, joins the thread and drops the engine's database. Usable as a sync or async
context manager, or blocking with ``serve_forever()``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio
import uvicorn

from .app import ServerState, build_app
from .engine import LoadStats
from .options import ServerOptions

__all__ = ["LocalServer"]


class LocalServer:
    """A running local PostHog-compatible server.

    Example::

        with LocalServer(ServerOptions(events=20_000)) as srv:
            httpx.get(f"{srv.url}/api/projects/{srv.project_id}/",
                      headers={"Authorization": f"Bearer {srv.api_key}"})
    """

    def __init__(self, options: ServerOptions | None = None) -> None:
        self.options = options or ServerOptions()
        self._state: ServerState | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        # Set when uvicorn's thread has ended. Waited on instead of Thread.join: a join that a
        # Ctrl-C interrupted can later return while the thread still runs (CPython), and the
        # socket must not be closed under a uvicorn that is still shutting down.
        self._finished = threading.Event()
        self._socket: socket.socket | None = None
        self._port = 0

    def __repr__(self) -> str:
        status = "running" if self._server is not None else "stopped"
        return f"LocalServer({status}, url={self.url if self._port else None!r})"

    # -- what clients need ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``. Bound to every interface (0.0.0.0, ::),
        the server is reached on this machine through loopback: that is the URL given."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(  # noqa: S104
            self.options.host, self.options.host
        )
        return f"http://[{host}]:{self._port}" if ":" in host else f"http://{host}:{self._port}"

    @property
    def api_key(self) -> str:
        """The personal API key clients must send."""
        return self._require_state().api_key

    @property
    def project_id(self) -> str:
        """The project id the server answers for."""
        return self.options.project_id

    @property
    def stats(self) -> LoadStats | None:
        """Event/person/session counts and how long generating and loading took."""
        return self._state.engine.stats if self._state else None

    @property
    def limit_counts(self) -> dict[str, int]:
        """What the emulated limits did to query requests so far: ``admitted``, ``throttled``
        (rate 429s), ``concurrency`` (concurrency 429s) and ``peak_running`` (most at once)."""
        state = self._require_state()
        counts = {"admitted": 0, "throttled": 0, "concurrency": 0, **state.limit_counts}
        counts["peak_running"] = state.gate.peak if state.gate else 0
        return counts

    def env(self) -> dict[str, str]:
        """The environment that points the driver at this server."""
        return {
            "POSTHOG_HOST": self.url,
            "POSTHOG_API_KEY": self.api_key,
            "POSTHOG_PROJECT_ID": self.project_id,
        }

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Load the data, start uvicorn on a daemon thread and wait until it accepts connections."""
        if self._server is not None:
            raise RuntimeError("LocalServer is already running; stop() it before starting again.")
        state = ServerState(self.options)
        state.load()
        sock = socket.socket(socket.AF_INET6 if ":" in self.options.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Without it, small responses wait for the peer's delayed ACK: about 40 ms each.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.options.host, self.options.port))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self.options, state=state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        state.drop_connection = lambda scope: _abort_connection(server, scope)
        started = threading.Event()
        self._finished = finished = threading.Event()
        thread = threading.Thread(
            target=_serve,
            args=(server, sock, started, finished),
            name="posthog-local-server",
            daemon=True,
        )
        self._state, self._server, self._socket, self._thread = state, server, sock, thread
        thread.start()
        while not started.wait(0.01):
            if not thread.is_alive():
                self.stop()
                raise RuntimeError("the local server failed to start; see the log above")

    def stop(self) -> None:
        """Stop uvicorn, join its thread and release the engine (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._state is not None:
            # First: a query still running then fails at once and is answered, so uvicorn's
            # graceful shutdown need not wait for it and then cancel it (a traceback).
            self._state.close()
        ended = self._thread is None or self._finished.wait(timeout=10)
        if self._socket is not None and ended:
            self._socket.close()  # else the daemon thread still uses it; it ends with us
        self._server = self._thread = self._socket = None
        self._state = None

    def serve_forever(self, on_ready: Callable[[LocalServer], None] | None = None) -> None:
        """Start and block until Ctrl-C (or ``stop()`` from another thread), then stop cleanly.

        ``on_ready(server)`` runs once the server accepts connections (the CLI prints the
        environment to use there).
        """
        self.start()
        try:
            if on_ready is not None:
                on_ready(self)
            while self._thread is not None and not self._finished.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LocalServer:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.stop)

    def _require_state(self) -> ServerState:
        if self._state is None:
            raise RuntimeError(
                "LocalServer is not running; use it as a context manager or call start()."
            )
        return self._state


def _serve(
    server: uvicorn.Server,
    sock: socket.socket,
    started: threading.Event,
    finished: threading.Event,
) -> None:
    """Thread body: run uvicorn on the bound socket, flagging ``started`` once it listens and
    ``finished`` when it has stopped (or failed)."""

    async def run() -> None:
        async def announce() -> None:
            # uvicorn exposes readiness only as a flag, so it is polled
            while not server.started and not server.should_exit:  # noqa: ASYNC110
                await anyio.sleep(0.005)
            started.set()

        async with anyio.create_task_group() as group:
            group.start_soon(announce)
            await server.serve(sockets=[sock])

    try:
        anyio.run(run)
    finally:
        finished.set()


def _abort_connection(server: uvicorn.Server, scope: dict[str, Any]) -> None:
    """Close the client's TCP connection without a response (fault injection)."""
    for protocol in list(server.server_state.connections):
        if getattr(protocol, "client", None) == scope.get("client"):
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.abort()
