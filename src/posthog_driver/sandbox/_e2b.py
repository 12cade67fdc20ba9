"""`E2BExecutor`: run agent-written Python in an E2B cloud sandbox (extra ``e2b``).

Uses the official SDK's ``AsyncSandbox``: ``create(template=..., timeout=...)``, ``files.write``,
``commands.run(..., envs=..., cwd=..., timeout=...)``, ``files.list``/``files.read`` for the
outputs, and ``kill()``. One sandbox per run, killed when the run ends, fails, times out or its
caller is cancelled (automatic cleanup; E2B's own ``timeout`` is the backstop). The code and the
data travel as files and the environment as ``envs``: nothing is pasted into a command line.

Creating a sandbox takes a round trip to E2B (about a second). An entered executor with
``warm=N`` keeps N created ahead; each still serves one run and is killed after it, so nothing of
one run (a process left behind) sees the next run's data or key. A warm sandbox too old to
finish a run inside its E2B lifetime is killed instead of used.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import anyio
from pydantic import SecretStr

from posthog_driver._errors import SandboxUnavailableError
from posthog_driver._logging import get_logger
from posthog_driver.sandbox._executor import PROGRAM, ExecutionResult, check_inputs

__all__ = ["E2BExecutor"]

WORKDIR = "/home/user/posthog-run"
RETRY_SECONDS = 5.0  # after a failed warm-up, before the next attempt
log = get_logger()


class E2BExecutor:
    """Run Python in E2B sandboxes. Needs ``pip install "posthog-driver[e2b]"`` and a key.

    ```python
    async with E2BExecutor(api_key=os.environ["E2B_API_KEY"]) as sandbox:
        result = await sandbox.run("print(1 + 1)")
    ```
    """

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None = None,
        template: str | None = None,
        sandbox_seconds: int = 300,
        max_output_bytes: int = 1 << 20,
        max_files_bytes: int = 8 << 20,
        warm: int = 0,
    ) -> None:
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self.template = template
        self.sandbox_seconds = sandbox_seconds
        self.max_output_bytes = max_output_bytes
        self.max_files_bytes = max_files_bytes
        self.warm = warm
        self.running = 0
        self._ready: list[tuple[float, Any]] = []  # (created at, sandbox), oldest first
        self._wanted = anyio.Event()
        self._group: anyio.abc.TaskGroup | None = None

    def __repr__(self) -> str:
        return (
            f"<E2BExecutor template={self.template!r} warm={self.warm} ready={self.ready} "
            f"running={self.running}>"
        )

    @property
    def ready(self) -> int:
        """Warm sandboxes waiting for a run."""
        return len(self._ready)

    async def __aenter__(self) -> Self:
        _sdk()  # refuse early, with the reason
        if self.warm > 0:
            self._group = anyio.create_task_group()
            await self._group.__aenter__()
            self._group.start_soon(self._keep_warm)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        group, self._group = self._group, None
        if group is not None:
            group.cancel_scope.cancel()
            await group.__aexit__(None, None, None)
        with anyio.CancelScope(shield=True):
            while self._ready:
                await _kill(self._ready.pop()[1])

    async def _keep_warm(self) -> None:
        while True:
            while len(self._ready) < self.warm:
                try:
                    with anyio.CancelScope(shield=True):  # a sandbox made is one we can kill
                        sandbox = await self._create()
                except Exception as exc:  # noqa: BLE001 - E2B unreachable: runs say why
                    log.warning("sandbox_warm_up_failed", error=type(exc).__name__)
                    await anyio.sleep(RETRY_SECONDS)
                    continue
                self._ready.append((time.monotonic(), sandbox))
            self._wanted = anyio.Event()
            await self._wanted.wait()

    async def _create(self) -> Any:
        options: dict[str, Any] = {"timeout": self.sandbox_seconds}
        if self.template is not None:
            options["template"] = self.template
        if self._api_key is not None:
            options["api_key"] = self._api_key.get_secret_value()
        return await _sdk().AsyncSandbox.create(**options)

    async def _take(self, timeout: float) -> Any:
        """A warm sandbox with time left in its E2B lifetime for this run, or None."""
        while self._ready:
            created, sandbox = self._ready.pop(0)
            self._wanted.set()
            if time.monotonic() - created + timeout + 10 < self.sandbox_seconds:
                return sandbox
            with anyio.CancelScope(shield=True):
                await _kill(sandbox)
        return None

    async def run(
        self,
        code: str,
        *,
        files: Mapping[str, bytes] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> ExecutionResult:
        """Run ``code`` as ``main.py`` with ``files`` beside it, ``env`` as its environment."""
        files, env = dict(files or {}), dict(env or {})
        check_inputs(code, files, env)
        sdk = _sdk()
        sandbox = await self._take(timeout) or await self._create()
        self.running += 1
        try:
            for name, data in {**files, PROGRAM: code.encode("utf-8")}.items():
                await sandbox.files.write(f"{WORKDIR}/{name}", data)
            return await self._execute(sdk, sandbox, env, timeout, set(files))
        finally:
            with anyio.CancelScope(shield=True):
                await _kill(sandbox)
            self.running -= 1

    async def _execute(
        self, sdk: Any, sandbox: Any, env: dict[str, str], timeout: float, inputs: set[str]
    ) -> ExecutionResult:
        exit_error = getattr(sdk, "CommandExitException", None) or _NeverRaised
        exit_code: int | None = None
        stdout = stderr = ""
        with anyio.move_on_after(timeout) as scope:
            try:
                done = await sandbox.commands.run(
                    f"python3 {PROGRAM}", cwd=WORKDIR, envs=env, timeout=timeout
                )
            except exit_error as exc:  # the SDK raises for a non-zero exit status
                done = exc
            exit_code = int(done.exit_code)
            stdout, stderr = str(done.stdout or ""), str(done.stderr or "")
        cap = self.max_output_bytes
        truncated = len(stdout) > cap or len(stderr) > cap
        outputs, dropped = await self._outputs(sandbox, inputs)
        return ExecutionResult(
            exit_code=None if scope.cancelled_caught else exit_code,
            stdout=stdout[:cap],
            stderr=stderr[:cap],
            files=outputs,
            timed_out=scope.cancelled_caught,
            truncated=truncated or dropped,
        )

    async def _outputs(self, sandbox: Any, inputs: set[str]) -> tuple[dict[str, bytes], bool]:
        outputs: dict[str, bytes] = {}
        total, dropped = 0, False
        with anyio.move_on_after(30):
            for entry in await sandbox.files.list(WORKDIR):
                name, kind = str(entry.name), str(getattr(entry.type, "value", entry.type))
                if name in inputs or name == PROGRAM or kind != "file":
                    continue
                data = bytes(await sandbox.files.read(f"{WORKDIR}/{name}", format="bytes"))
                if total + len(data) > self.max_files_bytes:
                    dropped = True
                    continue
                outputs[name] = data
                total += len(data)
        return outputs, dropped


async def _kill(sandbox: Any) -> None:
    # never raises over a run's result: E2B's own timeout ends a sandbox this cannot kill
    with anyio.move_on_after(10):
        try:
            await sandbox.kill()
        except Exception as exc:  # noqa: BLE001
            log.warning("sandbox_kill_failed", error=type(exc).__name__)


class _NeverRaised(Exception):
    """Stands in for the SDK's exit exception where an SDK version has none."""


def _sdk() -> Any:
    try:
        return importlib.import_module("e2b")
    except ImportError:
        raise SandboxUnavailableError(
            'E2B sandboxes need the e2b extra: pip install "posthog-driver[e2b]" (in a clone: '
            "uv sync --extra e2b) and an E2B_API_KEY; or use LocalSandboxExecutor on Linux."
        ) from None
