"""The executor protocol: run agent-written Python where it cannot touch the host.

An executor runs one Python program with input files and environment variables, under a
wall-clock limit, and returns its stdout, stderr, exit status and the files it wrote. Nothing the
caller passes (code, data, a key) is ever pasted into program text: the code is written to
``main.py``, data to files, secrets go in ``env``. Executors are async context managers; entered,
they may keep sandboxes warm (started ahead, each used for one run) and they kill them on exit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

from posthog_driver._errors import ValidationError

__all__ = ["ExecutionResult", "Executor", "check_inputs"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
PROGRAM = "main.py"


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What one run produced. ``exit_code`` is None when the sandbox was killed."""

    exit_code: int | None
    stdout: str
    stderr: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    """Files the program wrote at the top of its working directory (inputs excluded)."""
    timed_out: bool = False
    truncated: bool = False
    """Output (or output files) went past the cap; the sandbox was killed or files dropped."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class Executor(Protocol):
    """Runs a Python program in isolation. Executors are async context managers."""

    async def run(
        self,
        code: str,
        *,
        files: Mapping[str, bytes] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> ExecutionResult: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def check_inputs(code: str, files: Mapping[str, bytes], env: Mapping[str, str]) -> None:
    """Refuse what cannot be passed safely: names that are not plain file names, non-text."""
    if not isinstance(code, str) or not code.strip():
        raise ValidationError("The program is empty; pass Python source as a string.")
    for name, data in files.items():
        if (
            not isinstance(name, str)
            or not name
            or name in (".", "..", PROGRAM)
            or not set(name) <= _NAME_CHARS
            or not isinstance(data, bytes)
        ):
            raise ValidationError(
                f"Input file {name!r} is not allowed: use plain names (letters, digits, '.', "
                f"'_', '-', not {PROGRAM!r}) and bytes for the content."
            )
    for key, value in env.items():
        if not (isinstance(key, str) and key.isidentifier() and isinstance(value, str)):
            raise ValidationError(f"Environment variable {key!r} must be a name with a str value.")
