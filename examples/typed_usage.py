"""The public API used as a user would, checked by `mypy --strict` (nox -s typecheck).

Run it against the local server: `posthog-driver serve-local`, paste its export lines, then
`uv run python examples/typed_usage.py`.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from posthog_driver import (
    AsyncDriver,
    CircuitOpenError,
    DriverError,
    DriverSettings,
    FieldInfo,
    NotFoundError,
    QueryError,
    QueryResult,
    RateLimitError,
    configure_logging,
)


async def main() -> None:
    configure_logging(level="WARNING", fmt="console")
    settings: DriverSettings = DriverSettings.from_env()  # POSTHOG_* from the environment or .env
    async with AsyncDriver(settings) as driver:
        names: list[str] = await driver.list_objects()
        fields: dict[str, FieldInfo] = await driver.get_fields("events")
        events: list[str] = fields["event"].get("values", [])
        rows: list[dict[str, Any]] = await driver.query(
            "SELECT event, count() AS n FROM events WHERE event IN {names} GROUP BY event",
            values={"names": events[:3]},
        )
        result: QueryResult = await driver.execute("SELECT count() AS n FROM events")
        catalog: dict[str, dict[str, FieldInfo]] = await driver.describe(names[:3])
        healthy: bool = await driver.health_check()
        print(len(names), len(rows), result.as_dicts(), len(catalog), healthy)
        try:
            await driver.get_fields("evnts")
        except NotFoundError as exc:
            print("did you mean:", exc.suggestions)
        try:
            await driver.query("SELECT nope FROM events")
        except QueryError as exc:
            print("PostHog says:", exc.detail)
        except (RateLimitError, CircuitOpenError) as exc:
            print("retry in", exc.retry_after)
        except DriverError as exc:
            print("failed:", exc)


if __name__ == "__main__":
    try:
        anyio.run(main)
    except DriverError as exc:  # one line that says what to fix, not a traceback
        sys.exit(f"error: {exc}")
