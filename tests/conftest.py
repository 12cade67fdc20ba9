"""Shared fixtures: a clean environment for every test, PostHog's schema, the local server."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import structlog

from posthog_driver import DriverSettings
from tests.posthog_bodies import HOST, PROJECT

SCHEMA_PATH = Path(__file__).parent / "fixtures" / "posthog_query_schema.json"

# Looks like a real personal key, so a leak of it is easy to spot in captured text.
FAKE_KEY = "phx_TESTKEY0123456789abcdefghijklmnopqrstuvwxyzAB"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No POSTHOG_* variable and no .env from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("POSTHOG_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """A test that configures logging (the CLI does) leaves no configuration behind."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@cache
def _definitions() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["definitions"]  # type: ignore[no-any-return]


def schema_validator(definition: str) -> jsonschema.Draft7Validator:
    """A validator for one definition of PostHog's query schema (e.g. `HogQLQueryResponse`)."""
    return jsonschema.Draft7Validator(
        {"$ref": f"#/definitions/{definition}", "definitions": _definitions()}
    )


@pytest.fixture(scope="session")
def posthog_schema() -> Callable[[str, Any], None]:
    """`posthog_schema("QueryRequest", body)` raises if `body` is not of PostHog's shape."""

    def validate(definition: str, instance: Any) -> None:
        schema_validator(definition).validate(instance)

    return validate


@pytest.fixture(scope="session")
def local_server() -> Iterator[Any]:
    """The embedded PostHog-compatible server on a free 127.0.0.1 port, once per session."""
    from posthog_local import LocalServer, ServerOptions  # noqa: PLC0415 - needs the extra

    with LocalServer(ServerOptions(events=20_000, seed=7)) as server:
        yield server


@pytest.fixture
def make_settings() -> Callable[..., Any]:
    """Settings for the respx host, with backoff waits switched off through configuration."""

    def make(**overrides: Any) -> DriverSettings:
        values: dict[str, Any] = {
            "api_key": FAKE_KEY,
            "project_id": PROJECT,
            "host": HOST,
            "retry_base_delay": 0.0,
            "retry_max_delay": 0.0,
            **overrides,
        }
        return DriverSettings(**values)

    return make


# ---- the reliability suite's table (tests/reliability), printed once by the process that
# reports: the only one without xdist, the controller with it (workers send their tallies) ----


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    from tests.reliability.conftest import TALLIES, Tally  # noqa: PLC0415

    for found in getattr(node, "workeroutput", {}).get("reliability", []):
        TALLIES.append(Tally(**found))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller reports
    from tests.reliability.conftest import TALLIES  # noqa: PLC0415

    if not TALLIES:
        return
    lines = [
        "| scenario | calls | successes | typed failures | untyped failures | leaks "
        "| max attempts |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {t.scenario} | {t.calls} | {t.successes} | {t.typed_failures} | "
            f"{t.untyped_failures} | {t.leaks} | {t.max_attempts or '-'} |"
            for t in TALLIES
        ),
    ]
    terminalreporter.section("reliability summary")
    for line in lines:
        terminalreporter.write_line(line)
    cache = getattr(config, "cache", None)  # absent under -p no:cacheprovider
    if cache is not None:
        path = cache.mkdir("reliability") / "summary.md"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
