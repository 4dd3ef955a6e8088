"""``inv360 bench``: throughput of JSON Lines → committed lake snapshot at steady state.

Phase 1 (warm-up) loads one receipt per key, so the state holds every key
(``skus × warehouses``, 1,000,000 by default). Phase 2 (measured) replays generated
traffic on top of it. CPU time is the process's user+system time across all threads.
"""

from __future__ import annotations

import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from inventory360.datagen import START_MS, GeneratorSpec, generate
from inventory360.pipeline import Input, LakeLayout, Pipeline, StepStats
from inventory360.sources.timestamps import iso_ms


@dataclass(slots=True)
class BenchResult:
    """Figures of one phase."""

    phase: str
    events: int
    wall_s: float
    cpu_s: float
    checkpoints: list[float]  # seconds from a checkpoint's first batch start to its commit
    batches: int
    keys: int

    def line(self) -> str:
        """One human-readable line."""
        p50, p99 = (np.percentile(self.checkpoints, q) * 1000 if self.checkpoints else 0.0 for q in (50, 99))
        return (
            f"{self.phase:<9} {self.events:>10,} events  {self.wall_s:7.2f} s wall  {self.cpu_s:7.2f} s CPU  "
            f"{self.events / self.cpu_s:>11,.0f} events/CPU-s  {self.events / self.wall_s:>11,.0f} events/s  "
            f"checkpoint p50 {p50:5.0f} ms p99 {p99:5.0f} ms  {len(self.checkpoints)} checkpoints "
            f"of {self.batches} batches  {self.keys:,} keys"
        )


def _stock_file(path: Path, skus: int, warehouses: int) -> None:
    with path.open("wb") as f:
        t = iso_ms(START_MS - 1000)
        for s in range(skus):
            sku = f"SKU-{s:07d}"
            f.write(
                b"".join(
                    orjson.dumps(
                        {
                            "event_id": f"init-{s}-{w}",
                            "sku_id": sku,
                            "warehouse_id": f"WH-{w:03d}",
                            "available_delta": 100,
                            "event_time": t,
                        }
                    )
                    + b"\n"
                    for w in range(warehouses)
                )
            )


def _phase(name: str, layout: LakeLayout, inputs: list[Input], batch_bytes: int, interval: float) -> BenchResult:
    """Time one replay from its start to its last commit.

    The clock stops at the last commit, not when ``run`` returns: before it calls the
    input drained, the pipeline asks each source once more with waiting (a Kafka source
    waits its 1 s poll timeout), idle time that is not processing.
    """
    lat: list[float] = []
    batches: list[int] = []
    last: list[tuple[float, float]] = []

    def on_commit(s: StepStats) -> None:
        lat.append(s.seconds)
        batches.append(s.batches)
        last[:] = [(time.perf_counter(), time.process_time())]

    pipe = Pipeline(layout, inputs, batch_bytes=batch_bytes, on_commit=[on_commit], checkpoint_interval=interval)
    pipe.open()
    c0, w0 = time.process_time(), time.perf_counter()
    n = pipe.run()
    w1, c1 = last[0] if last else (time.perf_counter(), time.process_time())
    res = BenchResult(name, n, w1 - w0, c1 - c0, lat, sum(batches), len(pipe.engine.keys))
    pipe.close()
    return res


def _kafka_inputs(bootstrap: str, data: Path) -> list[Input]:
    """Topics holding the generated files (created and filled once per data set)."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    from inventory360.cli.options import decoders
    from inventory360.sinks.kafka import produce_file
    from inventory360.sources.kafka import KafkaSource

    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = {kind: f"bench-{data.name}-{kind}" for kind in ("deltas", "orders")}
    existing = admin.list_topics(timeout=10).topics
    for kind, topic in names.items():
        if topic not in existing:
            admin.create_topics([NewTopic(topic, num_partitions=8, replication_factor=1)])[topic].result(30)
            print(f"producing {data / (kind + '.jsonl')} to {topic} …", flush=True)
            produce_file(bootstrap, topic, data / f"{kind}.jsonl", kind)
    d, o = decoders()
    return [
        Input("deltas", KafkaSource("deltas", bootstrap, names["deltas"]), d),
        Input("orders", KafkaSource("orders", bootstrap, names["orders"]), o),
    ]


def run(
    work: Path,
    skus: int,
    warehouses: int,
    events: int,
    batch_mb: float,
    seed: int,
    kafka: str | None = None,
    checkpoint_interval: float = 1.0,
) -> list[BenchResult]:
    """Generate (cached) data, then time the warm-up and the measured replay."""
    from inventory360.cli.options import build_inputs

    data = work / f"data-{skus}x{warehouses}-{events}-s{seed}"
    if not (data / "orders.jsonl").exists():
        print(f"generating {events:,} events into {data} (cached for later runs) …", flush=True)
        generate(data, GeneratorSpec(skus=skus, warehouses=warehouses, events=events, seed=seed))
        _stock_file(data / "stock.jsonl", skus, warehouses)
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    layout = LakeLayout(lake)
    batch = int(batch_mb * (1 << 20))
    warm = _phase("warm-up", layout, build_inputs([data / "stock.jsonl"], []), batch, checkpoint_interval)
    inputs = _kafka_inputs(kafka, data) if kafka else build_inputs([data / "deltas.jsonl"], [data / "orders.jsonl"])
    measured = _phase("measured" if not kafka else "kafka", layout, inputs, batch, checkpoint_interval)
    return [warm, measured]


def main(
    work: Path = Path(".cache/bench"),
    skus: int = 50_000,
    warehouses: int = 20,
    events: int = 2_000_000,
    batch_mb: float = 64.0,
    seed: int = 1,
    kafka: str | None = None,
    checkpoint_interval: float = 1.0,
) -> None:
    """Print the benchmark table."""
    from inventory360.sources import native

    results = run(work, skus, warehouses, events, batch_mb, seed, kafka, checkpoint_interval)
    source = f"Kafka at {kafka}" if kafka else "JSON Lines files"
    print(
        f"source: {source}; decoder: {'native (Rust)' if native.available() else 'Python reference'}; "
        f"batch {batch_mb} MiB per source; checkpoint interval {checkpoint_interval:g} s under backlog"
    )
    for r in results:
        print(r.line())
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
