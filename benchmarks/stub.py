"""A PostHog-shaped stub server for benchmarks: raw ASGI on uvicorn, in its own process.

It answers instantly (or after `--delay-ms`) with bodies built by `tests.posthog_bodies`, so
the driver and a bare client are timed against the same server. Running it in a separate
process keeps its CPU time out of the client's (the GIL would otherwise mix the two).

Control endpoints, not part of PostHog's API:
    GET  /_stub/stats   {"requests": n, "in_flight": n, "max_in_flight": n, "by_path": {...}}
    GET  /_stub/log     {"times": [monotonic seconds of each API request's arrival]}
    POST /_stub/reset   clears the counters and the log
    POST /_stub/hold    holds every API answer (after its delay) until the next release
    POST /_stub/release answers every held request, and the ones after it, again
    POST /_stub/delay   {"ms": n}: the delay of every API answer from now on
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from tests.posthog_bodies import field, hogql_response, page, prop, table

PROJECT = "4242"
# The stub checks no key; this placeholder is what the driver sends.
API_KEY = "phx_benchmark-placeholder-not-a-key"
BIG_QUERY = "SELECT event, distinct_id, timestamp, browser, url, n FROM big_result"
SMALL_ROWS = [["$pageview", 1204], ["$autocapture", 877], ["signed_up", 41]]
REPO_ROOT = Path(__file__).resolve().parent.parent

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def schema_body(tables: int) -> dict[str, Any]:
    """A DatabaseSchemaQuery answer with `tables` tables: events, persons, then plain ones."""
    found = [
        table(
            "events",
            "posthog",
            [
                field("uuid", "string"),
                field("event", "string"),
                field("properties", "json"),
                field("timestamp", "datetime"),
                field("distinct_id", "string"),
                field("person", "lazy_table", table="persons", fields=["id", "properties"]),
            ],
        ),
        table("persons", "posthog", [field("id", "string"), field("properties", "json")]),
    ]
    for i in range(tables - len(found)):
        found.append(
            table(
                f"warehouse_table_{i:02d}",
                "data_warehouse",
                [field(f"column_{j}", "string") for j in range(12)],
            )
        )
    return {"tables": {t["name"]: t for t in found[:tables]}, "joins": []}


def big_rows(n: int = 1000) -> list[list[Any]]:
    """`n` rows of 6 realistic analytics columns, the same every run."""
    rng = random.Random(0)
    events = ["$pageview", "$autocapture", "$pageleave", "signed_up", "checkout_started"]
    browsers = ["Chrome", "Safari", "Firefox", "Edge"]
    paths = ["/", "/pricing", "/docs/getting-started", "/blog/launch-week", "/signup"]
    return [
        [
            rng.choice(events),
            f"{rng.getrandbits(64):016x}-{rng.getrandbits(32):08x}",
            f"2025-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.000000Z",
            rng.choice(browsers),
            "https://app.example.com" + rng.choice(paths),
            rng.randint(1, 5000),
        ]
        for _ in range(n)
    ]


class StubApp:
    """The ASGI app. One instance per server process."""

    def __init__(self, delay_s: float, tables: int) -> None:
        self.delay_s = delay_s
        small = hogql_response(["event", "n"], ["String", "UInt64"], SMALL_ROWS)
        big = hogql_response(
            ["event", "distinct_id", "timestamp", "browser", "url", "n"],
            ["String", "String", "DateTime64(6, 'UTC')", "String", "String", "UInt64"],
            big_rows(),
        )
        event_props = [prop(f"$prop_{i}", "String") for i in range(60)]
        person_props = [prop(f"person_prop_{i}", "String") for i in range(20)]
        self.bodies = {
            "small": json.dumps(small).encode(),
            "big": json.dumps(big).encode(),
            "schema": json.dumps(schema_body(tables)).encode(),
            "event_props": json.dumps(page(event_props)).encode(),
            "person_props": json.dumps(page(person_props)).encode(),
            "event_names": json.dumps(
                page([{"id": f"e{i}", "name": f"event_{i}"} for i in range(15)])
            ).encode(),
            "project": json.dumps({"id": int(PROJECT), "name": "bench"}).encode(),
        }
        self.gate = asyncio.Event()
        self.gate.set()
        self.reset()

    def reset(self) -> None:
        self.times: list[float] = []
        self.by_path: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path: str = scope["path"]
        if path.startswith("/_stub/"):
            await self._control(path, body, send)
            return
        self.times.append(time.monotonic())
        self.by_path[path] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if not self.gate.is_set():
                await self.gate.wait()
            status, answer = self._answer(path, scope.get("query_string", b""), body)
        finally:
            self.in_flight -= 1
        await _respond(send, status, answer)

    def _answer(self, path: str, query_string: bytes, body: bytes) -> tuple[int, bytes]:
        if path.endswith("/query/"):
            node = json.loads(body or b"{}").get("query", {})
            if node.get("kind") == "DatabaseSchemaQuery":
                return 200, self.bodies["schema"]
            if "big_result" in str(node.get("query", "")):
                return 200, self.bodies["big"]
            return 200, self.bodies["small"]
        if path.endswith("/property_definitions/"):
            person = b"type=person" in query_string
            return 200, self.bodies["person_props" if person else "event_props"]
        if path.endswith("/event_definitions/"):
            return 200, self.bodies["event_names"]
        if path == f"/api/projects/{PROJECT}/":
            return 200, self.bodies["project"]
        return 404, b'{"type": "invalid_request", "code": "not_found", "detail": "Not found."}'

    async def _control(self, path: str, body: bytes, send: Send) -> None:
        answer: dict[str, Any] = {"ok": True}
        if path == "/_stub/reset":
            self.reset()
        elif path == "/_stub/delay":
            self.delay_s = float(json.loads(body)["ms"]) / 1000
        elif path == "/_stub/hold":
            self.gate.clear()
        elif path == "/_stub/release":
            self.gate.set()
        elif path == "/_stub/log":
            answer = {"times": self.times}
        else:
            answer = {
                "requests": len(self.times),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "by_path": dict(self.by_path),
            }
        await _respond(send, 200, json.dumps(answer).encode())


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class StubServer:
    """Start the stub in a child process; `url` once entered. Stops it on exit.

    ```python
    with StubServer(delay_ms=50) as stub:
        stub.stats()["requests"]
    ```
    """

    def __init__(self, *, delay_ms: float = 0.0, tables: int = 30) -> None:
        self.delay_ms = delay_ms
        self.tables = tables
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "benchmarks.stub",
                f"--delay-ms={self.delay_ms}",
                f"--tables={self.tables}",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        port = int(self._process.stdout.readline().strip())
        self.url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                self.stats()
                break
            except httpx.TransportError:
                time.sleep(0.02)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            if self._process.stdout is not None:
                self._process.stdout.close()

    def stats(self) -> dict[str, Any]:
        """Requests seen since the last reset, and how many are in flight."""
        return httpx.get(f"{self.url}/_stub/stats").json()  # type: ignore[no-any-return]

    def arrival_times(self) -> list[float]:
        """Server-side arrival time (monotonic seconds) of every API request since the reset."""
        return httpx.get(f"{self.url}/_stub/log").json()["times"]  # type: ignore[no-any-return]

    def reset(self) -> None:
        """Clear the counters and the arrival log."""
        httpx.post(f"{self.url}/_stub/reset")

    def set_delay(self, ms: float) -> None:
        """Answer every API request `ms` milliseconds after it arrives, from now on."""
        self.delay_ms = ms
        httpx.post(f"{self.url}/_stub/delay", json={"ms": ms})


def main() -> None:
    import uvicorn  # noqa: PLC0415 - only the server process needs it

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--tables", type=int, default=30)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit it: without it the body waits for the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        StubApp(args.delay_ms / 1000, args.tables),
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=4096,
        timeout_keep_alive=60,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
