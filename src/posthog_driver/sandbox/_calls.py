"""`SandboxedDriver`: the driver's own calls run inside a sandbox (the guide's mode, done safely).

Each call (`list_objects`, `get_fields`, `describe`, `execute`, `query`) runs the fixed program
`PROGRAM` in an executor: it reads the call from `call.json`, builds
`AsyncDriver(DriverSettings.from_env())`, and writes the answer (or the `DriverError`) to
`answer.json`. The API key travels only in that process's environment (`POSTHOG_API_KEY`), the
call's arguments (HogQL, names, values) only as a file: neither is ever program text, and no
file holds the key. What the host parses back is JSON data.

The sandbox needs the network to reach PostHog (`LocalSandboxExecutor(network=True)`, or E2B
with a template that has posthog-driver installed); only this program of ours runs with it,
never the model's code. Each call is a fresh driver, so the host bounds the calls it sends:
queries take a slot (`max_concurrent_queries`) and a place in the query rate windows here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import anyio

from posthog_driver import _errors
from posthog_driver._catalog import FieldInfo
from posthog_driver._driver import AsyncDriver
from posthog_driver._errors import DriverError, RateLimitError, RequestTimeoutError
from posthog_driver._limits import RateLimit, WaitTooLong, budget
from posthog_driver._logging import redact
from posthog_driver._results import QueryResult, Rows
from posthog_driver._settings import DriverSettings, env_name
from posthog_driver.sandbox._executor import Executor

__all__ = ["SandboxedDriver"]

PROGRAM = "from posthog_driver.sandbox._calls import main\nmain()\n"
CALL_FILE, ANSWER_FILE = "call.json", "answer.json"
START_SECONDS = 30.0  # a sandbox's start and imports, on top of the call's own deadline


class SandboxedDriver:
    """The part of `AsyncDriver` that agent tools use, each call run inside `executor`.

    ```python
    settings = DriverSettings.from_env()
    async with LocalSandboxExecutor(network=True, warm=1, preload=["posthog_driver"]) as box:
        driver = SandboxedDriver(settings, box)
        toolset = Toolset(driver)  # the model's tool calls now run in the sandbox
    ```
    """

    def __init__(self, settings: DriverSettings, executor: Executor) -> None:
        self.settings = settings
        self.executor = executor
        self._slots = anyio.CapacityLimiter(settings.max_concurrent_queries)
        self._queries = RateLimit(
            "query",
            [
                (budget(settings.query_rate_per_minute), 60.0),
                (budget(settings.query_rate_per_hour), 3600.0),
            ],
        )

    def __repr__(self) -> str:
        return f"<SandboxedDriver host={self.settings.host!r} executor={self.executor!r}>"

    async def list_objects(self) -> list[str]:
        """Names of the HogQL tables this project has, sorted."""
        return cast("list[str]", await self._call("list_objects"))

    async def get_fields(self, name: str) -> dict[str, FieldInfo]:
        """The fields of table `name` (see `AsyncDriver.get_fields`)."""
        return cast("dict[str, FieldInfo]", await self._call("get_fields", name=name))

    async def describe(
        self, objects: Iterable[str] | None = None
    ) -> dict[str, dict[str, FieldInfo]]:
        """Fields of many objects (default: all) in one sandboxed call."""
        names = None if objects is None else list(objects)
        return cast("dict[str, dict[str, FieldInfo]]", await self._call("describe", objects=names))

    async def execute(self, hogql: str, values: dict[str, Any] | None = None) -> QueryResult:
        """Run a HogQL query in the sandbox and return its `QueryResult`."""
        async with self._slots:
            await self._admit()
            body = await self._call("execute", hogql=hogql, values=values)
        return QueryResult.from_response(body)

    async def query(self, hogql: str, values: dict[str, Any] | None = None) -> Rows:
        """Run a HogQL query in the sandbox; rows as dicts."""
        return (await self.execute(hogql, values)).as_dicts()

    async def _admit(self) -> None:
        try:
            await self._queries.acquire(max_wait=self.settings.max_retry_after)
        except WaitTooLong as exc:
            raise RateLimitError(
                f"the query rate windows have no room for {exc.seconds:.0f} s; retry later or "
                "raise POSTHOG_MAX_RETRY_AFTER.",
                retry_after=exc.seconds,
            ) from None

    async def _call(self, method: str, **arguments: Any) -> Any:
        call = json.dumps({"method": method, "arguments": arguments}).encode()
        result = await self.executor.run(
            PROGRAM,
            files={CALL_FILE: call},
            env=_environment(self.settings),
            timeout=self.settings.call_timeout + START_SECONDS,
        )
        answer = result.files.get(ANSWER_FILE)
        if answer is None:
            if result.timed_out:
                raise RequestTimeoutError(
                    f"The sandboxed {method} call did not finish within "
                    f"{self.settings.call_timeout + START_SECONDS:.0f} s."
                )
            tail = redact(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "")
            key = self.settings.api_key.get_secret_value()
            raise DriverError(
                f"The sandboxed {method} call ended without an answer (exit status "
                f"{result.exit_code}): {tail.replace(key, '***') or 'no error output'}. Check "
                "that posthog-driver is installed in the sandbox and that it can reach the host."
            )
        data = json.loads(answer)
        if "error" in data:
            raise _rebuilt(data["error"])
        return data["result"]


def _environment(settings: DriverSettings) -> dict[str, str]:
    """The settings as `POSTHOG_*` variables: how the key (and the rest) reach the sandbox."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        env[env_name(name)] = str(text)
    return env


