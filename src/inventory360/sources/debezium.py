"""Decoder of Debezium order-line change events (SPEC §1.2).

Accepts the envelope with or without the ``{"schema": …, "payload": …}`` wrapper.
A null value (a Kafka tombstone) is skipped. The line's identity is
(``order_id``, ``line_no``) taken from the after image, or from the before image for
``op = d``; only a delete reads the before image, and only for identity (and, when the
line is unknown, to name the key it touches).
"""

from __future__ import annotations

from typing import Any

from inventory360.records import ORDER_SCHEMA, WHITESPACE
from inventory360.sources.base import InvalidRecord, JsonRecordDecoder, Row
from inventory360.sources.deltas import I64_MAX, is_int, text_field, time_value_ms

OPS = frozenset({"c", "r", "u", "d"})
#: The binlog file's sequence number is the run of these that ends ``source.file``.
_ASCII_DIGITS = "0123456789"


def _ident(image: dict[str, Any], name: str, default: str | None) -> str:
    value = image.get(name)
    if value is None:
        if default is None:
            raise InvalidRecord(f"{name}: missing")
        return default
    if is_int(value):
        return str(value)
    if not isinstance(value, str):
        raise InvalidRecord(f"{name}: not a string or integer")
    value = value.strip(WHITESPACE)
    if not value:
        raise InvalidRecord(f"{name}: empty")
    return value


def _position(source: Any) -> tuple[bool, int, int, int]:
    """(has_pos, file number, pos, row) of ``source``.

    A position needs a non-empty string ``file`` and an int64 ``pos``. The file number is
    the run of ASCII digits at the very end of ``file`` (0 when there is none, e.g. a
    trailing newline); beyond int64 it makes the position unusable.
    """
    if not isinstance(source, dict):
        return False, 0, 0, 0
    file, pos, row = source.get("file"), source.get("pos"), source.get("row", 0)
    if not isinstance(file, str) or not file or not isinstance(pos, int) or not is_int(pos):
        return False, 0, 0, 0
    # The same as ``re.search(r"([0-9]+)\Z", file)``, in linear time.
    text = file[len(file.rstrip(_ASCII_DIGITS)) :].lstrip("0")
    if len(text) > 19 or (text and int(text) > I64_MAX):
        return False, 0, 0, 0  # a file number beyond int64 is no usable position
    number = int(text or "0")
    return True, number, pos, int(row) if is_int(row) else 0


def _optional_text(image: dict[str, Any], name: str) -> str | None:
    value = image.get(name)
    if isinstance(value, str):
        value = value.strip(WHITESPACE)
        return value or None
    return None


def order_record(envelope: Any) -> Row | None:
    """Decode one parsed Debezium value; None for a tombstone, raises ``InvalidRecord``."""
    if envelope is None:
        return None
    if not isinstance(envelope, dict):
        raise InvalidRecord("not a JSON object")
    if "payload" in envelope and "op" not in envelope:
        envelope = envelope["payload"]
        if envelope is None:
            return None
        if not isinstance(envelope, dict):
            raise InvalidRecord("payload: not a JSON object")
    op = envelope.get("op")
    if op is None:
        raise InvalidRecord("op: missing")
    if not isinstance(op, str) or op not in OPS:
        raise InvalidRecord("op: unknown")
    side = "before" if op == "d" else "after"
    image = envelope.get(side)
    if image is None:
        raise InvalidRecord(f"{side}: missing")
    if not isinstance(image, dict):
        raise InvalidRecord(f"{side}: not a JSON object")
    row: Row = {
        "op": op,
        "order_id": _ident(image, "order_id", None),
        "line_no": _ident(image, "line_no", "0"),
        "sku_id": None,
        "warehouse_id": None,
        "quantity": None,
        "status": None,
        "before_sku_id": None,
        "before_warehouse_id": None,
    }
    change_time = None
    if op == "d":
        row["before_sku_id"] = _optional_text(image, "sku_id")
        row["before_warehouse_id"] = _optional_text(image, "warehouse_selection")
    else:
        row["sku_id"] = text_field(image, "sku_id")
        row["warehouse_id"] = text_field(image, "warehouse_selection")
        qty = image.get("quantity")
        if qty is None:
            raise InvalidRecord("quantity: missing")
        if not is_int(qty):
            raise InvalidRecord("quantity: not an integer")
        if qty < 0:
            raise InvalidRecord("quantity: negative")
        row["quantity"] = qty
        row["status"] = text_field(image, "status").upper()
        updated = image.get("updated_at")
        if updated is not None:
            change_time = time_value_ms(updated)
            if change_time is None:
                raise InvalidRecord("updated_at: not a valid time")
    ts = envelope.get("ts_ms")
    if ts is not None:
        if not is_int(ts):
            raise InvalidRecord("ts_ms: not an integer")
        ts_ms = time_value_ms(ts)
        if ts_ms is None:
            raise InvalidRecord("ts_ms: not a valid time")
        if change_time is None:
            change_time = ts_ms
    if change_time is None:
        raise InvalidRecord("ts_ms: missing")
    row["change_time"] = change_time
    row["has_pos"], row["pos_file"], row["pos"], row["pos_row"] = _position(envelope.get("source"))
    return row


class DebeziumOrderDecoder(JsonRecordDecoder):
    """Order-line changes in Debezium's MySQL/MariaDB envelope."""

    schema = ORDER_SCHEMA

    def from_json(self, value: Any) -> Row | None:
        """An order-line change row, None for a tombstone; raises :class:`InvalidRecord`."""
        return order_record(value)
