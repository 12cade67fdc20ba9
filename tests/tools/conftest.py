"""Fixtures of the toolset tests: a respx-mocked PostHog project and a driver for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import respx

from posthog_driver import AsyncDriver
from tests.tools.fake_posthog import FakePostHog, settings


@pytest.fixture
def fake_posthog() -> Iterator[FakePostHog]:
    """A respx-mocked PostHog project (anything else it is asked for fails the test)."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield FakePostHog(router)


@pytest.fixture
async def driver(fake_posthog: FakePostHog) -> AsyncIterator[AsyncDriver]:
    """A driver talking to the fake project."""
    async with AsyncDriver(settings()) as opened:
        yield opened
