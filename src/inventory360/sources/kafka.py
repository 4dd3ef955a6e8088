"""Kafka topics as a resumable source (confluent-kafka, manual assignment).

Offsets are never committed to Kafka: the position (next offset per partition) lives in
the engine's checkpoint, next to the state it produced, which is what makes the pipeline
exactly-once. Partitions are assigned explicitly (no consumer-group rebalancing); a
partition without a stored offset starts at the beginning of the topic.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from inventory360.errors import SourceError
from inventory360.sources.base import RawBatch, Source

log = logging.getLogger(__name__)


class KafkaSource(Source):
    """Batch-consumes one topic; a batch is the message values joined by newlines.

    A value containing a raw newline (pretty-printed JSON) has its newlines turned into
    spaces, which JSON treats as whitespace. A null value (tombstone) becomes ``null``.
    """

    def __init__(
        self, name: str, bootstrap: str, topic: str, poll_timeout: float = 1.0, config: dict[str, Any] | None = None
    ) -> None:
        from confluent_kafka import Consumer, KafkaException

        self.name = name
        self.topic = topic
        self.poll_timeout = poll_timeout
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": f"inv360-{topic}",  # required by the client; never committed
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 64 << 20,
            "max.partition.fetch.bytes": 16 << 20,
            "queued.min.messages": 200_000,
            **(config or {}),
        }
        try:
            self._consumer = Consumer(conf)
            meta = self._consumer.list_topics(topic, timeout=10)
        except KafkaException as exc:
            raise SourceError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None or not tmeta.partitions:
            raise SourceError(f"Kafka topic {topic!r} does not exist at {bootstrap}")
        self._partitions = sorted(tmeta.partitions)
        self._next: dict[int, int] = {}
        self._assigned = False
        self._avg_size = 256  # bytes per message, learned; sizes consume() calls to the batch

    @property
    def key(self) -> str:
        """Checkpoint key of this source."""
        return f"kafka:{self.topic}"

    def position(self) -> dict[str, Any]:
        """Next offset per partition (partitions never read are absent)."""
        return {"topic": self.topic, "offsets": {str(p): o for p, o in sorted(self._next.items())}}

    def seek(self, position: Any) -> None:
        """Continue after the stored offsets."""
        self._next = {int(p): int(o) for p, o in position.get("offsets", {}).items()}
        self._assigned = False

    def _assign(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        self._consumer.assign(
            [TopicPartition(self.topic, p, self._next.get(p, OFFSET_BEGINNING)) for p in self._partitions]
        )
        self._assigned = True

    def read(self, max_bytes: int) -> RawBatch | None:
        """Messages consumed until about ``max_bytes`` or a poll comes back empty."""
        if not self._assigned:
            self._assign()
        chunks: list[list[Any]] = []
        size = 0
        start = self.position()
        while size < max_bytes:
            want = int(min(20_000, max(1, (max_bytes - size) // self._avg_size)))
            msgs = self._consumer.consume(num_messages=want, timeout=self.poll_timeout if not chunks else 0.01)
            if not msgs:
                break
            values: list[Any] = [m.value() for m in msgs]
            if None in values:  # tombstones, or error events (which carry no value)
                msgs, values = self._without_errors(msgs, values)
            chunks.append(msgs)
            chunks.append(values)
            got = sum(map(len, values))
            size += got
            if values:
                self._avg_size = max(16, got // len(values))
        if not chunks:
            return None
        msgs = [m for part in chunks[0::2] for m in part]
        values = [v for part in chunks[1::2] for v in part]
        parts = np.fromiter((m.partition() for m in msgs), dtype=np.int64, count=len(msgs))
        offs = np.fromiter((m.offset() for m in msgs), dtype=np.int64, count=len(msgs))
        for p in np.unique(parts).tolist():
            self._next[p] = max(self._next.get(p, -1), int(offs[parts == p].max()) + 1)
        buf = b"\n".join(values) + b"\n"
        if buf.count(b"\n") != len(values):  # a value held raw newlines: JSON whitespace
            buf = b"\n".join(v.replace(b"\n", b" ") for v in values) + b"\n"
        start["lines"] = (parts, offs)
        return RawBatch(self.name, buf, len(values), start, self.position())

    def _without_errors(self, msgs: list[Any], values: list[Any]) -> tuple[list[Any], list[bytes]]:
        from confluent_kafka import KafkaError

        keep_m, keep_v = [], []
        for m, v in zip(msgs, values, strict=True):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise SourceError(f"Kafka error on {self.topic}: {err}")
            keep_m.append(m)
            keep_v.append(b"null" if v is None else v)
        return keep_m, keep_v

    def line_position(self, batch: RawBatch, line: int) -> dict[str, Any]:
        """Topic, partition and offset of a message of ``batch``."""
        parts, offs = batch.start["lines"]
        return {"topic": self.topic, "partition": int(parts[line]), "offset": int(offs[line])}

    def backlog(self) -> int:
        """Messages between our offsets and the high watermarks the client last saw.

        Uses the watermarks cached by fetches: an uncached query waits behind the
        consumer's long poll (≈ 0.4 s per partition), and this is asked after every commit.
        """
        from confluent_kafka import TopicPartition

        total = 0
        for p in self._partitions:
            try:
                low, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)
            except Exception:
                return 0
            if high < 0:
                continue
            low = max(low, 0)
            total += max(0, high - max(low, self._next.get(p, low)))
        return total

    def close(self) -> None:
        """Close the consumer (nothing is committed to Kafka)."""
        self._consumer.close()
