"""`Toolset`: the driver as four agent tools, framework-neutral.

`await toolset.call(name, arguments)` always returns a `ToolResult`; it never raises for bad
arguments, an unknown tool or a `DriverError` (those come back with `is_error=True` and text
that says what to change). Anything else is logged and masked to a generic error result, so no
internals reach the model. Only cancellation propagates, as it must.

Adapters (Anthropic Messages API, MCP, Claude Agent SDK) translate `specs` and `ToolResult` to
their wire formats and add nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from posthog_driver._catalog import FieldInfo
from posthog_driver._errors import ConfigError, DriverError, QueryError
from posthog_driver._logging import get_logger, redact
from posthog_driver._results import QueryResult
from posthog_driver._settings import DriverSettings
from posthog_driver.sandbox._executor import Executor
from posthog_driver.tools import rendering
from posthog_driver.tools.feedback import UNEXPECTED_ERROR, argument_problems, explain
from posthog_driver.tools.python_tool import Datasets, run_python
from posthog_driver.tools.rendering import RenderLimits
from posthog_driver.tools.specs import PYTHON_SPEC, TOOL_SPECS, ToolSpec

__all__ = ["ToolDriver", "ToolResult", "Toolset"]

log = get_logger()
LOCATE_TIMEOUT = 10.0  # seconds for validate() to find where a rejected query went wrong


class ToolDriver(Protocol):
    """What the tools call: an `AsyncDriver`, or a `SandboxedDriver` that runs each call in a
    sandbox."""

    settings: DriverSettings

    async def list_objects(self) -> list[str]: ...

    async def get_fields(self, name: str) -> dict[str, FieldInfo]: ...

    async def describe(self, objects: Iterable[str] | None = None) -> Any: ...

    async def execute(self, hogql: str, values: dict[str, Any] | None = None) -> QueryResult: ...


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call gives back: `text` for the model, whether it is an error, and PNG
    `images` (charts from the python tool)."""

    text: str
    is_error: bool = False
    images: tuple[bytes, ...] = ()


