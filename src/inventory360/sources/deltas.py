"""Decoder of inventory deltas (SPEC §1.1)."""

from __future__ import annotations

import io
from typing import Any

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.json as pj

from inventory360.records import DELTA_SCHEMA, WHITESPACE, Decoded
from inventory360.sources.base import RecordDecoder, Row
from inventory360.sources.timestamps import in_range, int_column_ms, iso_column_ms, parse_iso_ms

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def is_int(value: Any) -> bool:
    """A JSON integer that fits int64 (bools are not integers here)."""
    return type(value) is int and I64_MIN <= value <= I64_MAX


def text_field(obj: dict[str, Any], name: str) -> str:
    """A required string field, trimmed; raises ``InvalidRecord`` with the reason."""
    value = obj.get(name)
    if value is None:
        raise InvalidRecord(f"{name}: missing")
    if not isinstance(value, str):
        raise InvalidRecord(f"{name}: not a string")
    value = value.strip(WHITESPACE)
    if not value:
        raise InvalidRecord(f"{name}: empty")
    return value


def time_value_ms(value: Any) -> int | None:
    """Epoch ms of a JSON time (ISO string or integer), None when not a valid time."""
    if isinstance(value, str):
        ms = parse_iso_ms(value)
    elif is_int(value):
        from inventory360.sources.timestamps import int_time_ms

        ms = int_time_ms(value)
    else:
        return None
    return ms if ms is not None and in_range(ms) else None


class InvalidRecord(Exception):
    """A record breaks a rule of SPEC §1; the message is the dead-letter reason."""


def _delta_record(obj: Any) -> Row:
    if not isinstance(obj, dict):
        raise InvalidRecord("not a JSON object")
    sku = text_field(obj, "sku_id")
    wh = text_field(obj, "warehouse_id")
    delta = obj.get("available_delta")
    if delta is None:
        raise InvalidRecord("available_delta: missing")
    if not is_int(delta):
        raise InvalidRecord("available_delta: not an integer")
    raw_time = obj.get("event_time")
    if raw_time is None:
        raise InvalidRecord("event_time: missing")
    event_time = time_value_ms(raw_time)
    if event_time is None:
        raise InvalidRecord("event_time: not a valid time")
    event_id = obj.get("event_id")
    if event_id is not None:
        if not isinstance(event_id, str):
            raise InvalidRecord("event_id: not a string")
        event_id = event_id if event_id.strip(WHITESPACE) else None
    return {
        "sku_id": sku,
        "warehouse_id": wh,
        "available_delta": delta,
        "event_time": event_time,
        "event_id": event_id,
    }


_JSON_TIME_TYPES = (pa.string(), pa.int64())


class DeltaDecoder(RecordDecoder):
    """Inventory deltas: JSON objects with sku/warehouse ids, a delta and an event time."""

    schema = DELTA_SCHEMA

    def __init__(self) -> None:
        self._time_type = 0  # which event_time JSON type the last block had

    def record(self, value: bytes) -> Row | str | None:
        """Decode one delta message (the reference for every rule)."""
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            return "invalid JSON"
        try:
            return _delta_record(obj)
        except InvalidRecord as bad:
            return str(bad)

    def fast(self, buf: bytes, n_lines: int) -> Decoded | None:
        """Arrow's JSON reader with a strict schema; any type surprise returns None."""
        table = None
        for attempt in range(len(_JSON_TIME_TYPES)):
            kind = (self._time_type + attempt) % len(_JSON_TIME_TYPES)
            try:
                table = _read(buf, _JSON_TIME_TYPES[kind])
            except pa.ArrowInvalid:
                continue
            self._time_type = kind
            break
        if table is None or table.num_rows != n_lines:
            return None
        return _validate(table, n_lines)


def _read(buf: bytes, time_type: pa.DataType) -> pa.Table:
    schema = pa.schema(
        [
            ("sku_id", pa.string()),
            ("warehouse_id", pa.string()),
            ("available_delta", pa.int64()),
            ("event_time", time_type),
            ("event_id", pa.string()),
        ]
    )
    return pj.read_json(
        io.BytesIO(buf),
        read_options=pj.ReadOptions(block_size=1 << 22),
        parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )


def _validate(table: pa.Table, n_lines: int) -> Decoded:
    raw_time = table["event_time"].combine_chunks()
    times = iso_column_ms(raw_time) if pa.types.is_string(raw_time.type) else int_column_ms(raw_time)
    df = pl.from_arrow(table).with_columns(  # type: ignore[union-attr]
        pl.Series("time_ms", times, dtype=pl.Int64),
        pl.col("sku_id").str.strip_chars(WHITESPACE),
        pl.col("warehouse_id").str.strip_chars(WHITESPACE),
        pl.arange(0, n_lines, dtype=pl.Int64).alias("line"),
    )
    reason = pl.lit(None, dtype=pl.String)
    checks = [
        (
            pl.col("time_ms").is_null() & pl.col("event_time").is_not_null(),
            "event_time: not a valid time",
        ),
        (pl.col("event_time").is_null(), "event_time: missing"),
        (pl.col("available_delta").is_null(), "available_delta: missing"),
        (pl.col("warehouse_id") == "", "warehouse_id: empty"),
        (pl.col("warehouse_id").is_null(), "warehouse_id: missing"),
        (pl.col("sku_id") == "", "sku_id: empty"),
        (pl.col("sku_id").is_null(), "sku_id: missing"),
    ]
    # Later checks win, so list them in reverse of the reference's order.
    for cond, text in checks:
        reason = pl.when(cond.fill_null(False)).then(pl.lit(text)).otherwise(reason)
    df = df.with_columns(reason.alias("reason"))
    bad = df.filter(pl.col("reason").is_not_null())
    errors = list(zip(bad["line"].to_list(), bad["reason"].to_list(), strict=True))
    good = df.filter(pl.col("reason").is_null()).select(
        "line",
        "sku_id",
        "warehouse_id",
        "available_delta",
        pl.col("time_ms").alias("event_time"),
        pl.when(pl.col("event_id").str.strip_chars(WHITESPACE) == "")
        .then(None)
        .otherwise(pl.col("event_id"))
        .alias("event_id"),
    )
    return Decoded(good.to_arrow().cast(DELTA_SCHEMA), errors)
