"""Auth, project, definitions and pagination, as PostHog answers them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from posthog_local import LocalServer


@pytest.mark.asyncio(loop_scope="session")
async def test_missing_key_is_not_authenticated(server: LocalServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        response = await anonymous.get("/api/projects/1/")
    assert response.status_code == 401
    assert response.json() == {
        "type": "authentication_error",
        "code": "not_authenticated",
        "detail": "Authentication credentials were not provided.",
        "attr": None,
    }


@pytest.mark.asyncio(loop_scope="session")
async def test_wrong_key_is_authentication_failed(server: LocalServer) -> None:
    headers = {"Authorization": "Bearer phx_wrong"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as wrong:
        response = await wrong.post(
            "/api/projects/1/query/", json={"query": {"kind": "HogQLQuery", "query": "SELECT 1"}}
        )
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert (
        response.json()["detail"]
        == "Personal API key found in request Authorization header is invalid."
    )


def test_generated_key_has_posthogs_shape(server: LocalServer) -> None:
    assert server.api_key.startswith("phx_")
    assert len(server.api_key) == 47
    assert server.env() == {
        "POSTHOG_HOST": server.url,
        "POSTHOG_API_KEY": server.api_key,
        "POSTHOG_PROJECT_ID": "1",
    }


@pytest.mark.asyncio(loop_scope="session")
async def test_project_and_unknown_project(client: httpx.AsyncClient) -> None:
    project = (await client.get("/api/projects/1/")).json()
    assert project["id"] == 1
    assert project["timezone"] == "UTC"
    missing = await client.get("/api/projects/999/")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


@pytest.mark.asyncio(loop_scope="session")
async def test_unknown_route_is_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing/here/")
    assert response.status_code == 404
    assert response.json()["detail"] == "Not found."


@pytest.mark.asyncio(loop_scope="session")
async def test_event_definitions_paginate_with_absolute_next(client: httpx.AsyncClient) -> None:
    first = (await client.get("/api/projects/1/event_definitions/", params={"limit": 4})).json()
    assert first["count"] == 11
    assert first["next"].startswith("http://127.0.0.1:")
    names = [e["name"] for e in first["results"]]
    url = first["next"]
    while url:
        page = (await client.get(url)).json()
        names += [e["name"] for e in page["results"]]
        url = page["next"]
    assert len(names) == 11
    assert len(set(names)) == 11
    assert page["previous"] is not None


@pytest.mark.asyncio(loop_scope="session")
async def test_event_definitions_search(client: httpx.AsyncClient) -> None:
    body = (
        await client.get("/api/projects/1/event_definitions/", params={"search": "SUBSCRIPTION"})
    ).json()
    assert {e["name"] for e in body["results"]} == {
        "subscription_started",
        "subscription_cancelled",
    }


@pytest.mark.asyncio(loop_scope="session")
async def test_property_definitions_filter_by_event_names(client: httpx.AsyncClient) -> None:
    params = {
        "type": "event",
        "event_names": json.dumps(["feature_used"]),
        "filter_by_event_names": "true",
    }
    body = (await client.get("/api/projects/1/property_definitions/", params=params)).json()
    names = {p["name"] for p in body["results"]}
    assert "feature" in names
    assert "amount" not in names
    assert all(p["is_seen_on_filtered_events"] for p in body["results"])


@pytest.mark.asyncio(loop_scope="session")
async def test_property_definitions_types(client: httpx.AsyncClient) -> None:
    params: dict[str, Any] = {"type": "event", "search": "amount"}
    amount = (await client.get("/api/projects/1/property_definitions/", params=params)).json()[
        "results"
    ]
    assert amount[0]["property_type"] == "Numeric"
    assert amount[0]["is_numerical"] is True
    person = (
        await client.get("/api/projects/1/property_definitions/", params={"type": "person"})
    ).json()
    assert {"email", "plan", "country"} <= {p["name"] for p in person["results"]}
    session = (
        await client.get("/api/projects/1/property_definitions/", params={"type": "session"})
    ).json()
    assert "$session_duration" in {p["name"] for p in session["results"]}
    bad = await client.get("/api/projects/1/property_definitions/", params={"type": "nope"})
    assert bad.status_code == 400
