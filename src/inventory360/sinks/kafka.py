"""Writing JSON Lines to Kafka (the "application producer" of the design).

Messages are keyed so that all changes of one key (deltas: ``sku_id|warehouse_id``;
order lines: ``order_id|line_no``) land in one partition, in order. The producer is
idempotent (``enable.idempotence``), so client retries never duplicate a message.

:class:`KafkaAlertSink` and :class:`KafkaDeadLetterSink` copy alerts and dead letters to
Kafka after each checkpoint (at least once, with dedupe keys; see below).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from inventory360.errors import SinkError
from inventory360.sinks.base import SnapshotSink
from inventory360.sources.kafka import CLIENT_LOG, ClientHealth

log = logging.getLogger(__name__)


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
    """An idempotent confluent-kafka producer tuned for throughput (client log lines go to ``CLIENT_LOG``)."""
    from confluent_kafka import Producer

    conf = {
        "bootstrap.servers": bootstrap,
        "logger": CLIENT_LOG,
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


# -- checkpoint-driven publishers ------------------------------------------------------------
#
# Alerts and dead letters are first made durable by the pipeline (alerts.sqlite, the
# dead-letter file whose length is in the checkpoint); the publishers below copy what is
# durable to Kafka after each checkpoint and then record how far they got in a small
# marker file (atomic rename). A crash after Kafka acknowledged a message but before the
# marker moved re-publishes that tail on restart: delivery is AT LEAST ONCE, never lossy.
# Every message carries a stable dedupe key (header ``inv360-dedupe`` and field
# ``dedupe_key``): ``<pipeline_id>:alert:<seq>`` (seq is gapless and increasing per
# pipeline, so a consumer may just keep the highest seq seen) and
# ``<pipeline_id>:dlq:<byte offset in the dead-letter file>``.

Message = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


class _Marker:
    """``{"checkpoint": int, "position": int}`` in a JSON file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.checkpoint = 0
        self.position = 0
        if path.exists():
            data = orjson.loads(path.read_bytes())
            self.checkpoint, self.position = int(data["checkpoint"]), int(data["position"])

    def save(self, checkpoint: int, position: int) -> None:
        import os

        tmp = self.path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            f.write(orjson.dumps({"checkpoint": checkpoint, "position": position}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.checkpoint, self.position = checkpoint, position


class KafkaPublisher:
    """Sends messages with an idempotent producer and waits for every acknowledgement.

    :meth:`send` retries what was not acknowledged with exponential backoff (logging each
    retry) until it succeeds, until ``deadline_s`` passes (then :class:`SinkError`), or
    until ``cancel`` is set. A retry after a partial failure may repeat messages; the
    dedupe keys make that harmless for consumers. The client's own errors (broker
    unreachable) are summarised in the log by :class:`ClientHealth`; after a *fatal* one
    (the idempotent producer cannot continue) the producer is replaced before the retry.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        cancel: threading.Event | None = None,
        backoff: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        self.topic = topic
        self.cancel = cancel or threading.Event()
        self.backoff = backoff
        self.retries = 0
        self.health = ClientHealth(f"Kafka publisher (topic {topic} at {bootstrap})")
        self._bootstrap = bootstrap
        self._producer = self._new_producer()
        self._lock = threading.Lock()

    def _new_producer(self) -> Any:
        conf = {"linger.ms": 5, "message.timeout.ms": 15_000, "compression.type": "none"}
        return producer(self._bootstrap, **conf, error_cb=self.health.on_error)

    def send(self, messages: Sequence[Message], deadline_s: float | None = None) -> None:
        """Deliver every message (in order, per key) or raise; see the class docstring."""
        if not messages:
            return
        deadline = None if deadline_s is None else time.monotonic() + deadline_s
        pending = list(range(len(messages)))
        delay, cap = self.backoff
        attempt = 0
        with self._lock:
            while True:
                flush_s = 30.0 if deadline is None else max(0.5, deadline - time.monotonic())
                pending, errors, left = self._attempt(messages, pending, flush_s)
                if not pending:
                    self.health.ok(True)
                    return
                attempt += 1
                self.retries += 1
                why = errors[0] if errors else f"{left} messages not acknowledged"
                if self.health.failing_since is not None:
                    why = f"{why} (client: {self.health.last})"
                if self.health.fatal is not None:
                    why = f"{why} (fatal: {self.health.fatal}; replacing the producer)"
                    self.health.fatal = None
                    self._producer.purge()
                    self._producer = self._new_producer()
                if self.cancel.is_set() or (deadline is not None and time.monotonic() + delay > deadline):
                    raise SinkError(f"producing to {self.topic} failed after {attempt} attempts: {why}")
                log.warning(
                    "producing %d messages to %s failed (attempt %d): %s; retrying in %.1fs",
                    len(pending),
                    self.topic,
                    attempt,
                    why,
                    delay,
                )
                if self.cancel.wait(delay):
                    raise SinkError(f"producing to {self.topic} cancelled: {why}")
                delay = min(delay * 2, cap)

    def _attempt(
        self, messages: Sequence[Message], pending: list[int], flush_s: float
    ) -> tuple[list[int], list[str], int]:
        """Produce ``pending`` once; returns (not acknowledged, errors, messages still queued)."""
        acked: set[int] = set()
        errors: list[str] = []

        def report(i: int) -> Callable[[Any, Any], None]:
            def on_delivery(err: Any, _msg: Any) -> None:
                if err is None:
                    acked.add(i)
                else:
                    errors.append(str(err))

            return on_delivery

        for i in pending:
            key, value, headers = messages[i]
            while True:
                try:
                    self._producer.produce(self.topic, value, key, headers=headers, on_delivery=report(i))
                    break
                except BufferError:
                    self._producer.poll(0.05)
        left = int(self._producer.flush(flush_s))
        return [i for i in pending if i not in acked], errors, left

    def close(self) -> None:
        """Flush what is queued (bounded)."""
        self._producer.flush(5)


class KafkaAlertSink(SnapshotSink):
    """Publishes the alerts of each committed checkpoint to a topic (after the :class:`AlertSink`).

    Must come after the alert sink in the pipeline's sink list: it reads the durable
    alert table (``alerts.since(seq)``) and sends everything above the marker's seq,
    keyed by ``sku_id|warehouse_id``. At least once; dedupe by ``dedupe_key``.
    """

    name = "kafka-alerts"

    def __init__(
        self, publisher: KafkaPublisher, alerts: Callable[[int], list[Any]], marker: Path, pipeline_id: str
    ) -> None:
        self.publisher = publisher
        self.alerts = alerts
        self.marker = _Marker(marker)
        self.pipeline_id = pipeline_id

    def last_committed(self) -> int:
        """See :meth:`SnapshotSink.last_committed`."""
        return self.marker.checkpoint

    def commit(self, rows: pa.Table, checkpoint_id: int) -> None:
        """Send the alerts not yet published, then move the marker (blocks while Kafka is down)."""
        new = self.alerts(self.marker.position)
        msgs: list[Message] = []
        for a in new:
            dedupe = f"{self.pipeline_id}:alert:{a.seq}"
            body = {"type": "stock", "pipeline_id": self.pipeline_id, "dedupe_key": dedupe, **a.to_json()}
            msgs.append(
                (f"{a.sku_id}|{a.warehouse_id}".encode(), orjson.dumps(body), [("inv360-dedupe", dedupe.encode())])
            )
        self.publisher.send(msgs)
        self.marker.save(checkpoint_id, new[-1].seq if new else self.marker.position)

    def close(self) -> None:
        """Flush the producer."""
        self.publisher.close()


class KafkaDeadLetterSink(SnapshotSink):
    """Publishes the dead letters of each committed checkpoint (the file's new complete lines) to a topic.

    The dead-letter file is durable and cut back to the checkpointed length on restart, so
    everything in it at commit time belongs to committed checkpoints. One message per
    line (the JSON record: source, reason, position, payload), keyed by the dedupe key
    ``<pipeline_id>:dlq:<offset>``. At least once.
    """

    name = "kafka-dead-letters"

    def __init__(self, publisher: KafkaPublisher, path: Path, marker: Path, pipeline_id: str) -> None:
        self.publisher = publisher
        self.path = path
        self.marker = _Marker(marker)
        self.pipeline_id = pipeline_id

    def last_committed(self) -> int:
        """See :meth:`SnapshotSink.last_committed`."""
        return self.marker.checkpoint

    def commit(self, rows: pa.Table, checkpoint_id: int) -> None:
        """Send the complete lines after the marker's offset, then move the marker."""
        start = self.marker.position
        size = self.path.stat().st_size if self.path.exists() else 0
        if start > size:  # the file was replaced (a new lake): start over
            log.warning("dead-letter file %s is shorter than the published offset %d; starting over", self.path, start)
            start = 0
        with self.path.open("rb") if size else _empty() as f:
            f.seek(start)
            data = f.read(size - start)
        end = data.rfind(b"\n") + 1
        msgs: list[Message] = []
        pos = start
        for line in data[:end].splitlines(keepends=True):
            dedupe = f"{self.pipeline_id}:dlq:{pos}"
            msgs.append((dedupe.encode(), line.rstrip(b"\n"), [("inv360-dedupe", dedupe.encode())]))
            pos += len(line)
        self.publisher.send(msgs)
        self.marker.save(checkpoint_id, start + end)

    def close(self) -> None:
        """Flush the producer."""
        self.publisher.close()


def _empty() -> Any:
    import io

    return io.BytesIO(b"")
