"""Paimon write benchmark (not a test): CPU per changed key of the snapshot sink, per table option.

    .venv/bin/python bench/bench_paimon_write.py [--rows 400000] [OPTION=VALUE ...]

Writes four commits of ``--rows`` random keys (out of 1,000,000) through
:class:`~inventory360.sinks.paimon.PaimonSnapshotSink` into a fresh table created with the
project's options plus the given ones (e.g. ``file.compression=none``,
``metadata.stats-mode=none``), and prints CPU seconds per commit and per row, and the data files' bytes per row.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

import inventory360.sinks.paimon as paimon
from inventory360.records import SNAPSHOT_SCHEMA


def rows(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = rng.choice(1_000_000, n, replace=False)
    return pa.table(
        {
            "sku_id": [f"SKU-{i // 20:07d}" for i in ids],
            "warehouse_id": [f"WH-{i % 20:03d}" for i in ids],
            "available_qty": rng.integers(0, 100, n),
            "reserved_qty": rng.integers(0, 100, n),
            "updated_at": pa.array(rng.integers(0, 10**12, n)).cast(pa.timestamp("ms")),
        }
    ).cast(SNAPSHOT_SCHEMA)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("options", nargs="*", help="extra table options, KEY=VALUE")
    args = ap.parse_args()
    extra = dict(o.split("=", 1) for o in args.options)
    base = paimon.table_options
    paimon.table_options = lambda bucket: {**base(bucket), **extra}  # type: ignore[assignment]
    work = Path(tempfile.mkdtemp(prefix="inv360-paimon-bench-"))
    try:
        sink = paimon.PaimonSnapshotSink(work, "bench", "snapshot", 8, "bench")
        tables = [rows(args.rows, i) for i in range(4)]
        c0 = time.process_time()
        for i, t in enumerate(tables, start=1):
            sink.commit(t, i)
        per_commit = (time.process_time() - c0) / len(tables)
        sink.close()
        size = sum(f.stat().st_size for f in work.rglob("*.parquet"))
        print(f"options {extra or '(project defaults)'}: {per_commit:.3f} CPU-s per commit of {args.rows:,} rows "
              f"= {per_commit / args.rows * 1e6:.2f} µs per row; data files {size / (len(tables) * args.rows):.1f} "
              "bytes per row")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
