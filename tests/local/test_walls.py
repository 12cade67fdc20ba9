# ruff: noqa: S608  (SQL sent straight to the engine on purpose; built from our constants)
"""Walls 2 and 3, each alone: attack SQL sent straight to the engine, skipping the compiler.

Wall 1 (the compiler and its lexical guard) has its own tests in test_guard.py. Here SQL goes
to ``Engine.run`` as an attacker who got past wall 1 would send it:

- wall 2 alone: an engine process with no sandbox, so only the engine's settings and grants
  stand in the way;
- wall 3 alone: SQL that wall 2 does not stop (scalar ``file()``, ``INTO OUTFILE``), run in the
  sandboxed engine; and the engine's own confinement, used to run Python that tries the network
  and the host's files, which no SQL setting could stop.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from posthog_driver.sandbox import confine, find_bubblewrap, python_paths
from posthog_local.engine import DATABASE, Engine, EngineError, EngineLimits
from posthog_local.engine._client import engine_confinement

LIMITS = EngineLimits(timeout=3, memory_bytes=200 << 20, result_rows=1_001)


def run(engine: Engine, sql: str) -> EngineError | list[str]:
    async def go() -> EngineError | list[str]:
        try:
            output = await engine.run(sql, {})
        except EngineError as exc:
            return exc
        return [output.rows_json.decode()]

    return anyio.run(go)


@pytest.fixture(scope="module")
def bare_engine() -> Iterator[Engine]:
    engine = Engine(2, LIMITS, sandbox="off")
    engine.start(events=1_000, seed=1)
    assert engine.stats is not None
    assert not engine.stats.sandboxed
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def sandboxed_engine() -> Iterator[Engine]:
    engine = Engine(2, LIMITS, sandbox="required")
    engine.start(events=1_000, seed=1)
    assert engine.stats is not None
    assert engine.stats.sandboxed
    yield engine
    engine.close()


# -- wall 2 alone ----------------------------------------------------------------------------

WALL_2 = [
    ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "ACCESS_DENIED"),
    ("SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')", "ACCESS_DENIED"),
    ("SELECT * FROM executable('id', 'TSV', 'x String')", "ACCESS_DENIED READONLY"),
    ("SELECT * FROM remote('127.0.0.1:9', system.one)", "ACCESS_DENIED"),
    ("SELECT * FROM s3('http://127.0.0.1:9/bucket/key.csv', 'CSV')", "ACCESS_DENIED"),
    (f"INSERT INTO {DATABASE}.events (event) VALUES ('x')", "READONLY"),
    (f"DROP TABLE {DATABASE}.events", "READONLY"),
    (f"ALTER TABLE {DATABASE}.events DELETE WHERE 1", "READONLY"),
    ("CREATE TABLE t (a Int8) ENGINE = Memory", "READONLY"),
    ("SET readonly = 0", "READONLY"),
    ("SELECT 1 SETTINGS max_execution_time = 1000", "READONLY"),
    ("SELECT count() FROM numbers(100000000000)", "TIMEOUT_EXCEEDED"),
    ("SELECT groupArray(number) FROM numbers(100000000)", "MEMORY_LIMIT_EXCEEDED"),
    ("SELECT number FROM numbers(100000)", "TOO_MANY_ROWS_OR_BYTES"),
]


@pytest.mark.parametrize(("sql", "code"), WALL_2)
def test_wall_2_alone_refuses_what_its_settings_and_grants_cover(
    bare_engine: Engine, sql: str, code: str
) -> None:
    result = run(bare_engine, sql)
    assert isinstance(result, EngineError), result
    assert result.code_name in code.split(), (result.code_name, result.message)


def test_wall_2_leaves_the_data_as_it_was(bare_engine: Engine) -> None:
    for sql, _ in WALL_2:
        run(bare_engine, sql)
    assert run(bare_engine, f"SELECT count() FROM {DATABASE}.events") == ["[[1000]]"]


# -- wall 3 alone ----------------------------------------------------------------------------


def test_wall_3_alone_hides_the_hosts_files_from_scalar_file(
    sandboxed_engine: Engine, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret", encoding="utf-8")
    for path in (secret, Path("/etc/hostname"), Path.home() / ".bashrc"):
        result = run(sandboxed_engine, f"SELECT file('{path}')")
        assert isinstance(result, EngineError), result
        assert "top secret" not in result.message


def test_wall_3_alone_keeps_into_outfile_off_the_host(
    sandboxed_engine: Engine, tmp_path: Path
) -> None:
    target = tmp_path / "written.txt"
    run(sandboxed_engine, f"SELECT 'pwned' INTO OUTFILE '{target}'")
    run(sandboxed_engine, f"SELECT 'pwned' INTO OUTFILE '{target}' APPEND")
    assert not target.exists()


def test_wall_3_alone_shows_the_engine_no_secret_in_any_environment(
    sandboxed_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # set before this engine's start would be too late for a module fixture: start another
    monkeypatch.setenv("POSTHOG_API_KEY", "phx_WALL3SECRET0123456789abcdefghijklmnopqrs")
    engine = Engine(1, LIMITS, sandbox="required")
    engine.start(events=100, seed=1)
    try:
        for pid in ("self", "1"):
            result = run(engine, f"SELECT file('/proc/{pid}/environ')")
            text = result.message if isinstance(result, EngineError) else result[0]
            assert "WALL3SECRET" not in text
            assert "POSTHOG" not in text
    finally:
        engine.close()


def _listener() -> tuple[socket.socket, list[str]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    seen: list[str] = []

    def accept() -> None:
        server.settimeout(5)
        try:
            conn, _ = server.accept()
            seen.append("connected")
            conn.close()
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    return server, seen


def _confined_python(code: str) -> subprocess.CompletedProcess[str]:
    argv, env = confine([sys.executable, "-I", "-c", code], engine_confinement(1 << 30))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603


def test_wall_3_alone_has_no_network_even_for_code() -> None:
    find_bubblewrap()
    server, seen = _listener()
    port = server.getsockname()[1]
    done = _confined_python(
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2); print('reached')\n"
        "except OSError as exc:\n"
        "    print('refused', exc)\n"
    )
    server.close()
    assert "refused" in done.stdout
    assert seen == []


def test_wall_3_alone_lets_code_neither_read_nor_write_the_hosts_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret", encoding="utf-8")
    target = tmp_path / "written.txt"
    done = _confined_python(
        "import os\n"
        f"for path in ({str(secret)!r}, '/etc/shadow', '/etc/passwd', {str(Path.home())!r}):\n"
        "    print(path, os.path.exists(path) and sorted(os.listdir(path) if os.path.isdir(path)"
        " else ['file']))\n"
        "try:\n"
        f"    open({str(target)!r}, 'w').write('x')\n"
        "except OSError as exc:\n"
        "    print('write refused', type(exc).__name__)\n"
        "try:\n"
        f"    open({sys.prefix + '/pwn.pth'!r}, 'w').write('import os')\n"
        "except OSError as exc:\n"
        "    print('venv write refused', type(exc).__name__)\n"
    )
    assert done.returncode == 0, done.stderr
    seen = dict(line.split(" ", 1) for line in done.stdout.splitlines()[:4])
    assert seen[str(secret)] == seen["/etc/shadow"] == seen["/etc/passwd"] == "False"
    # the home folder holds at most the interpreter's own folders (bound read-only), no dotfiles
    inside_home = {p.relative_to(Path.home()).parts[0] for p in map(Path, python_paths())
                   if p.is_relative_to(Path.home())}  # fmt: skip
    assert seen[str(Path.home())] in ("False", str(sorted(inside_home)))
    assert "write refused" in done.stdout
    assert "venv write refused" in done.stdout
    assert not target.exists()
    assert not Path(sys.prefix, "pwn.pth").exists()


def test_wall_3_alone_bounds_the_engines_memory() -> None:
    argv, env = confine(
        [sys.executable, "-I", "-c", "b = bytearray(3 << 30); print('allocated')"],
        engine_confinement(1 << 30),
    )
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    assert "allocated" not in done.stdout
    assert "MemoryError" in done.stderr


def test_read_only_binds_below_tmp_stay_visible_over_the_private_tmp(tmp_path: Path) -> None:
    # a project checked out under /tmp (as CI clones are) must stay importable in the sandbox
    shared = tmp_path / "shared.txt"
    shared.write_text("visible", encoding="utf-8")
    confinement = replace(engine_confinement(1 << 30), read_only=(*python_paths(), str(tmp_path)))
    argv, env = confine([sys.executable, "-I", "-c", f"print(open({str(shared)!r}).read())"],
                        confinement)  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    assert done.stdout.strip() == "visible", done.stderr
