"""Let respx replay the Anthropic SDK, which sends with `httpx2` (a fork respx does not patch).

`anthropic_client()` gives an `AsyncAnthropic` whose transport hands each request to a plain
`httpx.AsyncClient`, where respx's routes answer it like any other httpx request.
"""

from __future__ import annotations

import httpx
import httpx2
from anthropic import AsyncAnthropic

ANTHROPIC_KEY = "sk-ant-test-not-a-real-key"


class ViaHttpx(httpx2.AsyncBaseTransport):
    """An httpx2 transport that sends through httpx, so respx sees the request."""

    def __init__(self) -> None:
        self._client = httpx.AsyncClient()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        sent = httpx.Request(
            request.method,
            str(request.url),
            headers=list(request.headers.multi_items()),
            content=await request.aread(),
        )
        answer = await self._client.send(sent)
        return httpx2.Response(
            answer.status_code,
            headers=list(answer.headers.multi_items()),
            content=answer.content,
            request=request,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def anthropic_client() -> AsyncAnthropic:
    """An `AsyncAnthropic` with a fake key and no retries, answered by respx routes."""
    return AsyncAnthropic(
        api_key=ANTHROPIC_KEY,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=ViaHttpx()),
    )
