"""CPU cost of decoding: reference (pure Python) vs native (Rust) decoders.

Builds realistic inventory-delta lines and Debezium MariaDB order-line envelopes, cuts
them into batches the way the pipeline reads them (``--batch-mb``, default 64 MiB like
``pipeline.batch_bytes``), decodes every batch and reports CPU seconds
(``time.process_time``, all threads) and lines per CPU-second.

    .venv/bin/python bench/bench_decode.py                 # 1,000,000 lines of each kind
    .venv/bin/python bench/bench_decode.py --lines 200000 --skip-reference
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

import orjson

from inventory360.records import Decoded
from inventory360.sources.debezium import DebeziumOrderDecoder
from inventory360.sources.deltas import DeltaDecoder
from inventory360.sources.native import NativeDebeziumOrderDecoder, NativeDeltaDecoder

BASE_MS = 1_795_428_000_000  # 2026-11-23T10:00:00Z
STATUSES = ["NEW", "RESERVED", "ALLOCATED", "PICKED", "SHIPPED", "CANCELLED"]


def iso_ms(ms: int) -> str:
    """``2026-11-23T10:00:00.123Z`` for epoch ms."""
    secs, frac = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:03d}Z"


def delta_lines(n: int, rng: random.Random) -> bytes:
    """``n`` delta lines of about 130 bytes."""
    out = []
    for i in range(n):
        ms = BASE_MS + i * 7 + rng.randrange(1000)
        out.append(
            orjson.dumps(
                {
                    "event_id": f"evt-{i:012d}-{rng.randrange(16**8):08x}",
                    "sku_id": f"SKU-{rng.randrange(200_000):07d}",
                    "warehouse_id": f"WH-{rng.randrange(40):03d}",
                    "available_delta": rng.randrange(-50, 200),
                    "event_time": iso_ms(ms),
                }
            )
        )
    return b"\n".join(out) + b"\n"


def order_lines(n: int, rng: random.Random) -> bytes:
    """``n`` Debezium MariaDB envelopes (op mostly ``u``, before and after images)."""
    out = []
    for i in range(n):
        ts = BASE_MS + i * 3 + rng.randrange(500)
        order_id = 9_000_000_000 + i // 3
        image = {
            "order_id": order_id,
            "line_no": i % 3 + 1,
            "sku_id": f"SKU-{rng.randrange(200_000):07d}",
            "warehouse_selection": f"WH-{rng.randrange(40):03d}",
            "quantity": rng.randrange(1, 20),
            "status": rng.choice(STATUSES),
            "updated_at": iso_ms(ts - 5),
        }
        r = rng.random()
        op = "u" if r < 0.85 else ("c" if r < 0.95 else "d")
        before = None if op == "c" else {**image, "status": rng.choice(STATUSES)}
        after = None if op == "d" else image
        pos = 4 + i * 611
        envelope: dict[str, Any] = {
            "before": before,
            "after": after,
            "source": {
                "version": "2.7.3.Final",
                "connector": "mariadb",
                "name": "shop",
                "ts_ms": ts - 20,
                "snapshot": "false",
                "db": "shop",
                "sequence": None,
                "table": "order_lines",
                "server_id": 1,
                "gtid": f"0-1-{1000 + i}",
                "file": "mysql-bin.000003",
                "pos": pos,
                "row": 0,
                "thread": 42,
                "query": None,
            },
            "op": op,
            "ts_ms": ts,
            "transaction": None,
        }
        out.append(orjson.dumps(envelope))
    return b"\n".join(out) + b"\n"


def batches(buf: bytes, batch_bytes: int) -> list[bytes]:
    """``buf`` cut at newlines into pieces of about ``batch_bytes``."""
    out, start = [], 0
    while start < len(buf):
        cut = buf.rfind(b"\n", start, start + batch_bytes)
        end = len(buf) if cut < 0 else cut + 1
        out.append(buf[start:end])
        start = end
    return out


def measure(decode: Callable[[bytes], Decoded], parts: list[bytes]) -> tuple[float, float, int]:
    """(cpu seconds, wall seconds, rows) of decoding every part."""
    rows = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for part in parts:
        rows += decode(part).table.num_rows
    return time.process_time() - cpu0, time.perf_counter() - wall0, rows


def run(kind: str, buf: bytes, ref: Any, nat: Any, args: argparse.Namespace) -> None:
    parts = batches(buf, args.batch_mb << 20)
    n = buf.count(b"\n")
    print(f"\n{kind}: {n:,} lines, {len(buf) / n:.0f} B/line, {len(parts)} batch(es)")
    want, got = ref.decode(parts[0][: 1 << 20].rpartition(b"\n")[0] + b"\n"), None
    got = nat.decode(parts[0][: 1 << 20].rpartition(b"\n")[0] + b"\n")
    same = got.table.equals(want.table) and got.errors == want.errors
    print(f"  parity on the first MiB: {'same' if same else 'DIFFERENT'}")
    results = {}
    decoders = [("native", nat)] if args.skip_reference else [("reference", ref), ("native", nat)]
    for name, dec in decoders:
        best = None
        for _ in range(args.repeat):
            cpu, wall, rows = measure(dec.decode, parts)
            if best is None or cpu < best[0]:
                best = (cpu, wall, rows)
        assert best is not None
        cpu, wall, rows = best
        results[name] = cpu
        print(
            f"  {name:9s} cpu {cpu:7.3f} s  wall {wall:7.3f} s  rows {rows:,}  "
            f"{n / cpu:13,.0f} lines/cpu-s  {cpu / n * 1e6:6.3f} µs/line"
        )
    if "reference" in results:
        print(f"  speed-up (cpu): {results['reference'] / results['native']:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--batch-mb", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1, help="keep the best of N runs")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--kind", choices=["deltas", "orders", "both"], default="both")
    args = parser.parse_args()
    rng = random.Random(42)
    if args.kind in ("deltas", "both"):
        buf = delta_lines(args.lines, rng)
        run("deltas", buf, DeltaDecoder(), NativeDeltaDecoder(), args)
    if args.kind in ("orders", "both"):
        buf = order_lines(args.lines, rng)
        run("debezium orders", buf, DebeziumOrderDecoder(), NativeDebeziumOrderDecoder(), args)


if __name__ == "__main__":
    main()
