"""Writing JSON Lines to Kafka (the "application producer" of the design).

Messages are keyed so that all changes of one key (deltas: ``sku_id|warehouse_id``;
order lines: ``order_id|line_no``) land in one partition, in order. The producer is
idempotent (``enable.idempotence``), so client retries never duplicate a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from inventory360.errors import SinkError


def delta_key(value: bytes) -> bytes | None:
    """``sku_id|warehouse_id`` of a delta message (None when it does not parse)."""
    try:
        obj = orjson.loads(value)
        return f"{obj['sku_id']}|{obj['warehouse_id']}".encode()
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def order_key(value: bytes) -> bytes | None:
    """``order_id|line_no`` of a Debezium order-line message (None when it does not parse)."""
    try:
        obj = orjson.loads(value)
        obj = obj.get("payload", obj) if "op" not in obj else obj
        img = obj.get("after") or obj.get("before")
        return f"{img['order_id']}|{img.get('line_no', 0)}".encode()
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None


def producer(bootstrap: str, **extra: Any) -> Any:
    """An idempotent confluent-kafka producer tuned for throughput."""
    from confluent_kafka import Producer

    conf = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "linger.ms": 20,
        "batch.size": 1 << 20,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1_000_000,
        **extra,
    }
    return Producer(conf)


def produce_values(
    bootstrap: str, topic: str, values: Iterable[bytes], key: Callable[[bytes], bytes | None] | None = None
) -> int:
    """Send every value (in order) and wait until all are acknowledged; returns the count."""
    p = producer(bootstrap)
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    n = 0
    for v in values:
        while True:
            try:
                p.produce(topic, v, key(v) if key else None, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        n += 1
        if n % 10_000 == 0:
            p.poll(0)
    if p.flush(60) or errors:
        raise SinkError(f"producing to {topic} failed: {errors[:3] or 'flush timed out'}")
    return n


def produce_file(bootstrap: str, topic: str, path: Path, kind: str) -> int:
    """Send a JSON Lines file, one message per non-empty line, keyed by ``kind``."""
    key = delta_key if kind == "deltas" else order_key
    with path.open("rb") as f:
        return produce_values(bootstrap, topic, (line.rstrip(b"\n") for line in f if line.strip()), key)
