"""Agent-written code in the bubblewrap executor: it computes, and every escape is contained.

Each escape is a real program run in a real sandbox (no mocks): read the host's secrets, write
outside, reach the network, read the key from the environment or /proc, fork, allocate, loop,
flood the output, fill the disk. After each, the host and the next run are unaffected.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from posthog_driver import SandboxUnavailableError, ValidationError
from posthog_driver.sandbox import LocalSandboxExecutor, find_bubblewrap

KEY = "phx_SANDBOXKEY0123456789abcdefghijklmnopqrstuvw"

try:
    find_bubblewrap()
except SandboxUnavailableError as exc:  # pragma: no cover - CI installs bubblewrap
    pytest.skip(f"no bubblewrap here: {exc}", allow_module_level=True)


@pytest.fixture(autouse=True)
def sandbox_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    # each test's sandbox folders apart from other tests' (and other xdist workers'), and not
    # below the test's working directory, which the sandbox must not see
    folder = tmp_path_factory.mktemp("sandboxes")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture(params=[0, 1], ids=["cold", "warm"])
async def sandbox(
    request: pytest.FixtureRequest, sandbox_folder: Path
) -> AsyncIterator[LocalSandboxExecutor]:
    # every escape is tried on a sandbox started for the run and on one started ahead (warm;
    # without the slow preload, which test_a_warm_sandbox_has_pandas_loaded_already covers)
    executor = LocalSandboxExecutor(max_output_bytes=64 * 1024, warm=request.param, preload=())
    async with executor:
        yield executor
        assert executor.running == 0  # every sandbox is gone once its run returned
        assert executor.ready == request.param  # and the pool was topped up
    assert executor.ready == 0


@pytest.fixture(autouse=True)
def _key_in_the_host_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTHOG_API_KEY", KEY)


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port listening on the host's loopback (as the local PostHog server would)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


async def test_code_computes_on_its_input_files(sandbox: LocalSandboxExecutor) -> None:
    code = "import pandas as pd\nrows = pd.read_csv('rows.csv')\nprint(int(rows['n'].sum()))"
    result = await sandbox.run(code, files={"rows.csv": b"n\n1\n2\n39\n"})
    assert result.ok, result.stderr
    assert result.stdout.strip() == "42"


async def test_a_chart_comes_back_as_a_png_file(sandbox: LocalSandboxExecutor) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.savefig('chart.png')\n"
    result = await sandbox.run(code)
    assert result.ok, result.stderr
    assert result.files["chart.png"].startswith(b"\x89PNG")


async def test_values_travel_as_files_and_environment_never_as_code(
    sandbox: LocalSandboxExecutor,
) -> None:
    tricky = "'; import os; os.system('touch /tmp/pwned') #"
    code = "import os\nprint(open('value.txt').read() == os.environ['VALUE'])"
    result = await sandbox.run(code, files={"value.txt": tricky.encode()}, env={"VALUE": tricky})
    assert result.stdout.strip() == "True"


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "main.py", "", "a/b", ".."])
async def test_input_file_names_are_plain_names(sandbox: LocalSandboxExecutor, name: str) -> None:
    with pytest.raises(ValidationError, match="not allowed"):
        await sandbox.run("print(1)", files={name: b"x"})


@pytest.mark.parametrize(
    "path", ["/etc/shadow", "/etc/passwd", "/root/.bash_history", "/proc/1/root/etc/hostname"]
)
async def test_host_files_cannot_be_read(sandbox: LocalSandboxExecutor, path: str) -> None:
    result = await sandbox.run(f"print(open({path!r}).read())")
    assert result.exit_code != 0
    assert "Error" in result.stderr


async def test_the_working_tree_and_home_are_not_visible(sandbox: LocalSandboxExecutor) -> None:
    here, ssh = str(Path.cwd()), str(Path.home() / ".ssh")
    code = f"import os\nprint(os.path.exists({here!r}), os.path.exists({ssh!r}))"
    result = await sandbox.run(code)
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("path", ["/usr/pwned", "/etc/pwned", "/pwned", "/root/pwned"])
async def test_nothing_is_written_outside_the_working_directory(
    sandbox: LocalSandboxExecutor, path: str
) -> None:
    # /usr is a read-only view; / and /root are the sandbox's own throwaway root
    await sandbox.run(f"open({path!r}, 'w').write('x')")
    assert not await anyio.Path(path).exists()


async def test_files_written_to_tmp_stay_in_the_sandbox(sandbox: LocalSandboxExecutor) -> None:
    marker = f"/tmp/posthog-sandbox-marker-{os.getpid()}"  # noqa: S108 - the point of the test
    result = await sandbox.run(f"open({marker!r}, 'w').write('x'); print('written')")
    assert result.stdout.strip() == "written"
    assert not await anyio.Path(marker).exists()


async def test_no_network_not_even_the_hosts_loopback(
    sandbox: LocalSandboxExecutor, listener: int
) -> None:
    code = (
        "import socket\n"
        f"socket.create_connection(('127.0.0.1', {listener}), timeout=2)\n"
        "print('connected')"
    )
    result = await sandbox.run(code)
    assert "connected" not in result.stdout
    assert "ConnectionRefusedError" in result.stderr or "OSError" in result.stderr


async def test_the_key_is_in_neither_the_environment_nor_proc(
    sandbox: LocalSandboxExecutor,
) -> None:
    code = (
        "import os, glob\n"
        "seen = repr(dict(os.environ))\n"
        "for path in glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        seen += open(path, 'rb').read().decode(errors='replace')\n"
        "    except OSError:\n"
        "        pass\n"
        "print(seen)"
    )
    result = await sandbox.run(code)
    assert result.ok, result.stderr
    assert KEY not in result.stdout
    assert "phx_" not in result.stdout


async def test_a_fork_bomb_is_contained_and_the_next_run_works(
    sandbox: LocalSandboxExecutor,
) -> None:
    code = (
        "import os, time\n"
        "children = 0\n"
        "for _ in range(2000):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    children += 1\n"
        "print(children)"
    )
    result = await sandbox.run(code, timeout=20)
    assert int(result.stdout.strip()) < sandbox.max_processes
    assert (await sandbox.run("print('fine')")).stdout.strip() == "fine"


async def test_a_memory_bomb_fails_inside(sandbox: LocalSandboxExecutor) -> None:
    result = await sandbox.run("x = bytearray(8 << 30)\nprint('allocated')")
    assert "allocated" not in result.stdout
    assert "MemoryError" in result.stderr


async def test_an_endless_loop_is_killed_at_the_time_limit(sandbox: LocalSandboxExecutor) -> None:
    result = await sandbox.run("while True:\n    pass", timeout=1)
    assert result.timed_out
    assert result.exit_code is None
    assert not result.ok


async def test_a_flood_of_output_is_cut_where_it_is_produced(
    sandbox: LocalSandboxExecutor,
) -> None:
    result = await sandbox.run("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)")
    assert result.truncated
    assert len(result.stdout) <= sandbox.max_output_bytes


async def test_a_huge_file_stops_at_the_size_limit(sandbox: LocalSandboxExecutor) -> None:
    result = await sandbox.run("open('big.bin', 'wb').write(b'x' * (200 << 20))")
    assert "File too large" in result.stderr
    assert sum(len(data) for data in result.files.values()) <= sandbox.max_files_bytes


async def test_cancelling_the_caller_kills_the_sandbox(sandbox: LocalSandboxExecutor) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(sandbox.run, "import time\ntime.sleep(60)")
        with anyio.fail_after(10):
            while sandbox.running == 0:  # noqa: ASYNC110 - no event to wait on
                await anyio.sleep(0.01)
        group.cancel_scope.cancel()
    assert sandbox.running == 0


def test_without_bubblewrap_it_refuses_and_runs_nothing(monkeypatch: Any) -> None:
    import posthog_driver.sandbox._local as executor  # noqa: PLC0415

    def missing() -> str:
        raise SandboxUnavailableError("bubblewrap (bwrap) is not installed")

    monkeypatch.setattr(executor, "find_bubblewrap", missing)

    async def attempt() -> None:
        async with LocalSandboxExecutor() as sandbox:
            await sandbox.run("print(1)")  # pragma: no cover - refused on entry

    with pytest.raises(SandboxUnavailableError, match="not installed"):
        anyio.run(attempt)


async def test_many_files_cannot_fill_the_hosts_disk(sandbox: LocalSandboxExecutor) -> None:
    code = (
        "import os\n"
        "os.makedirs('deep/er', exist_ok=True)\n"
        "for i in range(1_000_000):\n"
        "    with open(f'deep/er/f{i}', 'wb') as f:\n"
        "        f.write(b'x' * (1 << 20))\n"
    )
    result = await sandbox.run(code, timeout=30)
    assert result.truncated
    assert "working directory went past" in result.stderr
    assert result.exit_code is None


async def test_the_private_tmp_is_size_limited(sandbox: LocalSandboxExecutor) -> None:
    code = (
        "written = 0\n"
        "try:\n"
        "    with open('/tmp/fill', 'wb') as f:\n"
        "        for _ in range(100_000):\n"
        "            f.write(b'x' * (1 << 20))\n"
        "            written += 1\n"
        "except OSError as exc:\n"
        "    print(written, exc.errno)\n"
    )
    sandbox_small = LocalSandboxExecutor(max_disk_bytes=32 << 20, file_size_bytes=1 << 30)
    result = await sandbox_small.run(code)
    written, errno = result.stdout.split()
    assert int(written) <= 32
    assert errno == "28"  # ENOSPC: the tmpfs is full, the host's disk is untouched


ESCAPES = Path(__file__).parent / "escapes"


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the attack injects x86-64 syscalls")
@pytest.mark.parametrize("env", [{}, {"HANG": "1"}], ids=["closes_pipes", "keeps_pipes"])
async def test_code_that_hijacks_the_sandboxs_pid_1_dies_with_the_run(
    sandbox: LocalSandboxExecutor, env: dict[str, str]
) -> None:
    # found by an attack run: ptrace the sandbox's init to clear its parent-death signal (and
    # close its pipes), then leave a process behind; the run must end and take it along
    code = (ESCAPES / "ptrace_survivor.py").read_text()
    with anyio.fail_after(60):
        result = await sandbox.run(code, env=env, timeout=3)
    assert result.timed_out
    survivors = [
        pid
        for pid in os.listdir("/proc")
        if pid.isdigit() and _cmdline(pid).startswith("SANDBOX_SURVIVOR")
    ]
    assert survivors == []


def _cmdline(pid: str) -> str:
    try:
        return (Path("/proc") / pid / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


async def test_directories_nested_past_pythons_recursion_limit_are_watched_and_removed(
    sandbox: LocalSandboxExecutor,
) -> None:
    code = (ESCAPES / "deep_directories.py").read_text()
    before = _sandbox_folders()  # with a warm sandbox waiting, its folder is there already
    result = await sandbox.run(code, timeout=30)
    assert result.truncated
    assert "working directory went past" in result.stderr
    assert len(_sandbox_folders() - before) == sandbox.warm  # only the new warm one


def _sandbox_folders() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("posthog-sandbox-")}


def _processes_named(marker: str) -> list[str]:
    return [pid for pid in os.listdir("/proc") if pid.isdigit() and marker in _cmdline(pid)]


async def test_a_process_left_behind_does_not_outlive_its_run(
    sandbox: LocalSandboxExecutor,
) -> None:
    # a run that leaves a detached process behind (to spy on the next run's data or key) loses it
    code = (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', 'LEFT_BEHIND'],\n"
        "                 start_new_session=True, stdout=subprocess.DEVNULL,\n"
        "                 stderr=subprocess.DEVNULL)\n"
        "print('spawned')"
    )
    result = await sandbox.run(code)
    assert result.stdout.strip() == "spawned", result.stderr
    assert _processes_named("LEFT_BEHIND") == []
    follow_up = await sandbox.run("import os; print(sorted(os.listdir('.')))", env={"K": KEY})
    assert follow_up.stdout.strip() == "['main.py']"


async def test_a_warm_sandbox_has_pandas_loaded_already(sandbox_folder: Path) -> None:
    before = _sandbox_folders()
    async with LocalSandboxExecutor(warm=2) as executor:
        assert executor.ready == 2
        code = "import sys; print('pandas' in sys.modules, 'matplotlib.pyplot' in sys.modules)"
        first, second = await executor.run(code), await executor.run(code, env={"K": KEY})
        assert first.stdout.split() == ["True", "True"], first.stderr
        assert second.stdout.split() == ["True", "True"], second.stderr
        assert first.stderr == second.stderr == ""  # what importing printed is not the run's
        assert executor.ready == 2
    # closing the executor ends the warm sandboxes and removes their folders
    assert executor.ready == 0
    assert _sandbox_folders() <= before
    # bubblewrap's command line names the folder: no process of this test is left
    assert _processes_named(str(sandbox_folder)) == []


async def test_an_executor_that_is_not_entered_keeps_nothing_warm() -> None:
    executor = LocalSandboxExecutor(warm=2, preload=())
    result = await executor.run("import sys; print('pandas' in sys.modules)")
    assert result.stdout.strip() == "False"
    assert executor.ready == 0
