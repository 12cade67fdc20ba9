"""Shared limits in one process, against a real Redis: what each shared part does, what the
failure policies do when Redis is gone or restarts, and that its URL never leaks."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx2
import pytest

from posthog_driver import (
    AsyncDriver,
    ConfigError,
    DriverError,
    DriverSettings,
    NotFoundError,
    RateLimitError,
    ServerError,
    SharedLimitsError,
)
from posthog_driver._limits import RateLimit, WaitTooLong, held_for
from posthog_driver._shared._store import RedisStore
from posthog_driver._shared._windows import SharedWindows
from tests.conftest import FAKE_KEY
from tests.reliability.switchable import SwitchableServer
from tests.shared import fleet
from tests.shared.redis_process import RedisProcess, free_port

PASSWORD = "hunter2-redis-password"


def _settings(server: Any, redis_url: str | None, **overrides: Any) -> DriverSettings:
    return DriverSettings(**fleet.settings(server, redis_url, **overrides))


class _Counting(httpx2.AsyncBaseTransport):
    """Counts the requests that leave, by the query kind they carry."""

    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.kinds: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        kind = request.method
        if request.content:
            kind = str(json.loads(request.content).get("query", {}).get("kind"))
        self.kinds.append(kind)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _until(condition: Callable[[], bool], seconds: float = 30) -> None:
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - polls another thread's counter
            await asyncio.sleep(0.01)


# ---- the parts --------------------------------------------------------------------------


async def test_shared_windows_admit_the_whole_budget_then_slide(redis_url: str) -> None:
    settings = DriverSettings(
        api_key=FAKE_KEY, project_id="1", host="http://127.0.0.1:9", redis_url=redis_url
    )
    store = RedisStore(settings)
    try:
        first = SharedWindows(store, "test", RateLimit("query", [(4, 0.5)]))
        second = SharedWindows(store, "test", RateLimit("query", [(4, 0.5)]))  # another worker
        for windows in (first, second, first):  # budget(4) = 3, fleet-wide
            await windows.acquire(max_wait=0)
        assert [n for n, _, _ in first.local.used()] == [2]  # each one's share, recorded
        with pytest.raises(WaitTooLong) as caught:
            await second.acquire(max_wait=0)
        assert 0 < caught.value.seconds <= held_for(0.5)  # the window and its settling time
        assert not caught.value.paused
        await second.acquire(max_wait=1.0)  # waits for the oldest to leave the window
    finally:
        await store.aclose()


async def test_a_retry_after_pauses_every_worker(redis_url: str) -> None:
    with SwitchableServer() as server:
        server.throttle_for = 30
        settings = DriverSettings(
            api_key=FAKE_KEY, project_id="1", host=server.url, redis_url=redis_url,
            max_retries=0, max_retry_after=5,
        )  # fmt: skip
        async with AsyncDriver(settings) as first, AsyncDriver(settings) as second:
            with pytest.raises(RateLimitError) as answered:
                await first.query("SELECT 1")
            assert answered.value.status_code == 429
            with pytest.raises(RateLimitError) as held:
                await second.query("SELECT 1")
            assert held.value.status_code is None  # refused before sending
            assert "Retry-After" in str(held.value)
            assert second.status().limits["query"].paused_for > 25
        assert server.requests == 1


async def test_workers_discover_the_schema_once(redis_url: str, local_server: Any) -> None:
    transport = _Counting()
    async with httpx2.AsyncClient(transport=transport) as client:
        settings = _settings(local_server, redis_url)
        drivers = [AsyncDriver(settings, http_client=client) for _ in range(4)]
        answers = await asyncio.gather(*(d.get_fields("events") for d in drivers))
        for driver in drivers:
            await driver.aclose()
    assert all(answer == answers[0] for answer in answers)
    assert transport.kinds.count("DatabaseSchemaQuery") == 1
    assert transport.kinds.count("GET") == 3  # event names, event and person properties


async def test_the_schema_cache_can_stay_per_process(redis_url: str, local_server: Any) -> None:
    transport = _Counting()
    settings = _settings(local_server, redis_url, redis_schema_cache=False)
    async with httpx2.AsyncClient(transport=transport) as client:
        for _ in range(2):
            async with AsyncDriver(settings, http_client=client) as driver:
                await driver.list_objects()
    assert transport.kinds.count("DatabaseSchemaQuery") == 2


async def test_projects_never_share_a_budget(redis_url: str, local_server: Any) -> None:
    limited = {"query_rate_per_minute": 2, "max_retry_after": 0.1, "max_retries": 0}
    async with (
        AsyncDriver(_settings(local_server, redis_url, **limited)) as first,
        AsyncDriver(_settings(local_server, redis_url, **limited)) as same_project,
        AsyncDriver(
            _settings(local_server, redis_url, **limited).model_copy(update={"project_id": "2"})
        ) as other_project,
    ):  # fmt: skip
        await first.query("SELECT 1")  # budget(2) = 1 a minute
        with pytest.raises(RateLimitError, match="rate windows have no room"):
            await same_project.query("SELECT 1")
        with pytest.raises(NotFoundError):  # sent: the local server has no project 2
            await other_project.query("SELECT 1")


# ---- slots and leases ---------------------------------------------------------------------


async def test_a_running_query_keeps_its_slot_past_its_lease(redis_url: str) -> None:
    with SwitchableServer(hold=2.0) as server:
        settings = DriverSettings(
            api_key=FAKE_KEY, project_id="1", host=server.url, redis_url=redis_url,
            max_concurrent_queries=1, redis_lease_seconds=0.6, max_retry_after=1.2,
        )  # fmt: skip
        async with AsyncDriver(settings) as running, AsyncDriver(settings) as waiting:
            task = asyncio.create_task(running.query("SELECT 1"))
            await _until(lambda: server.in_flight > 0)
            with pytest.raises(RateLimitError, match="query slots shared through"):
                await waiting.query("SELECT 1")  # 1.2 s: two leases, renewed meanwhile
            await task
        assert server.requests == 1


async def test_waiters_longer_than_a_lease_get_every_slot_back(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import redis.asyncio as aioredis  # noqa: PLC0415

    caplog.set_level(logging.WARNING, logger="posthog_driver")
    with SwitchableServer(hold=0.1) as server:
        settings = DriverSettings(
            api_key=FAKE_KEY, project_id="1", host=server.url, redis_url=redis_url,
            max_concurrent_queries=2, redis_lease_seconds=0.3, max_retry_after=20,
        )  # fmt: skip
        async with (
            AsyncDriver(settings) as a,
            AsyncDriver(settings) as b,
            AsyncDriver(settings) as c,
        ):
            # 24 queries for two slots: most wait several leases (renewals every 0.1 s).
            calls = [d.query("SELECT 1", timeout=30) for d in (a, b, c) for _ in range(8)]
            await asyncio.gather(*calls)
        assert server.max_in_flight == 2
        client = aioredis.Redis.from_url(redis_url)
        assert [k for k in await client.keys("*query-slots") if await client.zcard(k)] == []
        await client.aclose()
    assert not any("lease_lost" in r.getMessage() for r in caplog.records)


async def test_a_running_query_takes_its_slot_back_after_redis_forgot_it(
    redis_url: str, redis_server: RedisProcess
) -> None:
    import redis.asyncio as aioredis  # noqa: PLC0415

    with SwitchableServer(hold=1.5) as server:
        settings = DriverSettings(
            api_key=FAKE_KEY, project_id="1", host=server.url, redis_url=redis_url,
            max_concurrent_queries=1, redis_lease_seconds=0.6,
        )  # fmt: skip
        client = aioredis.Redis.from_url(redis_url)
        async with AsyncDriver(settings) as driver:
            task = asyncio.create_task(driver.query("SELECT 1"))
            await _until(lambda: server.in_flight > 0)
            (key,) = await client.keys("*query-slots")
            redis_server.flush()  # as a Redis restarted empty
            assert await client.zcard(key) == 0
            await asyncio.sleep(0.5)  # past the next renewal (every 0.2 s)
            assert await client.zcard(key) == 1  # taken back: the limit holds again
            await task
            assert await client.zcard(key) == 0  # and given back when the query ended
        await client.aclose()


async def test_a_killed_worker_frees_its_slot_within_the_lease(redis_url: str) -> None:
    lease = 1.0
    with SwitchableServer(hold=600) as server:
        settings = {
            "api_key": FAKE_KEY, "project_id": "1", "host": server.url, "redis_url": redis_url,
            "max_concurrent_queries": 1, "redis_lease_seconds": lease,
        }  # fmt: skip
        worker = fleet.start({"settings": settings, "calls": 1, "timeout": 600})
        try:
            await _until(lambda: server.in_flight > 0)
            server.hold = 0  # the held request stays held; later ones are answered
            async with AsyncDriver(DriverSettings(**{**settings, "max_retry_after": 0.2})) as d:
                with pytest.raises(RateLimitError, match="query slots shared through"):
                    await d.query("SELECT 1")  # the worker holds the fleet's one slot
            os.kill(worker.pid, signal.SIGKILL)
            worker.communicate(timeout=10)
            patient = DriverSettings(**{**settings, "max_retry_after": 3 * lease})
            async with AsyncDriver(patient) as d:
                result = await d.query("SELECT 1")  # the lease ran out: the slot is free
            assert result  # answered: the slot was free
        finally:
            worker.kill()
            worker.communicate(timeout=10)  # reaps it and closes its pipes


def _slow_replies(script: Any, seconds: float) -> Any:
    """The script runs in Redis at once; its answer reaches us `seconds` later (a slow link)."""

    async def slow(*args: Any, **kwargs: Any) -> Any:
        answer = await script(*args, **kwargs)
        await asyncio.sleep(seconds)
        return answer

    return slow


async def test_a_caller_cancelled_while_redis_grants_its_slot_gives_it_back(
    redis_url: str,
) -> None:
    """asyncio's own cancellation (wait_for, a dropped web request) is not held back by anyio's
    shield: a slot Redis granted as the caller was cancelled must still come back at once,
    not after its lease."""
    with SwitchableServer() as server:
        settings = DriverSettings(
            api_key=FAKE_KEY, project_id="1", host=server.url, redis_url=redis_url,
            max_concurrent_queries=2, redis_lease_seconds=30, max_retry_after=5,
        )  # fmt: skip
        async with AsyncDriver(settings) as driver, AsyncDriver(settings) as other:
            slots = driver._pipeline.shared.slots
            real = slots._acquire
            slots._acquire = _slow_replies(real, 0.3)
            for _ in range(2):  # both of the fleet's slots, each granted to a cancelled caller
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(driver.query("SELECT 1"), 0.1)
            slots._acquire = real
            await asyncio.sleep(0.5)  # the answers arrive; the slots are given back
            assert await other.query("SELECT 1")  # within max_retry_after, far below the lease
            assert server.requests == 1


async def test_slots_granted_to_cancelled_callers_are_given_back_by_a_driver_closing_at_once(
    redis_url: str,
) -> None:
    import redis.asyncio as aioredis  # noqa: PLC0415

    with SwitchableServer() as server:
        settings = DriverSettings(
            api_key=FAKE_KEY, project_id="1", host=server.url, redis_url=redis_url,
            max_concurrent_queries=3, redis_lease_seconds=30,
        )  # fmt: skip
        async with AsyncDriver(settings) as driver:
            slots = driver._pipeline.shared.slots
            slots._acquire = _slow_replies(slots._acquire, 0.3)
            calls = [asyncio.create_task(driver.query("SELECT 1")) for _ in range(3)]
            await asyncio.sleep(0.1)  # each script ran in Redis; no answer has arrived yet
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
        # closed at once: the give-backs start only as the answers arrive, during the close
        client = aioredis.Redis.from_url(redis_url)
        try:
            held = [await client.zcard(key) for key in await client.keys("*query-slots")]
        finally:
            await client.aclose()
        assert sum(held) == 0


async def test_a_probe_cancelled_while_redis_grants_it_frees_the_probe(redis_url: str) -> None:
    with SwitchableServer() as server:
        settings = DriverSettings(
            api_key=FAKE_KEY,
            project_id="1",
            host=server.url,
            redis_url=redis_url,
            max_retries=0,
            breaker_threshold=1,
            breaker_reset_seconds=0.3,
            timeout=30,
        )  # fmt: skip  (the probe's lease: timeout + 2 x redis_timeout = 34 s)
        async with AsyncDriver(settings) as driver, AsyncDriver(settings) as other:
            server.up = False
            with pytest.raises(ServerError):
                await driver.query("SELECT 1")  # the fleet's breaker opens
            server.up = True
            await asyncio.sleep(0.4)  # half-open: the next attempt is the fleet's probe
            breaker = driver._pipeline.shared.breakers["query"]
            real = breaker._enter
            breaker._enter = _slow_replies(real, 0.3)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(driver.query("SELECT 1"), 0.15)
            breaker._enter = real
            await asyncio.sleep(0.5)  # the answer arrives; the probe is given back
            assert await other.query("SELECT 1")  # the next attempt probes, and closes it
        assert server.requests == 2


# ---- when Redis fails ---------------------------------------------------------------------


def _unreachable(password: bool = False) -> str:
    secret = f":{PASSWORD}@" if password else ""
    return f"redis://{secret}127.0.0.1:{free_port()}/0"


async def test_local_policy_falls_back_and_says_so_once(
    local_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="posthog_driver")
    settings = _settings(local_server, _unreachable(password=True))
    async with AsyncDriver(settings) as driver:
        for _ in range(5):
            assert await driver.query("SELECT 1") == [{"1": 1}]
        assert driver.status().shared_limits == "redis unreachable: per-process limits"
        assert PASSWORD not in repr(driver.settings) + repr(driver.status())
    lines = [r.getMessage() for r in caplog.records]
    assert sum("shared_limits_unavailable" in line for line in lines) == 1
    assert not any(PASSWORD in line for line in lines)


async def test_closed_policy_refuses_without_sending(caplog: pytest.LogCaptureFixture) -> None:
    with SwitchableServer() as server:
        settings = DriverSettings(
            api_key=FAKE_KEY, project_id="1", host=server.url,
            redis_url=_unreachable(password=True), redis_failure_policy="closed",
        )  # fmt: skip
        async with AsyncDriver(settings) as driver:
            for _ in range(3):
                with pytest.raises(SharedLimitsError) as caught:
                    await driver.query("SELECT 1")
                assert "POSTHOG_REDIS_FAILURE_POLICY=local" in str(caught.value)
                assert PASSWORD not in str(caught.value)
            assert driver.status().shared_limits == "redis unreachable: calls refused"
        assert server.requests == 0


@pytest.mark.parametrize("policy", ["local", "closed"])
async def test_a_redis_restart_loses_no_call(
    policy: str, tmp_path: Any, local_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="posthog_driver")
    redis = RedisProcess(tmp_path)
    redis.start()
    settings = _settings(
        local_server, redis.url, redis_failure_policy=policy, redis_timeout=0.5,
        query_rate_per_minute=100_000,  # this test is about Redis going away, not the windows
    )  # fmt: skip
    outcomes: list[str] = []
    try:
        async with AsyncDriver(settings) as driver:
            stop = time.monotonic() + 4.0

            async def caller() -> None:
                while time.monotonic() < stop:
                    try:
                        result = await driver.query("SELECT 1", timeout=10)
                        outcomes.append("ok" if result == [{"1": 1}] else "wrong")
                    except DriverError as exc:
                        outcomes.append(type(exc).__name__)
                        await asyncio.sleep(0.05)

            async def restart() -> None:
                await asyncio.sleep(1.0)
                redis.stop()
                await asyncio.sleep(1.5)
                await asyncio.to_thread(redis.start)

            await asyncio.gather(restart(), *(caller() for _ in range(6)))
            assert driver.status().shared_limits == "redis"
    finally:
        redis.stop()
    # Every call ended, with rows or a typed error: none hung, none was dropped.
    assert outcomes.count("ok") > 0
    assert "wrong" not in outcomes
    expected = {"ok"} if policy == "local" else {"ok", "SharedLimitsError"}
    assert set(outcomes) == expected
    lines = [r.getMessage() for r in caplog.records]
    assert sum("shared_limits_unavailable" in line for line in lines) == 1
    assert sum("shared_limits_restored" in line for line in lines) == 1


# ---- settings -----------------------------------------------------------------------------


def test_the_redis_url_is_a_secret_and_must_be_redis() -> None:
    settings = DriverSettings(
        api_key=FAKE_KEY, project_id="1", redis_url=f"redis://:{PASSWORD}@cache:6379/0"
    )
    assert PASSWORD not in repr(settings) + str(settings)
    with pytest.raises(ConfigError, match=r"redis_url .* must be a Redis URL") as caught:
        DriverSettings(api_key=FAKE_KEY, project_id="1", redis_url=f"http://:{PASSWORD}@x/")
    assert PASSWORD not in str(caught.value)


def test_a_redis_url_option_redis_py_cannot_read_is_a_config_error() -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:6379/0?socket_timeout=abc"
    settings = DriverSettings(api_key=FAKE_KEY, project_id="1", redis_url=url)
    with pytest.raises(ConfigError, match="cannot read POSTHOG_REDIS_URL") as caught:
        AsyncDriver(settings)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PASSWORD}#x@127.0.0.1:6379/0",  # an unencoded # ends the password early
        f"redis://:{PASSWORD}/x@127.0.0.1:6379/0",
        f"redis://:{PASSWORD}?x@127.0.0.1:6379/0",
        "redis://127.0.0.1:99999/0",
        "redis://127.0.0.1:6379/zero",
    ],
)
def test_a_redis_url_redis_py_cannot_read_is_a_config_error_without_the_password(
    url: str,
) -> None:
    """redis-py's own parse error quotes what it could not read: here, the password."""
    with pytest.raises(ConfigError, match=r"redis_url .* (port|database)") as caught:
        DriverSettings(api_key=FAKE_KEY, project_id="1", redis_url=url)
    assert PASSWORD not in str(caught.value)
    assert "percent-encode" in str(caught.value)