class Toolset:
    """The driver's tools (`list_objects`, `get_fields`, `query`, `describe`) for any agent loop.

    ```python
    async with AsyncDriver.from_env() as driver:
        toolset = Toolset(driver)
        result = await toolset.call("query", {"query": "SELECT count() FROM events LIMIT 1"})
        print(result.text, result.is_error)
    ```

    `max_rows`, `max_chars` and `max_cell_chars` cap each rendering (see `RenderLimits`); the
    defaults keep any result well under Claude Code's 25,000-token tool-result cap.

    With an `executor` (a sandbox, e.g. `LocalSandboxExecutor`), a fifth tool, `python`, runs
    the model's code there on the rows of its earlier `query` calls; charts come back as images.
    """

    def __init__(
        self,
        driver: ToolDriver,
        *,
        max_rows: int = rendering.DEFAULT_MAX_ROWS,
        max_chars: int = rendering.DEFAULT_MAX_CHARS,
        max_cell_chars: int = rendering.DEFAULT_MAX_CELL_CHARS,
        executor: Executor | None = None,
        python_timeout: float = 60.0,
    ) -> None:
        if executor is not None and getattr(executor, "network", False):
            raise ConfigError(
                "The python tool runs the model's code: give it an executor without network "
                "(network=True is only for SandboxedDriver's own calls)."
            )
        self.driver = driver
        self.executor = executor
        self.python_timeout = python_timeout
        self._datasets = Datasets()
        self._specs = TOOL_SPECS + ((PYTHON_SPEC,) if executor is not None else ())
        self.limits = RenderLimits(
            max_rows=max_rows, max_chars=max_chars, max_cell_chars=max_cell_chars
        )
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[str | ToolResult]]] = {
            "list_objects": self._list_objects,
            "get_fields": self._get_fields,
            "query": self._query,
            "describe": self._describe,
            "python": self._python,
        }

    def __repr__(self) -> str:
        return f"<Toolset tools={self.names} limits={self.limits}>"

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        """The tools' names, descriptions and JSON input schemas."""
        return self._specs

    @property
    def names(self) -> list[str]:
        """The tool names, in the order they are offered."""
        return [spec.name for spec in self._specs]

    def anthropic_tools(self) -> list[dict[str, Any]]:
        """The tools as the Messages API's `tools=` list (name, description, input_schema)."""
        return [
            {"name": s.name, "description": s.description, "input_schema": s.input_schema}
            for s in self._specs
        ]

    async def call(self, name: str, arguments: Any = None) -> ToolResult:
        """Run tool `name` with `arguments` (a dict, or None for none); never raises for errors."""
        spec = next((s for s in self._specs if s.name == name), None)
        if spec is None:
            return self._error(
                f"There is no tool named {name!r}. The tools are: {', '.join(self.names)}."
            )
        arguments = {} if arguments is None else arguments
        problems = argument_problems(spec, arguments)
        if problems:
            return self._error(
                f"Invalid arguments for {name}: {'; '.join(problems)}. Fix them and call it again."
            )
        try:
            answer = await self._handlers[name](arguments)
        except DriverError as exc:
            log.info("tool_error", tool=name, error=type(exc).__name__)
            return self._error(explain(exc))
        except Exception:
            # Masked on purpose: a traceback's text could carry internals or configuration.
            log.exception("tool_crashed", tool=name)
            return self._error(UNEXPECTED_ERROR)
        if isinstance(answer, ToolResult):
            return ToolResult(self._scrub(answer.text), answer.is_error, answer.images)
        return ToolResult(self._scrub(answer))

    async def _list_objects(self, _arguments: dict[str, Any]) -> str:
        return rendering.render_objects(await self.driver.list_objects())

    async def _get_fields(self, arguments: dict[str, Any]) -> str:
        name = arguments["object_name"]
        fields = await self.driver.get_fields(name)
        return rendering.render_fields(name, fields, self.limits, search=arguments.get("search"))

    async def _query(self, arguments: dict[str, Any]) -> str:
        try:
            result = await self.driver.execute(arguments["query"], arguments.get("values"))
        except QueryError as exc:
            if exc.status_code == 400:  # a mistake in the HogQL: show the model where it is
                exc.where = await self._locate(arguments["query"], arguments.get("values"))
            raise
        text = rendering.render_result(result, self.limits)
        if self.executor is None:
            return text
        name = self._datasets.add(result)
        return f"{text}\n(All {len(result.rows)} rows are `{name}` for the python tool.)"

    async def _locate(self, query: str, values: dict[str, Any] | None) -> str:
        """The failed query's line with a caret under the first error (PostHog's
        `HogQLMetadata`, nothing run), or '' where it cannot be had quickly."""
        validate = getattr(self.driver, "validate", None)
        if validate is None:
            return ""
        try:
            checked = await validate(query, values, timeout=LOCATE_TIMEOUT)
        except DriverError:
            return ""
        first = next((e for e in checked.errors if e.line is not None), None)
        if first is None:
            return ""
        return f"line {first.line}, column {first.column}:\n{checked.pointer()}"

    async def _python(self, arguments: dict[str, Any]) -> ToolResult:
        assert self.executor is not None  # the tool is offered only with an executor
        run = await run_python(
            self.executor,
            arguments["code"],
            self._datasets,
            timeout=self.python_timeout,
            max_chars=self.limits.max_chars,
        )
        return ToolResult(run.text, is_error=run.failed, images=run.images)

    async def _describe(self, arguments: dict[str, Any]) -> str:
        catalog = await self.driver.describe(arguments.get("objects"))
        return rendering.render_catalog(catalog, self.limits)

    def _error(self, text: str) -> ToolResult:
        return ToolResult(self._scrub(text), is_error=True)

    def _scrub(self, text: str) -> str:
        # The driver never puts the key in messages; this is the second wall, for rows or
        # server messages that happen to echo it.
        key = self.driver.settings.api_key.get_secret_value()
        return redact(text.replace(key, "***"))
