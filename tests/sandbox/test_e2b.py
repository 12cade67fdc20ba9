"""`E2BExecutor` against a stand-in for the part of the e2b SDK it uses.

E2B cannot be reached from here. The stand-in keeps the SDK's surface and behaviour that the
executor relies on (``AsyncSandbox.create``, ``files.write/list/read``, ``commands.run`` raising
``CommandExitException`` on a non-zero exit, ``kill``) and runs the (test's own, trusted) code
in a temporary directory. A manual check against a real account is in docs/sandbox.md.
"""

from __future__ import annotations

import enum
import subprocess
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

from posthog_driver import SandboxUnavailableError, ValidationError
from posthog_driver.sandbox import E2BExecutor

E2B_KEY = "e2b_TESTKEY0123456789abcdef"


class FileType(enum.Enum):
    FILE = "file"
    DIR = "dir"


@dataclass
class EntryInfo:
    name: str
    type: FileType
    path: str


class CommandExitException(Exception):
    def __init__(self, stdout: str, stderr: str, exit_code: int) -> None:
        super().__init__(stderr)
        self.stdout, self.stderr, self.exit_code = stdout, stderr, exit_code


@dataclass
class CommandResult:
    stdout: str
    stderr: str
    exit_code: int


class FakeSandbox:
    """One stand-in sandbox: a temporary directory that paths under /home/user map into."""

    created: ClassVar[list[FakeSandbox]] = []

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.root = Path(tempfile.mkdtemp(prefix="fake-e2b-"))
        self.killed = False
        self.commands_run: list[dict[str, Any]] = []
        self.files = types.SimpleNamespace(write=self._write, list=self._list, read=self._read)
        self.commands = types.SimpleNamespace(run=self._run)

    @classmethod
    async def create(cls, **options: Any) -> FakeSandbox:
        sandbox = cls(options)
        cls.created.append(sandbox)
        return sandbox

    def _local(self, path: str) -> Path:
        return self.root / path.removeprefix("/home/user/")

    async def _write(self, path: str, data: bytes | str) -> None:
        target = self._local(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data if isinstance(data, bytes) else data.encode())

    async def _list(self, path: str) -> list[EntryInfo]:
        folder = self._local(path)
        return [
            EntryInfo(p.name, FileType.FILE if p.is_file() else FileType.DIR, str(p))
            for p in folder.iterdir()
        ]

    async def _read(self, path: str, format: str = "text") -> bytes | str:
        data = self._local(path).read_bytes()
        return data if format == "bytes" else data.decode()

    async def _run(self, cmd: str, *, cwd: str, envs: dict[str, str], timeout: float) -> Any:
        self.commands_run.append({"cmd": cmd, "cwd": cwd, "envs": envs, "timeout": timeout})
        program = cmd.rsplit(maxsplit=1)[-1]

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(  # noqa: S603 - the test's own code, in a temporary folder
                [sys.executable, "-I", program],
                cwd=self._local(cwd),
                env={"PATH": "/usr/bin:/bin", **envs},
                capture_output=True,
                text=True,
                timeout=timeout + 5,
                check=False,
            )

        done = await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
        if done.returncode != 0:
            raise CommandExitException(done.stdout, done.stderr, done.returncode)
        return CommandResult(done.stdout, done.stderr, 0)

    async def kill(self) -> None:
        self.killed = True
        if self.options.get("template") == "fails-to-die":
            raise ConnectionError("E2B unreachable")


@pytest.fixture
def e2b(monkeypatch: pytest.MonkeyPatch) -> type[FakeSandbox]:
    module = types.ModuleType("e2b")
    module.AsyncSandbox = FakeSandbox  # type: ignore[attr-defined]
    module.CommandExitException = CommandExitException  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "e2b", module)
    FakeSandbox.created = []
    return FakeSandbox


