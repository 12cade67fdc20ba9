"""One circuit breaker for the fleet: an open breaker is seen by every worker, and once it is
half-open exactly one request in the whole fleet probes. The upstream holds each answer, so a
second probe would show as two requests in flight at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from posthog_driver import AsyncDriver, CircuitOpenError, DriverSettings, ServerError
from tests.conftest import FAKE_KEY
from tests.reliability.switchable import SwitchableServer
from tests.shared import fleet

RESET = 1.0


def _settings(url: str, redis_url: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "api_key": FAKE_KEY,
        "project_id": "1",
        "host": url,
        "max_retries": 0,
        "breaker_threshold": 2,
        "breaker_reset_seconds": RESET,
        "max_concurrent_queries": 8,
    }
    if redis_url is not None:
        values["redis_url"] = redis_url
    return values


async def _open_the_breaker(settings: dict[str, Any]) -> None:
    async with AsyncDriver(DriverSettings(**settings)) as driver:
        for _ in range(2):
            with pytest.raises(ServerError):
                await driver.query("SELECT 1")
        with pytest.raises(CircuitOpenError) as caught:
            await driver.query("SELECT 1")
        if "redis_url" in settings:
            assert "across the processes sharing POSTHOG_REDIS_URL" in str(caught.value)


def _hammer(server: SwitchableServer, redis_url: str | None) -> list[dict[str, Any]]:
    server.up = False
    asyncio.run(_open_the_breaker(_settings(server.url, redis_url)))
    server.reset()
    config = {
        "settings": _settings(server.url, redis_url),
        "seconds": 3 * RESET,
        "concurrency": 8,
        "pause_after_error": 0.02,
    }
    return fleet.run([config] * 3, lead=0.5)


def test_one_half_open_probe_across_the_fleet(redis_url: str) -> None:
    with SwitchableServer(hold=0.4) as server:
        results = _hammer(server, redis_url)
    assert server.max_in_flight == 1
    # The breaker did let probes through (one per reset period), and only those.
    assert 1 <= server.requests <= 3
    for r in results:
        assert r["ok"] == 0
        assert set(r["errors"]) <= {"CircuitOpenError None", "ServerError 503"}
        assert r["errors"]["CircuitOpenError None"] > 0  # turned away without a request


def test_without_redis_every_worker_probes_for_itself() -> None:
    with SwitchableServer(hold=0.4) as server:
        _hammer(server, None)
    assert server.max_in_flight > 1