def test_from_env_reads_the_redis_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTHOG_REDIS_URL", "redis://127.0.0.1:6379/1")
    monkeypatch.setenv("POSTHOG_REDIS_FAILURE_POLICY", "closed")
    monkeypatch.setenv("POSTHOG_ORGANIZATION_ID", "0190-abc")
    settings = DriverSettings.from_env(api_key=FAKE_KEY, project_id="1")
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://127.0.0.1:6379/1"
    assert (settings.redis_failure_policy, settings.organization_id) == ("closed", "0190-abc")
    with pytest.raises(ConfigError, match="POSTHOG_REDIS_FAILURE_POLICY"):
        DriverSettings.from_env(api_key=FAKE_KEY, project_id="1", redis_failure_policy="open")


def test_a_missing_redis_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "redis.asyncio", None)
    settings = DriverSettings(api_key=FAKE_KEY, project_id="1", redis_url="redis://x:6379")
    with pytest.raises(ConfigError, match=r"posthog-driver\[redis\]"):
        AsyncDriver(settings)


async def test_a_worker_waits_for_another_workers_discovery(
    redis_url: str, local_server: Any
) -> None:
    import redis.asyncio as aioredis  # noqa: PLC0415

    from posthog_driver._shared import key_prefixes  # noqa: PLC0415

    settings = _settings(local_server, redis_url)
    project, _ = key_prefixes(settings)
    client = aioredis.Redis.from_url(redis_url)
    await client.set(f"{project}:cache-lock:schema", "another-worker", px=5000)
    transport = _Counting()
    async with (
        httpx2.AsyncClient(transport=transport) as http,
        AsyncDriver(settings, http_client=http) as driver,
    ):
        waiting = asyncio.create_task(driver.list_objects())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the other worker holds the lock: wait for its answer
        tables = {"events": {"id": "events", "name": "events", "type": "posthog", "fields": {}}}
        await client.set(f"{project}:cache:schema", json.dumps(tables), px=5000)
        assert await waiting == ["events"]
        assert transport.kinds == []  # its answer, not a request of ours
        # A loader that dies leaves its lock to expire without a value: load it ourselves.
        await client.delete(f"{project}:cache:schema")
        await client.set(f"{project}:cache-lock:schema", "a-worker-that-died", px=300)
        assert "events" in await driver.list_objects(refresh=True)
        assert transport.kinds.count("DatabaseSchemaQuery") == 1
    await client.aclose()


async def test_a_slot_lost_to_others_is_said_once(
    redis_url: str, redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    import redis.asyncio as aioredis  # noqa: PLC0415

    caplog.set_level(logging.WARNING, logger="posthog_driver")
    with SwitchableServer(hold=1.0) as server:
        settings = DriverSettings(
            api_key=FAKE_KEY, project_id="1", host=server.url, redis_url=redis_url,
            max_concurrent_queries=1, redis_lease_seconds=0.3,
        )  # fmt: skip
        client = aioredis.Redis.from_url(redis_url)
        async with AsyncDriver(settings) as driver:
            task = asyncio.create_task(driver.query("SELECT 1"))
            await _until(lambda: server.in_flight > 0)
            (key,) = await client.keys("*query-slots")
            redis_server.flush()  # Redis forgot the slot, and another worker took it
            await client.zadd(key, {"another-worker": time.time() + 3600})
            assert await task  # the query itself goes on
        await client.aclose()
    lost = [r for r in caplog.records if "query_slot_lease_lost" in r.getMessage()]
    assert len(lost) == 1
