"""Write a `RowStream` to a file as it arrives: CSV, JSON lines or Parquet, one page at a time.

Memory is bounded by the page, not the result: each page is written (in a worker thread, so the
event loop never blocks on disk) and dropped. The rows go to a new `.FILE.*.partial` beside it
first and the file takes its name only once the stream is whole: a failed or interrupted export
never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import AsyncIterable
from pathlib import Path
from typing import IO, Any, Literal

import anyio

from posthog_driver import _frames
from posthog_driver._errors import ValidationError
from posthog_driver._results import QueryResult, unique_names
from posthog_driver._stream import RowStream

__all__ = ["FORMATS", "Format", "export"]

Format = Literal["csv", "jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl", "parquet")


async def export(
    pages: AsyncIterable[QueryResult], fmt: Format, output: str | None, stdout: IO[str]
) -> int:
    """Write every row of `pages` (a `RowStream`, say) to `output` (or `stdout` for csv and
    jsonl); returns the row count."""
    if fmt not in FORMATS:
        raise ValidationError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}.")
    if fmt == "parquet":
        _frames.require("pyarrow.parquet")
        if output is None:
            raise ValidationError("Parquet needs a file: add --output FILE.parquet.")
    if output is None:
        return await _copy(pages, _Writer(fmt, stdout))
    target = Path(output)
    # A new file of our own (O_EXCL: never a link planted in a shared folder, never another
    # export's), beside the target so that the final rename stays on one file system.
    descriptor, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".partial"
    )
    partial = Path(name)
    try:
        with os.fdopen(descriptor, "w" if fmt != "parquet" else "wb", **_text(fmt)) as file:
            writer = _Writer(fmt, file)
            try:
                count = await _copy(pages, writer)
            except BaseException:
                # Parquet's writer closed now, while its file is open: left to the garbage
                # collector, it writes its footer into the closed file (a traceback on Ctrl-C).
                with contextlib.suppress(Exception):
                    writer.close()
                raise
            await anyio.to_thread.run_sync(writer.close)
        await anyio.to_thread.run_sync(_finish, partial, target)
    except BaseException:
        # On the event loop, not in a worker thread: this runs while a signal tears the loop
        # down, when an await may be cancelled again or no worker may run, and one unlink is
        # as cheap as handing it to a thread.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise
    return count


def _finish(partial: Path, target: Path) -> None:
    os.chmod(partial, 0o666 & ~_umask())  # mkstemp's 0600, widened as open() would have
    os.replace(partial, target)


def _umask() -> int:
    # read, not set and reset: os.umask() would change it for every thread meanwhile
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def _text(fmt: str) -> dict[str, Any]:
    return {} if fmt == "parquet" else {"encoding": "utf-8", "newline": ""}


async def _copy(pages: AsyncIterable[QueryResult], writer: _Writer) -> int:
    count, written = 0, False
    async for page in pages:
        await anyio.to_thread.run_sync(writer.write, page)
        count, written = count + len(page.rows), True
    if not written and isinstance(pages, RowStream):  # the header, or Parquet's schema
        await anyio.to_thread.run_sync(writer.write, QueryResult(pages.columns, pages.types, []))
    return count


class _Writer:
    def __init__(self, fmt: str, file: IO[Any]) -> None:
        self.fmt, self.file = fmt, file
        self.parquet: Any = None
        self.header = False

    def write(self, page: QueryResult) -> None:
        names = unique_names(page.columns)
        if self.fmt == "parquet":
            batch = _frames.record_batch(names, page.types, page.rows)
            if self.parquet is None:
                pq = _frames.require("pyarrow.parquet")
                self.parquet = pq.ParquetWriter(self.file, batch.schema)
            self.parquet.write_batch(batch)
            return
        buffer = io.StringIO()
        if self.fmt == "csv":
            rows = csv.writer(buffer)
            if not self.header:
                rows.writerow(names)
                self.header = True
            rows.writerows([_cell(v) for v in row] for row in page.rows)
        else:
            for row in page.rows:
                buffer.write(json.dumps(dict(zip(names, row, strict=False)), ensure_ascii=False))
                buffer.write("\n")
        self.file.write(buffer.getvalue())
        self.file.flush()

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()


def _cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value
