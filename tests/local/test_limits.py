"""Throttling, the concurrency cap, injected faults and responsiveness during slow queries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

from posthog_local import LocalServer, ServerOptions
from posthog_local.limits import ConcurrencyGate, SlidingWindowThrottle

QUERY = {"query": {"kind": "HogQLQuery", "query": "SELECT 1"}}
# a query that stays busy until killed or timed out (the check allows it: it reads our tables)
SLOW = {
    "query": {
        "kind": "HogQLQuery",
        "query": "SELECT count() FROM events a, events b, events c, events d",
    }
}


@pytest.fixture(scope="module")
def limited() -> Iterator[LocalServer]:
    options = ServerOptions(
        events=2_000, query_rate_per_minute=3, max_concurrent_queries=2, query_timeout=5
    )
    with LocalServer(options) as srv:
        yield srv


@pytest.fixture
async def limited_client(limited: LocalServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {limited.api_key}"}
    async with httpx.AsyncClient(base_url=limited.url, headers=headers, timeout=20) as http:
        yield http


def test_throttle_counts_a_sliding_window() -> None:
    now = [0.0]
    throttle = SlidingWindowThrottle(2, 60, clock=lambda: now[0])
    assert throttle.admit() is None
    assert throttle.admit() is None
    now[0] = 10.0
    assert throttle.admit() == 50
    now[0] = 60.0
    assert throttle.admit() is None
    assert "used=" in repr(throttle)


def test_gate_refuses_past_its_limit() -> None:
    gate = ConcurrencyGate(1)
    assert gate.enter()
    assert not gate.enter()
    gate.leave()
    assert gate.enter()
    assert "running=1" in repr(gate)


@pytest.mark.asyncio(loop_scope="session")
async def test_concurrency_cap_then_throttle(limited_client: httpx.AsyncClient) -> None:
    async def slow() -> httpx.Response:
        return await limited_client.post("/api/projects/1/query/", json=SLOW)

    results: list[httpx.Response] = []
    async with anyio.create_task_group() as group:
        for _ in range(2):
            group.start_soon(lambda: _collect(results, slow()))
        await anyio.sleep(0.5)
        extra = await limited_client.post("/api/projects/1/query/", json=QUERY)
        # other endpoints answer while two slow queries run
        project = await limited_client.get("/api/projects/1/")
    assert project.status_code == 200
    assert extra.status_code == 429
    assert extra.json()["detail"].startswith("Exceeded maximum concurrency limit: 2")
    assert "Retry-After" not in extra.headers
    assert [r.status_code for r in results] == [504, 504]  # the engine's max_execution_time
    throttled = await limited_client.post("/api/projects/1/query/", json=QUERY)
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json()["detail"] == (
        f"Request was throttled. Expected available in {throttled.headers['Retry-After']} seconds."
    )


async def _collect(results: list[httpx.Response], pending: Any) -> None:
    results.append(await pending)


@pytest.mark.asyncio(loop_scope="session")
async def test_disconnect_cancels_the_engine_query() -> None:
    options = ServerOptions(events=2_000, max_concurrent_queries=2, query_timeout=8)
    async with LocalServer(options) as srv:
        headers = {"Authorization": f"Bearer {srv.api_key}"}
        async with httpx.AsyncClient(base_url=srv.url, headers=headers, timeout=0.5) as impatient:
            with pytest.raises(httpx.ReadTimeout):
                await impatient.post("/api/projects/1/query/", json=SLOW)
        await _wait_for_idle(srv)


async def _wait_for_idle(srv: LocalServer) -> None:
    state = srv._state
    assert state is not None
    # the killed query frees its slot long before the 5 s engine timeout would
    for _ in range(100):
        if state.gate is not None and state.gate.running == 0:
            break
        await anyio.sleep(0.05)
    assert state.gate is not None
    assert state.gate.running == 0


def test_injected_faults() -> None:
    options = ServerOptions(events=500, fault_429_rate=1.0, retry_after=7)
    with LocalServer(options) as srv:
        response = httpx.get(f"{srv.url}/api/projects/1/")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
    with LocalServer(ServerOptions(events=500, fault_5xx_rate=1.0, latency_ms=(1, 2))) as srv:
        assert httpx.get(f"{srv.url}/api/projects/1/").status_code == 503
    with (
        LocalServer(ServerOptions(events=500, fault_drop_rate=1.0)) as srv,
        pytest.raises(httpx.TransportError),
    ):
        httpx.get(f"{srv.url}/api/projects/1/")
