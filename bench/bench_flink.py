"""Embedded engine vs the Flink SQL job on the same Kafka input: events/s and peak RSS.

    python bench/bench_flink.py [--events 200000] [--skus 5000] [--warehouses 10] [--parallelism 1,2]

Generates traffic once (inventory360.datagen, no invalid records), produces it to two
fresh topics (8 partitions), then runs, each in its own process so peak RSS is its own:
the embedded engine (Kafka sources → Paimon, 64 MiB batches) and the bounded Flink job
on the local mini-cluster at each parallelism. Flink's wall time includes JVM and
mini-cluster start; "job s" is from submission to FINISHED. Checks both snapshots agree.
Needs Kafka (services/svc up kafka) and services/flink/setup.sh.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
import uuid
from pathlib import Path

BOOTSTRAP = "127.0.0.1:9092"


def _embedded(lake: str, t_deltas: str, t_orders: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from inventory360.cli.options import decoders
    from inventory360.pipeline import Input, LakeLayout, Pipeline
    from inventory360.sources.kafka import KafkaSource

    d, o = decoders()
    t0 = time.perf_counter()
    p = Pipeline(
        LakeLayout(Path(lake)),
        [
            Input("deltas", KafkaSource("deltas", BOOTSTRAP, t_deltas, poll_timeout=2.0), d),
            Input("orders", KafkaSource("orders", BOOTSTRAP, t_orders, poll_timeout=2.0), o),
        ],
    )
    p.open()
    p.run()
    p.close()
    out.put((time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--skus", type=int, default=5000)
    ap.add_argument("--warehouses", type=int, default=10)
    ap.add_argument("--parallelism", default="1,2")
    args = ap.parse_args()

    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    from inventory360.datagen import GeneratorSpec, generate
    from inventory360.flink.job import FlinkJob
    from inventory360.flink.runner import ensure_environment, run_plan
    from inventory360.sinks.kafka import produce_file
    from inventory360.sinks.paimon import read_snapshot

    ensure_environment(setup=True)
    work = Path(tempfile.mkdtemp(prefix="bench-flink-"))
    generate(work / "data", GeneratorSpec(skus=args.skus, warehouses=args.warehouses, events=args.events, seed=7))
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    tag = uuid.uuid4().hex[:8]
    t_deltas, t_orders = f"bench-flink-{tag}-deltas", f"bench-flink-{tag}-orders"
    futs = admin.create_topics([NewTopic(t, num_partitions=8, replication_factor=1) for t in (t_deltas, t_orders)])
    for f in futs.values():
        f.result(30)
    produce_file(BOOTSTRAP, t_deltas, work / "data" / "deltas.jsonl", "deltas")
    produce_file(BOOTSTRAP, t_orders, work / "data" / "orders.jsonl", "orders")

    rows = []
    q: mp.Queue = mp.get_context("spawn").Queue()  # type: ignore[type-arg]
    proc = mp.get_context("spawn").Process(target=_embedded, args=(str(work / "embedded"), t_deltas, t_orders, q))
    proc.start()
    secs, rss = q.get()
    proc.join()
    rows.append(("embedded (1 process)", "-", secs, secs, rss))
    want = read_snapshot(work / "embedded" / "warehouse", "inventory360", "inventory_snapshot")

    for par in [int(x) for x in args.parallelism.split(",")]:
        wh = work / f"flink-p{par}" / "warehouse"
        job = FlinkJob(t_deltas, t_orders, BOOTSTRAP, ["CREATED", "ALLOCATED"], wh, bounded=True,
                       parallelism=par, group_id=f"bench-{tag}-p{par}")  # fmt: skip
        t0 = time.perf_counter()
        res = run_plan(job.plan(), timeout=1800)
        wall = time.perf_counter() - t0
        got = read_snapshot(wh, "inventory360", "inventory_snapshot")
        assert got.equals(want), f"parallelism {par}: Flink snapshot differs from the embedded engine's"
        rows.append((f"flink p={par}", str(par), wall, float(res.status["seconds"]), res.peak_rss_kib))

    n = args.events
    print(f"\n{n:,} events ({args.skus} SKUs × {args.warehouses} warehouses), 8 partitions per topic; snapshots equal")
    print("| engine | wall s | events/s (wall) | job s | events/s (job) | peak RSS |")
    print("|---|---|---|---|---|---|")
    for name, _, wall, job_s, rss_kib in rows:
        print(f"| {name} | {wall:.1f} | {n / wall:,.0f} | {job_s:.1f} | {n / job_s:,.0f} | {rss_kib / 1024:,.0f} MiB |")


if __name__ == "__main__":
    main()
