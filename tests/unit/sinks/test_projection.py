from __future__ import annotations

from pathlib import Path

from inventory360.engine.alerts import SafetyStock
from inventory360.sinks.projection import SqliteProjection, SqliteProjectionSink

from .helpers import T0, rows


def test_commit_get_list_and_checkpoint_atomicity(tmp_path: Path) -> None:
    db = tmp_path / "p.sqlite"
    sink = SqliteProjectionSink(db, SafetyStock(default=10))
    assert sink.last_committed() == 0
    sink.commit(rows(("A", "W1", 5, 2, 3), ("A", "W2", 20, 1), ("B", "W1", 0, 0)), 1)
    sink.commit(rows(("A", "W1", 50, 2, 4)), 2)
    sink.commit(rows(("A", "W1", 999, 0)), 2)  # a re-sent or older checkpoint is ignored
    sink.commit(rows(("A", "W1", 999, 0)), 1)
    assert sink.last_committed() == 2
    store = SqliteProjection(db)
    a = store.get("A", "W1")
    assert a is not None
    assert (a.available_qty, a.reserved_qty, a.atp_qty, a.updated_at_ms, a.below_safety_stock) == (
        50,
        2,
        48,
        T0 + 4000,
        False,
    )
    assert store.get("A", "W9") is None
    assert [(r.warehouse_id, r.available_qty) for r in store.list_sku("A")] == [("W1", 50), ("W2", 20)]
    assert store.last_commit_time() is not None
    st = store.status()
    assert (st.checkpoint, st.keys, st.below_safety_stock, st.available_qty, st.reserved_qty) == (2, 3, 1, 70, 3)
    changed, cp = store.changes_since(1, 100)
    assert cp == 2 and [(r.sku_id, r.warehouse_id) for r in changed] == [("A", "W1")]
    assert store.changes_since(2, 100) == ([], 2)
    sink.close()
    # Restart: the rows and the checkpoint are there together.
    again = SqliteProjectionSink(db, SafetyStock(default=10))
    assert again.last_committed() == 2
    again.close()
    store.close()


def test_paging_filters_and_cursor(tmp_path: Path) -> None:
    db = tmp_path / "p.sqlite"
    sink = SqliteProjectionSink(db, SafetyStock(default=10))
    items = [(f"S{i:02d}", f"W{w}", i * w, 0) for i in range(10) for w in (1, 2)]
    sink.commit(rows(*items), 1)
    store = SqliteProjection(db)
    seen, after = [], None
    while True:
        page = store.page(limit=3, after=after)
        seen += [(r.sku_id, r.warehouse_id) for r in page.rows]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == sorted((s, w) for s, w, _, _ in items)
    low = store.page(limit=100, below_safety_stock=True, warehouse_id="W2")
    assert [r.sku_id for r in low.rows] == ["S00", "S01", "S02", "S03", "S04"]  # 2*i < 10
    assert [r.sku_id for r in store.page(limit=100, sku_prefix="S0", warehouse_id="W1").rows] == [
        f"S0{i}" for i in range(10)
    ]
    sink.close()
    store.close()


def test_changed_safety_stock_rejudges_rows_on_open(tmp_path: Path) -> None:
    db = tmp_path / "p.sqlite"
    sink = SqliteProjectionSink(db, SafetyStock(default=10))
    sink.commit(rows(("A", "W1", 5, 0), ("B", "W1", 15, 10)), 1)
    sink.close()
    sink = SqliteProjectionSink(db, SafetyStock(default=3, per_key=((("B", "W1"), 6),), compare="atp"))
    store = SqliteProjection(db)
    got = {r.sku_id: (r.safety_stock, r.below_safety_stock) for r in store.page(limit=10).rows}
    assert got == {"A": (3, False), "B": (6, True)}
    sink.close()
    store.close()
