"""Checkpoints that cover several micro-batches: same snapshot, same state, fewer commits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import cdc, delta, line, write_lines
from inventory360.cli.options import build_inputs
from inventory360.datagen import GeneratorSpec, generate
from inventory360.engine.engine import Engine, EngineOptions, merge_results
from inventory360.pipeline import LakeLayout, Pipeline, StepStats
from inventory360.sinks.paimon import read_snapshot
from inventory360.sources.debezium import DebeziumOrderDecoder
from inventory360.sources.deltas import DeltaDecoder


def test_merged_results_keep_the_values_from_before_the_first_batch() -> None:
    engine = Engine(EngineOptions(frozenset({"CREATED", "ALLOCATED"})))
    dd, od = DeltaDecoder(), DebeziumOrderDecoder()

    def batch(deltas: list[bytes], orders: list[bytes]):  # type: ignore[no-untyped-def]
        d = dd.decode(b"".join(m + b"\n" for m in deltas))
        o = od.decode(b"".join(m + b"\n" for m in orders))
        return engine.process(d.table, o.table)

    batch([delta("A", "W", 10, eid="e0")], [])
    r1 = batch([delta("A", "W", 5, eid="e1"), delta("B", "W", 3, eid="e2")], [])
    r2 = batch(
        [delta("A", "W", -1, eid="e3"), delta("C", "W", 7, eid="e4"), delta("B", "W", 1, eid="e2")],
        [cdc("c", None, line(1, "A", "W", 2, "CREATED"), pos=100)],
    )
    m = merge_results([r1, r2])
    keys = engine.keys.index.take(m.changed)
    named = dict(zip(keys["sku_id"].to_pylist(), range(m.changed.size), strict=True))
    assert sorted(named) == ["A", "B", "C"]
    assert np.all(np.diff(m.changed) > 0)
    assert m.before_available[named["A"]] == 10  # before r1, not before r2 (15)
    assert m.before_available[named["B"]] == 0 and not m.existed[named["B"]]
    assert m.before_available[named["C"]] == 0 and not m.existed[named["C"]]
    assert m.existed[named["A"]]
    assert sorted(m.new_event_ids.to_pylist()) == ["e1", "e2", "e3", "e4"]
    assert m.counters["deltas_duplicate"] == 1
    assert m.changed_lines.size == 1
    assert merge_results([r1]) is r1


def replay(lake: Path, data: Path, interval: float) -> list[StepStats]:
    commits: list[StepStats] = []
    pipe = Pipeline(
        LakeLayout(lake),
        build_inputs([data / "deltas.jsonl"], [data / "orders.jsonl"]),
        batch_bytes=64 << 10,
        checkpoint_interval=interval,
        on_commit=[commits.append],
    )
    pipe.open()
    pipe.run()
    pipe.close()
    return commits


def test_one_checkpoint_for_many_batches_gives_the_per_batch_snapshot(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, GeneratorSpec(skus=300, warehouses=4, events=20_000, seed=3, invalid_rate=0.01))
    every = replay(tmp_path / "every", data, 0.0)
    once = replay(tmp_path / "once", data, 3600.0)
    assert len(every) > 10 and all(c.batches == 1 for c in every)
    assert len(once) == 1 and once[0].batches == len(every)  # the idle sources end the checkpoint
    assert sum(c.lines for c in once) == sum(c.lines for c in every)
    want = read_snapshot(tmp_path / "every" / "warehouse", "inventory360", "inventory_snapshot")
    got = read_snapshot(tmp_path / "once" / "warehouse", "inventory360", "inventory_snapshot")
    assert want.num_rows > 500
    assert got.equals(want)
    dead = (tmp_path / "every" / "dead_letters.jsonl").read_bytes()
    assert dead.count(b"\n") > 50
    assert (tmp_path / "once" / "dead_letters.jsonl").read_bytes() == dead


def test_batches_not_yet_checkpointed_are_redone_after_a_stop(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    msgs = [delta(f"S{i % 50}", "W", 1, eid=f"e{i}") for i in range(3000)]
    deltas = write_lines(tmp_path / "d.jsonl", msgs)
    orders = write_lines(tmp_path / "o.jsonl", [])

    def pipeline() -> Pipeline:
        return Pipeline(
            LakeLayout(lake), build_inputs([deltas], [orders]), batch_bytes=8 << 10, checkpoint_interval=3600
        )

    first = pipeline()
    first.open()
    stats = [first.step() for _ in range(3)]
    assert all(s is not None and not s.committed for s in stats)
    first.close(checkpoint=False)  # as after kill -9: three batches processed, none checkpointed
    assert first.manifest.checkpoint == 0
    second = pipeline()
    second.open()
    assert len(second.engine.keys) == 0
    second.run()
    second.close()
    snap = read_snapshot(lake / "warehouse", "inventory360", "inventory_snapshot")
    assert sorted(snap["available_qty"].to_pylist()) == [60] * 50
    assert second.counters["deltas_accepted"] == 3000


def test_close_checkpoints_the_batches_still_pending(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    deltas = write_lines(tmp_path / "d.jsonl", [delta(f"S{i % 20}", "W", 2, eid=f"e{i}") for i in range(2000)])
    orders = write_lines(tmp_path / "o.jsonl", [])
    pipe = Pipeline(LakeLayout(lake), build_inputs([deltas], [orders]), batch_bytes=8 << 10, checkpoint_interval=3600)
    pipe.open()
    assert all(s is not None and not s.committed for s in (pipe.step(), pipe.step()))
    pipe.close()
    assert pipe.manifest.checkpoint == 1
    snap = read_snapshot(lake / "warehouse", "inventory360", "inventory_snapshot")
    assert snap.num_rows == 20 and sum(snap["available_qty"].to_pylist()) == 2 * pipe.counters["deltas_accepted"] > 0
