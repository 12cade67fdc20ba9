"""Wall 2: the limits the engine enforces itself, whatever SQL reaches it.

Set on every query session before ``readonly = 1`` locks them (no query can change a setting
after that), plus a users configuration that grants the engine's one user nothing outside the
HogQL database, so table functions that read files or the network (``file()``, ``url()``,
``s3()``, ``remote()``, ``executable()``...) fail with ACCESS_DENIED in the engine itself.

Measured on chdb 4.4 (ClickHouse 26.9) and not closable here: scalar ``file()``, ``INTO OUTFILE``
(written by the embedded client), ``KILL QUERY`` of the same user and ``system.*`` reads pass
readonly and grants alike (``select_from_system_db_requires_grant`` and user switching are not
honoured by the embedded server). The lexical guard (wall 1) refuses all four, and the process
sandbox (wall 3) leaves a file read or write nothing of the host's to touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DATABASE", "EngineLimits", "session_settings", "write_config"]

DATABASE = "posthog"  # one engine per process, so the name need not be unique


@dataclass(frozen=True, slots=True)
class EngineLimits:
    """Per-query limits; the engine throws rather than truncating past any of them."""

    timeout: float = 10.0
    """``max_execution_time`` in seconds (PostHog's API: 10)."""

    memory_bytes: int = 1 << 30
    """``max_memory_usage`` of one query."""

    server_memory_bytes: int = 3 << 30
    """``max_server_memory_usage``: all queries of the engine together."""

    result_rows: int = 50_001
    """``max_result_rows``: PostHog's 50,000 cap plus the row that says there is more."""

    result_bytes: int = 32 << 20
    """``max_result_bytes``: uncompressed bytes of one answer."""

    threads: int = 2
    """``max_threads`` per query, so one heavy query cannot take every core."""


def session_settings(limits: EngineLimits) -> list[str]:
    """``SET`` statements for a query session, ``readonly = 1`` last."""
    return [
        f"max_execution_time = {limits.timeout:g}",
        "timeout_overflow_mode = 'throw'",
        f"max_memory_usage = {limits.memory_bytes}",
        f"max_result_rows = {limits.result_rows}",
        f"max_result_bytes = {limits.result_bytes}",
        "result_overflow_mode = 'throw'",
        f"max_threads = {limits.threads}",
        "max_query_size = 4194304",
        "max_ast_depth = 1000",
        "max_ast_elements = 500000",
        "max_expanded_ast_elements = 1000000",
        "max_subquery_depth = 100",
        "implicit_select = 0",
        "allow_introspection_functions = 0",
        "session_timezone = 'UTC'",
        "transform_null_in = 1",  # PostHog's: NULL IN (NULL) is 1, NULL NOT IN ('a') is 1
        "readonly = 1",  # last: after it no setting can change, not even by us
    ]


_CONFIG = """<clickhouse>
  <users_config>{users}</users_config>
  <max_server_memory_usage>{server_memory}</max_server_memory_usage>
</clickhouse>
"""

_USERS = """<clickhouse>
  <users>
    <default>
      <password></password>
      <profile>default</profile>
      <quota>default</quota>
      <grants>
        <query>GRANT CREATE DATABASE ON {db}.*</query>
        <query>GRANT ALL ON {db}.*</query>
      </grants>
    </default>
  </users>
  <profiles><default/></profiles>
  <quotas><default/></quotas>
</clickhouse>
"""


def write_config(folder: Path, limits: EngineLimits) -> Path:
    """Write the engine's config and users files into ``folder``; return the config's path."""
    users = folder / "users.xml"
    users.write_text(_USERS.format(db=DATABASE), encoding="utf-8")
    config = folder / "config.xml"
    config.write_text(
        _CONFIG.format(users=users, server_memory=limits.server_memory_bytes), encoding="utf-8"
    )
    return config
