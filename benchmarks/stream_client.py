"""One client of case 10, run in its own process so its peak RSS is its own.

    python -m benchmarks.stream_client driver|httpx URL KEY PROJECT OUT.parquet BATCH

`driver` streams with `driver.stream()` and writes with the CLI's exporter; `httpx` is keyset
pagination written by hand over a bare `httpx.AsyncClient`, each page written as a Parquet row
group from the JSON rows (pyarrow infers the types). Prints one JSON line: rows, seconds, peak
RSS in MiB while streaming (before the file is read back for the checksum), and a checksum of
the uuids (the same rows, each once, give the same sum).
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
from typing import Any

import anyio

QUERY = "SELECT uuid, timestamp, event, distinct_id FROM events"


def _checksum(uuids: list[str]) -> int:
    return sum(int(hashlib.blake2b(u.encode(), digest_size=8).hexdigest(), 16) for u in uuids)


async def _driver(url: str, key: str, project: str, out: str, batch: int) -> tuple[int, float]:
    from posthog_driver import AsyncDriver, DriverSettings  # noqa: PLC0415
    from posthog_driver._export import export  # noqa: PLC0415

    settings = DriverSettings(
        host=url, api_key=key, project_id=project, query_rate_per_minute=10**6,
        query_rate_per_hour=10**6, call_timeout=600, timeout=600,
    )  # fmt: skip
    async with AsyncDriver(settings) as driver:
        stream = driver.stream(QUERY, cursor=("timestamp", "uuid"), batch_size=batch)
        rows = await export(stream, "parquet", out, sys.stdout)
    return rows, _peak_mib()


async def _httpx(url: str, key: str, project: str, out: str, batch: int) -> tuple[int, float]:
    import httpx  # noqa: PLC0415
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    writer = None
    rows = 0
    after: list[Any] | None = None
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=600
    ) as client:
        while True:
            where, values = "", {}
            if after is not None:
                where = (
                    "WHERE timestamp >= toDateTime({t}) AND (timestamp > toDateTime({t}) OR "
                    "(timestamp = toDateTime({t}) AND uuid > toUUID({u})))"
                )
                values = {"t": after[0], "u": after[1]}
            hogql = f"SELECT * FROM ({QUERY}) {where} ORDER BY timestamp, uuid LIMIT {batch}"  # noqa: S608
            response = await client.post(
                f"/api/projects/{project}/query/",
                json={"query": {"kind": "HogQLQuery", "query": hogql, "values": values}},
            )
            response.raise_for_status()
            body = response.json()
            page = body["results"]
            if page:
                table = pa.table({c: [r[i] for r in page] for i, c in enumerate(body["columns"])})
                writer = writer or pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
            rows += len(page)
            if len(page) < batch:
                break
            after = [page[-1][1], page[-1][0]]
    if writer is not None:
        writer.close()
    return rows, _peak_mib()


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _file_checksum(path: str) -> int:
    import pyarrow.parquet as pq  # noqa: PLC0415

    return _checksum([str(u) for u in pq.read_table(path, columns=["uuid"]).column(0).to_pylist()])


def main() -> None:
    kind, url, key, project, out, batch = sys.argv[1:7]
    client = _driver if kind == "driver" else _httpx
    started = time.perf_counter()
    rows, peak = anyio.run(client, url, key, project, out, int(batch))
    seconds = time.perf_counter() - started
    checksum = _file_checksum(out)  # after the peak was taken: reading it back is not the run's
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mib": peak, "checksum": checksum}))


if __name__ == "__main__":
    main()
