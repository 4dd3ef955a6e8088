"""Realistic, reproducible inventory traffic as JSON Lines (for tests, demo and bench).

Order lines move CREATED → ALLOCATED → SHIPPED or CANCELLED (a few change warehouse or
quantity, a few are deleted); each shipment is also a negative inventory delta. Stock
arrives as receipts and cycle-count adjustments. Both streams contain duplicates
(redelivered messages), local reordering, and deltas that arrive well after the
watermark (late). Debezium envelopes look like the MariaDB connector's, with binlog
positions that increase with commit order.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from inventory360.sources.timestamps import iso_ms

START_MS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)


@dataclass(slots=True)
class GeneratorSpec:
    """Size and shape of the generated traffic."""

    skus: int = 1000
    warehouses: int = 5
    events: int = 100_000
    seed: int = 42
    duplicate_rate: float = 0.01
    reorder_rate: float = 0.02
    late_rate: float = 0.005
    invalid_rate: float = 0.0
    start_ms: int = START_MS
    ms_per_event: int = 2


@dataclass(slots=True)
class _Line:
    order_id: int
    line_no: int
    sku: str
    wh: str
    qty: int
    status: str


class TrafficGenerator:
    """Yields ``(kind, json_bytes)`` messages in arrival order."""

    def __init__(self, spec: GeneratorSpec) -> None:
        self.spec = spec
        self.rnd = random.Random(spec.seed)
        self.skus = [f"SKU-{i:07d}" for i in range(spec.skus)]
        self.whs = [f"WH-{i:03d}" for i in range(spec.warehouses)]
        self.open: list[_Line] = []
        self.next_order = 1
        self.binlog_file = 1
        self.binlog_pos = 4
        self.delta_seq = 0
        self.now = spec.start_ms

    def _key(self) -> tuple[str, str]:
        r = self.rnd
        # Skewed popularity: a few SKUs are hot, most are cold.
        sku = (
            self.skus[min(int(r.paretovariate(1.2)) - 1, len(self.skus) - 1)]
            if r.random() < 0.3
            else r.choice(self.skus)
        )
        return sku, r.choice(self.whs)

    def _delta(self, sku: str, wh: str, delta: int, when: int) -> bytes:
        self.delta_seq += 1
        return orjson.dumps(
            {
                "event_id": f"d-{self.spec.seed}-{self.delta_seq}",
                "sku_id": sku,
                "warehouse_id": wh,
                "available_delta": delta,
                "event_time": iso_ms(when),
            }
        )

    def _image(self, ln: _Line, when: int) -> dict[str, object]:
        return {
            "order_id": ln.order_id,
            "line_no": ln.line_no,
            "sku_id": ln.sku,
            "warehouse_selection": ln.wh,
            "quantity": ln.qty,
            "status": ln.status,
            "updated_at": iso_ms(when),
        }

    def _cdc(self, op: str, before: dict[str, object] | None, after: dict[str, object] | None) -> bytes:
        self.binlog_pos += self.rnd.randint(180, 600)
        if self.binlog_pos > 1 << 30:
            self.binlog_file += 1
            self.binlog_pos = 4
        return orjson.dumps(
            {
                "before": before,
                "after": after,
                "source": {
                    "version": "3.6.1.Final",
                    "connector": "mariadb",
                    "name": "shop",
                    "ts_ms": self.now,
                    "snapshot": "false",
                    "db": "shop",
                    "table": "order_lines",
                    "server_id": 1,
                    "gtid": None,
                    "file": f"mysql-bin.{self.binlog_file:06d}",
                    "pos": self.binlog_pos,
                    "row": 0,
                    "thread": 7,
                    "query": None,
                },
                "op": op,
                "ts_ms": self.now + self.rnd.randint(1, 40),
                "transaction": None,
            }
        )

    def _actions(self) -> Iterator[tuple[str, bytes]]:
        r = self.rnd
        while True:
            self.now += r.randint(0, 2 * self.spec.ms_per_event)
            x = r.random()
            if x < 0.22:
                sku, wh = self._key()
                yield "deltas", self._delta(sku, wh, r.randint(5, 60), self.now)
            elif x < 0.30:
                sku, wh = self._key()
                yield "deltas", self._delta(sku, wh, r.randint(-3, 3), self.now)
            elif x < 0.55 or not self.open:
                sku, wh = self._key()
                ln = _Line(self.next_order, r.randint(1, 3), sku, wh, r.randint(1, 5), "CREATED")
                self.next_order += 1
                self.open.append(ln)
                yield "orders", self._cdc("c", None, self._image(ln, self.now))
            else:
                i = r.randrange(len(self.open))
                ln = self.open[i]
                before = self._image(ln, self.now - 1)
                y = r.random()
                if ln.status == "CREATED" and y < 0.85:
                    ln.status = "ALLOCATED"
                elif ln.status == "CREATED" and y < 0.92:
                    ln.wh = r.choice(self.whs) if y < 0.88 else ln.wh
                    ln.qty = max(0, ln.qty + r.randint(-1, 2))
                elif y < 0.97 and ln.status != "CREATED":
                    ln.status = "SHIPPED"
                elif y < 0.995:
                    ln.status = "CANCELLED"
                else:
                    self.open[i] = self.open[-1]
                    self.open.pop()
                    yield "orders", self._cdc("d", before, None)
                    continue
                yield "orders", self._cdc("u", before, self._image(ln, self.now))
                if ln.status in ("SHIPPED", "CANCELLED"):
                    self.open[i] = self.open[-1]
                    self.open.pop()
                    if ln.status == "SHIPPED":
                        yield "deltas", self._delta(ln.sku, ln.wh, -ln.qty, self.now)

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """Messages with duplicates, local reordering, late deltas and invalid records."""
        spec, r = self.spec, self.rnd
        held: list[tuple[int, str, bytes]] = []  # late deltas and when to release them
        delayed: tuple[str, bytes] | None = None
        emitted = 0
        for kind, msg in self._actions():
            if emitted >= spec.events:
                break
            if kind == "deltas" and r.random() < spec.late_rate:
                # Held back 30-90 s of event time: beyond the 10 s watermark delay.
                held.append((self.now + r.randint(30_000, 90_000), kind, msg))
                continue
            out = [(kind, msg)]
            if r.random() < spec.duplicate_rate:
                out.append((kind, msg))
            if r.random() < spec.invalid_rate:
                out.append((kind, r.choice(_INVALID)))
            if delayed is not None:
                out.append(delayed)
                delayed = None
            elif r.random() < spec.reorder_rate:
                delayed = out.pop(0)  # swapped with the next message
            if held and held[0][0] <= self.now:
                out.extend((k, m) for _, k, m in held if _ <= self.now)
                held = [h for h in held if h[0] > self.now]
            for item in out:
                if emitted >= spec.events:
                    break
                emitted += 1
                yield item
        for item in ([delayed] if delayed else []) + [(k, m) for _, k, m in held]:
            if emitted >= spec.events:
                break
            emitted += 1
            yield item


_INVALID = [
    b'{"sku_id":"","warehouse_id":"WH-000","available_delta":1,"event_time":"2026-11-01T00:00:00Z"}',
    b'{"sku_id":"SKU-1","warehouse_id":"WH-000","available_delta":1.5,"event_time":"2026-11-01T00:00:00Z"}',
    b'{"sku_id":"SKU-1","warehouse_id":"WH-000","available_delta":1,"event_time":"yesterday"}',
    b"{not json",
]


def generate(out: Path, spec: GeneratorSpec) -> dict[str, int]:
    """Write ``deltas.jsonl`` and ``orders.jsonl`` under ``out``; returns counts per file."""
    out.mkdir(parents=True, exist_ok=True)
    counts = {"deltas": 0, "orders": 0}
    with (out / "deltas.jsonl").open("wb") as fd, (out / "orders.jsonl").open("wb") as fo:
        files = {"deltas": fd, "orders": fo}
        for kind, msg in TrafficGenerator(spec).messages():
            files[kind].write(msg + b"\n")
            counts[kind] += 1
    return counts
