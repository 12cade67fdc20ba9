"""A tiny PostHog-shaped server whose health can be switched: up, or 503 for every request.

Runs uvicorn on a daemon thread on 127.0.0.1 and counts the requests that reach it, so a test
can see exactly what the driver let through.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import uvicorn

from tests.posthog_bodies import hogql_response

ROWS = [["$pageview", 10]]
_OK = json.dumps(hogql_response(["event", "n"], ["String", "UInt64"], ROWS)).encode()
_DOWN = json.dumps(
    {"type": "server_error", "code": "error", "detail": "Service unavailable."}
).encode()


_THROTTLED = json.dumps(
    {"type": "throttled_error", "code": "throttled", "detail": "Request was throttled."}
).encode()


class SwitchableServer:
    """`with SwitchableServer() as srv: srv.up = False` makes every answer a 503.

    `hold` seconds delay each answer; `in_flight` and `max_in_flight` count requests being
    answered (`reset()` zeroes the counts).
    """

    def __init__(self, *, hold: float = 0.0) -> None:
        self.up = True
        self.hold = hold
        self.throttle_for: int | None = None  # set: every answer is a 429 with this Retry-After
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
        finally:
            self.in_flight -= 1
        status, body = (200, _OK) if self.up else (503, _DOWN)
        headers = [(b"content-type", b"application/json")]
        if self.throttle_for is not None:
            status, body = 429, _THROTTLED
            headers.append((b"retry-after", str(self.throttle_for).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def reset(self) -> None:
        self.requests = 0
        self.max_in_flight = self.in_flight

    def __enter__(self) -> Self:
        sock = socket.socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(self, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)
