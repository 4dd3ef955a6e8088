"""LOW / RECOVERED alerts (SPEC §3) from the Flink job's snapshot changelog.

The job turns the per-key aggregate into a changelog stream (``to_changelog_stream``):
every change of a key arrives as ``-U`` (the previous row) immediately followed by ``+U``
(the new row), a key's first row as ``+I``. :class:`CrossingDetector` pairs them — the
``-U`` says on which side of its safety stock the key was, the ``+U`` where it is now —
and emits an alert only when the side changes, exactly the embedded engine's rule
(:mod:`inventory360.engine.alerts`): *low* means the compared quantity
(``available_qty``, or ``atp_qty`` = available − reserved) is strictly below the
threshold; a key never seen counts as not low. So it keeps no state of its own: the
previous side is in the changelog, which Flink's checkpoints make consistent after a
failover. It must see every row of a key in order, in one subtask (the job forwards the
aggregate's output without a shuffle).

Granularity differs from the embedded engine: that one judges each committed micro-batch,
this one each aggregate update (Flink's mini-batches), so a dip that recovers within one
embedded batch may alert here. Both emit once per crossing they observe, and both end
with the same set of low keys.

The Kafka message is the embedded engine's (:class:`~inventory360.sinks.kafka.KafkaAlertSink`):
keyed ``sku_id|warehouse_id``, value ``{"type": "stock", "pipeline_id", "dedupe_key", "seq",
"kind", "sku_id", "warehouse_id", "available_qty", "reserved_qty", "atp_qty",
"safety_stock", "compare", "event_time", "checkpoint", "emitted_at"}`` with header
``inv360-dedupe``. Flink has no pipeline-wide sequence or checkpoint id here: ``seq`` and
``checkpoint`` are null, and the dedupe key is derived from the crossing itself
(``<pipeline_id>:alert:<sku>|<wh>:<kind>:<updated_at ms>:<available>:<reserved>``), so a
replayed crossing carries the same key. Standard library and orjson only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from inventory360.flink.decode import Message
from inventory360.sources.timestamps import iso_ms


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Safety stock per key plus a default, and the compared quantity (from ``alerts.*`` settings)."""

    default: int = 10
    per_key: dict[tuple[str, str], int] = field(default_factory=dict)
    compare: str = "available"

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form (for the job plan)."""
        return {
            "default": self.default,
            "compare": self.compare,
            "per_key": [[s, w, q] for (s, w), q in sorted(self.per_key.items())],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Thresholds:
        """Inverse of :meth:`to_json`."""
        per_key = {(str(s), str(w)): int(q) for s, w, q in data.get("per_key", [])}
        return cls(int(data.get("default", 10)), per_key, str(data.get("compare", "available")))

    def threshold(self, sku_id: str, warehouse_id: str) -> int:
        """The safety stock of a key."""
        return self.per_key.get((sku_id, warehouse_id), self.default) if self.per_key else self.default

    def is_low(self, level: Level) -> bool:
        """Whether the key's compared quantity is strictly below its safety stock."""
        qty = level.available_qty - level.reserved_qty if self.compare == "atp" else level.available_qty
        return qty < self.threshold(level.sku_id, level.warehouse_id)


@dataclass(frozen=True, slots=True)
class Level:
    """One row of the snapshot changelog."""

    sku_id: str
    warehouse_id: str
    available_qty: int
    reserved_qty: int
    updated_at_ms: int | None


class CrossingDetector:
    """Pairs ``-U``/``+U`` rows of a key and builds the alert message of a crossing."""

    def __init__(self, thresholds: Thresholds, pipeline_id: str) -> None:
        self.thresholds = thresholds
        self.pipeline_id = pipeline_id
        self._before: dict[tuple[str, str], Level] = {}
        self.alerts = 0

    def retract(self, level: Level) -> None:
        """A ``-U`` or ``-D`` row: the key's previous state, consumed by its next ``+U``/``+I``."""
        self._before[(level.sku_id, level.warehouse_id)] = level

    def upsert(self, level: Level, now: float | None = None) -> Message | None:
        """A ``+U`` or ``+I`` row: the alert message when the key crossed its safety stock."""
        before = self._before.pop((level.sku_id, level.warehouse_id), None)
        was = before is not None and self.thresholds.is_low(before)
        low = self.thresholds.is_low(level)
        if low == was:
            return None
        self.alerts += 1
        return self.message(level, "LOW" if low else "RECOVERED", time.time() if now is None else now)

    def message(self, level: Level, kind: str, now: float) -> Message:
        """Key, JSON value and dedupe key of one alert."""
        key = f"{level.sku_id}|{level.warehouse_id}"
        dedupe = (
            f"{self.pipeline_id}:alert:{key}:{kind}:{level.updated_at_ms}:{level.available_qty}:{level.reserved_qty}"
        )
        body = {
            "type": "stock",
            "pipeline_id": self.pipeline_id,
            "dedupe_key": dedupe,
            "seq": None,
            "kind": kind,
            "sku_id": level.sku_id,
            "warehouse_id": level.warehouse_id,
            "available_qty": level.available_qty,
            "reserved_qty": level.reserved_qty,
            "atp_qty": level.available_qty - level.reserved_qty,
            "safety_stock": self.thresholds.threshold(level.sku_id, level.warehouse_id),
            "compare": self.thresholds.compare,
            "event_time": iso_ms(level.updated_at_ms),
            "checkpoint": None,
            "emitted_at": iso_ms(int(now * 1000)),
        }
        return key.encode(), orjson.dumps(body), dedupe.encode()
