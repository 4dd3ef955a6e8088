"""Decoder of inventory deltas (SPEC §1.1)."""

from __future__ import annotations

from typing import Any

from inventory360.records import DELTA_SCHEMA, WHITESPACE
from inventory360.sources.base import InvalidRecord, JsonRecordDecoder, Row
from inventory360.sources.timestamps import in_range, int_time_ms, parse_iso_ms

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
        ms = int_time_ms(value)
    else:
        return None
    return ms if ms is not None and in_range(ms) else None


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


class DeltaDecoder(JsonRecordDecoder):
    """Inventory deltas: JSON objects with sku/warehouse ids, a delta and an event time.

    The plain reference: ``decode`` applies :meth:`record` line by line. The fast path is
    the native decoder (:mod:`inventory360.sources.native`), which gives the same results.
    """

    schema = DELTA_SCHEMA

    def from_json(self, value: Any) -> Row | None:
        """A delta row; raises :class:`InvalidRecord`."""
        return _delta_record(value)
