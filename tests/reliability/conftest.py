"""The reliability suite: fault injection against real servers on 127.0.0.1.

`uv run pytest` runs the short version; `nox -s soak` passes `--soak` for the long one. Each
scenario records a `Tally` (calls, successes, typed failures, untyped failures, leaks, max
attempts); the table is printed at the end of the run and written to
`.pytest_cache/d/reliability/summary.md`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
import structlog

from posthog_driver import AsyncDriver, DriverError

pytestmark = pytest.mark.reliability


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="run the long reliability scenarios (thousands of calls)",
    )


@pytest.fixture(scope="session")
def soak(request: pytest.FixtureRequest) -> bool:
    """True under `--soak` (nox -s soak): scenarios run their long version."""
    return bool(request.config.getoption("--soak", default=False))


@dataclass
class Tally:
    """What one scenario's calls came to."""

    scenario: str
    calls: int = 0
    successes: int = 0
    typed_failures: int = 0
    untyped_failures: int = 0
    leaks: int = 0
    max_attempts: int = 0
    untyped: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def record(self, outcome: Any) -> None:
        """Count one call's outcome: a result, a DriverError or anything else."""
        self.calls += 1
        if isinstance(outcome, DriverError):
            self.typed_failures += 1
            self.texts += [str(outcome), repr(outcome), *_chain(outcome)]
        elif isinstance(outcome, BaseException):
            self.untyped_failures += 1
            self.untyped.append(f"{type(outcome).__name__}: {outcome}")
        else:
            self.successes += 1

    def attempts_from(self, logs: list[dict[str, Any]]) -> None:
        """The most attempts any call made, from `retrying` and `request_done` events."""
        for entry in logs:
            if entry.get("event") == "retrying":
                self.max_attempts = max(self.max_attempts, int(entry["attempt"]) + 1)
            elif entry.get("event") == "request_done":
                self.max_attempts = max(self.max_attempts, int(entry["attempt"]))
        self.texts += [repr(entry) for entry in logs]


def _chain(exc: BaseException) -> list[str]:
    out = []
    seen = exc.__cause__ or exc.__context__
    while seen is not None:
        out += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return out


TALLIES: list[Tally] = []


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """A fresh `Tally` named after the test, reported in the session's summary table."""
    found = Tally(request.node.name.removeprefix("test_"))
    yield found
    TALLIES.append(found)


@pytest.fixture
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event the driver emits during the test (all levels)."""
    with structlog.testing.capture_logs() as logs:
        yield logs


def leaks(driver: AsyncDriver, client: httpx2.AsyncClient | None = None) -> list[str]:
    """What is not back to idle: query slots, limiter waiters, the probe, and (given the
    driver's `client`) pooled connections still busy or requests stuck in httpx2's pool."""
    status = driver.status()
    found = []
    if status.query_slots_in_use:
        found.append(f"{status.query_slots_in_use} query slots in use")
    for endpoint, limit in status.limits.items():
        if limit.waiting:
            found.append(f"{endpoint} rate limit has waiters")
    for endpoint, breaker in status.breakers.items():
        if breaker.probe_in_flight:
            found.append(f"the {endpoint} breaker's probe is still in flight")
    if client is not None:
        # httpx2 keeps its httpcore2 pool on the transport; `connections` is its public view
        pool = getattr(client._transport, "_pool", None)
        connections = list(getattr(pool, "connections", []))
        busy = [c for c in connections if not (c.is_idle() or c.is_closed())]
        stuck = len(getattr(pool, "_requests", []))
        if busy or stuck:
            found.append(f"{len(busy)} connections busy, {stuck} requests in the pool")
    return found


def tasks_left() -> list[asyncio.Task[Any]]:
    """Tasks of this event loop other than the running test."""
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under xdist, a worker hands its tallies to the controller, which prints the table
    (tests/conftest.py); without xdist the table is printed from `TALLIES` directly."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["reliability"] = [dataclasses.asdict(t) for t in TALLIES]
