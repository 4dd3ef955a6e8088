"""Parallelism advice for the Flink job from Kafka consumer lag and throughput.

:func:`sample_lag` reads, through the Kafka admin API, the end offsets of the input topics
and the offsets the job's consumer groups committed (Flink commits them on every
checkpoint). :func:`advise` turns a series of such samples into a recommendation with the
reasoning spelled out; it is pure, so it is unit-tested on recorded series.

Model: the job must consume at least the produce rate, with ``headroom`` to spare, and
drain the current lag within ``drain_s``. One slot's capacity is what the job showed it
can do (the consume rate divided by the current parallelism) when it was saturated — its
lag ends above two seconds of production and did not shrink — else ``slot_rate``
(measured default: ≈ 50,000 rows/s per slot on this 2-core machine, shared/notes/flink.md).
Parallelism never exceeds the topics' partition count (extra source subtasks would idle)
nor ``max_parallelism``; slots = parallelism (one slot sharing group).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

#: Rows per second one slot of the job sustained here (shared/notes/flink.md).
DEFAULT_SLOT_RATE = 50_000.0


@dataclass(frozen=True, slots=True)
class LagSample:
    """Offsets summed over every partition of the job's input topics, at time ``t`` (s)."""

    t: float
    end_offsets: int
    committed: int

    @property
    def lag(self) -> int:
        """Messages produced but not yet committed by the job."""
        return max(0, self.end_offsets - self.committed)


@dataclass(slots=True)
class Advice:
    """A recommendation and why."""

    parallelism: int
    slots: int
    produce_rate: float
    consume_rate: float
    lag: int
    lag_trend: float
    reasons: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The recommendation and its reasoning, one point a line."""
        head = f"recommended parallelism: {self.parallelism} (task slots: {self.slots})"
        return "\n".join([head, *(f"  - {r}" for r in self.reasons)])


def advise(
    samples: Sequence[LagSample],
    *,
    current_parallelism: int,
    partitions: int,
    slot_rate: float | None = None,
    headroom: float = 1.5,
    drain_s: float = 300.0,
    max_parallelism: int = 64,
) -> Advice:
    """Recommend a parallelism from ≥ 2 samples (oldest first). Raises ``ValueError`` otherwise."""
    if len(samples) < 2:
        raise ValueError("need at least two lag samples")
    first, last = samples[0], samples[-1]
    span = last.t - first.t
    if span <= 0:
        raise ValueError("samples must be in increasing time order")
    produce = (last.end_offsets - first.end_offsets) / span
    consume = (last.committed - first.committed) / span
    trend = (last.lag - first.lag) / span
    reasons = [
        f"over {span:.0f} s: produced {produce:,.0f} msg/s, job committed {consume:,.0f} msg/s, "
        f"lag {first.lag:,} → {last.lag:,} ({trend:+,.0f} msg/s)"
    ]
    threshold = max(1000.0, produce * 2)
    busy = last.lag > threshold and trend >= 0
    if busy and consume > 0:
        per_slot = consume / current_parallelism
        reasons.append(
            f"the job never caught up (lag {last.lag:,} > {threshold:,.0f} and not shrinking), so its rate is its "
            f"capacity: {per_slot:,.0f} msg/s per slot at parallelism {current_parallelism}"
        )
    else:
        per_slot = slot_rate or DEFAULT_SLOT_RATE
        reasons.append(
            f"the job kept up (or made no progress), so the capacity per slot is taken as {per_slot:,.0f} msg/s"
            + (" (measured default)" if slot_rate is None else "")
        )
    need = produce * headroom + last.lag / drain_s
    reasons.append(
        f"needed: {produce:,.0f} × {headroom} headroom + lag {last.lag:,} drained in {drain_s:.0f} s "
        f"= {need:,.0f} msg/s"
    )
    want = max(1, math.ceil(need / per_slot)) if per_slot > 0 else current_parallelism
    cap = max(1, min(partitions, max_parallelism))
    if want > cap:
        reasons.append(
            f"capped at {cap}: the topics have {partitions} partitions"
            + (f" and max_parallelism is {max_parallelism}" if max_parallelism < partitions else "")
            + " (add partitions to scale further)"
        )
        want = cap
    if want < current_parallelism:
        reasons.append(f"scale down from {current_parallelism}: the load fits in {want} slot(s)")
    elif want > current_parallelism:
        reasons.append(f"scale up from {current_parallelism}")
    else:
        reasons.append("keep the current parallelism")
    return Advice(want, want, produce, consume, last.lag, trend, reasons)


def sample_lag(bootstrap: str, topics: Sequence[str], groups: Sequence[str], timeout: float = 10.0) -> LagSample:
    """One sample: end offsets of ``topics`` and the offsets ``groups`` committed on them."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    meta = admin.list_topics(timeout=timeout)
    parts = [TopicPartition(t, p) for t in topics for p in sorted(meta.topics[t].partitions)]
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    ends = admin.list_offsets({tp: latest for tp in parts}, request_timeout=timeout)
    end_total = sum(f.result().offset for f in ends.values())
    committed = 0
    for g in groups:
        req = [ConsumerGroupTopicPartitions(g, parts)]
        for fut in admin.list_consumer_group_offsets(req, request_timeout=timeout).values():
            for tp in fut.result().topic_partitions:
                if tp.topic in topics and tp.offset >= 0:
                    committed += tp.offset
    return LagSample(time.time(), end_total, committed)


def partition_count(bootstrap: str, topics: Sequence[str], timeout: float = 10.0) -> int:
    """The largest partition count among ``topics`` (source subtasks beyond it idle)."""
    from confluent_kafka.admin import AdminClient

    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout)
    return max(len(meta.topics[t].partitions) for t in topics)
