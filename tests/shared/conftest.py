"""Fixtures of the shared-limits tests: a real redis-server, and local servers with PostHog's
limits switched on, one per test (their windows must start empty)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.shared.redis_process import RedisProcess


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with RedisProcess(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    """The session's Redis, emptied for this test (and running, if a test stopped it)."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def limited_server() -> Iterator[Callable[..., Any]]:
    """`limited_server(**ServerOptions)`: a fresh local server; stopped after the test."""
    from posthog_local import LocalServer, ServerOptions  # noqa: PLC0415 - needs the extra

    started: list[Any] = []

    def start(**options: Any) -> Any:
        server = LocalServer(ServerOptions(events=500, seed=3, sandbox="off", **options))
        server.__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)
