"""Query results as Arrow tables, pandas and polars DataFrames, typed from PostHog's `types`.

PostHog sends each column's ClickHouse type (`DateTime64(6, 'UTC')`, `Nullable(Int64)`,
`Array(String)`...) and the values as JSON. Each type maps to an Arrow type and a converter for
its JSON values: datetimes become timezone-aware timestamps, dates dates, integers integers,
decimals decimals, arrays lists, maps maps, tuples structs; a column is nullable only where
PostHog says `Nullable`. pandas and polars are built from the Arrow table, so the three agree.
The optional packages are imported here, on first use: the core driver imports none of them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import importlib
import json
import re
import zoneinfo
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from posthog_driver._errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["arrow_schema", "record_batch", "require", "to_pandas", "to_polars"]

Convert = Callable[[Any], Any]
_INTS = {
    "Int8": "int8", "Int16": "int16", "Int32": "int32", "Int64": "int64",
    "UInt8": "uint8", "UInt16": "uint16", "UInt32": "uint32", "UInt64": "uint64",
}  # fmt: skip
_STRINGS = {"String", "FixedString", "UUID", "Enum8", "Enum16", "IPv4", "IPv6", "Object"}
_EXTRAS = {"pyarrow": "arrow", "pandas": "pandas", "polars": "polars"}


def require(module: str) -> Any:
    """Import an optional package, or say which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".", maxsplit=1)[0]
        extra = _EXTRAS.get(package, "arrow")
        raise ConfigError(f'This needs {package}: pip install "posthog-driver[{extra}]".') from None


def _split(type_name: str) -> tuple[str, list[str]]:
    """`Name(arg, arg)` -> ("Name", ["arg", "arg"]), split at top-level commas."""
    type_name = type_name.strip()
    match = re.fullmatch(r"([A-Za-z0-9_]+)\s*\((.*)\)", type_name, re.S)
    if not match:
        return type_name, []
    args, depth, quoted, current = [], 0, False, ""
    for char in match.group(2):
        if char == "'" and not current.endswith("\\"):
            quoted = not quoted
        elif not quoted and char in "([":
            depth += 1
        elif not quoted and char in ")]":
            depth -= 1
        elif not quoted and char == "," and depth == 0:
            args.append(current.strip())
            current = ""
            continue
        current += char
    args.append(current.strip())
    return match.group(1), args


@functools.lru_cache(maxsize=512)
def column_type(type_name: str) -> tuple[pa.DataType, Convert, bool]:
    """The Arrow type of a ClickHouse type, the converter for its JSON values, and whether
    PostHog says it may be null. Cached: a stream asks again for every page and the schema."""
    name, args = _split(type_name)
    if name == "Nullable" and args:
        arrow, convert, _ = column_type(args[0])
        return arrow, convert, True
    if name == "LowCardinality" and args:
        return column_type(args[0])
    arrow, convert = _converter(name, args)
    return arrow, convert, name == "Nothing"


def _converter(name: str, args: list[str]) -> tuple[pa.DataType, Convert]:
    pa = require("pyarrow")
    if name in _INTS:
        return getattr(pa, _INTS[name])(), int
    if name in ("Float32", "Float64"):
        return getattr(pa, name.lower())(), float
    if name == "Bool":
        return pa.bool_(), bool
    if name in _STRINGS:
        return pa.string(), _text
    if name in ("Date", "Date32"):
        return pa.date32(), _date
    if name in ("DateTime", "DateTime64"):
        zone = next((a.strip("'") for a in args if a.startswith("'")), "UTC")
        return pa.timestamp("us", tz=zone), functools.partial(_datetime, zone=zone)
    if name.startswith("Decimal") and len(args) == 2:
        precision, scale = int(args[0]), int(args[1])
        if precision > 38:  # decimal256 exists, but polars and pandas read it poorly: its text
            return pa.string(), _text
        return pa.decimal128(precision, scale), _decimal
    if name == "Array" and args:
        inner, convert, _ = column_type(args[0])
        return pa.list_(inner), lambda v: [_maybe(convert, x) for x in v]
    if name == "Map" and len(args) == 2:
        key, key_convert, _ = column_type(args[0])
        value, value_convert, _ = column_type(args[1])
        return pa.map_(key, value), lambda v: [
            (key_convert(k), _maybe(value_convert, x)) for k, x in dict(v).items()
        ]
    if name == "Tuple" and args:
        return _tuple(args)
    if name == "Nothing":
        return pa.null(), lambda v: None
    # Int128/256, JSON, intervals, geo types...: their JSON text, never a guess
    return pa.string(), _text


