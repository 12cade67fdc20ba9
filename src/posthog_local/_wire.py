"""How the server and its engine process talk: one JSON line per message, then optional bytes.

A message is a JSON object on one line; when it has ``"size": N``, exactly N raw bytes follow
(a query's rows, already serialised, so the server forwards them without parsing). Both sides
refuse a line or a payload over their limit instead of buffering it.
"""

from __future__ import annotations

import json
from typing import IO, Any

__all__ = ["MAX_LINE_BYTES", "WireError", "read_message", "write_message"]

MAX_LINE_BYTES = 8 * 1024 * 1024  # a header or a request; SQL and values are capped well below


class WireError(Exception):
    """The other side closed the pipe or sent something that is not a message."""


def write_message(stream: IO[bytes], header: dict[str, Any], payload: bytes = b"") -> None:
    """Write one message (the caller serialises writers)."""
    if payload:
        header = {**header, "size": len(payload)}
    line = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
    stream.write(line + payload)
    stream.flush()


def read_message(stream: IO[bytes], max_payload: int) -> tuple[dict[str, Any], bytes]:
    """Read one message; ``WireError`` at end of stream or on anything malformed."""
    line = stream.readline(MAX_LINE_BYTES + 1)
    if not line:
        raise WireError("the pipe is closed")
    if len(line) > MAX_LINE_BYTES or not line.endswith(b"\n"):
        raise WireError("a message line is too long")
    try:
        header = json.loads(line)
    except ValueError as exc:
        raise WireError(f"a message is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WireError("a message is not a JSON object")
    size = header.get("size", 0)
    if not isinstance(size, int) or not 0 <= size <= max_payload:
        raise WireError(f"a payload of {size!r} bytes is over the limit of {max_payload}")
    payload = stream.read(size) if size else b""
    if len(payload) != size:
        raise WireError("the pipe closed inside a payload")
    return header, payload
