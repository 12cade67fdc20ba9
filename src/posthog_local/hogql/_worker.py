"""The compiler process: ``python -m posthog_local.hogql._worker``, normally sandboxed.

PostHog's C++ parser takes super-linear time on some inputs (25 nested calls take a second,
200 more than a minute) and crashes on others (10,000 chained ``+``), and neither can be
interrupted from Python. So queries are parsed and printed here, one at a time, and the server
kills this process when it overruns its deadline. Messages are JSON lines (``_wire``).
"""

from __future__ import annotations

import sys
from typing import IO, Any

from .._wire import WireError, read_message, write_message
from . import HogQLError, compile_query, metadata

__all__ = ["main", "serve"]


def answer(message: dict[str, Any]) -> dict[str, Any]:
    """Compile one request: ``{"op": "compile"|"metadata", "query": ..., "values": ...}``."""
    query = message.get("query")
    if not isinstance(query, str):
        return {"ok": False, "detail": "`query` must be a string.", "code": "invalid_input"}
    options: dict[str, Any] = {key: message.get(key) for key in ("values", "filters", "variables")}
    try:
        if message.get("op") == "metadata":
            return {
                "ok": True,
                "metadata": metadata(query, str(message.get("language") or "hogQL"), **options),
            }
        compiled = compile_query(
            query, options["values"], filters=options["filters"], variables=options["variables"]
        )
    except HogQLError as exc:
        return {
            "ok": False,
            "detail": exc.detail,
            "code": exc.code,
            "start": exc.start,
            "end": exc.end,
        }
    except RecursionError:
        return {
            "ok": False,
            "detail": "The query is nested too deeply; flatten it.",
            "code": "hogql_syntax_error",
        }
    except Exception as exc:  # noqa: BLE001 - a compiler bug must be a clear 400, not a crash
        return {
            "ok": False,
            "code": "hogql_query_error",
            "detail": f"The local server could not compile this query ({type(exc).__name__}); "
            "simplify it, and please report it as a bug.",
        }
    return {
        "ok": True,
        "sql": compiled.sql,
        "params": compiled.params,
        "hogql": compiled.hogql,
        "limit": compiled.limit,
        "columns": compiled.columns,
        "tables": compiled.tables,
    }


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """Answer requests until ``inp`` closes."""
    write_message(out, {"op": "ready"})
    while True:
        try:
            message, _ = read_message(inp, max_payload=0)
        except WireError:
            return
        write_message(out, {"id": message.get("id"), **answer(message)})


def main() -> None:  # pragma: no cover - the process entry; serve() is tested in-process
    out = sys.stdout.buffer
    sys.stdout = sys.stderr
    sys.setrecursionlimit(5_000)  # deep but finite queries print; the parser bounds depth
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":  # pragma: no cover
    main()
