"""The native Kafka fetcher (``inventory360_native.KafkaFetcher``) and the source on it, against a real broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from inventory360.errors import SourceError
from inventory360.sources.kafka import KafkaSource

native = pytest.importorskip("inventory360_native")

BOOTSTRAP = "127.0.0.1:9092"
pytestmark = pytest.mark.integration

# (partition, value) in the order sent; offsets count per partition from 0.
SENT: list[tuple[int, bytes | None]] = [
    (0, b'{"a":0}'),
    (1, None),  # a tombstone
    (0, b'{\n  "a": 1\n}'),  # pretty-printed: raw newlines
    (2, b'{"c":0}'),
    (1, b'{"b":1}'),
    (0, b""),  # empty
    (2, b'{"c":1}\r\n'),
    (0, b'{"a":3}'),
]


def _expected() -> list[tuple[int, int, bytes]]:
    """(partition, offset, line) of every message, sorted by partition and offset."""
    seen: dict[int, int] = {}
    out = []
    for p, v in SENT:
        o = seen.get(p, 0)
        seen[p] = o + 1
        out.append((p, o, b"null" if v is None else v.replace(b"\n", b" ")))
    return sorted(out)


@pytest.fixture(scope="module")
def topic() -> Iterator[str]:
    name = f"it-fetch-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for fut in admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)]).values():
        fut.result(30)
    p = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})
    for part, value in SENT:
        p.produce(name, value=value, partition=part)
    assert p.flush(30) == 0
    yield name
    for fut in admin.delete_topics([name]).values():
        fut.result(30)


def fetcher(topic: str, bootstrap: str = BOOTSTRAP) -> Any:
    conf = {"bootstrap.servers": bootstrap, "group.id": "inv360-it-fetch", "enable.auto.commit": "false"}
    return native.KafkaFetcher(list(conf.items()), topic)


def lines(values: Any, parts: Any, offs: Any, n: int) -> list[tuple[int, int, bytes]]:
    """The fetched messages as (partition, offset, line); checks the buffers agree."""
    data = bytes(values)
    assert data.endswith(b"\n") or n == 0
    split = data.split(b"\n")[:-1]
    p = np.frombuffer(parts, dtype=np.int64)
    o = np.frombuffer(offs, dtype=np.int64)
    assert len(split) == len(p) == len(o) == n, "one line, partition and offset per message"
    return [(int(a), int(b), c) for a, b, c in zip(p, o, split, strict=True)]


def fetch(f: Any, timeout: float) -> tuple[Any, Any, Any, int]:
    """What one fill (waiting up to ``timeout``) brings, taken at once, as the source does."""
    f.fill(1 << 20, timeout)
    values, parts, offs, n, _ = f.take(0.0)
    return values, parts, offs, n


def fetch_all(f: Any, want: int) -> list[tuple[int, int, bytes]]:
    got: list[tuple[int, int, bytes]] = []
    deadline = time.monotonic() + 30
    while len(got) < want and time.monotonic() < deadline:
        got += lines(*fetch(f, 0.5))
    return got


def test_fill_and_take_give_lines_partitions_and_offsets(topic: str) -> None:
    f = fetcher(topic)
    try:
        missing, parts = f.partitions(10.0)
        assert (missing, parts) == (None, [0, 1, 2])
        f.assign([(p, f.OFFSET_BEGINNING) for p in parts])
        got = fetch_all(f, len(SENT))
        assert sorted(got) == _expected()
        for p in range(3):  # within a partition, in offset order
            offs = [o for q, o, _ in got if q == p]
            assert offs == sorted(offs)
        assert lines(*fetch(f, 0.3)) == [], "nothing more"
        marks = {p: (low, high) for p, low, high in f.watermarks()}
        assert marks == {0: (0, 4), 1: (0, 2), 2: (0, 2)}
        assert f.drain_errors() == []
    finally:
        f.close()
    assert f.closed()
    with pytest.raises(native.KafkaClientError):
        f.fill(1 << 20, 0.1)


def test_resume_from_offsets_with_fill_and_take(topic: str) -> None:
    f = fetcher(topic)
    try:
        f.assign([(0, 2), (1, 1), (2, 2)])  # partition 2 is done
        deadline = time.monotonic() + 30
        got: list[tuple[int, int, bytes]] = []
        following: list[tuple[int, int]] = []
        while len(got) < 3 and time.monotonic() < deadline:
            f.fill(1 << 20, 0.5)
            values, parts, offs, n, nxt = f.take(0.5)
            got += lines(values, parts, offs, n)
            following += nxt
        assert sorted(got) == [m for m in _expected() if (m[0], m[1]) in {(0, 2), (0, 3), (1, 1)}]
        assert dict(following) == {0: 4, 1: 2}
        assert f.take(0.2)[3] == 0, "take waits, then gives nothing"
    finally:
        f.close()


def test_unknown_topic_and_unreachable_broker() -> None:
    f = fetcher(f"it-missing-{uuid.uuid4().hex[:8]}")
    try:
        missing, parts = f.partitions(10.0)
        assert missing is not None and parts == []
    finally:
        f.close()
    f = fetcher("t", bootstrap="127.0.0.1:1")
    try:
        with pytest.raises(native.KafkaClientError):
            f.partitions(0.5)
        f.assign([(0, f.OFFSET_BEGINNING)])
        errors: list[tuple[bool, str, str]] = []
        deadline = time.monotonic() + 10
        while not errors and time.monotonic() < deadline:
            assert fetch(f, 0.2)[3] == 0
            errors = f.drain_errors()
        assert errors and not any(fatal for fatal, _, _ in errors), "reported, and not fatal"
        assert any("Connection refused" in text or "brokers are down" in text for _, _, text in errors)
    finally:
        f.close()
    with pytest.raises(ValueError, match=r"no\.such\.setting"):
        native.KafkaFetcher([("no.such.setting", "1")], "t")
    with pytest.raises(SourceError, match="does not exist"):
        KafkaSource("deltas", BOOTSTRAP, f"it-missing-{uuid.uuid4().hex[:8]}")


def test_source_positions_dead_letter_lines_and_seek(topic: str) -> None:
    src = KafkaSource("deltas", BOOTSTRAP, topic, poll_timeout=0.5)
    try:
        batches = []
        deadline = time.monotonic() + 30
        while sum(b.n_lines for b in batches) < len(SENT) and time.monotonic() < deadline:
            b = src.read(1 << 20)
            if b is not None:
                batches.append(b)
        seen = []
        for b in batches:
            values = bytes(b.buf).split(b"\n")[:-1]
            assert len(values) == b.n_lines
            for i, v in enumerate(values):
                pos = src.line_position(b, i)
                assert pos["topic"] == topic
                seen.append((pos["partition"], pos["offset"], v))
        assert sorted(seen) == _expected()
        assert src.position() == {"topic": topic, "offsets": {"0": 4, "1": 2, "2": 2}}
        assert src.backlog() == 0
        assert src.read(1 << 20, wait=False) is None

        src.seek({"topic": topic, "offsets": {"0": 3, "1": 2}})  # partition 2 from its start
        again = []
        deadline = time.monotonic() + 30
        while sum(b.n_lines for b in again) < 3 and time.monotonic() < deadline:
            b = src.read(1 << 20)
            if b is not None:
                again.append(b)
        got = sorted(
            (src.line_position(b, i)["partition"], src.line_position(b, i)["offset"])
            for b in again
            for i in range(b.n_lines)
        )
        assert got == [(0, 3), (2, 0), (2, 1)]
        assert src.position()["offsets"] == {"0": 4, "1": 2, "2": 2}
    finally:
        src.close()
