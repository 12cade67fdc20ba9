"""Secrets: no captured log event and no error text holds the API key, on any failure path."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from posthog_driver import AsyncDriver, DriverSettings
from tests.reliability.conftest import Tally

pytestmark = pytest.mark.reliability


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_failure_paths_never_show_the_key(
    local_server: Any, tally: Tally, captured_logs: list[dict[str, Any]]
) -> None:
    wrong_key = "phx_WRONGKEY0123456789abcdefghijklmnopqrstuvwxyzAB"
    cases = [
        (local_server.url, wrong_key, local_server.project_id),  # 401
        (local_server.url, local_server.api_key, "999"),  # 404
        (f"http://127.0.0.1:{_closed_port()}", local_server.api_key, "1"),  # refused
    ]
    for host, key, project in cases:
        settings = DriverSettings(
            host=host, api_key=key, project_id=project, max_retries=1, retry_base_delay=0.0
        )
        async with AsyncDriver(settings) as driver:
            for call in (
                driver.query("SELECT 1"),
                driver.query("SELEC nonsense"),
                driver.get_fields("events"),
                driver.describe(),
            ):
                try:
                    tally.record(await call)
                except Exception as exc:  # noqa: BLE001 - every outcome is inspected
                    tally.record(exc)
            assert await driver.health_check() is False or host == local_server.url
            tally.texts.append(repr(driver))
            tally.texts.append(repr(settings))
    tally.attempts_from(captured_logs)

    assert tally.typed_failures > 0
    assert tally.untyped == []
    for key in (wrong_key, local_server.api_key):
        assert [t for t in tally.texts if key in t] == []