def _tuple(args: list[str]) -> tuple[pa.DataType, Convert]:
    pa = require("pyarrow")
    names, converts, fields = [], [], []
    for index, arg in enumerate(args, start=1):
        named = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s+(\S.*)", arg)
        # ClickHouse names unnamed tuple elements by position: 1, 2, ...
        field_name, field_type = (named.group(1), named.group(2)) if named else (str(index), arg)
        arrow, element, _ = column_type(field_type)
        names.append(field_name)
        converts.append(element)
        fields.append(pa.field(field_name, arrow))

    def convert(value: Any) -> dict[str, Any]:
        items = value.values() if isinstance(value, dict) else value
        return {n: _maybe(c, x) for n, c, x in zip(names, converts, items, strict=False)}

    return pa.struct(fields), convert


def _maybe(convert: Convert, value: Any) -> Any:
    return None if value is None else convert(value)


def _date(value: Any) -> dt.date:
    return dt.date.fromisoformat(str(value)[:10])


def _datetime(value: Any, zone: str = "UTC") -> dt.datetime:
    if isinstance(value, int | float):  # epoch seconds
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value))
    # PostHog sends offsets; a bare time is in the column's own zone, as ClickHouse means it
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zoneinfo.ZoneInfo(zone))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _decimal(value: Any) -> decimal.Decimal:
    return decimal.Decimal(str(value))


def arrow_schema(columns: Sequence[str], types: Sequence[str]) -> pa.Schema:
    pa = require("pyarrow")
    fields = []
    for name, type_name in zip(columns, types, strict=True):
        arrow, _convert, nullable = column_type(type_name)
        fields.append(pa.field(name, arrow, nullable=nullable))
    return pa.schema(fields)


def record_batch(
    columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> pa.RecordBatch:
    """One page of rows as an Arrow record batch, typed from PostHog's `types`."""
    pa = require("pyarrow")
    arrays = []
    for index, type_name in enumerate(types):
        arrow, convert, _nullable = column_type(type_name)
        values = [row[index] for row in rows]
        arrays.append(_array(pa, values, arrow, convert))
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(columns, types))


def _array(pa: Any, values: list[Any], arrow: pa.DataType, convert: Convert) -> pa.Array:
    # Arrow's own conversions first (they run in C: a large page converts several times
    # faster); values they refuse go through the converter one by one.
    try:
        if convert in (int, float, bool, _text):
            return pa.array(values, type=arrow)
        if isinstance(convert, functools.partial) and convert.func is _datetime:
            return pa.array(values, type=pa.string()).cast(arrow)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    return pa.array([_maybe(convert, v) for v in values], type=arrow)


def to_pandas(table: pa.Table) -> Any:
    """A pandas DataFrame: integers and booleans stay integers and booleans (pandas' nullable
    dtypes where the column is nullable), timestamps timezone-aware."""
    pd = require("pandas")
    pa = require("pyarrow")
    nullable_dtypes = {
        pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(), pa.bool_(): pd.BooleanDtype(),
    }  # fmt: skip
    frame = {}
    for field, column in zip(table.schema, table.columns, strict=True):
        mapper = nullable_dtypes.get if field.nullable else None
        frame[field.name] = column.to_pandas(types_mapper=mapper)
    return pd.DataFrame(frame, columns=table.column_names)


def to_polars(table: pa.Table) -> Any:
    pl = require("polars")
    return pl.from_arrow(table)
