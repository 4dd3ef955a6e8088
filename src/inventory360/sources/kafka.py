"""Kafka topics as a resumable source (confluent-kafka, manual assignment).

Offsets are never committed to Kafka: the position (next offset per partition) lives in
the engine's checkpoint, next to the state it produced, which is what makes the pipeline
exactly-once. Partitions are assigned explicitly (no consumer-group rebalancing); a
partition without a stored offset starts at the beginning of the topic.

Broker outages: the client reconnects by itself and reading continues from the offsets it
holds, so an unreachable broker only pauses the source. What the client reports (its error
callback) is summarised by :class:`ClientHealth` in a few clear log lines (one when the
trouble starts, one every 30 s while it lasts, one when messages flow again) instead of a
line per failed connection attempt; only a *fatal* client error stops the source with
:class:`SourceError`. librdkafka's own log lines go to the ``inventory360.kafka.client``
logger (:data:`CLIENT_LOG`), with the lines an outage repeats rate-limited.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from inventory360.errors import SourceError
from inventory360.sources.base import RawBatch, Source

log = logging.getLogger(__name__)


class _RateLimitOutageLines(logging.Filter):
    """Passes at most one librdkafka line per client and ``facilities`` entry every ``every_s``.

    confluent-kafka logs ``"%s [%s] %s"`` with (facility, client name, message). While a
    broker is down or restarting, each client logs a ``FAIL`` (connection refused) or
    ``METADATAUPDATE`` (leader not known yet) line every few tens of milliseconds.
    """

    def __init__(
        self, facilities: frozenset[str] = frozenset({"FAIL", "METADATAUPDATE"}), every_s: float = 30.0
    ) -> None:
        super().__init__()
        self.facilities = facilities
        self.every_s = every_s
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeated outage line logged less than ``every_s`` after the previous one."""
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 3 and args[0] in self.facilities):
            return True
        key = (str(args[0]), str(args[1]))
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every_s:
                return False
            self._last[key] = now
        return True


#: Where librdkafka's log lines go (pass as the ``logger`` client setting); see the module docstring.
CLIENT_LOG = logging.getLogger("inventory360.kafka.client")
CLIENT_LOG.addFilter(_RateLimitOutageLines())


class ClientHealth:
    """Summarises a Kafka client's error callbacks (``error_cb``) as a few log lines.

    Non-fatal errors (broker down, connection refused, timeouts) are retried by the client
    itself: the first one is logged as a warning, then at most one every ``every_s`` while
    they continue; :meth:`ok` (messages arrived, or no error for ``every_s``) logs the
    recovery. A fatal error is kept in :attr:`fatal` for the owner to raise.
    """

    def __init__(self, what: str, every_s: float = 30.0) -> None:
        self.what = what
        self.every_s = every_s
        self.fatal: str | None = None
        self.last = ""  # the newest non-fatal error
        self.failing_since: float | None = None
        self._last_error = 0.0
        self._last_log = 0.0

    def on_error(self, err: Any) -> None:
        """The client's ``error_cb`` (served by poll/consume/flush in the calling thread)."""
        now = time.monotonic()
        if err.fatal():
            self.fatal = str(err.str())
            log.error("%s: fatal Kafka client error: %s", self.what, self.fatal)
            return
        self._last_error = now
        self.last = str(err.str())
        if self.failing_since is None:
            self.failing_since = self._last_log = now
            log.warning("%s: %s; the Kafka client keeps reconnecting, nothing is skipped or lost", self.what, err.str())
        elif now - self._last_log >= self.every_s:
            self._last_log = now
            log.warning("%s: still failing after %.0fs: %s", self.what, now - self.failing_since, err.str())

    def ok(self, messages: bool) -> None:
        """Record a successful call; logs the recovery after a failure."""
        if self.failing_since is None:
            return
        now = time.monotonic()
        if messages or now - self._last_error >= self.every_s:
            log.warning("%s: Kafka reachable again after %.1fs", self.what, now - self.failing_since)
            self.failing_since = None