def _rebuilt(error: dict[str, Any]) -> DriverError:
    """The `DriverError` the sandboxed driver raised, as the same class with the same fields."""
    cls = getattr(_errors, str(error.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, DriverError)):
        cls = DriverError
    rebuilt = cls.__new__(cls)
    DriverError.__init__(rebuilt, str(error.get("message", "")))
    if isinstance(rebuilt, _errors.NotFoundError):
        rebuilt.suggestions = []  # the field its __init__ sets, in case the answer lacks it
    for name, value in error.get("fields", {}).items():
        if name.isidentifier() and not name.startswith("_") and _plain(value):
            setattr(rebuilt, name, value)
    return rebuilt


def _plain(value: object) -> bool:
    """A field an error carries across the sandbox's boundary: a scalar or a list of strings
    (a `NotFoundError`'s `suggestions`)."""
    if isinstance(value, list):
        return all(isinstance(item, str) for item in value)
    return isinstance(value, str | int | float | bool | None)


# ---- inside the sandbox ---------------------------------------------------------------------


def main() -> None:
    """Answer the call in `call.json` into `answer.json` (what `PROGRAM` runs)."""
    call = json.loads(Path(CALL_FILE).read_text(encoding="utf-8"))
    answer = asyncio.run(_answer(call["method"], call["arguments"]))
    Path(ANSWER_FILE).write_text(json.dumps(answer), encoding="utf-8")


async def _answer(method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    try:
        async with AsyncDriver(DriverSettings.from_env()) as driver:
            return {"result": await _dispatch(driver, method, arguments)}
    except DriverError as exc:
        fields = {name: value for name, value in vars(exc).items() if _plain(value)}
        return {"error": {"type": type(exc).__name__, "message": exc.message, "fields": fields}}


async def _dispatch(driver: AsyncDriver, method: str, arguments: dict[str, Any]) -> Any:
    if method == "list_objects":
        return await driver.list_objects()
    if method == "get_fields":
        return await driver.get_fields(arguments["name"])
    if method == "describe":
        return await driver.describe(arguments["objects"])
    if method == "execute":
        result = await driver.execute(arguments["hogql"], arguments["values"])
        return {
            "columns": result.columns,
            "types": [[c, t] for c, t in zip(result.columns, result.types, strict=True)],
            "results": result.rows,
            "hasMore": result.has_more,
            "hogql": result.hogql,
            "limit": result.limit,
            "offset": result.offset,
            "timings": result.timings,
        }
    raise DriverError(f"unknown sandboxed call {method!r}")
