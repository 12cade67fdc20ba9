"""Fixtures for the local server tests: the session's real server and PostHog's schema."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from posthog_local import LocalServer
from posthog_local.hogql import HogQLError, compile_query
from tests.conftest import schema_validator


@pytest.fixture(scope="session")
def server(local_server: LocalServer) -> LocalServer:
    """The session's local server (tests/conftest.py), shared with the end-to-end tests."""
    return local_server


@pytest.fixture
async def client(server: LocalServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=20) as http:
        yield http


@pytest.fixture(scope="session")
def validate() -> Any:
    """`validate(body, "HogQLQueryResponse")` raises unless `body` has PostHog's shape."""

    def check(instance: Any, name: str) -> None:
        schema_validator(name).validate(instance)

    return check


def compile_here(node: dict[str, Any]) -> None:
    """Compile a HogQLQuery node in this process too, so coverage sees the compiler (the server
    compiles in a sandboxed process). Only for the known, benign queries of the HogQL tests:
    hostile input (deep nesting crashes PostHog's parser) is what the compiler's process
    isolation is for, so the shared `hogql` fixture never does this. The HTTP answer is what
    the tests assert; a refusal here is expected wherever the server refuses."""
    if node.get("kind") != "HogQLQuery":
        return
    with contextlib.suppress(HogQLError):
        compile_query(
            node["query"],
            node.get("values"),
            filters=node.get("filters"),
            variables=node.get("variables"),
        )


@pytest.fixture
def hogql(client: httpx.AsyncClient) -> Any:
    """POST a HogQLQuery (with optional values) to the query endpoint."""

    async def post(query: str, values: dict[str, Any] | None = None) -> httpx.Response:
        node: dict[str, Any] = {"kind": "HogQLQuery", "query": query}
        if values is not None:
            node["values"] = values
        return await client.post("/api/projects/1/query/", json={"query": node})

    return post
