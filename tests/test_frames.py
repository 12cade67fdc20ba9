"""DataFrames: `to_arrow()`, `to_pandas()`, `to_polars()` round-trip every column type the local
server returns, typed from PostHog's `types`; a stream collects into one frame."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import subprocess
import sys
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from posthog_driver import AsyncDriver, ConfigError, DriverSettings, QueryResult

EVERY_TYPE = """
SELECT uuid, timestamp, event, properties.$browser AS browser, toDate(timestamp) AS day,
       count() OVER () AS total, toInt(-3) AS neg, toFloat(1.5) AS f, 1 = 1 AS yes,
       [event, 'x'] AS arr, (event, 1) AS tup, toDecimal(2.25, 2) AS dec, NULL AS nothing,
       if(event = '$pageview', toInt(1), NULL) AS some_null, properties AS props,
       toDateTime('2026-01-01 00:00:00') AS plain_datetime, map('k', event) AS m
FROM events ORDER BY timestamp, uuid LIMIT 200
"""
ARROW_TYPES = {
    "uuid": pa.string(), "timestamp": pa.timestamp("us", tz="UTC"), "event": pa.string(),
    "browser": pa.string(), "day": pa.date32(), "total": pa.uint64(), "neg": pa.int64(),
    "f": pa.float64(), "yes": pa.uint8(), "arr": pa.list_(pa.string()),
    "tup": pa.struct([("1", pa.string()), ("2", pa.uint8())]), "dec": pa.decimal128(18, 2),
    "nothing": pa.null(), "some_null": pa.int64(), "props": pa.string(),
    "plain_datetime": pa.timestamp("us", tz="UTC"), "m": pa.map_(pa.string(), pa.string()),
}  # fmt: skip


def _expected(type_name: str, value: Any) -> Any:
    """What a JSON value of a ClickHouse type should become in Python."""
    if value is None:
        return None
    base = (
        type_name.removeprefix("Nullable(").removesuffix(")")
        if "Nullable" in type_name
        else type_name
    )
    if base.startswith("DateTime"):
        return dt.datetime.fromisoformat(value)
    if base == "Date":
        return dt.date.fromisoformat(value)
    if base.startswith("Decimal"):
        return decimal.Decimal(str(value))
    if base.startswith("Tuple"):
        return {str(i): v for i, v in enumerate(value, start=1)}
    if base.startswith("Map"):
        return list(value.items())
    return value


@pytest.fixture
def live(local_server: Any) -> DriverSettings:
    return DriverSettings(
        host=local_server.url, api_key=local_server.api_key, project_id=local_server.project_id
    )


@pytest.fixture
async def every_type(live: DriverSettings) -> QueryResult:
    async with AsyncDriver(live) as driver:
        return await driver.execute(EVERY_TYPE)


async def test_arrow_types_and_values_round_trip(every_type: QueryResult) -> None:
    table = every_type.to_arrow()
    assert {f.name: f.type for f in table.schema} == ARROW_TYPES
    nullable = {f.name for f in table.schema if f.nullable}
    said_nullable = {
        c for c, t in zip(every_type.columns, every_type.types, strict=True) if "Nullable" in t
    }
    assert nullable == said_nullable  # nullable exactly where PostHog says so
    assert table.num_rows == len(every_type.rows) == 200
    for index, name in enumerate(every_type.columns):
        got = table.column(name).to_pylist()
        want = [_expected(every_type.types[index], row[index]) for row in every_type.rows]
        assert got == want, name


async def test_pandas_keeps_integers_integers_and_datetimes_timezone_aware(
    every_type: QueryResult,
) -> None:
    frame = every_type.to_pandas()
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert frame["timestamp"].iloc[0].to_pydatetime() == dt.datetime.fromisoformat(
        every_type.rows[0][1]
    )
    assert frame["total"].dtype == "uint64"
    assert str(frame["neg"].dtype) == "Int64"  # Nullable(Int64): pandas' nullable integers
    assert str(frame["some_null"].dtype) == "Int64"
    assert frame["some_null"].isna().any()
    assert frame["some_null"].notna().any()
    assert frame["f"].dtype == "float64"
    assert list(frame.columns) == every_type.columns
    for index, name in enumerate(every_type.columns):
        if name in ("timestamp", "plain_datetime"):
            continue
        want = [_expected(every_type.types[index], row[index]) for row in every_type.rows]
        got = [None if _missing(v) else _plain(v) for v in frame[name].tolist()]
        assert got == want, name


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


async def test_polars_gets_the_same_types(every_type: QueryResult) -> None:
    frame = every_type.to_polars()
    assert frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert frame.schema["total"] == pl.UInt64
    assert frame.schema["neg"] == pl.Int64
    assert frame.schema["day"] == pl.Date
    assert frame.schema["arr"] == pl.List(pl.String)
    assert frame["total"].to_list()[0] == every_type.rows[0][every_type.columns.index("total")]


async def test_a_stream_collects_into_one_frame_like_one_query(live: DriverSettings) -> None:
    query = (
        "SELECT uuid, timestamp, event, properties.$browser AS browser FROM events "
        "WHERE event = '$pageleave'"
    )
    async with AsyncDriver(live) as driver:
        whole = await driver.execute(query + " ORDER BY timestamp, uuid LIMIT 50000")
        cursor = ("timestamp", "uuid")
        frame = await driver.stream(query, cursor=cursor, batch_size=700).to_pandas()
        table = await driver.stream(query, cursor=cursor, batch_size=700).to_arrow()
        polars_frame = await driver.stream(query, cursor=cursor).to_polars()
    pd.testing.assert_frame_equal(frame, whole.to_pandas())
    assert table.num_rows == polars_frame.height == len(whole.rows) > 1_400  # several pages
    assert table.schema == whole.to_arrow().schema


async def test_an_empty_stream_gives_an_empty_typed_frame(live: DriverSettings) -> None:
    async with AsyncDriver(live) as driver:
        stream = driver.stream("SELECT uuid, timestamp FROM events WHERE event = 'none'",
                               cursor=("timestamp", "uuid"))  # fmt: skip
        table = await stream.to_arrow()
    assert table.num_rows == 0
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize(
    ("type_name", "arrow"),
    [
        ("LowCardinality(String)", pa.string()),
        ("Array(Nullable(String))", pa.list_(pa.string())),
        ("Nullable(DateTime64(3, 'Europe/Berlin'))", pa.timestamp("us", tz="Europe/Berlin")),
        ("Tuple(name String, n UInt8)", pa.struct([("name", pa.string()), ("n", pa.uint8())])),
        ("Decimal(40, 2)", pa.string()),  # past 38 digits: its text
        ("Enum8('a' = 1, 'b, c' = 2)", pa.string()),
        ("Int128", pa.string()),
        ("Date32", pa.date32()),
        ("Bool", pa.bool_()),
    ],
)
def test_clickhouse_types_map_to_arrow(type_name: str, arrow: pa.DataType) -> None:
    result = QueryResult(columns=["c"], types=[type_name], rows=[])
    assert result.to_arrow().schema.field("c").type == arrow


def test_values_of_nested_and_wide_types_convert() -> None:
    result = QueryResult(
        columns=["a", "big", "when"],
        types=["Array(Nullable(Int64))", "Int128", "DateTime64(3, 'Europe/Berlin')"],
        rows=[[[1, None], 2**100, "2026-01-01T10:00:00+01:00"]],
    )
    (row,) = result.to_arrow().to_pylist()
    assert row["a"] == [1, None]
    assert row["big"] == str(2**100)  # wider than any Arrow integer: its text, not a guess
    assert row["when"] == dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)


def test_without_the_extra_it_says_which_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = QueryResult(columns=["n"], types=["UInt64"], rows=[[1]])
    with pytest.raises(ConfigError, match=r"posthog-driver\[arrow\]"):
        result.to_arrow()
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(ConfigError, match=r"posthog-driver\[polars\]"):
        result.to_polars()


def test_the_core_imports_no_dataframe_library() -> None:
    code = (
        "import sys, posthog_driver\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'polars') if m in sys.modules))"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_review_findings_on_values_convert_as_documented() -> None:
    result = QueryResult(
        columns=["s", "wide", "naive"],
        types=["String", "Decimal(40, 2)", "DateTime64(6, 'Asia/Kolkata')"],
        rows=[[{"a": 1}, "12345678901234567890123456789012345678.25", "2026-01-01 10:00:00"]],
    )
    (row,) = result.to_arrow().to_pylist()
    assert row["s"] == '{"a": 1}'  # JSON, not a Python repr
    assert row["wide"] == "12345678901234567890123456789012345678.25"
    assert row["naive"] == dt.datetime(2026, 1, 1, 4, 30, tzinfo=dt.UTC)  # 10:00 in Kolkata
    assert result.to_polars().height == 1
