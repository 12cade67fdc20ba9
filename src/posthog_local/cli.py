"""The ``demo`` and ``serve-local`` commands, added to ``posthog-driver`` through an entry point.

The driver's command line finds them in the ``posthog_driver.commands`` entry point group, so the
driver never imports this package. Importing this module is cheap: the engine stack (chdb,
uvicorn) loads only when a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import anyio
from rich.console import Console

from posthog_driver import (
    AsyncDriver,
    ConfigError,
    DriverError,
    DriverSettings,
    configure_logging,
)
from posthog_driver.cli import cannot_listen, port_number

__all__ = ["register"]


def register(commands: Any) -> list[str]:
    """Add ``demo`` and ``serve-local`` to the ``posthog-driver`` sub-command parsers."""
    demo = commands.add_parser("demo", help="run the main job on the embedded local server")
    _data_arguments(demo)
    demo.set_defaults(run=run_demo)

    serve = commands.add_parser("serve-local", help="run the local PostHog-compatible server")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=port_number, default=8010, help="port (default 8010; 0 = any free)"
    )
    _data_arguments(serve)
    serve.add_argument("--api-key", default=None, help="key to accept (default: a new phx_ key)")
    serve.add_argument("--project-id", default="1", help="project id to serve (default 1)")
    serve.add_argument("--query-rate-per-minute", type=int, default=None, help="throttle (429)")
    serve.add_argument("--query-rate-per-hour", type=int, default=None, help="throttle (429)")
    serve.add_argument("--max-concurrent-queries", type=int, default=None, help="e.g. 3")
    serve.add_argument("--fault-5xx-rate", type=float, default=0.0, help="0..1: injected 503s")
    serve.add_argument("--fault-429-rate", type=float, default=0.0, help="0..1: injected 429s")
    serve.add_argument("--retry-after", type=int, default=1, help="Retry-After of injected 429s")
    serve.add_argument("--fault-drop-rate", type=float, default=0.0, help="0..1: dropped conns")
    serve.add_argument("--latency-ms", default="0,0", help="added latency range, e.g. 5,50")
    serve.add_argument(
        "--query-latency-ms", default="0,0", help="added query time (holds its slot), e.g. 100,200"
    )
    serve.add_argument("--query-timeout", type=float, default=10.0, help="seconds (default 10)")
    serve.add_argument("--pool-size", type=int, default=4, help="engine sessions (default 4)")
    serve.add_argument(
        "--sandbox",
        choices=["auto", "required", "off"],
        default="auto",
        help="run the engine under bubblewrap: auto (where it works), required, or off",
    )
    serve.set_defaults(run=run_serve)
    return ["demo", "serve-local"]


def _data_arguments(parser: argparse.ArgumentParser, default_events: int = 50_000) -> None:
    parser.add_argument(
        "--events", type=int, default=default_events, help=f"demo events (default {default_events})"
    )
    parser.add_argument("--seed", type=int, default=42, help="demo data seed (default 42)")


def _local() -> Any:
    import posthog_local  # noqa: PLC0415 - the engine stack loads only when a command runs

    try:
        posthog_local.LocalServer  # noqa: B018 - loads the engine stack, or names the extra
    except ImportError as exc:
        raise ConfigError(str(exc)) from None
    return posthog_local


def _console() -> Console:
    # Piped output has no width to measure; 80 columns would cut the demo's HogQL and tables.
    width = None if sys.stdout.isatty() else 110
    return Console(highlight=False, soft_wrap=False, width=width)


def _restoring_sigint(command: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """The command sets its own SIGINT handler (see `_stop_on_signals`); an in-process caller
    (a test, a host program) gets its own back afterwards."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        previous = signal.getsignal(signal.SIGINT)
        try:
            return command(args)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    return run


@_restoring_sigint
def run_demo(args: argparse.Namespace) -> int:
    """Start the local server on a free port and run the driver's walkthrough against it."""
    stopped_by = _stop_on_signals()  # first: a signal while the engine stack loads counts too
    local = _local()
    from posthog_driver.demo import walkthrough  # noqa: PLC0415 - rich tables only for the demo

    configure_logging(level=args.log_level or "WARNING", fmt="console")
    console = _console()
    try:
        options = local.ServerOptions(port=0, events=args.events, seed=args.seed)
    except ValueError as exc:
        raise ConfigError(f"Invalid demo option: {exc}") from None
    console.print(
        f"Starting the embedded PostHog-compatible server ({args.events:,} demo events, "
        f"seed {args.seed})..."
    )

    async def run() -> None:
        async with local.LocalServer(options) as server:
            console.print(f"Serving PostHog's API at {server.url} (project {server.project_id}).")
            settings = DriverSettings(
                host=server.url, api_key=server.api_key, project_id=server.project_id
            )
            async with AsyncDriver(settings) as driver:
                await walkthrough(driver, console)
        console.rule()
        console.print(
            "Done. Point the driver at your own PostHog with POSTHOG_HOST, POSTHOG_API_KEY and "
            "POSTHOG_PROJECT_ID, or keep this data: posthog-driver serve-local"
        )

    with _engine_failures():
        anyio.run(run)
    if stopped_by:  # the clean-up absorbed the interrupt; the command still says it stopped
        raise KeyboardInterrupt
    return 0


