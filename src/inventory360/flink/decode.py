"""Decoding raw Kafka values inside the Flink job with the embedded engine's own decoders.

The Flink job reads both topics as raw bytes (plus topic, partition and offset) and
decodes each message here, in its Python workers, with
:class:`~inventory360.sources.deltas.DeltaDecoder` and
:class:`~inventory360.sources.debezium.DebeziumOrderDecoder` — the reference that the
embedded engine's decoders must equal. So both engines accept, skip and reject exactly
the same messages, and a rejected message gets the same one-line reason (SPEC §5).

:meth:`MessageDecoder.decode` returns one of

* a *row* — a tuple in the column order of :data:`DELTA_COLUMNS` / :data:`ORDER_COLUMNS`
  (times are epoch ms; SQL turns them into ``TIMESTAMP(3)``);
* a *dead letter* — ``(dedupe_key, value)``: the JSON record of the embedded engine's
  dead-letter file (``source``, ``reason``, ``position`` = topic/partition/offset,
  ``payload`` or ``payload_base64``), keyed ``<pipeline_id>:dlq:<topic>:<partition>:<offset>``
  (stable across replays);
* nothing, for what the engine skips: tombstones of the order topic and blank values.

Like :class:`~inventory360.sources.kafka.KafkaSource`, a null value is read as ``null``
and raw newlines inside a value as spaces (JSON whitespace). Imports only the standard
library, orjson and the decoders (pyarrow), so it runs in the Flink virtualenv too.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Literal

import orjson

if TYPE_CHECKING:
    from inventory360.sources.base import RecordDecoder

Kind = Literal["deltas", "orders"]

#: Columns of a decoded delta, with their Flink SQL types.
DELTA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("sku_id", "STRING"),
    ("warehouse_id", "STRING"),
    ("available_delta", "BIGINT"),
    ("event_time_ms", "BIGINT"),
    ("event_id", "STRING"),
)

#: Columns of a decoded order-line change, with their Flink SQL types.
ORDER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("op", "STRING"),
    ("order_id", "STRING"),
    ("line_no", "STRING"),
    ("sku_id", "STRING"),
    ("warehouse_id", "STRING"),
    ("quantity", "BIGINT"),
    ("status", "STRING"),
    ("before_sku_id", "STRING"),
    ("before_warehouse_id", "STRING"),
    ("change_time_ms", "BIGINT"),
    ("pos_key", "STRING"),
)

#: A message for a Kafka topic: key, value and the dedupe header's value.
MESSAGE_COLUMNS: tuple[tuple[str, str], ...] = (("k", "BYTES"), ("v", "BYTES"), ("dedupe", "BYTES"))

_I64_BIAS = 1 << 63
Message = tuple[bytes, bytes, bytes]


def pos_key(file_number: int, pos: int, row: int) -> str:
    """A string that sorts like the binlog position ``(file_number, pos, row)`` (int64 each).

    Each part is biased by 2⁶³ and zero-padded to 20 digits, so negative values sort
    before positive ones and SQL can compare positions with ``>=`` and ``MAX``.
    """
    return "".join(f"{v + _I64_BIAS:020d}" for v in (file_number, pos, row))


def dead_letter_record(source: str, reason: str, payload: bytes, position: dict[str, Any]) -> bytes:
    """The JSON line of :class:`~inventory360.sinks.dead_letter.DeadLetterFile` for one letter."""
    rec: dict[str, object] = {"source": source, "reason": reason, "position": position}
    try:
        rec["payload"] = payload.decode("utf-8")
    except UnicodeDecodeError:
        rec["payload_base64"] = base64.b64encode(payload).decode("ascii")
    return orjson.dumps(rec)


class MessageDecoder:
    """Decodes the messages of one topic; see the module docstring for the three outcomes."""

    def __init__(self, kind: Kind, pipeline_id: str) -> None:
        from inventory360.sources.debezium import DebeziumOrderDecoder
        from inventory360.sources.deltas import DeltaDecoder

        self.kind = kind
        self.pipeline_id = pipeline_id
        self._decoder: RecordDecoder = DeltaDecoder() if kind == "deltas" else DebeziumOrderDecoder()

    def decode(
        self, value: bytes | None, topic: str, partition: int, offset: int
    ) -> tuple[tuple[Any, ...] | None, Message | None]:
        """``(row, None)``, ``(None, dead letter)`` or ``(None, None)`` for a skipped message."""
        raw = b"null" if value is None else bytes(value)
        if b"\n" in raw:
            raw = raw.replace(b"\n", b" ")
        if not raw.strip():
            return None, None
        got = self._decoder.record(raw)
        if got is None:
            return None, None
        if isinstance(got, str):
            position = {"topic": topic, "partition": int(partition), "offset": int(offset)}
            dedupe = f"{self.pipeline_id}:dlq:{topic}:{partition}:{offset}".encode()
            return None, (dedupe, dead_letter_record(self.kind, got, raw, position), dedupe)
        if self.kind == "deltas":
            return (
                got["sku_id"],
                got["warehouse_id"],
                got["available_delta"],
                got["event_time"],
                got["event_id"],
            ), None
        key = pos_key(got["pos_file"], got["pos"], got["pos_row"]) if got["has_pos"] else None
        return (
            got["op"],
            got["order_id"],
            got["line_no"],
            got["sku_id"],
            got["warehouse_id"],
            got["quantity"],
            got["status"],
            got["before_sku_id"],
            got["before_warehouse_id"],
            got["change_time"],
            key,
        ), None
