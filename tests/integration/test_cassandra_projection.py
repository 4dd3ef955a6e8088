"""CassandraProjectionSink / CassandraProjection against the real Cassandra (services/svc up cassandra)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from inventory360.cli.options import build_inputs
from inventory360.datagen import GeneratorSpec, generate
from inventory360.engine.alerts import SafetyStock
from inventory360.errors import TransientSinkError
from inventory360.pipeline import LakeLayout, Pipeline
from inventory360.records import SNAPSHOT_SCHEMA
from inventory360.sinks.cassandra import CassandraProjection, CassandraProjectionSink, CassandraTarget
from inventory360.sinks.paimon import read_snapshot

pytestmark = pytest.mark.integration


@pytest.fixture
def target() -> Iterator[CassandraTarget]:
    t = CassandraTarget(table=f"it_proj_{uuid.uuid4().hex[:10]}")
    yield t
    cluster, session = t.connect()
    try:
        session.execute(f"DROP TABLE IF EXISTS {t.keyspace}.{t.table}", timeout=60)
        session.execute(f"DROP TABLE IF EXISTS {t.keyspace}.{t.meta_table}", timeout=60)
    finally:
        cluster.shutdown()


def rows(*items: tuple[str, str, int, int, int]) -> pa.Table:
    return pa.table(
        {
            "sku_id": [i[0] for i in items],
            "warehouse_id": [i[1] for i in items],
            "available_qty": [i[2] for i in items],
            "reserved_qty": [i[3] for i in items],
            "updated_at": pa.array([i[4] for i in items], pa.int64()).cast(pa.timestamp("ms")),
        }
    ).cast(SNAPSHOT_SCHEMA)


def test_upserts_are_idempotent_and_older_checkpoints_never_win(target: CassandraTarget) -> None:
    sink = CassandraProjectionSink(target, "writer-1", batch_rows=2)
    store = CassandraProjection(target, SafetyStock(default=5))
    try:
        assert sink.last_committed() == 0
        first = rows(("A", "W1", 10, 2, 1000), ("A", "W2", 3, 0, 1001), ("A", "W3", 1, 1, 1002), ("B", "W1", 7, 7, 999))
        sink.commit(first, 1)
        second = rows(("A", "W1", 4, 2, 2000), ("B", "W2", 9, 1, 2001))
        sink.commit(second, 2)
        sink.commit(first, 1)  # a re-sent older checkpoint: every cell of checkpoint 2 stays
        sink.commit(second, 2)  # the same checkpoint again: no change
        assert sink.last_committed() == 2
        assert store.rows() == [
            ("A", "W1", 4, 2, 2000, 2),
            ("A", "W2", 3, 0, 1001, 1),
            ("A", "W3", 1, 1, 1002, 1),
            ("B", "W1", 7, 7, 999, 1),
            ("B", "W2", 9, 1, 2001, 2),
        ]
        got = store.get("A", "W1")
        assert got is not None and (got.available_qty, got.atp_qty, got.below_safety_stock) == (4, 2, True)
        assert store.get("A", "nope") is None
        assert [r.warehouse_id for r in store.list_sku("A")] == ["W1", "W2", "W3"]
        page = store.page(limit=2)
        assert [(r.sku_id, r.warehouse_id) for r in page.rows] == [("A", "W1"), ("A", "W2")]
        assert page.next_after == ("A", "W2")
        rest = store.page(limit=10, after=page.next_after)
        assert [(r.sku_id, r.warehouse_id) for r in rest.rows] == [("A", "W3"), ("B", "W1"), ("B", "W2")]
        assert rest.next_after is None
        assert [r.sku_id for r in store.page(limit=10, warehouse_id="W2").rows] == ["A", "B"]
        assert len(store.page(limit=10, below_safety_stock=True).rows) == 3
        st = store.status()
        assert (st.checkpoint, st.keys, st.available_qty, st.reserved_qty) == (2, 5, 24, 11)
        changed, cp = store.changes_since(1, 100)
        assert cp == 2 and sorted((r.sku_id, r.warehouse_id) for r in changed) == [("A", "W1"), ("B", "W2")]
        assert store.last_commit_time() is not None
    finally:
        sink.close()
        store.close()
    # A restarted writer keeps its timestamp base: its next checkpoint still wins.
    again = CassandraProjectionSink(target, "writer-1")
    try:
        assert again.last_committed() == 2
        again.commit(rows(("A", "W1", 0, 0, 3000)), 3)
    finally:
        again.close()
    store = CassandraProjection(target)
    try:
        assert store.rows()[0] == ("A", "W1", 0, 0, 3000, 3)
    finally:
        store.close()


def test_unavailable_cassandra_blocks_and_retries_until_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    dead = CassandraTarget(port=1, table="never")  # nothing listens on port 1
    box: dict[str, BaseException] = {}
    cancel = threading.Event()

    def build() -> None:
        try:
            CassandraProjectionSink(dead, "w", backoff=(0.05, 0.2), cancel=cancel)
        except BaseException as exc:
            box["exc"] = exc

    with caplog.at_level(logging.WARNING, logger="inventory360.sinks.cassandra"):
        t = threading.Thread(target=build)
        t.start()
        t.join(3)
        assert t.is_alive(), "the sink must block while Cassandra is unreachable"
        cancel.set()
        t.join(30)
    assert isinstance(box.get("exc"), TransientSinkError)
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) >= 2


def test_pipeline_projection_in_cassandra_equals_the_lake(tmp_path: Path, target: CassandraTarget) -> None:
    data = tmp_path / "data"
    generate(data, GeneratorSpec(skus=200, warehouses=5, events=20_000, invalid_rate=0.001, seed=5))
    made: list[CassandraProjectionSink] = []

    def sinks(pipeline_id: str) -> list[CassandraProjectionSink]:
        made.append(CassandraProjectionSink(target, pipeline_id))
        return made[-1:]

    lake = tmp_path / "lake"
    pipe = Pipeline(
        LakeLayout(lake),
        build_inputs([data / "deltas.jsonl"], [data / "orders.jsonl"]),
        batch_bytes=256 << 10,
        extra_sinks=sinks,
        checkpoint_interval=0,  # one checkpoint per batch: many projection commits
    )
    pipe.open()
    pipe.run()
    pipe.close()
    want = [
        (r["sku_id"], r["warehouse_id"], r["available_qty"], r["reserved_qty"])
        for r in read_snapshot(lake / "warehouse", "inventory360", "inventory_snapshot").to_pylist()
    ]
    store = CassandraProjection(target)
    try:
        got = [r[:4] for r in store.rows()]
    finally:
        store.close()
    assert len(want) > 500
    assert got == want
    assert made[0].last_committed() == pipe.manifest.checkpoint > 3
