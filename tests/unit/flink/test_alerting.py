"""Alerts from the Flink snapshot changelog follow the embedded engine's crossing rule (SPEC §3)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from inventory360.engine.alerts import SafetyStock
from inventory360.flink.alerting import CrossingDetector, Level, Thresholds
from inventory360.sinks.alerts import AlertSink
from inventory360.sources.timestamps import iso_ms

from ..sinks.helpers import T0, rows

Update = tuple[str, str, int, int, int]  # sku, wh, available, reserved, seconds after T0


def flink_alerts(updates: list[Update], thresholds: Thresholds) -> list[tuple[object, ...]]:
    """Feed ``updates`` as the aggregate's changelog (+I, then -U/+U pairs) and decode the messages."""
    det = CrossingDetector(thresholds, "flink:test")
    last: dict[tuple[str, str], Level] = {}
    out = []
    for sku, wh, a, r, t in updates:
        level = Level(sku, wh, a, r, T0 + t * 1000)
        if (sku, wh) in last:
            det.retract(last[(sku, wh)])
        last[(sku, wh)] = level
        msg = det.upsert(level, now=1.0)
        if msg is not None:
            key, value, dedupe = msg
            body = orjson.loads(value)
            assert key == f"{sku}|{wh}".encode() and dedupe == body["dedupe_key"].encode()
            out.append(
                (
                    body["kind"],
                    body["sku_id"],
                    body["warehouse_id"],
                    body["available_qty"],
                    body["reserved_qty"],
                    body["safety_stock"],
                    body["event_time"],
                )
            )
    return out


def engine_alerts(updates: list[Update], safety: SafetyStock, tmp_path: Path) -> list[tuple[object, ...]]:
    """The embedded engine's alerts when every update is its own committed checkpoint."""
    sink = AlertSink(tmp_path / "alerts.sqlite", safety)
    for cid, (sku, wh, a, r, t) in enumerate(updates, start=1):
        sink.commit(rows((sku, wh, a, r, t)), cid)
    out = [
        (a.kind, a.sku_id, a.warehouse_id, a.available_qty, a.reserved_qty, a.safety_stock, iso_ms(a.event_time_ms))
        for a in sink.since(0)
    ]
    sink.close()
    return out


UPDATES: list[Update] = [
    ("A", "W", 20, 0, 0),
    ("B", "W", 3, 0, 1),  # new and already low
    ("A", "W", 9, 0, 2),  # crosses below
    ("A", "W", 4, 0, 3),  # still low: nothing
    ("A", "W", 10, 50, 4),  # back to the threshold (available compared): recovered
    ("A", "W", 12, 0, 5),
    ("B", "W", 3, 1, 6),  # unchanged side
    ("C", "X", 0, 0, 7),  # a key created by an order only
    ("B", "W", 30, 0, 8),
]


@pytest.mark.parametrize("compare", ["available", "atp"])
def test_same_alerts_as_the_engine_when_it_commits_every_update(tmp_path: Path, compare: str) -> None:
    csv = tmp_path / "safety.csv"
    csv.write_text("sku_id,warehouse_id,safety_stock\nA, W ,11\nC,X,0\n")
    safety = SafetyStock.load(csv, default=10, compare=compare)
    thresholds = Thresholds(safety.default, dict(safety.per_key), safety.compare)
    want = engine_alerts(UPDATES, safety, tmp_path)
    assert want, "the scenario must produce alerts"
    assert flink_alerts(UPDATES, thresholds) == want


def test_message_is_the_engines_kafka_shape() -> None:
    det = CrossingDetector(Thresholds(10, {("A", "W"): 5}), "flink:job")
    assert det.upsert(Level("A", "W", 7, 0, T0)) is None  # 7 ≥ 5
    det.retract(Level("A", "W", 7, 0, T0))
    key, value, dedupe = det.upsert(Level("A", "W", 4, 1, T0 + 1500), now=T0 / 1000 + 2) or (b"", b"", b"")
    body = orjson.loads(value)
    assert key == b"A|W"
    assert body == {
        "type": "stock",
        "pipeline_id": "flink:job",
        "dedupe_key": "flink:job:alert:A|W:LOW:1793491201500:4:1",
        "seq": None,
        "kind": "LOW",
        "sku_id": "A",
        "warehouse_id": "W",
        "available_qty": 4,
        "reserved_qty": 1,
        "atp_qty": 3,
        "safety_stock": 5,
        "compare": "available",
        "event_time": "2026-11-01T00:00:01.500Z",
        "checkpoint": None,
        "emitted_at": "2026-11-01T00:00:02.000Z",
    }
    assert dedupe == body["dedupe_key"].encode()
    assert det.alerts == 1


def test_retraction_without_update_then_insert() -> None:
    det = CrossingDetector(Thresholds(10), "p")
    assert det.upsert(Level("A", "W", 3, 0, None)) is not None  # LOW
    det.retract(Level("A", "W", 3, 0, None))  # a -D: the key's previous state is kept for the next +I
    msg = det.upsert(Level("A", "W", 50, 0, None))
    assert msg is not None and orjson.loads(msg[1])["kind"] == "RECOVERED"
    assert orjson.loads(msg[1])["event_time"] is None


def test_thresholds_round_trip() -> None:
    t = Thresholds(7, {("A", "W"): 3, ("B", "X"): 0}, "atp")
    assert Thresholds.from_json(t.to_json()) == t
    assert t.threshold("A", "W") == 3 and t.threshold("Z", "Z") == 7
