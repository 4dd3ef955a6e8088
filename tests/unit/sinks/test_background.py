"""BackgroundSink: merged commits end in the same state; failures stop the pipeline; one thread."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from inventory360.records import SNAPSHOT_SCHEMA
from inventory360.sinks.background import BackgroundSink, merge_rows
from inventory360.sinks.base import SnapshotSink


def rows(*items: tuple[str, str, int]) -> pa.Table:
    return pa.table(
        {
            "sku_id": [i[0] for i in items],
            "warehouse_id": [i[1] for i in items],
            "available_qty": [i[2] for i in items],
            "reserved_qty": [0] * len(items),
            "updated_at": pa.array([i[2] for i in items], pa.int64()).cast(pa.timestamp("ms")),
        }
    ).cast(SNAPSHOT_SCHEMA)


class Recorder(SnapshotSink):
    """Keeps the state, the commits and the threads it was used from; can be held or made to fail."""

    name = "recorder"

    def __init__(self) -> None:
        self.state: dict[tuple[str, str], int] = {}
        self.commits: list[tuple[int, int]] = []
        self.threads: set[int] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.fail_at: int | None = None
        self.closed = False

    def commit(self, rows: pa.Table, checkpoint_id: int) -> None:
        self.threads.add(threading.get_ident())
        self.gate.wait(10)
        if checkpoint_id == self.fail_at:
            raise RuntimeError("disk full")
        for r in rows.to_pylist():
            self.state[(r["sku_id"], r["warehouse_id"])] = r["available_qty"]
        self.commits.append((checkpoint_id, rows.num_rows))

    def last_committed(self) -> int:
        self.threads.add(threading.get_ident())
        return self.commits[-1][0] if self.commits else 0

    def close(self) -> None:
        self.threads.add(threading.get_ident())
        self.closed = True


def test_merge_keeps_the_last_row_of_each_key() -> None:
    got = merge_rows([rows(("a", "w", 1), ("b", "w", 2)), rows(("a", "w", 3)), rows()])
    assert got.schema == SNAPSHOT_SCHEMA and got.num_rows == 2
    assert sorted((r["sku_id"], r["available_qty"]) for r in got.to_pylist()) == [("a", 3), ("b", 2)]


def test_queued_checkpoints_merge_into_one_commit_with_the_same_final_state() -> None:
    rec = Recorder()
    sink = BackgroundSink(lambda: rec)
    rec.gate.clear()  # the first commit blocks: the next ones queue up
    sink.commit(rows(("a", "w", 1)), 1)
    sink.commit(rows(("a", "w", 2), ("b", "w", 5)), 2)
    sink.commit(rows(("b", "w", 6)), 3)
    rec.gate.set()
    sink.flush()
    assert rec.state == {("a", "w"): 2, ("b", "w"): 6}
    assert rec.commits[-1][0] == 3 and len(rec.commits) <= 3
    assert sink.last_committed() == 3
    sink.close()
    assert rec.closed
    assert len(rec.threads) == 1 and threading.get_ident() not in rec.threads  # one worker thread, start to end


def test_a_failure_is_raised_to_the_pipeline() -> None:
    rec = Recorder()
    rec.fail_at = 2
    sink = BackgroundSink(lambda: rec)
    sink.commit(rows(("a", "w", 1)), 1)
    sink.flush()
    sink.commit(rows(("a", "w", 2)), 2)
    with pytest.raises(RuntimeError, match="disk full"):
        sink.flush()
    with pytest.raises(RuntimeError, match="disk full"):
        sink.commit(rows(("a", "w", 3)), 3)
    with pytest.raises(RuntimeError, match="disk full"):
        sink.close()
    assert rec.state == {("a", "w"): 1} and rec.closed


def test_a_factory_error_surfaces_at_once() -> None:
    def broken() -> SnapshotSink:
        raise OSError("no such table")

    with pytest.raises(OSError, match="no such table"):
        BackgroundSink(broken)
