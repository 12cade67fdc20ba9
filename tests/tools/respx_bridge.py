"""Let respx replay the Anthropic SDK, which sends with `httpx2` (a fork respx does not patch).

`anthropic_client()` gives an `AsyncAnthropic` whose transport hands each request to a plain
`httpx.AsyncClient`, where respx's routes answer it like any other httpx request.
"""

from __future__ import annotations

import httpx2
from anthropic import AsyncAnthropic

from tests.respx2 import ViaRespx

ANTHROPIC_KEY = "sk-ant-test-not-a-real-key"


def anthropic_client() -> AsyncAnthropic:
    """An `AsyncAnthropic` with a fake key and no retries, answered by respx routes."""
    return AsyncAnthropic(
        api_key=ANTHROPIC_KEY,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=ViaRespx()),
    )
