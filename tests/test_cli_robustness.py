"""Every failure a user can cause on the command line ends in one line that says what to do:
a closed pipe, a bad --output, a bad option, a port in use, a signal mid-export."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from posthog_driver.cli import main


@pytest.fixture
def local_env(local_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in local_server.env().items():
        monkeypatch.setenv(name, value)
    return dict(local_server.env())


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "posthog_driver.cli", *args]


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


PIPED = {
    "fields-json": ["fields", "events", "--json"],
    "describe": ["describe", "events", "persons"],  # printed through rich
    "objects": ["objects"],
    "query-csv": ["query", "SELECT uuid, timestamp FROM events", "--all", "--format", "csv"],
}


@pytest.mark.parametrize("args", PIPED.values(), ids=list(PIPED))
def test_a_reader_that_goes_away_ends_the_command_quietly_with_141(
    args: list[str], local_env: dict[str, str]
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head -1` that already stopped reading: every write fails
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            _command(*args), stdout=write_end, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **local_env}, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""


OUTPUTS = {"missing-folder": "absent/rows.csv", "a-folder": "."}


@pytest.mark.parametrize("every_row", [True, False], ids=["all", "one-page"])
@pytest.mark.parametrize("output", OUTPUTS.values(), ids=list(OUTPUTS))
def test_an_output_that_cannot_be_a_file_is_a_usage_error_naming_it(
    output: str, every_row: bool, local_env: dict[str, str], tmp_path: Path, capsys: Any
) -> None:
    target = str(tmp_path / output)
    flags = ["--all"] if every_row else []
    status = main(["query", "SELECT uuid, timestamp FROM events", *flags, "--output", target])
    line = _one_error_line(capsys.readouterr().err)
    assert status == 2
    assert target in line
    assert "folder" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_export_stopped_by_sigterm_exits_143_and_leaves_no_partial_file(
    local_server: Any, tmp_path: Path
) -> None:
    output = tmp_path / "z.csv"
    query = "SELECT uuid, timestamp, event, properties FROM events"
    with subprocess.Popen(  # noqa: S603 - our own interpreter and module
        _command("query", query, "--all", "--batch-size", "500", "--output", str(output)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **local_server.env()},
    ) as process:  # fmt: skip
        try:
            while not list(tmp_path.glob(".z.csv.*.partial")):  # the export has begun
                assert process.poll() is None, process.communicate()[1]
                time.sleep(0.01)
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=30)  # a guard against hangs, not a timing
        finally:
            process.kill()
    assert process.returncode == 143, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "terminated"
    assert list(tmp_path.iterdir()) == []


def test_a_negative_demo_size_is_a_usage_error(capsys: Any) -> None:
    assert main(["demo", "--events", "-5"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "Invalid demo option" in line
    assert "-5" in line


def test_the_log_level_also_works_after_the_command(local_server: Any) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        _command("query", "SELECT 1 AS n", "--json", "--log-level", "info"),
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **local_server.env(), "POSTHOG_LOG_FORMAT": "json"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"query_sent"' in done.stderr


def test_a_log_level_before_the_command_holds_when_the_command_gives_none(
    local_env: dict[str, str], capsys: Any
) -> None:
    assert main(["--log-level", "debug", "objects"]) == 0
    assert "events" in capsys.readouterr().out


def test_mcp_over_http_on_a_port_in_use_says_so_in_one_line(
    local_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("POSTHOG_MCP_TOKEN", "robustness-test-token-0123456789")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        status = main(["mcp", "--http", "--port", str(port)])
    line = _one_error_line(capsys.readouterr().err)
    assert status == 2
    assert f"127.0.0.1:{port}" in line
    assert "--port" in line


@pytest.mark.parametrize("option", [["--port", "9000"], ["--host", "0.0.0.0"]])  # noqa: S104
def test_an_address_for_mcp_over_stdio_is_a_usage_error(option: list[str], capsys: Any) -> None:
    assert main(["mcp", *option]) == 2
    assert "--http" in _one_error_line(capsys.readouterr().err)


def test_a_misspelt_table_points_at_the_objects_command(
    local_env: dict[str, str], capsys: Any
) -> None:
    assert main(["fields", "evnets"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "Did you mean events?" in line
    assert "posthog-driver objects" in line
    assert "list_objects()" not in line


@pytest.mark.parametrize("args", [["mcp"], ["ask", "How many signups?"]], ids=["mcp", "ask"])
def test_mcp_and_ask_errors_start_like_every_other_command(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "not-a-real-anthropic-key")  # ask reaches POSTHOG_*
    assert main(args) == 2
    assert "POSTHOG_" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("after", [0.05, 0.3, 0.8])
def test_ctrl_c_while_the_command_starts_is_one_line(after: float, tmp_path: Path) -> None:
    # The console script itself: its first step imports the CLI under a Ctrl-C guard.
    script = Path(sys.executable).parent / "posthog-driver"
    process = subprocess.Popen(  # noqa: S603 - the project's own console script
        [str(script), "objects"],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "POSTHOG_HOST": "http://127.0.0.1:9"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert "Traceback" not in err
    # Stopped (130); or done before the signal came, with a one-line configuration error (2),
    # or ended by the signal itself while the interpreter was exiting (-2: its handlers are gone).
    assert process.returncode in (130, 2, -signal.SIGINT), err
    if process.returncode == 130:
        assert err.strip().splitlines()[-1] == "interrupted"


@pytest.mark.parametrize(
    ("raised", "status"),
    [(KeyboardInterrupt(), 130), (BrokenPipeError(), 141)],
    ids=["signal", "closed-pipe"],
)
def test_a_stop_wrapped_by_a_task_group_still_means_stop(
    raised: BaseException, status: int, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # A signal landing while a server's task group starts comes out as an exception group.
    from posthog_driver import cli  # noqa: PLC0415

    def run(*args: Any) -> int:
        raise BaseExceptionGroup("while starting", [raised])

    monkeypatch.setattr(cli, "_with_driver", run)
    assert main(["objects"]) == status
    assert "Traceback" not in capsys.readouterr().err


def test_any_other_exception_group_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    from posthog_driver import cli  # noqa: PLC0415

    def run(*args: Any) -> int:
        raise ExceptionGroup("a bug", [ValueError("a bug")])

    monkeypatch.setattr(cli, "_with_driver", run)
    with pytest.raises(ExceptionGroup):
        main(["objects"])


async def test_a_parquet_export_stopped_midway_leaves_no_writer_to_the_garbage_collector(
    tmp_path: Path,
) -> None:
    """Left open, pyarrow's writer writes its footer into the closed file when collected:
    'Exception ignored in ParquetWriter.__del__' under a Ctrl-C."""
    import gc  # noqa: PLC0415

    from posthog_driver._export import export  # noqa: PLC0415
    from posthog_driver._results import QueryResult  # noqa: PLC0415

    async def pages() -> Any:
        yield QueryResult(["n"], ["Int64"], [[1], [2]])
        raise KeyboardInterrupt  # as Ctrl-C would, between two pages

    lost: list[Any] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lost.append
    try:
        with pytest.raises(KeyboardInterrupt):
            await export(pages(), "parquet", str(tmp_path / "rows.parquet"), sys.stdout)
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert lost == []
    assert os.listdir(tmp_path) == []
