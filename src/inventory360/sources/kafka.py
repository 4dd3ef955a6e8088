"""Kafka topics as a resumable source (librdkafka through the native extension, manual assignment).

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

import functools
import importlib
import logging
import threading
import time
from typing import Any

import numpy as np

from inventory360.errors import SourceError
from inventory360.sources.base import RawBatch, Source

log = logging.getLogger(__name__)


class _RateLimitOutageLines(logging.Filter):
    """Passes at most one librdkafka line per client and ``facilities`` entry every ``every_s``.

    Client log lines are logged as ``"%s [%s] %s"`` with (facility, client name, message), by
    confluent-kafka (producers) and by :class:`KafkaSource` alike. While a broker is down or
    restarting, each client logs a ``FAIL`` (connection refused) or ``METADATAUPDATE``
    (leader not known yet) line every few tens of milliseconds.
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
    """Summarises a Kafka client's errors as a few log lines.

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
        """A confluent-kafka client's ``error_cb`` (served by poll/flush in the calling thread)."""
        self.report(bool(err.fatal()), str(err.str()))

    def report(self, fatal: bool, text: str) -> None:
        """Record one client error (``fatal``: the client cannot go on)."""
        now = time.monotonic()
        if fatal:
            self.fatal = text
            log.error("%s: fatal Kafka client error: %s", self.what, self.fatal)
            return
        self._last_error = now
        self.last = text
        if self.failing_since is None:
            self.failing_since = self._last_log = now
            log.warning("%s: %s; the Kafka client keeps reconnecting, nothing is skipped or lost", self.what, text)
        elif now - self._last_log >= self.every_s:
            self._last_log = now
            log.warning("%s: still failing after %.0fs: %s", self.what, now - self.failing_since, text)

    def ok(self, messages: bool) -> None:
        """Record a successful call; logs the recovery after a failure."""
        if self.failing_since is None:
            return
        now = time.monotonic()
        if messages or now - self._last_error >= self.every_s:
            log.warning("%s: Kafka reachable again after %.1fs", self.what, now - self.failing_since)
            self.failing_since = None


#: librdkafka's syslog levels as logging levels (confluent-kafka's mapping).
_SYSLOG_LEVELS = {0: logging.CRITICAL, 1: logging.CRITICAL, 2: logging.CRITICAL, 3: logging.ERROR, 4: logging.WARNING}


def _native() -> Any:
    try:
        return importlib.import_module("inventory360_native")
    except ImportError as exc:
        raise SourceError("the Kafka source needs the native extension: pip install ./native") from exc


