"""Embedded engine vs the Flink job on the same Kafka input: events/s, peak RSS, end-to-end latency.

    python bench/bench_flink.py [--events 200000] [--skus 5000] [--warehouses 10] [--parallelism 1,2]
                                [--checkpoint-interval 10] [--probes 30] [--engines embedded,flink]

The logic is :mod:`inventory360.flink.bench` (also behind ``inv360 bench --engines
embedded,flink``); this script only exposes its knobs. Needs Kafka (services/svc up kafka)
and services/flink/setup.sh.
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--skus", type=int, default=5000)
    ap.add_argument("--warehouses", type=int, default=10)
    ap.add_argument("--parallelism", default="1,2", help="Flink parallelisms to run, comma-separated.")
    ap.add_argument("--checkpoint-interval", type=float, default=10.0, help="Flink checkpoint interval (s).")
    ap.add_argument("--probes", type=int, default=30, help="Latency probes per engine (0: no latency runs).")
    ap.add_argument("--engines", default="embedded,flink")
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    args = ap.parse_args()

    from inventory360.flink.bench import main as run

    run(
        engines=[e.strip() for e in args.engines.split(",") if e.strip()],
        events=args.events,
        skus=args.skus,
        warehouses=args.warehouses,
        parallelism=[int(p) for p in args.parallelism.split(",")],
        checkpoint_interval_s=args.checkpoint_interval,
        probes=args.probes,
        bootstrap=args.bootstrap,
    )


if __name__ == "__main__":
    main()
