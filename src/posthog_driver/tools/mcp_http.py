"""The MCP server over streamable HTTP, behind a bearer token.

Anyone who reaches an MCP endpoint runs HogQL with the service's PostHog key, so the HTTP
transport is never open: `http_app()` wraps the SDK's app in a check of
`Authorization: Bearer <token>` (compared in constant time) on every HTTP request, and
`serve_http()` takes the token from `POSTHOG_MCP_TOKEN` (or generates one and prints it once),
binds 127.0.0.1 unless told otherwise, and warns when it is told otherwise.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
import sys
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["TOKEN_VARIABLE", "BearerAuth", "http_app", "is_loopback", "serve_http"]

TOKEN_VARIABLE = "POSTHOG_MCP_TOKEN"  # noqa: S105 - a variable's name, not a secret


class BearerAuth:
    """ASGI middleware: HTTP requests without the right bearer token get a 401 and reach
    nothing; lifespan events pass (the SDK's session manager starts on them)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if len(token) < 16:
            raise ValueError("the MCP token must be at least 16 characters")
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                response = JSONResponse(
                    {"error": "unauthorized", "detail": "Send Authorization: Bearer <token>."},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def http_app(server: Any, token: str, *, host: str = "127.0.0.1") -> ASGIApp:
    """The server's streamable-HTTP app (at `/mcp`) behind `BearerAuth`."""
    return BearerAuth(server.streamable_http_app(host=host), token)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on host:port (port 0: any free one). Raises `OSError`."""
    family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def serve_http(server: Any, *, sock: socket.socket, host: str, token: str | None) -> None:
    """Serve on `sock` (listening on `host`) until interrupted; a missing token is generated
    and printed to stderr once."""
    import anyio  # noqa: PLC0415
    import uvicorn  # noqa: PLC0415

    port = sock.getsockname()[1]  # the real one, when --port 0 asked for any

    if not token:
        token = secrets.token_urlsafe(32)
        print(
            f"posthog-driver: no {TOKEN_VARIABLE} set; this run's token (send it as "
            f"'Authorization: Bearer <token>'):\n{token}",
            file=sys.stderr,
        )
    if not is_loopback(host):
        print(
            f"posthog-driver: warning: serving MCP on {host}, reachable from other machines; "
            "anyone with the token runs HogQL with this server's PostHog key. Put it behind "
            "TLS (a reverse proxy) and keep the token secret.",
            file=sys.stderr,
        )
    shown = f"[{host}]" if ":" in host else host
    print(f"posthog-driver: MCP over HTTP at http://{shown}:{port}/mcp", file=sys.stderr)
    config = uvicorn.Config(http_app(server, token, host=host), log_level="warning")
    anyio.run(uvicorn.Server(config).serve, [sock])


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine (localhost, 127.x, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
