"""Fixtures: one real local server (uvicorn on a free 127.0.0.1 port) per test module."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from posthog_driver.local import LocalServer, ServerOptions

SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "posthog-api" / "schema.json"


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    with LocalServer(ServerOptions(events=20_000, seed=7)) as srv:
        yield srv


@pytest.fixture
async def client(server: LocalServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=20) as http:
        yield http


@pytest.fixture(scope="session")
def definitions() -> dict[str, Any]:
    if not SCHEMA.exists():  # the shared folder sits beside the repository
        pytest.skip("PostHog's schema.json is not available")
    return dict(json.loads(SCHEMA.read_text())["definitions"])


@pytest.fixture(scope="session")
def validate(definitions: dict[str, Any]) -> Any:
    def check(instance: Any, name: str) -> None:
        schema = {"$ref": f"#/definitions/{name}", "definitions": definitions}
        jsonschema.Draft7Validator(schema).validate(instance)

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
