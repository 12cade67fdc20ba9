"""The `posthog-driver` console script's first step, kept outside the `posthog_driver` package.

Importing the driver (pydantic, httpx2, structlog, ...) takes most of a second; a Ctrl-C in
that time would end in a KeyboardInterrupt traceback, since the CLI's own signal handling is
not installed yet. Here nothing heavy is imported before the handler.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130
# Long-running commands: each stops on SIGINT even when started in the background by a script,
# which hands it SIGINT ignored (`posthog-driver serve-local &`; `kill -INT` must still stop it).
SERVERS = frozenset({"demo", "serve-local", "mcp"})


def main() -> int:
    """Import the CLI (Ctrl-C meanwhile is one line and exit 130), then run it."""
    try:
        # Imported here, not at the top: this module's own import is outside the guard.
        import signal  # noqa: PLC0415

        command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
        if command in SERVERS and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # from the first instant
        from posthog_driver.cli import main as run  # noqa: PLC0415 - the point of this module
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    return run()