@_restoring_sigint
def run_serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C, printing the ``export`` lines that point the driver at the server."""
    stopped_by = _stop_on_signals()  # first: a signal while the engine stack loads counts too
    local = _local()
    configure_logging(level=args.log_level or "WARNING", fmt="console")
    try:
        low, high = _range_ms("--latency-ms", args.latency_ms)
        query_low, query_high = _range_ms("--query-latency-ms", args.query_latency_ms)
        options = local.ServerOptions(
            host=args.host,
            port=args.port,
            events=args.events,
            seed=args.seed,
            api_key=args.api_key,
            project_id=args.project_id,
            query_rate_per_minute=args.query_rate_per_minute,
            query_rate_per_hour=args.query_rate_per_hour,
            max_concurrent_queries=args.max_concurrent_queries,
            fault_5xx_rate=args.fault_5xx_rate,
            fault_429_rate=args.fault_429_rate,
            retry_after=args.retry_after,
            fault_drop_rate=args.fault_drop_rate,
            latency_ms=(low, high),
            query_latency_ms=(query_low, query_high),
            query_timeout=args.query_timeout,
            pool_size=args.pool_size,
            sandbox=args.sandbox,
        )
    except ValueError as exc:
        raise ConfigError(f"Invalid serve-local option: {exc}") from None
    from posthog_driver.tools.mcp_http import is_loopback  # noqa: PLC0415 - as mcp --http

    if not is_loopback(args.host):
        print(
            f"warning: serving on {args.host}, reachable from other machines, without TLS: "
            "the key crosses the network in clear text, and whoever has it reads the demo data.",
            file=sys.stderr,
        )
    try:
        with _engine_failures():
            local.LocalServer(options).serve_forever(on_ready=_print_environment)
    except OSError as exc:
        raise ConfigError(cannot_listen("serve-local", args.host, args.port, exc)) from None
    if stopped_by:  # serve_forever stops quietly; the command still says it was stopped
        raise KeyboardInterrupt
    return 0


def _range_ms(flag: str, text: str) -> tuple[int, int]:
    """'5,50' as (5, 50); '5' as (5, 5)."""
    parts = text.split(",")
    try:
        if len(parts) in (1, 2):
            numbers = [int(part) for part in parts]
            return numbers[0], numbers[-1]
    except ValueError:
        pass
    raise ValueError(
        f"{flag} takes milliseconds as LOW,HIGH (e.g. 5,50) or one number, got {text!r}"
    )


@contextlib.contextmanager
def _engine_failures() -> Iterator[None]:
    """An engine that cannot start (out of memory for --events, a broken install) is one line
    that says what to try, not a traceback."""
    from posthog_local.engine import EngineError  # noqa: PLC0415 - loaded by _local() already

    try:
        yield
    except EngineError as exc:
        why = str(exc).rstrip(".")
        debug = "" if "--log-level DEBUG" in why else "; --log-level DEBUG shows its own output"
        raise DriverError(
            f"The local server's engine failed: {why}{debug}. If it ran out of memory, ask for "
            "fewer --events."
        ) from None


def _stop_on_signals() -> list[int]:
    """Ctrl-C and SIGTERM stop the server cleanly. A shell starts background jobs with SIGINT
    ignored, and Python then never raises KeyboardInterrupt: restore it (this command is a
    foreground server), and treat SIGTERM (docker, systemd) the same way. Returns the list of
    signals received."""
    received: list[int] = []

    def interrupt(signum: int, frame: Any) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # the posthog-driver command has one
        signal.signal(signal.SIGTERM, interrupt)
    return received


def _print_environment(server: Any) -> None:
    stats = server.stats
    events = f"{stats.events:,} events" if stats is not None else "demo data"
    isolation = (
        "sandboxed engine" if stats is not None and stats.sandboxed else "engine NOT sandboxed"
    )
    print(f"# Local PostHog-compatible server at {server.url} ({events}, {isolation}).")
    print("# Point the driver (or posthog-driver objects/query) at it by pasting:")
    for name, value in server.env().items():
        print(f"export {name}={shlex.quote(value)}")
    print("# Press Ctrl-C to stop.", flush=True)
