"""The Flink job's decoding is the engine's: same rows, same skips, same dead-letter records."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from inventory360.flink.decode import DELTA_COLUMNS, ORDER_COLUMNS, MessageDecoder, dead_letter_record, pos_key
from inventory360.records import DeadLetter
from inventory360.sinks.dead_letter import DeadLetterFile
from inventory360.sources.debezium import DebeziumOrderDecoder
from inventory360.sources.deltas import DeltaDecoder

T0 = 1_793_491_200_000


def env(op: str, before: object, after: object, **extra: object) -> bytes:
    return orjson.dumps({"before": before, "after": after, "op": op, "ts_ms": T0, **extra})


IMAGE = {"order_id": 7, "line_no": 2, "sku_id": " S ", "warehouse_selection": "W", "quantity": 3, "status": "created"}


def test_a_valid_delta_becomes_a_row_in_column_order() -> None:
    d = MessageDecoder("deltas", "p")
    value = orjson.dumps(
        {"sku_id": " S\u00a0", "warehouse_id": "W", "available_delta": -4, "event_time": "2026-11-01T01:00:00+01:00"}
    )
    row, dead = d.decode(value, "t", 0, 5)
    assert dead is None and row is not None
    assert dict(zip([n for n, _ in DELTA_COLUMNS], row, strict=True)) == {
        "sku_id": "S",
        "warehouse_id": "W",
        "available_delta": -4,
        "event_time_ms": T0,
        "event_id": None,
    }


def test_an_order_change_carries_a_sortable_binlog_position() -> None:
    d = MessageDecoder("orders", "p")
    src = {"file": "mysql-bin.000012", "pos": 400, "row": 1}
    row, dead = d.decode(env("u", IMAGE, IMAGE, source=src), "t", 1, 9)
    assert dead is None and row is not None
    got = dict(zip([n for n, _ in ORDER_COLUMNS], row, strict=True))
    assert got["order_id"] == "7" and got["line_no"] == "2" and got["sku_id"] == "S" and got["status"] == "CREATED"
    assert got["change_time_ms"] == T0 and got["pos_key"] == pos_key(12, 400, 1)
    row, _ = d.decode(env("c", None, IMAGE), "t", 1, 10)
    assert row is not None and row[-1] is None  # no position: arrival order decides


def test_pos_key_sorts_like_the_position_tuple() -> None:
    rnd = random.Random(5)
    big = 2**63 - 1
    tuples = [(rnd.randint(0, 10**6), rnd.randint(-big - 1, big), rnd.randint(-5, 5)) for _ in range(300)]
    tuples += [(0, -big - 1, 0), (0, big, big), (1, 0, -1)]
    assert sorted(tuples) == sorted(tuples, key=lambda t: pos_key(*t))
    assert len(pos_key(0, 0, 0)) == 60


BAD = [
    ("deltas", b"{not json"),
    ("deltas", b'{"sku_id": "S", "warehouse_id": "W", "available_delta": 1.5, "event_time": 1}'),
    ("deltas", b'{"sku_id": "S", "warehouse_id": "W", "available_delta": "5", "event_time": 1}'),
    ("deltas", b'{"sku_id": "S", "warehouse_id": "W", "available_delta": 5, "event_time": "yesterday"}'),
    ("deltas", b'{"sku_id": " ", "warehouse_id": "W", "available_delta": 5, "event_time": 1}'),
    ("deltas", None),  # a tombstone on the delta topic is not an object
    ("deltas", b"\xff\xfe"),
    ("orders", env("x", None, IMAGE)),
    ("orders", env("c", None, {**IMAGE, "quantity": -1})),
    ("orders", env("d", None, None)),
]


@pytest.mark.parametrize(("kind", "value"), BAD)
def test_rejects_what_the_engine_rejects_with_its_reason_and_file_record(
    tmp_path: Path, kind: str, value: bytes | None
) -> None:
    d = MessageDecoder(kind, "flink:job")  # type: ignore[arg-type]
    row, dead = d.decode(value, "topic-a", 3, 41)
    assert row is None and dead is not None
    key, record, dedupe = dead
    assert key == dedupe == b"flink:job:dlq:topic-a:3:41"
    raw = b"null" if value is None else value
    reason = (DeltaDecoder() if kind == "deltas" else DebeziumOrderDecoder()).record(raw)
    assert isinstance(reason, str)
    position = {"topic": "topic-a", "partition": 3, "offset": 41}
    # Byte for byte the line the embedded engine writes to its dead-letter file (and publishes).
    f = DeadLetterFile(tmp_path / "dlq.jsonl")
    f.write([DeadLetter(kind, reason, raw, position)])
    f.close()
    assert (tmp_path / "dlq.jsonl").read_bytes() == record + b"\n"
    assert orjson.loads(record)["reason"] == reason


def test_skips_what_the_engine_skips() -> None:
    orders = MessageDecoder("orders", "p")
    assert orders.decode(None, "t", 0, 0) == (None, None)  # tombstone
    assert orders.decode(b'{"payload": null}', "t", 0, 1) == (None, None)
    assert MessageDecoder("deltas", "p").decode(b"  \t ", "t", 0, 2) == (None, None)


def test_raw_newlines_are_json_whitespace_as_in_the_kafka_source() -> None:
    value = b'{"sku_id": "S",\n "warehouse_id": "W", "available_delta": 2, "event_time": 5}'
    row, dead = MessageDecoder("deltas", "p").decode(value, "t", 0, 0)
    assert dead is None and row == ("S", "W", 2, 5, None)


def test_dead_letter_record_keeps_undecodable_bytes() -> None:
    rec = orjson.loads(dead_letter_record("orders", "invalid JSON", b"\xff", {"offset": 1}))
    assert rec == {"source": "orders", "reason": "invalid JSON", "position": {"offset": 1}, "payload_base64": "/w=="}
