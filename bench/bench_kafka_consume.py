"""Kafka consume benchmark (not a test): what reading a topic costs per message, without decoding.

    .venv/bin/python bench/bench_kafka_consume.py [--bootstrap 127.0.0.1:9092] [--topic T]
        [--client native|confluent|both] [KEY=VALUE ...]

Reads a whole topic from the start with the Kafka source's client settings (plus any
given) and builds what the source hands the engine, one buffer of newline-terminated
values per batch; prints messages/s and CPU µs per message (the client's own threads
included) for:

* ``native``: the source's fetcher (``inventory360_native.KafkaFetcher``, librdkafka via
  Rust): 64 MiB batches, the GIL released while fetching, no Python object per message;
* ``confluent``: confluent-kafka's ``consume()`` and ``b"\\n".join`` of ``m.value()``, as
  the source did before the native fetcher.

Default topic: the orders topic that ``inv360 bench --kafka`` creates (run that once first).
"""

from __future__ import annotations

import argparse
import time

from inventory360.sources.kafka import CLIENT_SETTINGS as SETTINGS  # what KafkaSource passes


def native(bootstrap: str, topic: str, extra: dict[str, str]) -> tuple[int, int, float, float]:
    """(messages, bytes, wall s, CPU s) with the native fetcher."""
    import numpy as np
    from inventory360_native import KafkaFetcher

    conf = {"bootstrap.servers": bootstrap, "group.id": "inv360-bench-consume", **SETTINGS, **extra}
    f = KafkaFetcher([(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in conf.items()], topic)
    missing, parts = f.partitions(10.0)
    if missing is not None:
        raise SystemExit(f"no topic {topic} at {bootstrap}: {missing}")
    f.assign([(p, f.OFFSET_BEGINNING) for p in parts])
    n = size = 0
    c0, w0 = time.process_time(), time.perf_counter()
    while True:  # until one poll second brings nothing (the topic is read)
        f.fill(64 << 20, 1.0)  # as KafkaSource does, minus its prefetch thread
        values, p, o, got, _ = f.take(0.0)
        if not got:
            break
        np.frombuffer(p, dtype=np.int64)
        np.frombuffer(o, dtype=np.int64)
        size += len(values)
        n += got
    wall, cpu = time.perf_counter() - w0 - 1.0, time.process_time() - c0  # minus the final empty poll
    f.close()
    return n, size, wall, cpu


def confluent(bootstrap: str, topic: str, extra: dict[str, str]) -> tuple[int, int, float, float]:
    """(messages, bytes, wall s, CPU s) with confluent-kafka's consume()."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "inv360-bench-consume", **SETTINGS, **extra})
    meta = c.list_topics(topic, timeout=10).topics[topic]
    if meta.error is not None or not meta.partitions:
        raise SystemExit(f"no topic {topic} at {bootstrap}")
    c.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    n = size = 0
    c0, w0 = time.process_time(), time.perf_counter()
    while True:  # until one poll second brings nothing (the topic is read)
        msgs = c.consume(20_000, timeout=1)
        if not msgs:
            break
        size += len(b"\n".join([m.value() for m in msgs])) + 1
        n += len(msgs)
    wall, cpu = time.perf_counter() - w0 - 1.0, time.process_time() - c0  # minus the final empty poll
    c.close()
    return n, size, wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="bench-data-50000x20-1000000-s1-orders")
    ap.add_argument("--client", choices=["native", "confluent", "both"], default="both")
    ap.add_argument("settings", nargs="*", help="extra client settings, KEY=VALUE")
    args = ap.parse_args()
    extra = dict(s.split("=", 1) for s in args.settings)
    for name, run in (("native", native), ("confluent", confluent)):
        if args.client not in (name, "both"):
            continue
        n, size, wall, cpu = run(args.bootstrap, args.topic, extra)
        print(
            f"{name:<9} {n:,} messages ({size / max(n, 1):.0f} B each): {n / wall:,.0f} messages/s, "
            f"{cpu / max(n, 1) * 1e6:.2f} CPU-µs per message (client threads included)"
        )


if __name__ == "__main__":
    main()
