"""The `posthog-driver` command.

    posthog-driver demo            the main job on the embedded local server (no account needed;
    posthog-driver serve-local     run the local PostHog-compatible server; prints its env
                                   both registered by posthog_local, see _add_plugin_commands)
    posthog-driver objects|fields|describe|query|validate   against the PostHog set by POSTHOG_*
    posthog-driver query "..." --all --output rows.parquet   every row, streamed to a file
    posthog-driver ask "QUESTION"  a Claude tool loop over the driver (needs ANTHROPIC_API_KEY)
    posthog-driver mcp [--http]    the MCP server (stdio by default)

Errors print one line (`error: ...`) and exit non-zero: 1 for a driver error, 2 for bad
configuration or usage, 130 on Ctrl-C, 143 on SIGTERM (both after a clean shutdown). `--json`
prints machine-readable output for scripts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from posthog_driver import __version__
from posthog_driver._driver import AsyncDriver
from posthog_driver._errors import ConfigError, DriverError
from posthog_driver._export import FORMATS, Format, export
from posthog_driver._logging import configure_logging
from posthog_driver._results import QueryResult
from posthog_driver._settings import DriverSettings

__all__ = ["main"]

EXIT_DRIVER_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _parser().parse_args(argv)
    terminated, previous = _stop_on_sigterm()
    try:
        return int(args.run(args))
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except DriverError as exc:
        return _fail(str(exc), EXIT_DRIVER_ERROR)
    except _MissingExtra as exc:
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        _ignore_further_signals()  # a server re-raising the signal it caught must not undo this
        if terminated:
            print("terminated", file=sys.stderr)
            return EXIT_TERMINATED
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous is not None and not terminated:  # in-process callers keep their handler
            signal.signal(signal.SIGTERM, previous)


def _ignore_further_signals() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stop_on_sigterm() -> tuple[list[int], Any]:
    """SIGTERM (docker stop, systemd, a supervisor) ends a command the way Ctrl-C does, through
    its cleanup, then exits 143. Returns the list that is non-empty once SIGTERM arrived, and
    the handler it replaced (None off the main thread, where signals cannot be handled)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        return received, None

    def stop(signum: int, frame: Any) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    return received, signal.signal(signal.SIGTERM, stop)


def _fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


