"""What `posthog-driver ask` and `posthog-driver mcp` run; the CLI only parses arguments.

Both return an exit code: 0 on success, 1 when the work failed, 2 when it could not start
(a missing key, a missing extra, invalid settings, a port in use); each failure prints one
line to stderr, `error: ...`, as every other command does.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Literal

from posthog_driver._driver import AsyncDriver
from posthog_driver._errors import ConfigError, SandboxUnavailableError
from posthog_driver._logging import configure_logging
from posthog_driver._settings import DriverSettings
from posthog_driver.sandbox import E2BExecutor, Executor, LocalSandboxExecutor, find_bubblewrap
from posthog_driver.tools.toolset import Toolset

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

__all__ = ["DEFAULT_ASK_MODEL", "ask", "serve_mcp"]

DEFAULT_ASK_MODEL = "claude-sonnet-5-5"

Transport = Literal["stdio", "streamable-http"]
Sandbox = Literal["none", "local", "e2b"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _executor(sandbox: str) -> Executor | None:
    """The executor behind `--sandbox`; `ConfigError` where it cannot run (no bubblewrap, no
    E2B SDK or key)."""
    if sandbox == "none":
        return None
    if sandbox == "e2b":
        key = os.environ.get("E2B_API_KEY")
        if not key:
            raise ConfigError("--sandbox e2b needs E2B_API_KEY set to an E2B API key.")
        if importlib.util.find_spec("e2b") is None:
            raise ConfigError(
                '--sandbox e2b needs the e2b extra: pip install "posthog-driver[e2b]" '
                "(in a clone: uv sync --extra e2b)"
            )
        return E2BExecutor(api_key=key, warm=1)
    if sandbox != "local":
        raise ConfigError(f"unknown sandbox {sandbox!r}: use local (bubblewrap), e2b or none.")
    try:
        find_bubblewrap()
    except SandboxUnavailableError as exc:
        raise ConfigError(f"--sandbox local cannot run here: {exc}") from None
    return LocalSandboxExecutor(warm=1)  # pandas is loaded before the model's first code


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


async def ask(
    question: str,
    *,
    model: str = DEFAULT_ASK_MODEL,
    max_turns: int = 10,
    client: AsyncAnthropic | None = None,
    sandbox: str = "none",
    log_level: LogLevel | None = None,
) -> int:
    """Answer `question` with Claude and the PostHog tools; print the answer to stdout.

    Needs `ANTHROPIC_API_KEY` (unless `client` is given) and the `POSTHOG_*` settings.
    `log_level` overrides `POSTHOG_LOG_LEVEL`.
    """
    if client is None and not os.environ.get("ANTHROPIC_API_KEY"):
        return _fail("ask needs ANTHROPIC_API_KEY set to an Anthropic API key.", 2)
    # Imported here, not at the top: the CLI must start (and say what is missing) without extras.
    try:
        import anthropic  # noqa: PLC0415

        from posthog_driver.tools.anthropic_loop import run_tool_loop  # noqa: PLC0415
    except ImportError:
        return _fail('ask needs the anthropic extra: pip install "posthog-driver[anthropic]"', 2)
    try:
        driver = AsyncDriver.from_env()
        executor = _executor(sandbox)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    configure_logging(level=log_level or driver.settings.log_level, fmt=driver.settings.log_format)
    try:
        running = executor if executor is not None else contextlib.nullcontext()
        async with driver, running, client or anthropic.AsyncAnthropic() as claude:
            outcome = await run_tool_loop(
                claude,
                Toolset(driver, executor=executor),
                [{"role": "user", "content": question}],
                model=model,
                max_turns=max_turns,
            )
    except anthropic.APIError as exc:
        return _fail(f"the Anthropic API failed: {exc.message}", 1)
    print(outcome.text)
    if outcome.hit_turn_limit:
        return _fail(f"stopped after {max_turns} turns; the answer may be incomplete.", 1)
    return 0


def _interruptible() -> None:
    """A script that starts the server in the background (`cmd &`) hands it SIGINT ignored, and
    then `kill -INT` (or Ctrl-C's) would be lost, or, under uvicorn, end it with exit 0: a
    server stops on SIGINT, so restore Python's handler."""
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def serve_mcp(
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    sandbox: str = "none",
    token: str | None = None,
    log_level: LogLevel | None = None,
) -> int:
    """Serve the tools over MCP until interrupted: `stdio`, or `streamable-http` on host:port
    behind a bearer token (`token`, else `POSTHOG_MCP_TOKEN`, else one generated and printed).

    Settings come from `POSTHOG_*` and are checked before serving, so a bad key (or a port in
    use) fails fast with one line instead of at the first tool call. `log_level` overrides
    `POSTHOG_LOG_LEVEL`.
    """
    if transport not in ("stdio", "streamable-http"):
        return _fail(f"unknown MCP transport {transport!r}; use stdio or streamable-http.", 2)
    _interruptible()
    try:
        from posthog_driver.tools.mcp_server import create_mcp_server  # noqa: PLC0415
    except ImportError:
        return _fail('mcp needs the mcp extra: pip install "posthog-driver[mcp]"', 2)
    try:
        settings = DriverSettings.from_env()
        executor = _executor(sandbox)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    # One logging set-up for every entry point: POSTHOG_LOG_LEVEL and POSTHOG_LOG_FORMAT, for
    # the driver's events and the SDK's (which would otherwise log every request at INFO).
    level = log_level or settings.log_level
    configure_logging(level=level, fmt=settings.log_format)
    server = create_mcp_server(settings, executor=executor, log_level=level)
    if transport == "stdio":
        server.run("stdio")
        return 0
    from posthog_driver.tools.mcp_http import (  # noqa: PLC0415
        TOKEN_VARIABLE,
        listening_socket,
        serve_http,
    )

    token = token or os.environ.get(TOKEN_VARIABLE)
    if token is not None and len(token) < 16:
        return _fail(f"{TOKEN_VARIABLE} must be at least 16 characters.", 2)
    try:  # bound before the server starts: a port in use is one line, not uvicorn's log
        sock = listening_socket(host, port)
    except OSError as exc:
        from posthog_driver.cli import cannot_listen  # noqa: PLC0415

        return _fail(cannot_listen("mcp", host, port, exc), 2)
    serve_http(server, sock=sock, host=host, token=token)
    return 0
