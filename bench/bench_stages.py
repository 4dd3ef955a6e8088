"""Where the CPU of ``inv360 bench`` goes (not a test): thread CPU time per pipeline stage.

    .venv/bin/python bench/bench_stages.py [--events 1000000] [--batch-mb 64]

Runs the same warm-up and measured replay as ``inv360 bench`` (same cached data) and
times, in the measured phase only, each stage of a micro-batch with the thread's CPU
clock: decoding per input kind, the engine, the key maps inside it (per index), snapshot
rows, the checkpoint (with its parts) and the Paimon commit.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inventory360 import benchmark, pipeline
from inventory360.engine import checkpoint, engine, index, persist, state
from inventory360.sinks import paimon
from inventory360.sources import native

spent: Counter[str] = Counter()
rows: Counter[str] = Counter()
measuring = False


def timed(owner: Any, name: str, label: Callable[..., str]) -> None:
    """Replace ``owner.name`` by a wrapper adding its thread CPU time to ``spent``."""
    inner = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            if measuring:
                spent[label(*args, **kwargs)] += time.thread_time() - t

    setattr(owner, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch-mb", type=float, default=64.0)
    ap.add_argument("--checkpoint-interval", type=float, default=1.0)
    args = ap.parse_args()

    timed(native._NativeMixin, "decode", lambda self, buf: f"decode {type(self).__name__}")
    timed(engine.Engine, "process", lambda *a: "engine (all)")
    timed(state.KeyTable, "rows", lambda *a: "snapshot rows")
    timed(pipeline.Pipeline, "_checkpoint", lambda *a: "checkpoint (all)")
    timed(persist, "changes", lambda *a: "  checkpoint: changed state as tables")
    timed(persist, "full", lambda *a: "  checkpoint: whole state as tables (base)")
    timed(persist, "all_events", lambda *a: "  checkpoint: all event ids as a table (event base)")
    timed(checkpoint.CheckpointStore, "write_part", lambda _s, kind, _c, part, _t: f"  checkpoint: write {kind} {part}")
    timed(checkpoint.CheckpointStore, "commit", lambda *a: "  checkpoint: manifest")
    timed(paimon.PaimonSnapshotSink, "commit", lambda *a: "Paimon write + commit")
    timed(paimon.BucketRouter, "route", lambda *a: "  Paimon: bucket and sort the rows")
    sink_commit = paimon.PaimonSnapshotSink.commit

    def counted_commit(self: paimon.PaimonSnapshotSink, table: Any, checkpoint_id: int) -> None:
        if measuring:
            rows["Paimon write + commit"] += table.num_rows
            rows["  Paimon: bucket and sort the rows"] += table.num_rows
        sink_commit(self, table, checkpoint_id)

    paimon.PaimonSnapshotSink.commit = counted_commit  # type: ignore[method-assign]

    resolve = index.KeyIndex.resolve_new

    def counted(self: index.KeyIndex, columns: Any, sel: Any = None, insert: bool = True) -> Any:
        t = time.thread_time()
        try:
            return resolve(self, columns, sel, insert)
        finally:
            if measuring:
                label = f"  engine: key map {'+'.join(self.columns)}"
                spent[label] += time.thread_time() - t
                rows[label] += len(columns[0]) if sel is None else len(sel)

    index.KeyIndex.resolve_new = counted  # type: ignore[method-assign]

    run = pipeline.Pipeline.run

    def measured_run(self: pipeline.Pipeline, *a: Any, **k: Any) -> int:
        global measuring
        measuring = len(self.engine.keys) > 0  # the warm-up starts empty
        t = time.thread_time()
        try:
            return run(self, *a, **k)
        finally:
            if measuring:
                spent["TOTAL (pipeline thread)"] += time.thread_time() - t
            measuring = False

    pipeline.Pipeline.run = measured_run  # type: ignore[method-assign]
    work = Path(".cache/bench")
    for result in benchmark.run(work, 50_000, 20, args.events, args.batch_mb, 1, None, args.checkpoint_interval):
        print(result.line())
    print(
        f"\nthread CPU per stage, measured phase ({args.events:,} events, {args.batch_mb:g} MiB batches, "
        f"checkpoint interval {args.checkpoint_interval:g} s):"
    )
    for label, seconds in sorted(spent.items(), key=lambda kv: (kv[0].startswith("  "), -kv[1])):
        n = rows.get(label)
        extra = f"  ({n:,} rows, {seconds / n * 1e9:.0f} ns each)" if n else ""
        print(f"{seconds:8.3f} s  {label}{extra}")


if __name__ == "__main__":
    main()
