"""The server's own edges from a newcomer's walkthrough: a client that hangs up mid-body, and a
stop while a query runs, are both quiet (no traceback on the server's stderr)."""

from __future__ import annotations

import socket
import threading
from typing import Any

import httpx
import pytest

from posthog_local import LocalServer, ServerOptions

HEAVY = "SELECT sum(a.number * b.number) FROM numbers(100000) a CROSS JOIN numbers(100000) b"


def _post(server: LocalServer, hogql: str, timeout: float = 60) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/projects/{server.project_id}/query/",
        json={"query": {"kind": "HogQLQuery", "query": hogql}},
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=timeout,
    )


def test_a_client_that_hangs_up_mid_body_leaves_no_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with LocalServer(ServerOptions(events=500)) as server:
        head = (
            f"POST /api/projects/{server.project_id}/query/ HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {server.api_key}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as sock:
            sock.sendall(head.encode() + b'{"query":')  # then hangs up
        assert _post(server, "SELECT 1").status_code == 200  # still serving
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "ClientDisconnect" not in err


def test_stopping_while_a_query_runs_is_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    answers: list[Any] = []
    server = LocalServer(ServerOptions(events=500, query_timeout=60, max_concurrent_queries=3))
    server.start()
    try:
        client = threading.Thread(target=lambda: answers.append(_try_post(server)))
        client.start()
        for _ in range(600):  # a guard: 30 s at most
            if server.limit_counts["peak_running"] > 0:  # the query holds an engine session
                break
            threading.Event().wait(0.05)
        threading.Event().wait(0.5)  # and is running in the engine
    finally:
        server.stop()
    client.join(timeout=60)
    assert answers  # the client got an answer or a closed connection, not a hang
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "graceful shutdown exceeded" not in err


def _try_post(server: LocalServer) -> Any:
    try:
        return _post(server, HEAVY).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


def test_bound_to_every_interface_it_gives_a_url_a_client_can_use() -> None:
    with LocalServer(ServerOptions(events=100, host="0.0.0.0")) as server:  # noqa: S104
        assert server.url.startswith("http://127.0.0.1:")
        assert server.env()["POSTHOG_HOST"] == server.url
        assert _post(server, "SELECT 1").status_code == 200
