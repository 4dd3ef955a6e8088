"""Checkpoint files: event ids outlive base rewrites, merge when too many, and restore exactly."""

from __future__ import annotations

from pathlib import Path

import orjson

from inventory360.cli.options import build_inputs
from inventory360.datagen import GeneratorSpec, generate
from inventory360.engine.checkpoint import CheckpointStore, Manifest
from inventory360.pipeline import LakeLayout, Pipeline
from inventory360.sinks.paimon import read_snapshot


def pipeline(lake: Path, data: Path, **kw: int) -> Pipeline:
    return Pipeline(
        LakeLayout(lake),
        build_inputs([data / "deltas.jsonl"], [data / "orders.jsonl"]),
        batch_bytes=32 << 10,
        checkpoint_interval=0,
        **kw,  # type: ignore[arg-type]
    )


def restored(lake: Path, data: Path) -> tuple[int, int, int]:
    again = pipeline(lake, data)
    again.open()
    try:
        return len(again.engine.keys), len(again.engine.lines), len(again.engine.seen)
    finally:
        again.close()


def test_base_rewrites_leave_event_ids_alone_until_there_are_too_many_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, GeneratorSpec(skus=200, warehouses=5, events=30_000, seed=11))
    lake = tmp_path / "lake"
    bases: list[int] = []
    event_lists: list[list[tuple[str, int]]] = []
    pipe = pipeline(lake, data, compact_min_rows=2_000, event_files_max=5)
    pipe.on_commit.append(lambda s: (bases.append(pipe.manifest.base), event_lists.append(pipe.manifest.events())))
    pipe.open()
    pipe.run()
    pipe.close()
    m = pipe.manifest
    rewrites = {b for b in bases if b > 1}
    merges = {e[0][1] for e in event_lists if e[0] == ("base", e[0][1]) and e[0][1] > 1}
    assert len(rewrites) >= 3, "the state base was rewritten several times"
    assert merges, "the event-id files were merged into a new base at least once"
    assert rewrites - merges, "some base rewrites kept the event-id files"
    assert all(len(e) <= 5 for e in event_lists)
    state = lake / "state"
    for kind, num in m.events():
        assert (state / f"{kind}-{num:08d}-events.arrow").exists()
    assert not (state / f"base-{m.base:08d}-events.arrow").exists() or ("base", m.base) in m.events()
    assert restored(lake, data) == (m.key_count, m.line_count, m.event_id_count)
    assert m.event_id_count > 5_000

    # Replaying again adds nothing: every event id came back from the files.
    snap = read_snapshot(lake / "warehouse", "inventory360", "inventory_snapshot")
    again = pipeline(lake, data)
    again.open()
    assert again.run() == 0
    again.close()
    assert read_snapshot(lake / "warehouse", "inventory360", "inventory_snapshot").equals(snap)


def test_a_manifest_from_before_event_files_restores_from_base_and_segments(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, GeneratorSpec(skus=100, warehouses=4, events=10_000, seed=12))
    lake = tmp_path / "lake"
    pipe = pipeline(lake, data, compact_min_rows=10**9, event_files_max=10**6)
    pipe.open()
    pipe.run()
    pipe.close()
    m = pipe.manifest
    assert m.base == 1 and len(m.segments) > 3
    assert m.events() == [("base", 1), *(("seg", s) for s in m.segments)]  # the old layout
    path = lake / "state" / f"manifest-{m.checkpoint:08d}.json"
    old = orjson.loads(path.read_bytes())
    del old["event_files"]
    path.write_bytes(orjson.dumps(old))
    latest = CheckpointStore(lake / "state").latest()
    assert isinstance(latest, Manifest) and latest.event_files is None
    assert latest.events() == m.events()
    assert restored(lake, data) == (m.key_count, m.line_count, m.event_id_count)
