"""Fair and bounded: every bad or heavy input is a clear 4xx (or PostHog's 429/504), never a 500,
a hang or a silently changed value."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

from posthog_local import LocalServer, ServerOptions
from posthog_local.app import MAX_BODY_BYTES

pytestmark = pytest.mark.asyncio(loop_scope="session")

AWKWARD_STRINGS = [
    "a\\b",
    "back\\'slash",
    "x\ny",
    "t\tz",
    "cr\rx",
    "nul\0x",
    "\\N",
    "q'uote",
    'd"q',
    "{x}",
    "uni ✓ é 🦔",
    "",
    "a\\nb",
]


@pytest.mark.parametrize("value", AWKWARD_STRINGS)
async def test_a_string_value_binds_exactly_as_sent(hogql: Any, value: str) -> None:
    response = await hogql("SELECT {v} AS v, length({v}) AS n", {"v": value})
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [[value, len(value.encode())]]


async def test_a_list_value_binds_exactly_as_one_array(hogql: Any) -> None:
    response = await hogql("SELECT {v} AS v", {"v": AWKWARD_STRINGS})
    assert response.json()["results"] == [[AWKWARD_STRINGS]]


async def test_a_150000_item_list_works_in_in(hogql: Any) -> None:
    names = [f"e{i}" for i in range(150_000)] + ["$pageview"]
    response = await hogql("SELECT count() FROM events WHERE event IN {names}", {"names": names})
    assert response.status_code == 200, response.text
    total = await hogql("SELECT count() FROM events WHERE event = '$pageview'")
    assert response.json()["results"] == total.json()["results"]


@pytest.mark.parametrize(
    "value",
    [{"a": 1}, [[1]], [1, "a"], 2**64, -(2**63) - 1],
    ids=["object", "nested list", "mixed list", "too big", "too small"],
)
async def test_a_value_that_cannot_bind_is_a_400_that_says_what_can(hogql: Any, value: Any) -> None:
    response = await hogql("SELECT {v}", {"v": value})
    assert response.status_code == 400
    assert "{v}" in response.json()["detail"]


@pytest.mark.parametrize(
    "query",
    ["SELECT '\ud800'", "SELECT 1 -- \udfff", "SELECT 1 /* \ud83d */"],
    ids=["literal", "line comment", "block comment"],
)
async def test_a_lone_surrogate_anywhere_in_the_query_is_a_400(
    client: httpx.AsyncClient, query: str
) -> None:
    body = json.dumps({"query": {"kind": "HogQLQuery", "query": query}})  # ascii escapes
    response = await client.post(
        "/api/projects/1/query/", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "surrogate" in response.json()["detail"]


async def test_a_declared_oversized_body_is_refused_before_it_is_read(server: LocalServer) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        f"POST /api/projects/1/query/ HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {server.api_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    )
    with anyio.fail_after(10):  # the body is never sent: the answer comes from the header alone
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(head.encode())
            answer = b""
            while b"}" not in answer:
                answer += await stream.receive()
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"limit" in answer


async def test_a_streamed_oversized_body_is_refused_while_counting(
    client: httpx.AsyncClient,
) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 65_536 + 2):
            yield b" " * 65_536

    response = await client.post("/api/projects/1/query/", content=body())
    assert response.status_code == 400
    assert "limit" in response.json()["detail"]


async def test_a_very_long_expression_is_refused_before_parsing(hogql: Any) -> None:
    response = await hogql("SELECT " + "+".join(["1"] * 30_000))
    assert response.status_code == 400
    assert "tokens" in response.json()["detail"]


async def test_deeply_nested_input_and_output_are_never_a_500(
    client: httpx.AsyncClient, hogql: Any
) -> None:
    deep = "[" * 990 + "1" + "]" * 990
    response = await hogql(f"SELECT {deep}")
    assert response.status_code in (200, 400)
    nested = "[" * 5_000 + "]" * 5_000
    response = await client.get(
        "/api/projects/1/property_definitions/", params={"event_names": nested}
    )
    assert response.status_code in (200, 400)
    body = b'{"query": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await client.post("/api/projects/1/query/", content=body)
    assert response.status_code == 400


# -- a server with one engine session, a short wait for it and a small memory limit ----------


@pytest.fixture(scope="module")
def narrow() -> Iterator[LocalServer]:
    options = ServerOptions(
        events=2_000, pool_size=1, session_wait=0.3, query_timeout=3,
        query_memory_bytes=64 << 20,
    )  # fmt: skip
    with LocalServer(options) as srv:
        yield srv


@pytest.fixture
async def narrow_query(narrow: LocalServer) -> AsyncIterator[Any]:
    headers = {"Authorization": f"Bearer {narrow.api_key}"}
    async with httpx.AsyncClient(base_url=narrow.url, headers=headers, timeout=30) as http:

        async def post(query: str) -> httpx.Response:
            body = {"query": {"kind": "HogQLQuery", "query": query}}
            return await http.post("/api/projects/1/query/", json=body)

        yield post


async def test_a_query_that_cannot_get_an_engine_session_soon_gets_posthogs_429(
    narrow_query: Any,
) -> None:
    answers: list[httpx.Response] = []

    async def slow() -> None:
        answers.append(await narrow_query("SELECT count() FROM events a, events b, events c"))

    async with anyio.create_task_group() as group:
        group.start_soon(slow)
        await anyio.sleep(0.5)
        quick = await narrow_query("SELECT 1")
    assert quick.status_code == 429
    assert "Exceeded maximum concurrency limit" in quick.json()["detail"]
    assert "retry-after" not in quick.headers
    assert answers[0].status_code == 504


async def test_a_query_over_the_memory_limit_is_posthogs_504(narrow_query: Any) -> None:
    response = await narrow_query("SELECT groupArray(a.uuid) FROM events a, events b")
    assert response.status_code == 504
    assert response.json()["code"] == "memory_limit_exceeded"
    assert (await narrow_query("SELECT 1")).status_code == 200


async def test_a_funnel_udf_walking_past_the_time_limit_stops_and_frees_its_session(
    narrow_query: Any,
) -> None:
    # 20,000 open entry periods, then 20,000 events each of which looks at every period: far
    # more than 3 s of Python, which ClickHouse cannot cancel between rows by itself
    uuid = "toUUID('00000000-0000-0000-0000-000000000001')"
    entries = f"arrayMap(i -> (toFloat(i), _toUInt64(i), {uuid}, '', [1]), range(1, 20001))"
    lasts = f"arrayMap(i -> (toFloat(i), _toUInt64(0), {uuid}, '', [3]), range(20001, 40001))"
    slow = await narrow_query(
        "SELECT length(aggregate_funnel_trends(1, 3, 3, 1000000000, 'first_touch', 'ordered',"
        f" [''], arrayConcat({entries}, {lasts})))"
    )
    assert slow.status_code == 504, slow.json()
    assert slow.json()["code"] == "query_timeout"
    with anyio.fail_after(10):  # the one engine session is free again, not held by the walk
        while (quick := await narrow_query("SELECT 1")).status_code == 429:  # noqa: ASYNC110 - polls the server
            await anyio.sleep(0.2)
    assert quick.status_code == 200
