"""The `posthog-driver` command, in-process for each path and as real subprocesses end to end."""

from __future__ import annotations

import csv
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from posthog_driver.cli import main
from tests.conftest import FAKE_KEY


@pytest.fixture
def local_env(local_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in local_server.env().items():
        monkeypatch.setenv(name, value)
    return dict(local_server.env())


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    full_env.update(env or {})
    return subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "posthog_driver.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def test_objects_prints_one_table_per_line(local_env, capsys):
    assert main(["objects"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "events" in lines
    assert "system.cohorts" in lines


def test_objects_json_is_a_list_for_scripts(local_env, capsys):
    assert main(["objects", "--json"]) == 0
    assert "persons" in json.loads(capsys.readouterr().out)


def test_fields_prints_references_types_and_event_names(local_env, capsys):
    assert main(["fields", "events"]) == 0
    out = capsys.readouterr().out
    assert "properties.$browser" in out
    assert "signed_up" in out
    assert "(1 fields)" not in out
    lines = [line for line in out.splitlines()[1:] if line.startswith("  ")]
    width = min(40, max(len(line.split()[0]) for line in lines))
    column = 2 + width + 2  # where every type starts: the names are padded to one width
    assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines)


def test_describe_json_maps_tables_to_fields(local_env, capsys):
    assert main(["describe", "persons", "sessions", "--json"]) == 0
    catalog = json.loads(capsys.readouterr().out)
    assert list(catalog) == ["persons", "sessions"]
    assert "properties.email" in catalog["persons"]


def test_describe_prints_every_table(local_env, capsys):
    assert main(["describe", "groups"]) == 0
    assert capsys.readouterr().out.startswith("groups")


def test_query_prints_a_table_and_json_rows(local_env, capsys):
    hogql = "SELECT event, count() AS n FROM events WHERE event = {ev} GROUP BY event"
    assert main(["query", hogql, "--values", '{"ev": "signed_up"}']) == 0
    assert "signed_up" in capsys.readouterr().out
    assert main(["query", hogql, "--values", '{"ev": "signed_up"}', "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["event"] == "signed_up"
    assert rows[0]["n"] > 0


def test_a_query_error_prints_one_line_and_exits_1(local_env, capsys):
    assert main(["query", "SELECT nope FROM events"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: PostHog rejected the query")
    assert err.count("\n") == 1


def test_bad_values_json_is_a_usage_error(local_env, capsys):
    assert main(["query", "SELECT 1", "--values", "{oops"]) == 2
    assert "--values is not valid JSON" in capsys.readouterr().err
    assert main(["query", "SELECT {x}", "--values", "[1]"]) == 2
    assert "--values must be a JSON object" in capsys.readouterr().err


def test_missing_configuration_exits_2_naming_the_variable(capsys):
    assert main(["objects"]) == 2
    err = capsys.readouterr().err
    assert "POSTHOG_PERSONAL_API_KEY (or POSTHOG_API_KEY) is missing" in err
    assert "Traceback" not in err


def test_an_unknown_log_level_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--log-level", "loud", "objects"])
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_field_names_that_look_like_markup_print_as_they_are(capsys):
    from posthog_driver.cli import _print_fields  # noqa: PLC0415

    _print_fields("t[/x]", {"properties['utm[source]']": {"type": "string", "description": "[b]"}})
    out = capsys.readouterr().out
    assert "t[/x]" in out
    assert "properties['utm[source]']" in out
    assert "[b]" in out


def test_bad_serve_local_options_exit_2(capsys):
    assert main(["serve-local", "--latency-ms", "x"]) == 2
    assert main(["serve-local", "--fault-5xx-rate", "3"]) == 2
    assert "fault_5xx_rate" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--query-rate-per-minute", "0"], "query_rate_per_minute must be 1 or more"),
        (["--max-concurrent-queries", "0"], "max_concurrent_queries must be 1 or more"),
        (["--retry-after", "-5"], "retry_after must be >= 0"),
        (["--seed", "-1"], "seed must be >= 0"),
        (["--api-key", "phc_project_key_123"], "must be a personal key (phx_...)"),
        (["--latency-ms", "5x"], "--latency-ms takes milliseconds as LOW,HIGH"),
    ],
)
def test_serve_local_refuses_what_would_break_its_answers(args, says, capsys):
    assert main(["serve-local", *args]) == 2
    err = capsys.readouterr().err
    assert says in err
    assert "Traceback" not in err


def test_ask_without_an_anthropic_key_says_so_in_one_line(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    done = _run("ask", "How many signups?", env={"POSTHOG_API_KEY": FAKE_KEY})
    assert done.returncode != 0
    assert "ANTHROPIC_API_KEY" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_demo_prints_the_walkthrough_and_exits_0():
    done = _run("demo", "--events", "8000", "--seed", "3")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for expected in ("list_objects() found", "tables described", "Q1. Top events this week"):
        assert expected in out
    assert "signed_up" in out
    assert "windowFunnel" in out
    assert "reshaped here: windowFunnel levels -> users reaching each step" in out  # said
    assert "Traceback" not in done.stderr


def test_query_subprocess_against_the_local_server(local_server):
    done = _run("query", "SELECT count() AS n FROM persons", "--json", env=local_server.env())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["n"] > 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_serve_local_prints_export_lines_and_stops_on_ctrl_c(stop):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    env["PYTHONFAULTHANDLER"] = "1"
    command = [sys.executable, "-m", "posthog_driver.cli", "serve-local", "--port", "0"]
    with subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [*command, "--events", "2000"],
        # as a shell starts a background job: Ctrl-C must work all the same
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        errors: list[str] = []  # drained, so a chatty server never blocks on a full pipe
        assert process.stderr is not None
        stderr = process.stderr
        threading.Thread(target=lambda: errors.extend(stderr), daemon=True).start()
        try:
            exports = _read_exports(process)
            assert set(exports) == {"POSTHOG_HOST", "POSTHOG_API_KEY", "POSTHOG_PROJECT_ID"}
            assert exports["POSTHOG_HOST"].startswith("http://127.0.0.1:")
            assert exports["POSTHOG_API_KEY"].startswith("phx_")
            checked = _run("objects", env=exports)
            assert checked.returncode == 0, checked.stderr
            process.send_signal(stop)
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
                process.wait(timeout=10)
                time.sleep(0.5)
                pytest.fail("serve-local did not stop on Ctrl-C:\n" + "".join(errors)[-6000:])
            assert code == 128 + stop, "".join(errors)[-2000:]  # 130 or 143, after clean-up
            assert "Traceback" not in "".join(errors)
        finally:
            process.kill()


def _read_exports(process: subprocess.Popen[str]) -> dict[str, str]:
    """The export lines serve-local prints, read on a thread so a silent server cannot hang us."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    exports: dict[str, str] = {}
    while len(exports) < 3:
        line = lines.get(timeout=60)
        if line.startswith("export POSTHOG_"):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exports[name] = value.strip("'\"")
    return exports


STREAM = "SELECT uuid, timestamp, event FROM events"
SOME = " WHERE event = '$autocapture'"  # a few thousand rows: several pages, little time


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_query_all_streams_every_row_to_a_file(local_env, capsys, tmp_path, fmt):
    output = tmp_path / f"rows.{fmt}"
    expected = main(["query", "SELECT count() AS n FROM events" + SOME, "--json"])  # noqa: S608
    assert expected == 0
    total = json.loads(capsys.readouterr().out)[0]["n"]
    status = main(
        ["query", STREAM + SOME, "--all", "--batch-size", "1000", "--output", str(output)]
    )
    assert status == 0, capsys.readouterr().err
    assert f"Wrote {total:,} rows to {output} ({fmt})" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [output]  # no partial file left beside it
    if fmt == "parquet":
        import pyarrow.parquet as pq  # noqa: PLC0415

        table = pq.read_table(output)
        assert table.num_rows == total
        assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
        uuids = table.column("uuid").to_pylist()
    elif fmt == "csv":
        with output.open(newline="") as file:
            rows = list(csv.DictReader(file))
        uuids = [row["uuid"] for row in rows]
        assert list(rows[0]) == ["uuid", "timestamp", "event"]
    else:
        uuids = [json.loads(line)["uuid"] for line in output.read_text().splitlines()]
    assert len(uuids) == len(set(uuids)) == total > 1_000


def test_query_all_to_stdout_writes_json_lines(local_env, capsys):
    status = main(["query", STREAM + " WHERE event = '$pageleave'", "--all", "--format", "jsonl"])
    out = capsys.readouterr().out.splitlines()
    assert status == 0
    assert out
    assert {json.loads(line)["event"] for line in out} == {"$pageleave"}


def test_a_failed_export_leaves_no_file(local_env, capsys, tmp_path):
    output = tmp_path / "rows.csv"
    status = main(["query", "SELECT event FROM events", "--all", "--cursor", "uuid",
                   "--output", str(output)])  # fmt: skip
    assert status == 1
    assert "cursor" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("hogql", "rows", "says"),
    [
        ("SELECT uuid FROM events", 100, "Showing the first 100 rows"),  # PostHog's default
        # PostHog's cap: a larger LIMIT is cut at 50,000 without a sign, so we say it may be
        ("SELECT number FROM numbers(60000) LIMIT 60000", 50_000, "at most 50,000 per query"),
    ],
    ids=["default-limit", "fifty-thousand"],
)
def test_a_cut_result_says_so(hogql, rows, says, local_env, capsys):
    status = main(["query", hogql, "--json"])
    captured = capsys.readouterr()
    assert status == 0
    assert len(json.loads(captured.out)) == rows
    assert says in captured.err
    assert "--all" in captured.err


def test_validate_points_at_the_mistake_and_exits_1(local_env, capsys):
    status = main(["validate", "SELECT evnt FROM events"])
    out = capsys.readouterr().out
    assert status == 1
    assert "error: line 1, column 8: Unable to resolve field: evnt" in out
    assert "SELECT evnt FROM events\n       ^^^^" in out
    assert main(["validate", "SELECT event FROM events"]) == 0
    assert capsys.readouterr().out.strip() == "valid"


def test_log_format_json_is_honoured(local_server):
    env = {**local_server.env(), "POSTHOG_LOG_FORMAT": "json"}
    done = _run("--log-level", "INFO", "query", "SELECT 1 AS n", "--json", env=env)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert "query_sent" in {event["event"] for event in events}


def test_an_export_never_writes_through_a_link_planted_beside_its_output(local_env, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "rows.csv.partial").symlink_to(victim)  # the old, predictable partial name
    status = main(
        ["query", "SELECT event FROM events LIMIT 3", "--output", str(tmp_path / "rows.csv")]
    )
    assert status == 0
    assert victim.read_text() == "keep me"
    assert (tmp_path / "rows.csv").read_text().splitlines()[0] == "event"


# ---- from the second newcomer walkthrough ------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["mcp", "--http", "--port", "99999"],
        ["serve-local", "--port", "70000"],
        ["ask", "x", "--max-turns", "0"],
    ],
)
def test_numbers_out_of_range_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as caught:
        main(args)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "0-65535" in err or "1 or more" in err
    assert "Traceback" not in err


def test_serve_local_refuses_a_project_id_the_driver_would_refuse(capsys):
    assert main(["serve-local", "--project-id", "abc"]) == 2
    assert main(["serve-local", "--events", "99999999999"]) == 2
    err = capsys.readouterr().err
    assert "project_id must be a number" in err
    assert "events must be between 0 and 20,000,000" in err


def test_an_address_that_is_not_this_machines_names_host_not_port(monkeypatch, capsys):
    for name, value in {"POSTHOG_API_KEY": FAKE_KEY, "POSTHOG_PROJECT_ID": "1"}.items():
        monkeypatch.setenv(name, value)
    assert main(["mcp", "--http", "--host", "nosuchhost.invalid"]) == 2
    err = capsys.readouterr().err
    assert "check --host" in err
    assert "--port" not in err


def test_an_output_file_of_an_unknown_kind_is_refused_before_the_query(local_env, capsys, tmp_path):
    target = tmp_path / "rows.xlsx"
    assert main(["query", "SELECT 1", "--all", "--output", str(target)]) == 2
    assert "name it .csv, .jsonl or .parquet" in capsys.readouterr().err
    assert not target.exists()


def test_validate_hints_name_cli_commands(local_env, capsys):
    assert main(["validate", "SELECT 1 FROM evnts"]) == 1
    out = capsys.readouterr().out
    assert "`posthog-driver objects` lists every name" in out
    assert "list_objects()" not in out


def test_the_log_level_setting_is_not_case_sensitive(monkeypatch):
    from posthog_driver import DriverSettings  # noqa: PLC0415

    monkeypatch.setenv("POSTHOG_LOG_LEVEL", "debug")
    assert DriverSettings.from_env(api_key=FAKE_KEY, project_id="1").log_level == "DEBUG"


def test_paging_flags_without_all_are_a_usage_error_not_ignored(local_env, capsys):
    assert main(["query", "SELECT 1", "--batch-size", "5"]) == 2
    assert main(["query", "SELECT 1", "--cursor", "uuid"]) == 2
    assert "add --all" in capsys.readouterr().err