class _MissingExtra(Exception):
    """An optional extra the command needs is not installed."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posthog-driver",
        description="Discover and query PostHog product analytics with HogQL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level",
        default=None,
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="log level (default: POSTHOG_LOG_LEVEL, else WARNING)",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    _add_plugin_commands(commands)

    objects = commands.add_parser("objects", help="list the tables (list_objects)")
    _json_argument(objects)
    objects.set_defaults(run=lambda a: _with_driver(a, _objects))

    fields = commands.add_parser("fields", help="a table's fields (get_fields)")
    fields.add_argument("name", help="table name, e.g. events")
    _json_argument(fields)
    fields.set_defaults(run=lambda a: _with_driver(a, _fields))

    describe = commands.add_parser("describe", help="fields of many tables, concurrently")
    describe.add_argument("names", nargs="*", help="tables (default: all)")
    _json_argument(describe)
    describe.set_defaults(run=lambda a: _with_driver(a, _describe))

    query = commands.add_parser("query", help="run a HogQL query")
    query.add_argument("hogql", help='e.g. "SELECT event, count() FROM events GROUP BY event"')
    query.add_argument("--values", default=None, help='placeholder values as JSON: {"ev": "x"}')
    query.add_argument(
        "--all",
        action="store_true",
        help="every row, past PostHog's 50,000, by keyset pagination on --cursor (the query "
        "must select the cursor's columns and have no LIMIT)",
    )
    query.add_argument(
        "--cursor", default="timestamp,uuid", help="--all's ordering key (default: timestamp,uuid)"
    )
    query.add_argument("--batch-size", type=int, default=10_000, help="--all's rows per page")
    query.add_argument("--format", choices=FORMATS, default=None, help="write rows as this")
    query.add_argument("--output", default=None, help="write rows to this file")
    _json_argument(query)
    query.set_defaults(run=lambda a: _with_driver(a, _query))

    validate = commands.add_parser("validate", help="check a HogQL query without running it")
    validate.add_argument("hogql")
    validate.add_argument("--values", default=None, help="placeholder values as JSON")
    _json_argument(validate)
    validate.set_defaults(run=lambda a: _with_driver(a, _validate))

    ask = commands.add_parser("ask", help="ask Claude a question; it queries with the driver")
    ask.add_argument("question")
    ask.add_argument("--model", default=None, help="Claude model id")
    ask.add_argument("--max-turns", type=int, default=10)
    ask.add_argument(
        "--sandbox",
        choices=["none", "local", "e2b"],
        default="none",
        help="let Claude run Python on the query results in a sandbox (local: bubblewrap; "
        "e2b: E2B, needs E2B_API_KEY)",
    )
    ask.set_defaults(run=_run_ask)

    mcp = commands.add_parser("mcp", help="serve the tools over MCP (stdio by default)")
    mcp.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    mcp.add_argument("--host", default="127.0.0.1", help="--http's address (default: loopback)")
    mcp.add_argument("--port", type=int, default=8765)
    mcp.add_argument(
        "--sandbox",
        choices=["none", "local", "e2b"],
        default="none",
        help="offer a python tool that runs in a sandbox (local: bubblewrap; e2b: E2B)",
    )
    mcp.set_defaults(run=_run_mcp)
    return parser


def _json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _console() -> Console:
    # Piped output has no width to measure; 80 columns would cut the demo's HogQL and tables.
    width = None if sys.stdout.isatty() else 110
    return Console(highlight=False, soft_wrap=False, width=width)


def _setup_logging(args: argparse.Namespace, settings: DriverSettings) -> None:
    # --log-level over POSTHOG_LOG_LEVEL; POSTHOG_LOG_FORMAT (console or json) as set
    configure_logging(level=args.log_level or settings.log_level, fmt=settings.log_format)


# ---- commands from other packages (the local server's demo and serve-local) ----

COMMANDS_GROUP = "posthog_driver.commands"


def _add_plugin_commands(commands: Any) -> None:
    """Commands other packages register under the ``posthog_driver.commands`` entry point group.

    The embedded local server (``posthog_local``) adds ``demo`` and ``serve-local`` this way, so
    the driver never imports it. Without it, the two commands say which extra to install.
    """
    added: set[str] = set()
    for entry in entry_points(group=COMMANDS_GROUP):
        register = entry.load()
        added.update(register(commands))
    for name in sorted({"demo", "serve-local"} - added):
        missing = commands.add_parser(name, help=f"{name} (needs the local extra)")
        missing.set_defaults(run=_missing_local)


def _missing_local(args: argparse.Namespace) -> int:
    raise _MissingExtra(
        'this command needs the embedded local server: pip install "posthog-driver[local]"'
    )


# ---- commands against a configured PostHog ----


def _with_driver(
    args: argparse.Namespace, command: Callable[[AsyncDriver, argparse.Namespace], Awaitable[Any]]
) -> int:
    driver = AsyncDriver.from_env()
    _setup_logging(args, driver.settings)

    async def run() -> Any:
        async with driver:
            return await command(driver, args)

    result = anyio.run(run)
    if args.json:
        print(json.dumps(result, indent=2, default=str, ensure_ascii=False))
    return int(getattr(args, "status", 0))


async def _objects(driver: AsyncDriver, args: argparse.Namespace) -> Any:
    names = await driver.list_objects()
    if not args.json:
        for name in names:
            print(name)
    return names


async def _fields(driver: AsyncDriver, args: argparse.Namespace) -> Any:
    fields = await driver.get_fields(args.name)
    if not args.json:
        _print_fields(args.name, fields)
    return fields


async def _describe(driver: AsyncDriver, args: argparse.Namespace) -> Any:
    catalog = await driver.describe(args.names or None)
    if not args.json:
        for name, fields in catalog.items():
            _print_fields(name, fields)
    return catalog


def _print_fields(name: str, fields: Mapping[str, Mapping[str, Any]]) -> None:
    console = _console()
    count = f"{len(fields)} field" + ("" if len(fields) == 1 else "s")
    console.print(f"[bold]{escape(name)}[/bold] ({count})")
    # columns line up: names padded to the longest (up to 40), types to theirs
    name_width = min(40, max((len(ref) for ref in fields), default=0))
    type_width = max((len(str(info.get("type", ""))) for info in fields.values()), default=0)
    for ref, info in fields.items():
        values = info.get("values")
        extra = f" values: {', '.join(map(str, values[:20]))}" if values else ""
        kind = str(info.get("type", ""))
        console.print(
            f"  {escape(ref.ljust(name_width))}  [dim]{escape(kind.ljust(type_width))}[/dim]  "
            f"{escape(info.get('description', ''))}{escape(extra)}",
            highlight=False,
        )


def _values(args: argparse.Namespace) -> Any:
    if args.values is None:
        return None
    try:
        return json.loads(args.values)
    except ValueError as exc:
        raise ConfigError(f"--values is not valid JSON: {exc}") from None


async def _query(driver: AsyncDriver, args: argparse.Namespace) -> Any:
    from posthog_driver.demo import render_rows  # noqa: PLC0415

    if args.all or args.format or args.output:
        return await _export_rows(driver, args)
    rows = await driver.query(args.hogql, values=_values(args))
    if not args.json:
        title = f"{len(rows)} row" + ("" if len(rows) == 1 else "s")
        _console().print(render_rows(rows, title=title, limit=1000))
    if rows.has_more:  # never a silent cut: say how many and how to get them all
        print(
            f"Showing the first {len(rows)} rows: PostHog stops a query without LIMIT there. "
            "Add a LIMIT (up to 50,000), or --all --output FILE for every row.",
            file=sys.stderr,
        )
    return rows


async def _export_rows(driver: AsyncDriver, args: argparse.Namespace) -> Any:
    fmt = args.format or _format_of(args.output)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=args.output is None,  # rows go to stdout: keep it clean
    )
    with progress:
        task = progress.add_task("rows", total=None)
        pages: AsyncIterable[QueryResult]
        if args.all:
            pages = driver.stream(
                args.hogql,
                _values(args),
                cursor=[name.strip() for name in args.cursor.split(",") if name.strip()],
                batch_size=args.batch_size,
                on_progress=lambda rows: progress.update(task, completed=rows),
            )
        else:
            pages = _one_page(driver, args)
        count = await export(pages, fmt, args.output, sys.stdout)
    if args.output is not None:
        print(f"Wrote {count:,} rows to {args.output} ({fmt}).", file=sys.stderr)
    args.json = False  # the rows went where they were asked to
    return count


async def _one_page(driver: AsyncDriver, args: argparse.Namespace) -> AsyncIterator[QueryResult]:
    result = await driver.execute(args.hogql, _values(args))
    if result.has_more:
        print(
            f"Only the first {len(result.rows)} rows: PostHog stops a query without LIMIT there. "
            "Add --all (or a LIMIT, up to 50,000).",
            file=sys.stderr,
        )
    yield result


def _format_of(output: str | None) -> Format:
    """The format a file name asks for (rows.csv, rows.parquet), else JSON lines."""
    suffix = Path(output or "").suffix.lower().lstrip(".")
    return next((fmt for fmt in FORMATS if fmt == suffix), "jsonl")


async def _validate(driver: AsyncDriver, args: argparse.Namespace) -> Any:
    checked = await driver.validate(args.hogql, _values(args))
    if not args.json:
        if checked.is_valid:
            print("valid")
        for problem in checked.errors:
            print(f"error: {problem}")
        if checked.pointer():
            print(checked.pointer())
        for problem in [*checked.warnings, *checked.notices]:
            print(f"note: {problem}")
    args.status = 0 if checked.is_valid else EXIT_DRIVER_ERROR
    return dataclasses.asdict(checked)


# ---- agent integrations ----


def _run_ask(args: argparse.Namespace) -> int:
    commands = _tool_commands()
    kwargs: dict[str, Any] = {"max_turns": args.max_turns, "sandbox": args.sandbox}
    if args.model:
        kwargs["model"] = args.model
    return int(anyio.run(lambda: commands.ask(args.question, **kwargs)))


def _run_mcp(args: argparse.Namespace) -> int:
    commands = _tool_commands()
    transport = "streamable-http" if args.http else "stdio"
    return int(
        commands.serve_mcp(
            transport=transport, host=args.host, port=args.port, sandbox=args.sandbox
        )
    )


def _tool_commands() -> Any:
    try:
        from posthog_driver.tools import commands  # noqa: PLC0415 - optional extras
    except ImportError as exc:
        raise _MissingExtra(str(exc)) from None
    return commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
