"""The `posthog-driver` console script's first step, kept outside the `posthog_driver` package.

Importing the driver (pydantic, httpx2, structlog, ...) takes most of a second; a Ctrl-C in
that time would end in a KeyboardInterrupt traceback, since the CLI's own signal handling is
not installed yet. Here nothing heavy is imported before the handler.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main() -> int:
    """Import the CLI (Ctrl-C meanwhile is one line and exit 130), then run it."""
    try:
        from posthog_driver.cli import main as run  # noqa: PLC0415 - the point of this module
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    return run()
