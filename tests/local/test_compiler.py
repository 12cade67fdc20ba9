# ruff: noqa: S608  (attack SQL built on purpose from the test's own constants)
"""The compiler in its own process: deadlines, crashes, the protocol, and PostHog's parser loaded
beside a real ``posthog`` SDK without shadowing it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import anyio
import pytest

from posthog_local._wire import read_message, write_message
from posthog_local.compiler import Compiler, CompilerBusy
from posthog_local.hogql import HogQLError
from posthog_local.hogql._worker import answer, serve


@pytest.fixture(scope="module")
def compiler() -> Iterator[Compiler]:
    pool = Compiler(size=1, timeout=1.0)
    pool.start()
    yield pool
    pool.close()


def compile_(pool: Compiler, query: str) -> dict[str, Any]:
    return anyio.run(pool.compile, {"op": "compile", "query": query})


def test_a_query_compiles_in_the_compiler_process(compiler: Compiler) -> None:
    result = compile_(compiler, "SELECT event FROM events WHERE event = 'x'")
    assert result["ok"] is True
    assert result["params"] == {"hogql_val_0": "x"}
    assert result["sql"].startswith("SELECT `events`.`event` AS `event` FROM `posthog`.`events`")


def test_a_query_the_parser_is_slow_on_is_refused_at_the_deadline(compiler: Compiler) -> None:
    slow = "SELECT " + "f(" * 60 + "1" + ")" * 60  # measured: 25 levels take 1.3 s, 200 a minute
    with pytest.raises(HogQLError, match="took longer than 1 s to parse"):  # not 200 s later
        compile_(compiler, slow)
    assert compile_(compiler, "SELECT 1")["ok"] is True  # a fresh process took its place
    assert compiler.replaced >= 1


def test_a_query_that_crashes_the_parser_is_refused_and_the_process_replaced(
    compiler: Compiler,
) -> None:
    crash = "SELECT " + "+".join(["1"] * 10_000)  # measured: the C++ parser segfaults here
    with pytest.raises(HogQLError):
        compile_(compiler, crash)
    assert compile_(compiler, "SELECT 2")["ok"] is True


def test_the_worker_speaks_json_lines_and_never_raises() -> None:
    to_worker_r, to_worker_w = os.pipe()
    from_worker_r, from_worker_w = os.pipe()
    worker_in, worker_out = os.fdopen(to_worker_r, "rb"), os.fdopen(from_worker_w, "wb")

    def run() -> None:
        with worker_in, worker_out:
            serve(worker_in, worker_out)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    send: IO[bytes] = os.fdopen(to_worker_w, "wb")
    receive: IO[bytes] = os.fdopen(from_worker_r, "rb")
    assert read_message(receive, 0)[0] == {"op": "ready"}
    write_message(send, {"op": "metadata", "id": 1, "query": "SELECT nope FROM events"})
    header, _ = read_message(receive, 0)
    assert header["metadata"]["errors"][0]["message"] == "Unable to resolve field: nope"
    send.close()
    thread.join(timeout=10)
    receive.close()
    assert answer({"op": "compile", "query": 5})["ok"] is False
    assert answer({"op": "compile", "query": "SELECT ("})["ok"] is False


def test_the_parser_loads_beside_the_posthog_sdk_and_never_shadows_it() -> None:
    script = (
        "import sys\n"
        "import posthog\n"  # the SDK first...
        "sdk = posthog.__file__\n"
        "from posthog_local.hogql import compile_query\n"
        "compile_query('SELECT 1')\n"  # ...then the parser, which needs posthog.hogql.errors
        "import posthog as again\n"
        "print(again.__file__ == sdk, hasattr(again, 'capture'), 'posthog.hogql' in sys.modules)\n"
    )
    first = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert first.stdout.split() == ["True", "True", "False"]
    script_parser_first = (
        "import sys\n"
        "from posthog_local.hogql import compile_query\n"
        "compile_query('SELECT 1')\n"
        "print('posthog' in sys.modules)\n"
        "import posthog\n"
        "print(hasattr(posthog, 'capture'))\n"
    )
    second = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", script_parser_first],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert second.stdout.split() == ["False", "True"]


# -- the attack run's findings, each a regression test -------------------------------------------

ATTACKS = [
    "SELECT 0 IN ((system.one))",
    "SELECT ('SYSTEM','Linux') IN ((system.build_options))",
    "SELECT 'Europe/Berlin' IN ((system.time_zones))",
    "SELECT globalIn(0, (system.one))",
    "SELECT notIn(0, ((system.one)))",
    "SELECT 1 IN (+(system.one))",
    "SELECT 1 GLOBAL IN ((system.one))",
    "SELECT 1 IN ((system.processes))",
    "SELECT map('a')",
    "SELECT map(1, 2, 3)",
    "SELECT * FROM ..processes",
    "SELECT * FROM . . processes",
    "SELECT {:}",
    # the second run: an alias made in a lambda is the lambda's own (ClickHouse's rule)
    "SELECT arrayMap(x -> (x AS one), [5]) AS a, 0 IN one",
    "SELECT arrayMap(x -> (x AS _database), ['q']) AS a, _database",
    "SELECT arrayMap(x -> (x AS dummy), ['q']) AS a, dummy",
    "SELECT arrayMap(x -> (x AS _part), ['q']) AS a, _part FROM events LIMIT 1",
    "SELECT arrayMap(x -> (x AS events), ['q']) AS a, 'x' IN events",
    "<a />",
    # each CTE read twice by the next: the SQL would grow as 2**20
    "WITH c0 AS (SELECT 1 AS x), "
    + ", ".join(f"c{i} AS (SELECT a.x AS x FROM c{i - 1} a, c{i - 1} b)" for i in range(1, 21))
    + " SELECT x FROM c20",
]


@pytest.mark.parametrize("query", ATTACKS)
@pytest.mark.asyncio(loop_scope="session")
async def test_the_attack_runs_payloads_are_clear_400s(hogql: Any, query: str) -> None:
    response = await hogql(query)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "validation_error"


@pytest.mark.asyncio(loop_scope="session")
async def test_a_huge_engine_error_is_cut_and_the_engine_keeps_serving(hogql: Any) -> None:
    response = await hogql("SELECT toUInt8(repeat(repeat('a', 1000000), 9))")
    assert response.status_code == 400
    assert len(response.json()["detail"]) < 3_000
    after = await hogql("SELECT 1")
    assert after.json()["results"] == [[1]]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_placeholder_as_an_array_join_alias_is_a_400(client: Any) -> None:
    node = {
        "kind": "HogQLQuery",
        "values": {"y": 1},
        "query": "SELECT x FROM events ARRAY JOIN [1] AS {y}",
    }
    response = await client.post("/api/projects/1/query/", json={"query": node})
    assert response.status_code == 400


def test_when_every_compiler_stays_busy_a_query_gets_posthogs_busy_answer_soon() -> None:
    pool = Compiler(size=1, timeout=3.0, wait=0.3)
    pool.start()
    slow = "SELECT " + "f(" * 60 + "1" + ")" * 60
    outcomes: list[str] = []

    async def run() -> None:
        async def hog() -> None:
            with contextlib.suppress(HogQLError):
                await pool.compile({"op": "compile", "query": slow})

        async with anyio.create_task_group() as group:
            group.start_soon(hog)
            await anyio.sleep(0.2)
            started = time.monotonic()
            try:
                await pool.compile({"op": "compile", "query": "SELECT 1"})
            except CompilerBusy:
                outcomes.append(f"busy after {time.monotonic() - started:.1f}")

    try:
        anyio.run(run)
    finally:
        pool.close()
    assert len(outcomes) == 1
    assert float(outcomes[0].split()[-1]) < 2.0