async def test_a_run_writes_its_files_passes_env_and_kills_the_sandbox(e2b):
    async with E2BExecutor(api_key=E2B_KEY, template="py-data") as executor:
        result = await executor.run(
            "import os\nprint(open('rows.csv').read().strip(), os.environ['SECRET'])\n"
            "open('out.txt', 'w').write('done')",
            files={"rows.csv": b"n\n42\n"},
            env={"SECRET": "s3"},
        )
    (sandbox,) = e2b.created
    assert result.ok
    assert result.stdout.split() == ["n", "42", "s3"]
    assert result.files == {"out.txt": b"done"}
    assert sandbox.killed
    assert sandbox.options == {"timeout": 300, "template": "py-data", "api_key": E2B_KEY}
    (command,) = sandbox.commands_run
    assert command["envs"] == {"SECRET": "s3"}
    assert "s3" not in command["cmd"]  # values travel as envs and files, never as code


async def test_a_failing_program_gives_its_exit_status_and_stderr(e2b):
    async with E2BExecutor() as executor:
        result = await executor.run("raise SystemExit('boom')")
    assert result.exit_code == 1
    assert "boom" in result.stderr
    assert e2b.created[0].killed


async def test_a_program_past_its_time_is_stopped_and_its_sandbox_killed(e2b):
    async with E2BExecutor() as executor:
        result = await executor.run("import time\ntime.sleep(30)", timeout=0.5)
    assert result.timed_out
    assert result.exit_code is None
    assert e2b.created[0].killed


async def test_cancelling_the_caller_kills_the_sandbox(e2b):
    async with E2BExecutor() as executor, anyio.create_task_group() as group:
        group.start_soon(executor.run, "import time\ntime.sleep(30)")
        await anyio.wait_all_tasks_blocked()
        group.cancel_scope.cancel()
    assert e2b.created[0].killed
    assert executor.running == 0


async def test_the_key_is_in_no_repr(e2b):
    executor = E2BExecutor(api_key=E2B_KEY)
    assert E2B_KEY not in repr(executor)


async def test_bad_inputs_are_refused_before_a_sandbox_is_made(e2b):
    async with E2BExecutor() as executor:
        with pytest.raises(ValidationError):
            await executor.run("print(1)", files={"../x": b""})
    assert e2b.created == []


async def test_without_the_sdk_it_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "e2b", None)  # import fails
    with pytest.raises(SandboxUnavailableError, match=r"posthog-driver\[e2b\]"):
        async with E2BExecutor():
            pass  # pragma: no cover - refused on entry


async def test_a_warm_pool_has_sandboxes_made_before_the_run_and_each_serves_one_run(e2b):
    async with E2BExecutor(warm=2) as executor:
        with anyio.fail_after(5):
            while executor.ready < 2:  # noqa: ASYNC110 - made in the background
                await anyio.sleep(0.01)
        made_ahead = list(e2b.created)
        first = await executor.run("print('one')")
        second = await executor.run("print('two')", env={"SECRET": "s3"})
        assert [first.stdout.strip(), second.stdout.strip()] == ["one", "two"]
        # the runs used the sandboxes made ahead, each for one run, then killed them
        assert [len(s.commands_run) for s in made_ahead] == [1, 1]
        assert all(s.killed for s in made_ahead)
        with anyio.fail_after(5):
            while executor.ready < 2:  # noqa: ASYNC110 - topped up in the background
                await anyio.sleep(0.01)
        assert len(e2b.created) == 4
    assert executor.ready == 0
    assert all(s.killed for s in e2b.created)  # closing kills the ones still waiting


async def test_a_warm_sandbox_too_old_for_the_run_is_killed_not_used(e2b):
    async with E2BExecutor(warm=1, sandbox_seconds=20) as executor:
        with anyio.fail_after(5):
            while executor.ready < 1:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        old = e2b.created[0]
        # 20 s of E2B life cannot hold a 30 s run: the warm one is killed, a new one made
        result = await executor.run("print('fresh')", timeout=30)
    assert result.stdout.strip() == "fresh"
    assert old.killed
    assert old.commands_run == []


async def test_a_sandbox_that_cannot_be_killed_does_not_hide_the_result(e2b):
    async with E2BExecutor(template="fails-to-die") as executor:
        result = await executor.run("print('done')")
    assert result.stdout.strip() == "done"
