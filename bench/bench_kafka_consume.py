"""Kafka consume benchmark (not a test): what confluent-kafka alone costs per message.

    .venv/bin/python bench/bench_kafka_consume.py [--bootstrap 127.0.0.1:9092] [--topic T] [KEY=VALUE ...]

Reads a whole topic from the start with the Kafka source's batch-consume settings (plus
any client settings given) and joins the values as the source does, without decoding;
prints messages/s and CPU µs per message. Default topic: the orders topic that
``inv360 bench --kafka`` creates (run that once first).
"""

from __future__ import annotations

import argparse
import time

from confluent_kafka import Consumer, TopicPartition


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="bench-data-50000x20-1000000-s1-orders")
    ap.add_argument("settings", nargs="*", help="extra client settings, KEY=VALUE")
    args = ap.parse_args()
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": "inv360-bench-consume",
        "enable.auto.commit": False,
        "fetch.max.bytes": 64 << 20,
        "max.partition.fetch.bytes": 16 << 20,
        "queued.min.messages": 200_000,
        **dict(s.split("=", 1) for s in args.settings),
    }
    c = Consumer(conf)
    meta = c.list_topics(args.topic, timeout=10).topics[args.topic]
    if meta.error is not None or not meta.partitions:
        raise SystemExit(f"no topic {args.topic} at {args.bootstrap}")
    c.assign([TopicPartition(args.topic, p, 0) for p in meta.partitions])
    n = size = 0
    c0, w0 = time.process_time(), time.perf_counter()
    while True:  # until one poll second brings nothing (the topic is read)
        msgs = c.consume(20_000, timeout=1)
        if not msgs:
            break
        size += len(b"\n".join([m.value() for m in msgs]))
        n += len(msgs)
    wall, cpu = time.perf_counter() - w0 - 1.0, time.process_time() - c0  # minus the final empty poll
    c.close()
    print(f"{n:,} messages ({size / max(n, 1):.0f} B each): {n / wall:,.0f} messages/s, "
          f"{cpu / max(n, 1) * 1e6:.2f} CPU-µs per message (client threads included)")


if __name__ == "__main__":
    main()
