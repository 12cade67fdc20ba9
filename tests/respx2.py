"""respx for httpx2 clients: the driver (and the Anthropic SDK) send with `httpx2`, a fork of
httpx that respx does not patch.

`respx2.mock(...)` is `respx.mock(...)` that also routes every `httpx2.AsyncClient` request
through a plain `httpx.AsyncClient`, where respx's routes answer it. Responses come back as
httpx2 responses, and httpx exceptions a route raises (`side_effect=httpx.ReadTimeout`) come
back as the httpx2 exception of the same name, as a real transport would raise them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import respx


class ViaRespx(httpx2.AsyncBaseTransport):
    """An httpx2 transport that sends through httpx, so respx sees the request."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        sent = httpx.Request(
            request.method,
            str(request.url),
            headers=list(request.headers.multi_items()),
            content=await request.aread(),
        )
        # a client per request, closed at once: a route that passes through to a real server
        # (the local one) leaves no pooled connection behind
        async with httpx.AsyncClient() as client:
            try:
                answer = await client.send(sent)
            except httpx.HTTPError as exc:
                raise _as_httpx2(exc, request) from None
            content = await answer.aread()
        return httpx2.Response(
            answer.status_code,
            headers=list(answer.headers.multi_items()),
            content=content,
            request=request,
        )


def _as_httpx2(exc: Exception, request: httpx2.Request) -> Exception:
    kind = getattr(httpx2, type(exc).__name__, httpx2.TransportError)
    try:
        return kind(str(exc), request=request)  # type: ignore[no-any-return]
    except TypeError:
        return kind(str(exc))  # type: ignore[no-any-return]


@contextlib.contextmanager
def mock(**options: Any) -> Iterator[respx.MockRouter]:
    """`respx.mock(**options)`, seen by httpx2 clients too."""
    transport = ViaRespx()
    original = httpx2.AsyncClient._transport_for_url
    httpx2.AsyncClient._transport_for_url = lambda self, url: transport  # type: ignore[method-assign]
    try:
        with respx.mock(**options) as router:
            yield router
    finally:
        httpx2.AsyncClient._transport_for_url = original  # type: ignore[method-assign]
