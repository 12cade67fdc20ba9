"""Fixtures for the local server tests: the session's real server and PostHog's schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from posthog_local import LocalServer
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


@pytest.fixture
def hogql(client: httpx.AsyncClient) -> Any:
    """POST a HogQLQuery (with optional values) to the query endpoint."""

    async def post(query: str, values: dict[str, Any] | None = None) -> httpx.Response:
        node: dict[str, Any] = {"kind": "HogQLQuery", "query": query}
        if values is not None:
            node["values"] = values
        return await client.post("/api/projects/1/query/", json={"query": node})

    return post
