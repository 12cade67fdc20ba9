"""`SandboxedDriver`: the driver's own calls run in a bubblewrap sandbox against the local
PostHog server, with the key only in that process's environment (never in code or files)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import anyio
import pytest

from posthog_driver import (
    ConfigError,
    DriverError,
    DriverSettings,
    NotFoundError,
    QueryError,
    RateLimitError,
    SandboxUnavailableError,
    TransportError,
)
from posthog_driver.sandbox import (
    ExecutionResult,
    LocalSandboxExecutor,
    SandboxedDriver,
    find_bubblewrap,
)
from posthog_driver.tools import Toolset

try:
    find_bubblewrap()
except SandboxUnavailableError as exc:  # pragma: no cover - CI installs bubblewrap
    pytest.skip(f"no bubblewrap here: {exc}", allow_module_level=True)


@dataclass
class Recording:
    """An executor that hands every run to a real one and keeps what it was given."""

    inner: Any
    runs: list[dict[str, Any]] = field(default_factory=list)
    network: bool = True

    async def run(
        self,
        code: str,
        *,
        files: Mapping[str, bytes] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> ExecutionResult:
        result: ExecutionResult = await self.inner.run(code, files=files, env=env, timeout=timeout)
        self.runs.append({"code": code, "files": dict(files or {}), "env": dict(env or {})})
        self.runs[-1]["result"] = result
        return result

    async def __aenter__(self) -> Self:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.inner.__aexit__(*exc_info)


@pytest.fixture
def settings(local_server: Any) -> DriverSettings:
    return DriverSettings(
        host=local_server.url, api_key=local_server.api_key, project_id=local_server.project_id
    )


def online() -> LocalSandboxExecutor:
    return LocalSandboxExecutor(network=True, preload=())


async def test_discovery_and_queries_run_in_the_sandbox_and_come_back_typed(
    settings: DriverSettings,
) -> None:
    async with Recording(online()) as box:
        driver = SandboxedDriver(settings, box)
        objects = await driver.list_objects()
        fields = await driver.get_fields("events")
        rows = await driver.query(
            "SELECT event, count() AS n FROM events WHERE event = {name} GROUP BY event",
            {"name": "$pageview"},
        )
    assert {"events", "persons"} <= set(objects)
    assert fields["event"]["type"] == "string"
    assert "$pageview" in fields["event"]["values"]
    assert rows.columns == ["event", "n"]
    assert rows[0]["event"] == "$pageview"
    assert rows[0]["n"] > 0
    assert len(box.runs) == 3  # each call was one sandboxed run


async def test_the_key_travels_only_in_the_environment(settings: DriverSettings) -> None:
    key = settings.api_key.get_secret_value()
    async with Recording(online()) as box:
        driver = SandboxedDriver(settings, box)
        await driver.execute("SELECT 1")
        with pytest.raises(QueryError):
            await driver.execute("SELECT nope FROM events")
    for run in box.runs:
        assert key not in run["code"]
        assert all(key.encode() not in data for data in run["files"].values())
        assert run["env"]["POSTHOG_API_KEY"] == key
        result = run["result"]
        assert key not in result.stdout + result.stderr
        assert all(key.encode() not in data for data in result.files.values())
    call = json.loads(box.runs[0]["files"]["call.json"])
    assert call == {"method": "execute", "arguments": {"hogql": "SELECT 1", "values": None}}


async def test_errors_raised_in_the_sandbox_come_back_as_the_same_class(
    settings: DriverSettings,
) -> None:
    async with online() as box:
        driver = SandboxedDriver(settings, box)
        with pytest.raises(QueryError, match="nope") as caught:
            await driver.execute("SELECT nope FROM events")
        with pytest.raises(NotFoundError, match="events") as missing:
            await driver.get_fields("eventz")
        # the toolset over it answers with the suggestions, as over AsyncDriver (never raises)
        answer = await Toolset(driver).call("get_fields", {"object_name": "eventz"})
    assert caught.value.status_code == 400
    assert missing.value.suggestions == ["events"]
    assert answer.is_error
    assert "events" in answer.text


async def test_a_sandbox_without_network_says_it_could_not_connect(
    settings: DriverSettings,
) -> None:
    offline = LocalSandboxExecutor(preload=())
    async with offline:
        with pytest.raises(TransportError):
            await SandboxedDriver(settings.model_copy(update={"max_retries": 0}), offline).execute(
                "SELECT 1"
            )


async def test_the_toolset_uses_it_and_keeps_the_models_code_offline(
    settings: DriverSettings,
) -> None:
    async with online() as box:
        toolset = Toolset(SandboxedDriver(settings, box))
        answer = await toolset.call("query", {"query": "SELECT count() AS n FROM events"})
        with pytest.raises(ConfigError, match="without network"):
            Toolset(SandboxedDriver(settings, box), executor=box)
    assert not answer.is_error, answer.text
    assert "n" in answer.text


@dataclass
class Broken:
    """An executor whose sandbox lacks the package: the program dies before answering."""

    runs: int = 0

    async def run(self, code: str, **_: Any) -> ExecutionResult:
        self.runs += 1
        return ExecutionResult(
            exit_code=1, stdout="", stderr="ModuleNotFoundError: No module named 'posthog_driver'"
        )


async def test_a_sandbox_that_cannot_run_the_driver_says_what_to_check(
    settings: DriverSettings,
) -> None:
    with pytest.raises(DriverError, match="installed in the sandbox") as caught:
        await SandboxedDriver(settings, Broken()).list_objects()  # type: ignore[arg-type]
    assert "ModuleNotFoundError" in str(caught.value)


async def test_queries_wait_for_the_hosts_rate_windows_before_a_sandbox_starts(
    settings: DriverSettings,
) -> None:
    limited = settings.model_copy(update={"query_rate_per_minute": 1, "max_retry_after": 0.0})
    box = Broken()
    driver = SandboxedDriver(limited, box)  # type: ignore[arg-type]
    with pytest.raises(DriverError, match="installed"):
        await driver.execute("SELECT 1")
    with pytest.raises(RateLimitError):
        await driver.execute("SELECT 1")
    assert box.runs == 1


@dataclass
class InProcess:
    """An executor that runs the program in this process (a thread, a temporary folder), so
    coverage sees the sandbox side of each call; the real sandbox runs the same program."""

    monkeypatch: pytest.MonkeyPatch
    folder: Any

    async def run(
        self,
        code: str,
        *,
        files: Mapping[str, bytes] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> ExecutionResult:
        for name, data in (files or {}).items():
            (self.folder / name).write_bytes(data)
        for name, value in (env or {}).items():
            self.monkeypatch.setenv(name, value)
        self.monkeypatch.chdir(self.folder)
        await anyio.to_thread.run_sync(exec, compile(code, "main.py", "exec"), {})
        answer = (self.folder / "answer.json").read_bytes()
        return ExecutionResult(exit_code=0, stdout="", stderr="", files={"answer.json": answer})


async def test_the_program_answers_every_call_kind(
    settings: DriverSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    driver = SandboxedDriver(settings, InProcess(monkeypatch, tmp_path))  # type: ignore[arg-type]
    assert "events" in await driver.list_objects()
    assert "event" in await driver.get_fields("events")
    catalog = await driver.describe(["persons"])
    assert list(catalog) == ["persons"]
    result = await driver.execute("SELECT {n} AS n", {"n": 3})
    assert result.rows == [[3]]
    assert result.columns == ["n"]
    with pytest.raises(QueryError):
        await driver.execute("SELECT nope FROM events")
    with pytest.raises(DriverError, match="unknown sandboxed call"):
        await driver._call("drop_tables")
