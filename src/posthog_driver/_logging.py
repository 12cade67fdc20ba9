"""Structured logging: the library's logger, and `configure_logging()` for applications.

The library only *emits* events (short snake_case names with key-value context, e.g.
`query_sent rows=12 elapsed_ms=30`); it never configures logging itself, on import or otherwise.
Applications and the CLI call `configure_logging()` once. Its pipeline ends in a redaction step,
so even an event someone else logs with a PostHog key in it is printed without the key.

Until structlog is configured (by `configure_logging()` or by the application), events go to the
stdlib logger `posthog_driver` instead of structlog's default printer: that printer writes every
level to stdout, which would flood an application's output and corrupt an MCP stdio stream.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

__all__ = ["configure_logging", "get_logger", "redact"]

LOGGER_NAME = "posthog_driver"
_HANDLER_NAME = "posthog_driver.stderr"

# Personal (phx_), OAuth (pha_) and project secret (phs_) keys, and bearer headers.
_SECRET = re.compile(r"\b(ph[xas]_)[A-Za-z0-9_\-]{6,}|(Bearer\s+)\S+", re.IGNORECASE)
_SECRET_KEYS = frozenset({"api_key", "authorization", "password", "token", "secret"})


class _DriverLogger:
    """Chooses at each call: structlog when configured, else the stdlib `posthog_driver` logger."""

    __slots__ = ()

    def __getattr__(self, method: str) -> Any:
        target = structlog.get_logger(LOGGER_NAME) if structlog.is_configured() else _STDLIB
        return getattr(target, method)


def get_logger() -> Any:
    """The driver's logger: `log.info("query_sent", rows=3)`."""
    return _LOGGER


def redact(text: str) -> str:
    """Replace anything shaped like a PostHog key or a bearer token with a placeholder."""
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


def _redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = "***"
        elif isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at write time (it may be replaced after set-up)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDLIB = structlog.wrap_logger(
    logging.getLogger(LOGGER_NAME),
    wrapper_class=structlog.stdlib.BoundLogger,
    processors=[
        structlog.stdlib.filter_by_level,  # drop below the stdlib level before any work
        _redact_processor,
        structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
    ],
)
_LOGGER = _DriverLogger()


def configure_logging(level: str = "INFO", fmt: Literal["console", "json"] = "console") -> None:
    """Set up structlog (and stdlib logging) once, for an application or the CLI.

    `level` is a stdlib level name; `fmt` is `console` (human-readable, to stderr) or `json`
    (one JSON object per line). Keys and bearer tokens are redacted from every event.

    >>> configure_logging(level="WARNING", fmt="json")
    """
    if fmt not in ("console", "json"):
        raise ValueError(f"fmt must be 'console' or 'json', not {fmt!r}")
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"level must be a logging level name such as INFO, not {level!r}")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # Other libraries' stdlib records (httpx2, the MCP SDK, uvicorn) get the same format and the
    # same redaction: one configuration for everything an entry point prints.
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _redact_processor,
                renderer,
            ],
        )
    )
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
