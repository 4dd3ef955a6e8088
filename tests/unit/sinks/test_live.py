"""LiveProjection: recent checkpoints answered from memory, older keys from the durable projection."""

from __future__ import annotations

import time
from pathlib import Path

from inventory360.engine.alerts import SafetyStock
from inventory360.sinks.live import LiveProjection
from inventory360.sinks.projection import SqliteProjection, SqliteProjectionSink

from .helpers import T0, rows


def setup(tmp_path: Path, keep_s: float = 5.0) -> tuple[LiveProjection, SqliteProjectionSink]:
    safety = SafetyStock(default=10)
    durable_sink = SqliteProjectionSink(tmp_path / "p.sqlite", safety)
    return LiveProjection(SqliteProjection(tmp_path / "p.sqlite"), safety, keep_s=keep_s), durable_sink


def test_reads_newest_generation_then_the_durable_store(tmp_path: Path) -> None:
    live, durable = setup(tmp_path)
    first = rows(("A", "W1", 20, 0), ("A", "W2", 5, 1), ("B", "W1", 7, 0))
    durable.commit(first, 1)  # the durable store holds checkpoint 1 only
    live.sink.commit(first, 1)
    live.sink.commit(rows(("A", "W1", 3, 2, 5)), 2)
    live.sink.commit(rows(("A", "W1", 4, 2, 6), ("A", "W3", 50, 0)), 3)

    a = live.get("A", "W1")
    assert a is not None and (a.available_qty, a.reserved_qty, a.updated_at_ms) == (4, 2, T0 + 6000)
    assert a.below_safety_stock and a.safety_stock == 10 and a.atp_qty == 2
    assert durable_get(tmp_path, "A", "W1") == 20  # not yet in SQLite: served from memory
    assert live.get("A", "W3") is not None and live.get("Z", "W1") is None
    assert [(r.warehouse_id, r.available_qty) for r in live.list_sku("A")] == [("W1", 4), ("W2", 5), ("W3", 50)]
    assert live.last_checkpoint() == 3 and live.sink.last_committed() == 3

    changed, cp = live.changes_since(1, 100)
    assert cp == 3 and sorted((r.sku_id, r.warehouse_id, r.available_qty) for r in changed) == [
        ("A", "W1", 4),
        ("A", "W3", 50),
    ]
    assert live.changes_since(3, 100) == ([], 3)
    assert len(live.changes_since(0, 2)[0]) == 2  # truncated at the limit (the caller reloads)
    live.close()
    durable.close()


def test_re_sent_checkpoint_is_ignored_and_old_generations_leave_once_durable(tmp_path: Path) -> None:
    live, durable = setup(tmp_path, keep_s=0.0)
    live.sink.commit(rows(("A", "W", 1, 0)), 1)
    live.sink.commit(rows(("A", "W", 99, 0)), 1)  # re-sent after a restart
    got = live.get("A", "W")
    assert got is not None and got.available_qty == 1
    live.sink.commit(rows(("B", "W", 2, 0)), 2)
    assert len(live._gens) == 2  # nothing durable yet: everything stays
    durable.commit(rows(("A", "W", 1, 0), ("B", "W", 2, 0)), 2)
    time.sleep(0.01)
    live.sink.commit(rows(("C", "W", 3, 0)), 3)
    assert [g.checkpoint for g in live._gens] == [3]  # 1 and 2 are in SQLite now
    a = live.get("A", "W")
    assert a is not None and a.available_qty == 1  # from SQLite
    # A client behind the memory's window is answered by the durable store.
    changed, cp = live.changes_since(0, 100)
    assert cp == 2 and {r.sku_id for r in changed} == {"A", "B"}
    changed, cp = live.changes_since(2, 100)
    assert cp == 3 and [r.sku_id for r in changed] == ["C"]
    live.close()
    durable.close()


def test_starts_from_the_durable_checkpoint(tmp_path: Path) -> None:
    live, durable = setup(tmp_path)
    durable.commit(rows(("A", "W", 1, 0)), 7)
    assert live.sink.last_committed() == 7  # the pipeline re-sends nothing the durable store has
    stored = live.last_commit_time()
    assert stored is not None  # from SQLite: nothing committed or heard here yet
    live.sink.mark_current()  # the pipeline's "caught up" heartbeat moves freshness, no query
    now = live.last_commit_time()
    assert now is not None and now >= stored and time.time() - now < 1.0
    live.close()
    durable.close()


def durable_get(tmp_path: Path, sku: str, wh: str) -> int | None:
    store = SqliteProjection(tmp_path / "p.sqlite")
    try:
        r = store.get(sku, wh)
        return None if r is None else r.available_qty
    finally:
        store.close()
