"""Fixtures of the toolset tests: a respx-mocked PostHog project and a driver for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from posthog_driver import AsyncDriver, DriverSettings
from tests import respx2
from tests.tools.fake_posthog import FakePostHog, settings


@pytest.fixture
def fake_posthog() -> Iterator[FakePostHog]:
    """A respx-mocked PostHog project (anything else it is asked for fails the test)."""
    with respx2.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield FakePostHog(router)


# Function loop: the driver's connections must live and close on the test's own loop.
@pytest_asyncio.fixture(loop_scope="function")
async def driver(fake_posthog: FakePostHog) -> AsyncIterator[AsyncDriver]:
    """A driver talking to the fake project."""
    async with AsyncDriver(settings()) as opened:
        yield opened


@pytest.fixture
def live_settings(local_server: Any) -> DriverSettings:
    """Settings for the local PostHog-compatible server (a real HTTP server on 127.0.0.1)."""
    return DriverSettings(
        host=local_server.url, api_key=local_server.api_key, project_id=local_server.project_id
    )
