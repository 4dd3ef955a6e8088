from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from inventory360.engine.alerts import SafetyStock
from inventory360.errors import ConfigError
from inventory360.sinks.alerts import AlertSink, AlertStore

from .helpers import rows


def kinds(sink: AlertSink) -> list[tuple[str, str, str, int, int, int]]:
    return [(a.kind, a.sku_id, a.warehouse_id, a.available_qty, a.reserved_qty, a.safety_stock) for a in sink.since(0)]


def export(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_once_per_crossing_on_available(tmp_path: Path) -> None:
    sink = AlertSink(tmp_path / "a.sqlite", SafetyStock(default=10), export=tmp_path / "a.jsonl")
    sink.commit(rows(("A", "W", 20, 0), ("B", "W", 3, 0)), 1)  # B is new and already low
    sink.commit(rows(("A", "W", 9, 0)), 2)  # crosses below
    sink.commit(rows(("A", "W", 4, 0)), 3)  # still low: nothing
    sink.commit(rows(("A", "W", 10, 50)), 4)  # back to the threshold: recovered (reserved ignored)
    sink.commit(rows(("A", "W", 12, 0)), 5)
    assert kinds(sink) == [
        ("LOW", "B", "W", 3, 0, 10),
        ("LOW", "A", "W", 9, 0, 10),
        ("RECOVERED", "A", "W", 10, 50, 10),
    ]
    assert sink.keys_below_safety_stock == 1
    lines = export(tmp_path / "a.jsonl")
    assert [x["seq"] for x in lines] == [1, 2, 3]
    assert lines[1]["atp_qty"] == 9 and lines[1]["event_time"] == "2026-11-01T00:00:00.000Z"
    sink.close()


def test_atp_compare_and_per_key_threshold(tmp_path: Path) -> None:
    csv = tmp_path / "safety.csv"
    csv.write_text("sku_id,warehouse_id,safety_stock\nA, W ,5\n")
    safety = SafetyStock.load(csv, default=100, compare="atp")
    sink = AlertSink(tmp_path / "a.sqlite", safety)
    sink.commit(rows(("A", "W", 20, 10), ("B", "W", 200, 0)), 1)  # atp 10 ≥ 5; B 200 ≥ 100
    sink.commit(rows(("A", "W", 20, 16)), 2)  # atp 4 < 5
    assert kinds(sink) == [("LOW", "A", "W", 20, 16, 5)]
    sink.close()


def test_resent_checkpoint_is_ignored_and_state_survives_restart(tmp_path: Path) -> None:
    db, out = tmp_path / "a.sqlite", tmp_path / "a.jsonl"
    sink = AlertSink(db, SafetyStock(default=10), export=out)
    sink.commit(rows(("A", "W", 5, 0)), 1)
    sink.commit(rows(("A", "W", 5, 0)), 1)
    sink.close()
    sink = AlertSink(db, SafetyStock(default=10), export=out)
    assert sink.last_committed() == 1 and sink.keys_below_safety_stock == 1
    sink.commit(rows(("A", "W", 4, 0)), 2)  # still low after restart: no new alert
    sink.commit(rows(("A", "W", 11, 0)), 3)
    assert [a.kind for a in sink.since(0)] == ["LOW", "RECOVERED"]
    assert [x["kind"] for x in export(out)] == ["LOW", "RECOVERED"]
    sink.close()


def test_export_repaired_after_crash_without_duplicates(tmp_path: Path) -> None:
    db, out = tmp_path / "a.sqlite", tmp_path / "a.jsonl"
    sink = AlertSink(db, SafetyStock(default=10), export=out)
    sink.commit(rows(("A", "W", 5, 0), ("B", "W", 5, 0), ("C", "W", 5, 0)), 1)
    sink.close()
    full = out.read_bytes()
    # Crash while exporting: the table has 3 alerts, the file one and a half lines.
    first = full.index(b"\n") + 1
    out.write_bytes(full[: first + 10])
    sink = AlertSink(db, SafetyStock(default=10), export=out)
    assert out.read_bytes() == full
    sink.close()
    # Crash before any export line was written.
    out.write_bytes(b"")
    AlertSink(db, SafetyStock(default=10), export=out).close()
    assert out.read_bytes() == full


def test_crash_between_engine_checkpoint_and_alert_commit(tmp_path: Path) -> None:
    """The pipeline re-sends checkpoint N to a sink that has N-1: same alerts as a clean run."""
    db, out = tmp_path / "a.sqlite", tmp_path / "a.jsonl"
    b1, b2 = rows(("A", "W", 20, 0), ("B", "W", 5, 0)), rows(("A", "W", 5, 0), ("B", "W", 30, 0))
    clean = AlertSink(tmp_path / "clean.sqlite", SafetyStock(default=10), export=tmp_path / "clean.jsonl")
    clean.commit(b1, 1)
    clean.commit(b2, 2)
    sink = AlertSink(db, SafetyStock(default=10), export=out)
    sink.commit(b1, 1)
    sink.close()
    shutil.copy(db, tmp_path / "saved.sqlite")
    sink = AlertSink(db, SafetyStock(default=10), export=out)
    sink.commit(b2, 2)
    sink.close()
    shutil.copy(tmp_path / "saved.sqlite", db)  # the commit of checkpoint 2 never happened
    (tmp_path / "a.sqlite-wal").unlink(missing_ok=True)
    out.write_bytes(b"".join(line + b"\n" for line in out.read_bytes().splitlines()[:1]))
    sink = AlertSink(db, SafetyStock(default=10), export=out)
    assert sink.last_committed() == 1
    sink.commit(b2, 2)
    assert kinds(sink) == kinds(clean)
    assert [(x["seq"], x["kind"], x["sku_id"]) for x in export(out)] == [
        (x["seq"], x["kind"], x["sku_id"]) for x in export(tmp_path / "clean.jsonl")
    ]
    store = AlertStore(db)
    assert store.last_seq() == 3 and store.keys_below_safety_stock() == 1
    assert [a.seq for a in store.since(1)] == [2, 3]
    assert [a.seq for a in store.latest(2)] == [2, 3]
    store.close()
    sink.close()
    clean.close()


@pytest.mark.parametrize(
    "text",
    ["sku,warehouse\nA,W\n", "sku_id,warehouse_id,safety_stock\nA,W,x\n", "sku_id,warehouse_id,safety_stock\n,W,1\n"],
)
def test_bad_safety_stock_file(tmp_path: Path, text: str) -> None:
    f = tmp_path / "s.csv"
    f.write_text(text)
    with pytest.raises(ConfigError):
        SafetyStock.load(f, 10)


def test_vectorised_export_is_exactly_the_stored_alerts(tmp_path: Path) -> None:
    """The export written per commit (Polars) equals ``Alert.to_json`` of the table's rows."""
    import numpy as np
    import pyarrow as pa

    from inventory360.records import SNAPSHOT_SCHEMA

    rng = np.random.default_rng(7)
    skus = ["A", "é\"\\x", "SKU:1", "雪", "s p"]
    sink = AlertSink(tmp_path / "a.sqlite", SafetyStock(default=10, compare="atp"), export=tmp_path / "a.jsonl")
    for cid in range(1, 6):
        n = 40
        times = rng.integers(-10**11, 10**13, n)
        table = pa.table(
            {
                "sku_id": [skus[i % len(skus)] for i in range(n)],
                "warehouse_id": [f"W{i // len(skus)}" for i in range(n)],
                "available_qty": rng.integers(0, 25, n),
                "reserved_qty": rng.integers(0, 10, n),
                "updated_at": pa.array(times, mask=rng.random(n) < 0.2).cast(pa.timestamp("ms")),
            }
        ).cast(SNAPSHOT_SCHEMA)
        sink.commit(table, cid)
    stored = [a.to_json() for a in sink.since(0)]
    assert len(stored) > 40
    assert export(tmp_path / "a.jsonl") == stored
    assert any(a["event_time"] is None for a in stored)
    sink.close()
