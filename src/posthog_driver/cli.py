"""The `posthog-driver` command.

    posthog-driver demo            the main job on the embedded local server (no account needed;
    posthog-driver serve-local     run the local PostHog-compatible server; prints its env
                                   both registered by posthog_local, see _add_plugin_commands)
    posthog-driver objects|fields|describe|query|validate   against the PostHog set by POSTHOG_*
    posthog-driver query "..." --all --output rows.parquet   every row, streamed to a file
    posthog-driver ask "QUESTION"  a Claude tool loop over the driver (needs ANTHROPIC_API_KEY)
    posthog-driver mcp [--http]    the MCP server (stdio by default)

Errors print one line (`error: ...`) and exit non-zero: 1 for a driver error, 2 for bad
configuration or usage, 130 on Ctrl-C, 143 on SIGTERM (both after a clean shutdown), and 141
(128 + SIGPIPE) when the reader of the output goes away (`... | head -1`): quietly, as `yes`
or `cat` end in a shell. `--json` prints machine-readable output for scripts. `--log-level`
goes before or after the command.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import json
import logging
import os
import re
import signal
import sys
import threading
import time
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
from posthog_driver._stream import MAX_BATCH

__all__ = ["main"]

EXIT_DRIVER_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_BROKEN_PIPE = 141
STUCK_THREAD_SECONDS = 1.0
LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status.

    `argv` None means this process is the command (the console script, `python -m`): once
    stopped by Ctrl-C or SIGTERM it exits without waiting for threads that cannot be stopped
    (see `_exit_despite_stuck_threads`). In-process callers pass `argv` and get the status back.
    """
    _stopping["is_the_process"] = argv is None
    terminated, previous = _stop_on_sigterm()
    try:
        status = _run(argv, terminated)
    finally:
        if previous is not None and not terminated:  # in-process callers keep their handler
            signal.signal(signal.SIGTERM, previous)
    if argv is None and status in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        _exit_despite_stuck_threads(status)
    return status


