"""Key map benchmark (not a test): ns per lookup and per insert of the Rust ``KeyMap``.

    .venv/bin/python bench/bench_keymap.py [--keys 1000000] [--lookups 600000]

Inserts ``--keys`` (sku, warehouse) keys, then times the best of five resolves of
``--lookups`` random existing keys (the engine's steady state), then gathers those keys
back by id, in random and in ascending order (snapshot rows gather ascending ids), then
inserts new 400,000-key batches (the event-id map's case; the first of them grows the
table).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa

from inventory360.engine.index import _NativeMap


def keys(ids: np.ndarray) -> list[pa.Array]:
    return [pa.array([f"SKU-{i // 20:07d}" for i in ids]), pa.array([f"WH-{i % 20:03d}" for i in ids])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=600_000)
    args = ap.parse_args()
    m = _NativeMap()
    first = keys(np.arange(args.keys))
    c = time.process_time()
    m.resolve(first, None, True)
    print(f"insert {args.keys:,} keys into an empty map: {(time.process_time() - c) / args.keys * 1e9:.0f} ns/key")
    q = np.random.default_rng(3).integers(0, args.keys, args.lookups)
    cols = keys(q)
    best = float("inf")
    for _ in range(5):
        c = time.process_time()
        ids, _ = m.resolve(cols, None, True)
        best = min(best, time.process_time() - c)
    assert (ids == q).all()
    print(f"lookup {args.lookups:,} random existing keys: {best / args.lookups * 1e9:.0f} ns/key (best of 5)")
    for order, sel in (("random", q), ("ascending", np.sort(q))):
        best = float("inf")
        for _ in range(5):
            c = time.process_time()
            got = m.take(sel, 2)
            best = min(best, time.process_time() - c)
        assert got[0][0].as_py() == f"SKU-{int(sel[0]) // 20:07d}"
        print(f"gather {sel.size:,} keys by id, {order}: {best / sel.size * 1e9:.0f} ns/key (best of 5)")
    for r in range(3):
        new = keys(np.arange(args.keys + r * 400_000, args.keys + (r + 1) * 400_000) * 20)  # fresh SKUs
        c = time.process_time()
        m.resolve(new, None, True)
        print(f"insert 400,000 new keys (map {len(m):,} after): {(time.process_time() - c) / 400_000 * 1e9:.0f} ns/key")


if __name__ == "__main__":
    main()