class KafkaSource(Source):
    """Batch-consumes one topic; a batch is the message values joined by newlines.

    A background thread consumes about one batch ahead of :meth:`read`, so the client's
    per-message work overlaps the engine's; offsets advance only with what :meth:`read`
    returns, so prefetched messages are never counted as done.

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
        self.health = ClientHealth(f"Kafka source {name} (topic {topic} at {bootstrap})")
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": f"inv360-{topic}",  # required by the client; never committed
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 64 << 20,
            "max.partition.fetch.bytes": 16 << 20,
            "queued.min.messages": 200_000,
            # Prefetch up to 128 MiB, and refill the local queue as soon as a batch drains it:
            # with librdkafka's default back-off (1 s once the queue is full) the engine sat
            # idle waiting for the next fetch after every 64 MiB batch.
            "queued.max.messages.kbytes": 131_072,
            "fetch.queue.backoff.ms": 5,
            "error_cb": self.health.on_error,
            "logger": CLIENT_LOG,
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
        # Prefetching: a thread consumes up to about one batch ahead of read().
        self._cv = threading.Condition()
        self._ready: deque[tuple[list[Any], list[Any], int]] = deque()
        self._ready_bytes = 0
        self._prefetch_bytes = 64 << 20
        self._fetch_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._marks: dict[int, tuple[int, int]] = {}

    @property
    def key(self) -> str:
        """Checkpoint key of this source."""
        return f"kafka:{self.topic}"

    def position(self) -> dict[str, Any]:
        """Next offset per partition (partitions never read are absent)."""
        return {"topic": self.topic, "offsets": {str(p): o for p, o in sorted(self._next.items())}}

    def seek(self, position: Any) -> None:
        """Continue after the stored offsets."""
        self._stop_prefetch()
        self._next = {int(p): int(o) for p, o in position.get("offsets", {}).items()}
        self._assigned = False

    def _assign(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        self._consumer.assign(
            [TopicPartition(self.topic, p, self._next.get(p, OFFSET_BEGINNING)) for p in self._partitions]
        )
        self._assigned = True

    def read(self, max_bytes: int, wait: bool = True) -> RawBatch | None:
        """Messages prefetched until about ``max_bytes`` (waiting up to the poll timeout when ``wait``)."""
        if not self._assigned:
            self._assign()
        if self._thread is None:
            self._start_prefetch()
        if self.health.fatal is not None:
            raise SourceError(f"Kafka source {self.name} (topic {self.topic}): {self.health.fatal}")
        self._prefetch_bytes = max(max_bytes, 1 << 20)
        chunks: list[list[Any]] = []
        size = 0
        start = self.position()
        with self._cv:
            if not self._ready and wait:
                self._cv.wait_for(lambda: bool(self._ready) or self._fetch_error is not None, self.poll_timeout)
            if self._fetch_error is not None:
                raise SourceError(f"Kafka source {self.name} (topic {self.topic}): {self._fetch_error}")
            while self._ready and size < max_bytes:
                msgs, values, got = self._ready.popleft()
                self._ready_bytes -= got
                chunks += [msgs, values]
                size += got
            self._cv.notify_all()
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

    def _start_prefetch(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fetch_loop, name=f"inv360-kafka-{self.name}", daemon=True)
        self._thread.start()

    def _stop_prefetch(self) -> None:
        if self._thread is not None:
            self._stop.set()
            with self._cv:
                self._cv.notify_all()
            self._thread.join()
            self._thread = None
        self._ready.clear()
        self._ready_bytes = 0
        self._fetch_error = None

    def _fetch_loop(self) -> None:
        """Consume ahead of :meth:`read` (while the engine works on the previous batch).

        While it runs, this thread is the only one that calls the consumer (a concurrent
        ``get_watermark_offsets`` was seen to block behind ``consume``): :meth:`backlog`
        reads the watermarks it caches.
        """
        marked = 0.0
        try:
            while not self._stop.is_set():
                with self._cv:
                    self._cv.wait_for(lambda: self._ready_bytes < self._prefetch_bytes or self._stop.is_set())
                if self._stop.is_set():
                    return
                want = int(min(20_000, max(1, self._prefetch_bytes // self._avg_size)))
                msgs = self._consumer.consume(num_messages=want, timeout=0.1)
                self.health.ok(bool(msgs))
                if time.monotonic() - marked >= 0.5:  # the consumer is only used from this thread
                    self._marks, marked = self._watermarks(), time.monotonic()
                if not msgs:
                    continue
                values: list[Any] = [m.value() for m in msgs]
                if None in values:  # tombstones, or error events (which carry no value)
                    msgs, values = self._without_errors(msgs, values)
                got = sum(map(len, values))
                if values:
                    self._avg_size = max(16, got // len(values))
                with self._cv:
                    self._ready.append((msgs, values, got))
                    self._ready_bytes += got
                    self._cv.notify_all()
        except BaseException as exc:
            with self._cv:
                self._fetch_error = exc
                self._cv.notify_all()

    def _without_errors(self, msgs: list[Any], values: list[Any]) -> tuple[list[Any], list[bytes]]:
        from confluent_kafka import KafkaError

        keep_m, keep_v = [], []
        for m, v in zip(msgs, values, strict=True):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.retriable() and not err.fatal():  # an event, not a message: the client retries
                    self.health.on_error(err)
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
        marks = self._marks if self._thread is not None else self._watermarks()
        total = 0
        for p, (low, high) in marks.items():
            if high < 0:
                continue
            low = max(low, 0)
            total += max(0, high - max(low, self._next.get(p, low)))
        return total

    def _watermarks(self) -> dict[int, tuple[int, int]]:
        """(low, high) watermark per partition as cached by the client's fetches."""
        from confluent_kafka import TopicPartition

        marks: dict[int, tuple[int, int]] = {}
        for p in self._partitions:
            try:
                marks[p] = self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)
            except Exception:
                return {}
        return marks

    def close(self) -> None:
        """Stop prefetching and close the consumer (nothing is committed to Kafka)."""
        self._stop_prefetch()
        self._consumer.close()