def _run(argv: Sequence[str] | None, terminated: list[int]) -> int:
    # The parser loads the plugin commands: inside the try, so Ctrl-C there is one line too.
    try:
        args = _parser().parse_args(argv)
        status = int(args.run(args))
    except BrokenPipeError:
        return _reader_went_away()
    except ConfigError as exc:
        return _fail(_for_the_command_line(str(exc)), EXIT_USAGE)
    except DriverError as exc:
        return _fail(_for_the_command_line(str(exc)), EXIT_DRIVER_ERROR)
    except (_MissingExtra, _UsageError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except _WriteError as exc:
        return _fail(str(exc), EXIT_DRIVER_ERROR)
    except KeyboardInterrupt:
        return _interrupted(terminated)
    except BaseExceptionGroup as group:
        # A signal that lands while a task group starts (the MCP server's lifespan) comes
        # out wrapped; it still means "stop", and a closed pipe still means "reader gone".
        if group.subgroup(KeyboardInterrupt) is not None:
            return _interrupted(terminated)
        if group.subgroup(BrokenPipeError) is not None:
            return _reader_went_away()
        raise
    if terminated:  # a command that caught the interrupt itself (serve-local) still stopped
        return _interrupted(terminated)
    return status


def _interrupted(terminated: list[int]) -> int:
    _ignore_further_signals()  # a server re-raising the signal it caught must not undo this
    _stopping["said"] = True
    if terminated:
        print("terminated", file=sys.stderr)
        return EXIT_TERMINATED
    print("interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


# Whether main() is this process's command (not an in-process caller), and whether the stop
# line was printed: for the backstop below.
_stopping = {"is_the_process": False, "said": False}
STOP_BACKSTOP_SECONDS = 3.0


def _stop(signum: int) -> None:
    """What a stopping signal does first: quiet asyncio's shutdown report, and (when this
    process is the command) arm a backstop. The orderly path unwinds the command through its
    clean-up; but asyncio.run's clean-up can wait on a thread nobody can stop (the MCP SDK's
    stdin reader, blocked until the client closes stdin), so after a few seconds the backstop
    prints the line and exits anyway."""
    _quiet_asyncio_shutdown()
    if _stopping["is_the_process"]:
        timer = threading.Timer(STOP_BACKSTOP_SECONDS, _exit_now, [signum])
        timer.daemon = True
        timer.start()


def _exit_now(signum: int) -> None:
    if not _stopping["said"]:
        print("terminated" if signum == signal.SIGTERM else "interrupted", file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(128 + signum)


def _reader_went_away() -> int:
    """The reader of stdout closed it (`posthog-driver objects | head -1`): stop quietly, as
    Unix tools do, with 141 (128 + SIGPIPE), the status a shell shows for a tool that SIGPIPE
    ended. stdout now points at /dev/null, so the interpreter's last flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):  # no real stdout (captured in a test)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_BROKEN_PIPE


def _exit_despite_stuck_threads(status: int) -> None:
    """Exit now if threads that nobody can stop would hold the process open.

    By now the command's clean-up has run: drivers closed, partial files removed, servers'
    lifespans exited. What can remain are non-daemon threads: the MCP SDK's stdin reader,
    blocked in read() until the client closes stdin, or an AnyIO worker whose event loop the
    signal interrupted before the loop could tell it to stop. Interpreter shutdown joins them,
    until stdin closes or for ever. So they get a moment to end, then the process exits
    without them (os._exit skips atexit hooks, so only when one is still there).
    """
    deadline = time.monotonic() + STUCK_THREAD_SECONDS
    for thread in _other_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    if _other_threads():
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe must not stop the exit
                stream.flush()
        os._exit(status)


def _other_threads() -> list[threading.Thread]:
    current = threading.current_thread()
    return [t for t in threading.enumerate() if t is not current and not t.daemon and t.is_alive()]


# Python API names in the driver's hints, and what says the same on the command line.
_CLI_HINTS = [
    (re.compile(r"list_objects\(\) gives (?:every (?:table )?name|the names)"),
     "`posthog-driver objects` lists every name"),
    (re.compile(r"get_fields\('([^']*)'\)"), r"`posthog-driver fields \1`"),
    (re.compile(r"\(timeout=, or POSTHOG_CALL_TIMEOUT\)"), "(POSTHOG_CALL_TIMEOUT)"),
    (re.compile(r"stream\(\) pages through the whole result itself"),
     "query --all pages through the whole result itself"),
    (re.compile(r" To stop early, break out of the loop\."), ""),
]  # fmt: skip


def _for_the_command_line(message: str) -> str:
    """A driver message whose hints name Python calls, with the commands to run instead."""
    for pattern, replacement in _CLI_HINTS:
        message = pattern.sub(replacement, message)
    return message


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
        _stop(signum)
        raise KeyboardInterrupt

    return received, signal.signal(signal.SIGTERM, stop)


def _quiet_asyncio_shutdown() -> None:
    """Called as a signal stops the command. asyncio.run's clean-up then reports the task the
    interrupt ended ("unhandled exception during asyncio.run() shutdown", with a traceback);
    that task is the command being stopped on purpose, so the report is noise."""
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def _fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


class _MissingExtra(Exception):
    """An optional extra the command needs is not installed."""


class _UsageError(Exception):
    """Arguments that cannot work together, or an --output that cannot be written."""


class _WriteError(Exception):
    """Writing the rows to --output failed part-way (a full disk, say)."""


class _Console(Console):
    """rich's console, but a closed stdout ends the command like every broken pipe does
    (rich's own answer is a silent exit 1)."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posthog-driver",
        description="Discover and query PostHog product analytics with HogQL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _log_level_argument(parser, default=None)
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
        "--cursor", default=None, help="--all's ordering key (default: timestamp,uuid)"
    )
    query.add_argument(
        "--batch-size", type=_at_least_one, default=None, help="--all's rows per page (10,000)"
    )
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
    ask.add_argument("--max-turns", type=_at_least_one, default=10, help="default 10")
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
    mcp.add_argument("--host", default=None, help="--http's address (default: 127.0.0.1)")
    mcp.add_argument("--port", type=port_number, default=None, help="--http's port (default: 8765)")
    mcp.add_argument(
        "--sandbox",
        choices=["none", "local", "e2b"],
        default="none",
        help="offer a python tool that runs in a sandbox (local: bubblewrap; e2b: E2B)",
    )
    mcp.set_defaults(run=_run_mcp)

    # Global options work after the command too (`objects --log-level DEBUG`); SUPPRESS keeps
    # a value given before the command when the command's own copy is not given.
    for command in commands.choices.values():
        _log_level_argument(command, default=argparse.SUPPRESS)
    return parser


def _log_level_argument(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--log-level",
        default=default,
        type=str.upper,
        choices=LOG_LEVELS,
        help="log level (default: POSTHOG_LOG_LEVEL, else WARNING)",
    )


def _whole_number(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0 (any free one) to 65535."""
    port = _whole_number(text, "a port number")
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use 0-65535 (0 = any free)")
    return port


def cannot_listen(command: str, host: str, port: int, exc: OSError) -> str:
    """One line for a server that cannot listen on host:port, naming the option to change."""
    why = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        fix = "pick another --port (0 = any free port)"
    elif exc.errno == errno.EACCES:
        fix = "ports below 1024 need root: pick another --port"
    else:  # an unknown name, or an address this machine does not have
        fix = "check --host: an address of this machine (127.0.0.1; 0.0.0.0 for every one)"
    return f"{command} cannot listen on {host}:{port} ({why}); {fix}."


def _at_least_one(text: str) -> int:
    number = _whole_number(text, "a whole number")
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {number}")
    return number


def _json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _console() -> Console:
    # Piped output has no width to measure; 80 columns would cut the demo's HogQL and tables.
    width = None if sys.stdout.isatty() else 110
    return _Console(highlight=False, soft_wrap=False, width=width)


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
        values = json.loads(args.values)
    except ValueError as exc:
        raise ConfigError(f"--values is not valid JSON: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"--values must be a JSON object of placeholder names to values, e.g. "
            f'\'{{"day": "2024-01-01"}}\', not a {type(values).__name__}.'
        )
    return values


async def _query(driver: AsyncDriver, args: argparse.Namespace) -> Any:
    from posthog_driver.demo import render_rows  # noqa: PLC0415

    if not args.all and (args.cursor is not None or args.batch_size is not None):
        raise _UsageError("--cursor and --batch-size shape --all's pages; add --all.")
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
    elif len(rows) >= MAX_BATCH:
        print(_AT_MOST_A_PAGE.format(rows=len(rows)), file=sys.stderr)
    return rows


# PostHog answers a larger LIMIT with 50,000 rows and no sign of the cut: say it may be one.
_AT_MOST_A_PAGE = (
    "{rows:,} rows: PostHog returns at most 50,000 per query (a larger LIMIT is cut there, "
    "silently), so there may be more; --all --output FILE reads every row."
)


async def _export_rows(driver: AsyncDriver, args: argparse.Namespace) -> Any:
    if args.output is not None:
        _check_output(Path(args.output))  # before the query runs, not after its first page
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
            cursor = args.cursor or "timestamp,uuid"
            pages = driver.stream(
                args.hogql,
                _values(args),
                cursor=[name.strip() for name in cursor.split(",") if name.strip()],
                batch_size=args.batch_size or 10_000,
                on_progress=lambda rows: progress.update(task, completed=rows),
            )
        else:
            pages = _one_page(driver, args)
        try:
            count = await export(pages, fmt, args.output, sys.stdout)
        except OSError as exc:
            if args.output is None or isinstance(exc, BrokenPipeError):
                raise
            raise _WriteError(
                f"cannot write {args.output}: {exc.strerror or exc}; nothing was kept. Free "
                "space or pick another --output, and run the query again."
            ) from None
    if args.output is not None:
        print(f"Wrote {count:,} rows to {args.output} ({fmt}).", file=sys.stderr)
    args.json = False  # the rows went where they were asked to
    return count


def _check_output(output: Path) -> None:
    """An --output that cannot become a file is a usage error, said before any work."""
    if output.is_dir():
        raise _UsageError(
            f"--output {output} is a folder; give a file name, e.g. --output {output / 'rows.csv'}"
        )
    folder = output.parent
    if not folder.is_dir():
        raise _UsageError(
            f"--output {output}: the folder {folder} does not exist; create it or pick another "
            "path."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _UsageError(
            f"--output {output}: cannot write in {folder} (permission denied); pick another path."
        )


async def _one_page(driver: AsyncDriver, args: argparse.Namespace) -> AsyncIterator[QueryResult]:
    result = await driver.execute(args.hogql, _values(args))
    if result.has_more:
        print(
            f"Only the first {len(result.rows)} rows: PostHog stops a query without LIMIT there. "
            "Add --all (or a LIMIT, up to 50,000).",
            file=sys.stderr,
        )
    elif len(result.rows) >= MAX_BATCH:
        print(_AT_MOST_A_PAGE.format(rows=len(result.rows)), file=sys.stderr)
    yield result


def _format_of(output: str | None) -> Format:
    """The format a file name asks for (rows.csv, rows.parquet; .json and none: JSON lines)."""
    suffix = Path(output or "").suffix.lower().lstrip(".")
    if suffix in ("", "json", "ndjson"):
        return "jsonl"
    for fmt in FORMATS:
        if fmt == suffix:
            return fmt
    raise ConfigError(
        f"--output {output} asks for a .{suffix} file, which the CLI cannot write; name it "
        ".csv, .jsonl or .parquet, or give --format."
    )


async def _validate(driver: AsyncDriver, args: argparse.Namespace) -> Any:
    checked = await driver.validate(args.hogql, _values(args))
    if not args.json:
        if checked.is_valid:
            print("valid")
        for problem in checked.errors:
            print(f"error: {_for_the_command_line(str(problem))}")
        if checked.pointer():
            print(checked.pointer())
        for problem in [*checked.warnings, *checked.notices]:
            print(f"note: {problem}")
    args.status = 0 if checked.is_valid else EXIT_DRIVER_ERROR
    return dataclasses.asdict(checked)


# ---- agent integrations ----


def _run_ask(args: argparse.Namespace) -> int:
    commands = _tool_commands()
    kwargs: dict[str, Any] = {
        "max_turns": args.max_turns,
        "sandbox": args.sandbox,
        "log_level": args.log_level,
    }
    if args.model:
        kwargs["model"] = args.model
    return int(anyio.run(lambda: commands.ask(args.question, **kwargs)))


def _run_mcp(args: argparse.Namespace) -> int:
    if not args.http and (args.host is not None or args.port is not None):
        raise _UsageError(
            "--host and --port are for MCP over HTTP: add --http, or drop them for stdio."
        )
    commands = _tool_commands()
    # Over stdio the SDK reads stdin on a worker thread that only a closed stdin ends, and
    # asyncio's own Ctrl-C (cancel the main task, then wait for it) waits for that thread: so
    # Ctrl-C interrupts at once here, as SIGTERM does, and main() exits without the thread.
    previous = _interrupt_at_once() if not args.http else None
    try:
        return int(
            commands.serve_mcp(
                transport="streamable-http" if args.http else "stdio",
                host=args.host or "127.0.0.1",
                port=8765 if args.port is None else args.port,
                sandbox=args.sandbox,
                log_level=args.log_level,
            )
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _interrupt_at_once() -> Any:
    """Ctrl-C raises KeyboardInterrupt where the main thread is; returns the handler it
    replaced (None off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: Any) -> None:
        _stop(signum)
        raise KeyboardInterrupt

    return signal.signal(signal.SIGINT, interrupt)


def _tool_commands() -> Any:
    try:
        from posthog_driver.tools import commands  # noqa: PLC0415 - optional extras
    except ImportError as exc:
        raise _MissingExtra(str(exc)) from None
    return commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