def _setting(value: Any) -> str:
    """A client setting as librdkafka takes it (``True`` → ``"true"``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


#: The client settings of every Kafka source (``config`` overrides them).
CLIENT_SETTINGS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "fetch.max.bytes": 64 << 20,
    "max.partition.fetch.bytes": 16 << 20,
    "queued.min.messages": 200_000,
    # Prefetch up to 128 MiB, and refill the local queue as soon as a batch drains it:
    # with librdkafka's default back-off (1 s once the queue is full) the engine sat idle
    # waiting for the next fetch after every 64 MiB batch.
    "queued.max.messages.kbytes": 131_072,
    "fetch.queue.backoff.ms": 5,
}


class KafkaSource(Source):
    """Batch-consumes one topic; a batch is the message values, each followed by a newline.

    The native ``KafkaFetcher`` (``native/src/kafka.rs``, librdkafka) copies the values of
    a batch into one buffer, next to int64 arrays of their partitions and offsets, with
    the GIL released and no Python object per message. A background thread keeps adding
    what the client receives to the fetcher's pending batch (up to about the batch size),
    so fetching overlaps the engine's work; :meth:`read` takes the pending batch whole,
    without a copy. Offsets advance only with what :meth:`read` returns, so prefetched
    messages are never counted as done.

    A value containing a raw newline (pretty-printed JSON) has its newlines turned into
    spaces, which JSON treats as whitespace. A null value (tombstone) becomes ``null``.
    """

    def __init__(
        self, name: str, bootstrap: str, topic: str, poll_timeout: float = 1.0, config: dict[str, Any] | None = None
    ) -> None:
        native = _native()
        self.name = name
        self.topic = topic
        self.poll_timeout = poll_timeout
        self.health = ClientHealth(f"Kafka source {name} (topic {topic} at {bootstrap})")
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": f"inv360-{topic}",  # required by the client; never committed
            **CLIENT_SETTINGS,
            **(config or {}),
        }
        try:
            self._fetcher = native.KafkaFetcher([(k, _setting(v)) for k, v in conf.items()], topic)
        except ValueError as exc:
            raise SourceError(f"Kafka source {name}: invalid client settings: {exc}") from exc
        try:
            missing, self._partitions = self._fetcher.partitions(10.0)
        except native.KafkaClientError as exc:
            self._close_client()
            raise SourceError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
        if missing is not None or not self._partitions:
            self._close_client()
            raise SourceError(f"Kafka topic {topic!r} does not exist at {bootstrap}")
        self._next: dict[int, int] = {}
        self._assigned = False
        # Prefetching: a thread fills the fetcher's pending batch up to about one batch.
        self._cv = threading.Condition()
        self._taken = 0  # takes by read (a full prefetch waits for the next one)
        self._prefetch_bytes = 64 << 20
        self._fetch_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        """(Re)start fetching at our offsets; what was prefetched for older ones is dropped."""
        start = self._fetcher.OFFSET_BEGINNING
        self._fetcher.assign([(p, self._next.get(p, start)) for p in self._partitions])
        self._assigned = True

    def read(self, max_bytes: int, wait: bool = True) -> RawBatch | None:
        """The messages prefetched so far, about ``max_bytes`` at most (waiting up to the poll timeout when ``wait``).

        ``max_bytes`` is where prefetching stops (the last message may go over it).
        """
        if not self._assigned:
            self._assign()
        self._prefetch_bytes = max(max_bytes, 1)
        if self._thread is None:
            self._start_prefetch()
        if self.health.fatal is not None:
            raise SourceError(f"Kafka source {self.name} (topic {self.topic}): {self.health.fatal}")
        got = self._take(self.poll_timeout if wait and self._fetch_error is None else 0.0)
        if self._fetch_error is not None:
            raise SourceError(f"Kafka source {self.name} (topic {self.topic}): {self._fetch_error}")
        if got is None:
            return None
        values, parts, offs, n, following = got
        start = self.position()
        for p, o in following:
            self._next[p] = max(self._next.get(p, -1), o)
        start["lines"] = (np.frombuffer(parts, dtype=np.int64), np.frombuffer(offs, dtype=np.int64))
        return RawBatch(self.name, memoryview(values), n, start, self.position())

    def _take(self, timeout: float) -> tuple[Any, Any, Any, int, list[tuple[int, int]]] | None:
        got = self._fetcher.take(timeout)  # waits (GIL released) until a fill adds messages
        with self._cv:
            self._taken += 1
            self._cv.notify_all()
        return got if got[3] else None

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
        self._fetch_error = None

    def _fetch_loop(self) -> None:
        """Fill the pending batch ahead of :meth:`read` (while the engine works on the previous one).

        Each fill releases the GIL while librdkafka's messages are copied, and waits up to
        0.1 s for a first message, so the stop flag is seen promptly. Once about a batch is
        pending, the thread waits for :meth:`read` to take it.
        """
        try:
            while not self._stop.is_set():
                taken = self._taken
                added, pending = self._fetcher.fill(self._prefetch_bytes, 0.1)
                self._drain_client()
                self.health.ok(added > 0)
                with self._cv:
                    if pending >= self._prefetch_bytes:
                        self._cv.wait_for(functools.partial(self._taken_since, taken), 1.0)
        except BaseException as exc:
            self._fetch_error = exc  # read raises it

    def _taken_since(self, taken: int) -> bool:
        return self._taken != taken or self._stop.is_set()

    def _drain_client(self) -> None:
        """Hand the client's queued errors to :attr:`health` and its log lines to :data:`CLIENT_LOG`."""
        for fatal, _name, text in self._fetcher.drain_errors():
            self.health.report(fatal, text)
        lines, dropped = self._fetcher.drain_logs()
        for level, fac, client, message in lines:
            py_level = _SYSLOG_LEVELS.get(level, logging.INFO if level < 7 else logging.DEBUG)
            CLIENT_LOG.log(py_level, "%s [%s] %s", fac, client, message)
        if dropped:
            CLIENT_LOG.warning("%d librdkafka log lines dropped (the queue was full)", dropped)

    def line_position(self, batch: RawBatch, line: int) -> dict[str, Any]:
        """Topic, partition and offset of a message of ``batch``."""
        parts, offs = batch.start["lines"]
        return {"topic": self.topic, "partition": int(parts[line]), "offset": int(offs[line])}

    def backlog(self) -> int:
        """Messages between our offsets and the high watermarks the client last saw.

        The watermarks are the ones librdkafka caches from its fetches: no request, so
        asking after every commit costs nothing.
        """
        if self._fetcher.closed():
            return 0
        total = 0
        for p, low, high in self._fetcher.watermarks():
            low = max(low, 0)
            total += max(0, high - max(low, self._next.get(p, low)))
        return total

    def _close_client(self) -> None:
        if not self._fetcher.closed():
            self._drain_client()
            self._fetcher.close()

    def close(self) -> None:
        """Stop prefetching and close the consumer (nothing is committed to Kafka)."""
        self._stop_prefetch()
        self._close_client()
