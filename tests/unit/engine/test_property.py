"""Property: shuffles, duplicates and splits into several replays match the oracle."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import T0, cdc, delta, line, rows_of, write_lines
from inventory360.sources.debezium import DebeziumOrderDecoder
from inventory360.sources.deltas import DeltaDecoder
from oracle import Oracle

SKUS = st.sampled_from(["A", "B", "C"])
WHS = st.sampled_from(["W1", "W2"])


@st.composite
def event_sets(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """A valid event set: deltas with ids, and per-line histories with binlog positions."""
    n = draw(st.integers(1, 25))
    deltas = [
        delta(draw(SKUS), draw(WHS), draw(st.integers(-5, 9)), t=draw(st.integers(0, 60)), eid=f"e{i}")
        for i in range(n)
    ]
    orders: list[bytes] = []
    # Positions past 2**32 take the engine's lexsort path instead of packed int64 ranks.
    pos = draw(st.sampled_from([0, 2**33]))
    for oid in range(draw(st.integers(0, 6))):
        prev = None
        for _ in range(draw(st.integers(1, 4))):
            pos += draw(st.integers(1, 50))
            op = "d" if prev is not None and draw(st.integers(0, 5)) == 0 else ("u" if prev else "c")
            img = (
                None
                if op == "d"
                else line(
                    oid,
                    draw(SKUS),
                    draw(WHS),
                    draw(st.integers(0, 5)),
                    draw(st.sampled_from(["CREATED", "ALLOCATED", "SHIPPED", "CANCELLED"])),
                    t=draw(st.integers(0, 60)),
                )
            )
            orders.append(cdc(op, prev, img, pos=pos, t=draw(st.integers(0, 60))))
            prev = img
            if op == "d":
                break
    return deltas, orders


def arrive(draw: st.DrawFn, msgs: list[bytes]) -> list[bytes]:
    """Shuffle and duplicate."""
    out = list(msgs) + [m for m in msgs if draw(st.booleans()) and draw(st.booleans())]
    return draw(st.permutations(out))


def oracle_rows(deltas: list[bytes], orders: list[bytes]) -> list[tuple[object, ...]]:
    o = Oracle()
    for m in deltas:
        o.delta(DeltaDecoder().record(m))  # type: ignore[arg-type]
    for m in orders:
        o.order(DebeziumOrderDecoder().record(m))  # type: ignore[arg-type]
    return [(s, w, a, r, (t - T0) / 1000) for s, w, a, r, t in o.snapshot()]


def splits(draw: st.DrawFn, msgs: list[bytes], parts: int) -> list[list[bytes]]:
    cuts = sorted(draw(st.lists(st.integers(0, len(msgs)), min_size=parts - 1, max_size=parts - 1)))
    bounds = [0, *cuts, len(msgs)]
    return [msgs[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=150, deadline=None)
@given(event_sets(), st.data())
def test_engine_batches_match_oracle(events: tuple[list[bytes], list[bytes]], data: st.DataObject) -> None:
    from conftest import run_engine

    deltas = arrive(data.draw, events[0])
    orders = arrive(data.draw, events[1])
    k = data.draw(st.integers(1, 5))
    batches = list(zip(splits(data.draw, deltas, k), splits(data.draw, orders, k), strict=True))
    rows, _ = run_engine(batches)
    assert rows == oracle_rows(deltas, orders)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event_sets(), st.data())
def test_replays_into_the_lake_match_oracle(
    tmp_path_factory: object, events: tuple[list[bytes], list[bytes]], data: st.DataObject
) -> None:
    """Several `replay`s (new files each time, tiny batches) end in the oracle's snapshot."""
    from inventory360.cli.options import build_inputs
    from inventory360.pipeline import LakeLayout, Pipeline
    from inventory360.sinks.paimon import read_snapshot

    root = Path(tmp_path_factory.mktemp("lake"))  # type: ignore[attr-defined]
    deltas = arrive(data.draw, events[0])
    orders = arrive(data.draw, events[1])
    k = data.draw(st.integers(1, 3))
    for i, (d, o) in enumerate(zip(splits(data.draw, deltas, k), splits(data.draw, orders, k), strict=True)):
        files_d = [write_lines(root / f"d{i}.jsonl", d)] if d else []
        files_o = [write_lines(root / f"o{i}.jsonl", o)] if o else []
        # Draw before opening the files: a draw may abort the example (hypothesis), which
        # would leave the sources open.
        batch_bytes = data.draw(st.sampled_from([200, 1 << 20]))
        pipe = Pipeline(LakeLayout(root / "lake"), build_inputs(files_d, files_o), batch_bytes=batch_bytes)
        try:
            pipe.open()
            pipe.run()
        finally:
            pipe.close()
    if not deltas and not orders:
        return
    got = rows_of(read_snapshot(root / "lake" / "warehouse", "inventory360", "inventory_snapshot"))
    assert got == oracle_rows(deltas, orders)
