"""Queries by id, as PostHog tracks them: async mode, status polling and cancellation.

Every HogQL query runs under an id: the request's ``client_query_id``, or a fresh one. While it
runs, ``DELETE .../query/{id}/`` cancels it (the engine kills it). A query started in async
mode (``refresh: "async"`` and the other async modes, or the legacy ``async: true``) runs in the
background and answers at once with its ``QueryStatus`` (HTTP 202); ``GET .../query/{id}/``
then answers 202 while it runs, 200 with the result once complete, 400 with the error.

Finished async queries are kept for ``KEEP_SECONDS`` (at most ``MAX_KEPT``), as PostHog keeps
their status in its cache for a while.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio

__all__ = ["ASYNC_MODES", "Job", "Jobs", "valid_query_id"]

ASYNC_MODES = frozenset({"async", "force_async", "lazy_async", "async_except_on_cache_miss"})
KEEP_SECONDS = 600.0
MAX_KEPT = 200
_QUERY_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def valid_query_id(value: Any) -> bool:
    """A ``client_query_id`` the server accepts: 1-128 letters, digits, ``-`` or ``_``."""
    return isinstance(value, str) and bool(_QUERY_ID.match(value))


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Job:
    """One query by id: its PostHog ``QueryStatus`` and, once complete, its answer's bytes."""

    id: str
    team_id: int
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    complete: bool = False
    error_message: str | None = None
    result: bytes | None = None  # the HogQLQueryResponse, exactly as the blocking answer
    started: str = field(default_factory=_now)
    ended: str | None = None
    finished_at: float | None = None
    task: asyncio.Task[None] | None = None

    def status(self) -> dict[str, Any]:
        """PostHog's ``QueryStatus`` without ``results``."""
        return {
            "id": self.id,
            "query_async": True,
            "team_id": self.team_id,
            "complete": self.complete,
            "error": self.error_message is not None,
            "error_message": self.error_message,
            "start_time": self.started,
            "end_time": self.ended,
            "query_progress": None,
        }

    def body(self) -> bytes:
        """``{"query_status": ...}``, with the answer's bytes spliced in (never re-parsed)."""
        status = json.dumps(self.status(), separators=(",", ":")).encode()
        if self.result is None:
            return b'{"query_status":' + status + b"}"
        return b'{"query_status":' + status[:-1] + b',"results":' + self.result + b"}}"

    def finish(self, *, result: bytes | None = None, error: str | None = None) -> None:
        self.complete = True
        self.result, self.error_message = result, error
        self.ended = _now()
        self.finished_at = time.monotonic()


Work = Callable[[Job], Awaitable[None]]


class Jobs:
    """The queries running (or recently finished in async mode), by id."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def get(self, query_id: str) -> Job | None:
        self._expire()
        return self._jobs.get(query_id)

    def running(self, query_id: str) -> bool:
        job = self._jobs.get(query_id)
        return job is not None and not job.complete

    def register(self, query_id: str, team_id: int) -> Job:
        """A job for a blocking query: cancellable while it runs, forgotten after."""
        self._expire()
        job = self._jobs[query_id] = Job(query_id, team_id)
        return job

    def forget(self, job: Job) -> None:
        if self._jobs.get(job.id) is job:
            del self._jobs[job.id]

    def start(self, query_id: str, team_id: int, work: Work) -> Job:
        """Run ``work(job)`` in the background; it must call ``job.finish``."""
        job = self.register(query_id, team_id)

        async def run() -> None:
            try:
                with job.scope:
                    await work(job)
            except Exception:  # noqa: BLE001 - reported as the query's error, as PostHog does
                job.finish(error="The query failed on the server.")
            if not job.complete:
                job.finish(error="Query cancelled")

        job.task = asyncio.get_running_loop().create_task(run())
        return job

    def cancel(self, query_id: str) -> bool:
        """Cancel the query if it runs; False when the id is unknown."""
        job = self.get(query_id)
        if job is None:
            return False
        if not job.complete:
            job.scope.cancel()
        return True

    def _expire(self) -> None:
        now = time.monotonic()
        done = [j for j in self._jobs.values() if j.finished_at is not None]
        stale = {j.id for j in done if now - (j.finished_at or now) > KEEP_SECONDS}
        done.sort(key=lambda j: j.finished_at or now)
        stale.update(j.id for j in done[: max(0, len(done) - MAX_KEPT)])
        for query_id in stale:
            del self._jobs[query_id]
