"""Discover and query PostHog with the driver: objects, fields, a HogQL query.

Against the local server: run `uv run posthog-driver serve-local`, paste the `export POSTHOG_...`
lines it prints, then `uv run python examples/basic_usage.py`.
"""

from __future__ import annotations

import sys

import anyio

from posthog_driver import AsyncDriver, DriverError, QueryError


async def main() -> None:
    async with AsyncDriver.from_env() as driver:
        print("objects:", ", ".join(await driver.list_objects()))
        fields = await driver.get_fields("events")
        print(f"events has {len(fields)} fields, e.g. {', '.join(list(fields)[:6])}")

        rows = await driver.query(
            "SELECT event, count() AS n FROM events "
            "WHERE timestamp > now() - INTERVAL {days} DAY "
            "GROUP BY event ORDER BY n DESC LIMIT 5",
            values={"days": 30},
        )
        for row in rows:
            print(f"{row['event']:>24}  {row['n']}")

        try:
            await driver.query("SELECT no_such_column FROM events LIMIT 1")
        except QueryError as exc:
            print("PostHog said:", exc.detail)


if __name__ == "__main__":
    try:
        anyio.run(main)
    except DriverError as exc:  # one line that says what to fix, not a traceback
        sys.exit(f"error: {exc}")
