# ruff: noqa: S608  (SQL sent straight to the engine on purpose; built from our constants)
"""The engine process's protocol, run in-process over pipes: answers, errors, kills and limits."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import asdict
from typing import IO, Any

import pytest

from posthog_local._wire import WireError, read_message, write_message
from posthog_local.engine import DATABASE, EngineLimits
from posthog_local.engine._worker import run


class Pipe:
    """A worker in a thread; ``ask`` sends one request and returns its answer."""

    def __init__(self, limits: EngineLimits, answer_bytes: int = 1 << 20) -> None:
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        self.send: IO[bytes] = os.fdopen(to_worker_w, "wb")
        self.receive: IO[bytes] = os.fdopen(from_worker_r, "rb")
        worker_in, worker_out = os.fdopen(to_worker_r, "rb"), os.fdopen(from_worker_w, "wb")

        def serve() -> None:
            with worker_in, worker_out:
                run(worker_in, worker_out)

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        write_message(self.send, {"op": "start", "events": 2_000, "seed": 3, "now": None,
                                  "pool_size": 2, "limits": asdict(limits),
                                  "answer_bytes": answer_bytes})  # fmt: skip
        while True:
            header, _ = read_message(self.receive, max_payload=0)
            if header["op"] == "ready":
                self.ready = header
                break
        self.next_id = 0

    def ask(self, sql: str, params: dict[str, str] | None = None, limit: int | None = None) -> Any:
        self.next_id += 1
        message = {"op": "query", "id": self.next_id, "sql": sql, "params": params or {}}
        write_message(self.send, {**message, "limit": limit})
        header, payload = read_message(self.receive, max_payload=64 << 20)
        assert header["id"] == self.next_id
        return header, json.loads(payload) if payload else None

    def close(self) -> None:
        self.send.close()
        self.thread.join(timeout=10)
        self.receive.close()


@pytest.fixture(scope="module")
def worker() -> Iterator[Pipe]:
    # one per test process: chdb runs one embedded server per process, configured by the first
    pipe = Pipe(EngineLimits(timeout=2, result_rows=1_001), answer_bytes=20_000)
    yield pipe
    pipe.close()


def test_ready_reports_counts_and_the_definitions(worker: Pipe) -> None:
    assert worker.ready["counts"]["events"] == 2_000
    events = {row[0] for row in worker.ready["event_rows"]}
    assert {"$pageview", "signed_up"} <= events
    assert ["signed_up", "$browser"] in worker.ready["pair_rows"]


def test_an_answer_carries_columns_types_and_rows_in_posthogs_json_forms(worker: Pipe) -> None:
    header, rows = worker.ask(
        f"SELECT timestamp, properties FROM {DATABASE}.events ORDER BY timestamp LIMIT 1"
    )
    assert header["ok"] is True
    assert header["columns"] == ["timestamp", "properties"]
    assert header["types"][0] == "DateTime64(6, 'UTC')"
    assert rows[0][0].endswith("Z")
    assert "T" in rows[0][0]
    assert json.loads(rows[0][1])["$lib"] == "web"


def test_limit_trims_the_extra_row_and_says_there_is_more(worker: Pipe) -> None:
    header, rows = worker.ask("SELECT number FROM numbers(4)", limit=3)
    assert (header["rows"], header["has_more"], rows) == (3, True, [[0], [1], [2]])
    header, rows = worker.ask("SELECT number FROM numbers(3)", limit=3)
    assert (header["has_more"], len(rows)) == (False, 3)


def test_parameters_bind_as_sent(worker: Pipe) -> None:
    _, rows = worker.ask("SELECT {p:String}", {"p": "a\\\\b\\nc"})
    assert rows == [["a\\b\nc"]]


def test_an_engine_error_is_short_and_names_no_database_or_path(worker: Pipe) -> None:
    header, _ = worker.ask(f"SELECT nope FROM {DATABASE}.events")
    assert header["ok"] is False
    assert header["code"] == "UNKNOWN_IDENTIFIER"
    assert f"{DATABASE}." not in header["error"]
    assert "Stack trace" not in header["error"]
    assert "phd:" not in header["error"]


def test_the_engines_timeout_ends_a_query_with_its_code(worker: Pipe) -> None:
    header, _ = worker.ask("SELECT count() FROM numbers(100000000000)")
    assert header["code"] == "TIMEOUT_EXCEEDED"
    header, rows = worker.ask("SELECT 1")  # the session that failed was replaced
    assert rows == [[1]]


def test_a_result_past_the_row_limit_fails_instead_of_being_cut(worker: Pipe) -> None:
    header, _ = worker.ask("SELECT number FROM numbers(5000)")
    assert header["code"] == "TOO_MANY_ROWS_OR_BYTES"


def test_an_answer_over_the_byte_limit_says_how_to_shrink_it(worker: Pipe) -> None:
    header, _ = worker.ask("SELECT repeat('x', 100) FROM numbers(500)")
    assert header["code"] == "TOO_MANY_ROWS_OR_BYTES"
    assert "fewer columns or rows" in header["error"]


def test_a_deeply_nested_answer_is_a_clear_error_not_a_crash(worker: Pipe) -> None:
    deep = "[" * 990 + "1" + "]" * 990
    header, _ = worker.ask(f"SELECT {deep}")
    assert header["ok"] is False or header["rows"] == 1
    header, rows = worker.ask("SELECT 2")
    assert rows == [[2]]


def test_a_kill_stops_a_running_query(worker: Pipe) -> None:
    worker.next_id += 1
    request = worker.next_id
    slow = {"op": "query", "id": request, "sql": "SELECT count() FROM numbers(1e11)", "limit": None}
    write_message(worker.send, slow)
    write_message(worker.send, {"op": "kill", "id": request})
    header, _ = read_message(worker.receive, max_payload=1 << 20)
    assert header["id"] == request
    assert header["ok"] is False
    assert header["code"] in ("QUERY_WAS_CANCELLED", "TIMEOUT_EXCEEDED")


def test_the_wire_refuses_oversized_and_malformed_messages() -> None:
    r, w = os.pipe()
    with os.fdopen(w, "wb") as out:
        out.write(b'{"size": 5}\nabc')
    with os.fdopen(r, "rb") as inp, pytest.raises(WireError, match="inside a payload"):
        read_message(inp, max_payload=10)
    for raw, problem in ((b'{"size": 99}\n', "over the limit"), (b"[1]\n", "not a JSON object"),
                         (b"nope\n", "not JSON"), (b"", "closed")):  # fmt: skip
        r, w = os.pipe()
        with os.fdopen(w, "wb") as out:
            out.write(raw)
        with os.fdopen(r, "rb") as inp, pytest.raises(WireError, match=problem):
            read_message(inp, max_payload=10)
