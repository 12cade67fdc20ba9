"""Case 4: characters the model reads for a 1,000-row, 6-column result.

The toolset's `query` tool renders columns once, then rows (` | `-separated), capped at 100
rows / 16,000 characters with a closing line that says what was cut. It is compared with the
two renderings an agent framework would otherwise paste: `str(list_of_dicts)` and
`json.dumps(list_of_dicts)`. A second measurement lifts the caps, to show the format alone.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from benchmarks.overhead import driver_settings
from benchmarks.report import Report, Row
from benchmarks.stats import Summary
from benchmarks.stub import BIG_QUERY, StubServer
from posthog_driver import AsyncDriver

BASES = {"str": "str(rows)", "json": "json.dumps(rows)"}


async def _measure(url: str) -> dict[str, Any]:
    from posthog_driver.tools import Toolset  # noqa: PLC0415 - optional: skipped if missing

    async with AsyncDriver(driver_settings(url)) as driver:
        rows = await driver.query(BIG_QUERY)
        capped = await Toolset(driver).call("query", {"query": BIG_QUERY})
        uncapped = await Toolset(driver, max_rows=10**6, max_chars=10**9).call(
            "query", {"query": BIG_QUERY}
        )
    if capped.is_error or uncapped.is_error:
        raise RuntimeError(f"the toolset failed: {capped.text}")
    return {
        "rows": len(rows),
        "columns": len(rows[0]),
        "toolset_chars": len(capped.text),
        "toolset_uncapped_chars": len(uncapped.text),
        "str_chars": len(str(rows)),
        "json_chars": len(json.dumps(rows)),
        "toolset_text_tail": capped.text[-300:],
    }


def run(report: Report, *, quick: bool) -> None:
    try:
        import posthog_driver.tools  # noqa: F401, PLC0415
    except ImportError:
        report.note("Case 4 skipped: posthog_driver.tools.Toolset is not available yet.")
        return
    with StubServer() as stub:
        m = asyncio.run(_measure(stub.url))
    report.raw["context"] = m
    for label, chars in (
        ("default caps", m["toolset_chars"]),
        ("caps lifted", m["toolset_uncapped_chars"]),
    ):
        for base in ("str", "json"):
            ratio = chars / m[f"{base}_chars"]
            target = label == "default caps"
            report.add(
                Row(
                    "4 context cost",
                    f"toolset ({label}) chars / {BASES[base]}",
                    Summary.of([ratio]),
                    target="<= 0.5x" if target else "",
                    met=ratio <= 0.5 if target else None,
                )
            )
    report.note(
        f"Case 4: {m['rows']:,} rows x {m['columns']} columns; str {m['str_chars']:,} chars, "
        f"json.dumps {m['json_chars']:,}, toolset {m['toolset_chars']:,} with its default caps "
        f"(it shows the first rows and a line saying how to page; deterministic, 1 round) and "
        f"{m['toolset_uncapped_chars']:,} with every row shown, the format's own saving "
        "(column names once instead of per row)."
    )
