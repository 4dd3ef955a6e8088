"""The keyed micro-batch engine: decoded deltas and order changes in, changed keys out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa

from inventory360.engine.index import KeyIndex
from inventory360.engine.reservations import LineTable, apply_orders
from inventory360.engine.state import NEVER, KeyTable

DEFAULT_RESERVING = frozenset({"CREATED", "ALLOCATED"})


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Semantics knobs (SPEC §2)."""

    reserving_statuses: frozenset[str] = DEFAULT_RESERVING
    late_after_ms: int = 10_000  # a delta this far behind the watermark counts as late


@dataclass(slots=True)
class BatchResult:
    """What one micro-batch changed."""

    changed: np.ndarray  # key ids, sorted
    before_available: np.ndarray  # their values before the batch (alerts compare them)
    before_reserved: np.ndarray
    existed: np.ndarray  # whether each changed key existed before the batch
    changed_lines: np.ndarray
    new_event_ids: pl.Series
    counters: Counter[str] = field(default_factory=Counter)


class Engine:
    """Holds the state and applies one batch at a time; never raises on data."""

    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()
        self.reserving = frozenset(s.strip().upper() for s in self.options.reserving_statuses)
        self.keys = KeyTable()
        self.lines = LineTable()
        self.seen = KeyIndex(["event_id"])
        self.watermark_ms = int(NEVER)

    def process(self, deltas: pa.Table, orders: pa.Table) -> BatchResult:
        """Apply decoded deltas and order changes (each in arrival order)."""
        counters: Counter[str] = Counter()
        known_before = len(self.keys)
        kids: list[np.ndarray] = []
        d_av: list[np.ndarray] = []
        d_rs: list[np.ndarray] = []
        when: list[np.ndarray] = []
        new_ids = pl.Series("event_id", [], dtype=pl.String)

        if deltas.num_rows:
            agg, new_ids = self._deltas(pl.from_arrow(deltas), counters)  # type: ignore[arg-type]
            if agg.height:
                kids.append(self.keys.ids(agg.select("sku_id", "warehouse_id")))
                d_av.append(agg["d"].to_numpy())
                d_rs.append(np.zeros(agg.height, dtype=np.int64))
                when.append(agg["t"].to_numpy())

        out = apply_orders(self.lines, self.keys, orders, self.reserving)
        counters["orders_ignored_older"] += out.ignored_older
        counters["orders_applied"] += orders.num_rows - out.ignored_older
        if out.touch_kid.size:
            kids += [out.touch_kid, out.res_kid]
            d_av += [np.zeros(out.touch_kid.size + out.res_kid.size, dtype=np.int64)]
            d_rs += [np.zeros(out.touch_kid.size, dtype=np.int64), out.res_delta]
            when += [out.touch_time, np.full(out.res_kid.size, NEVER, dtype=np.int64)]

        if not kids:
            e = np.empty(0, dtype=np.int64)
            return BatchResult(e, e, e, e.astype(bool), out.changed_lines, new_ids, counters)
        kid = np.concatenate(kids)
        changed, before_a, before_r = self.keys.apply(
            kid, np.concatenate(d_av), np.concatenate(d_rs), np.concatenate(when)
        )
        return BatchResult(
            changed,
            before_a,
            before_r,
            changed < known_before,
            out.changed_lines,
            new_ids,
            counters,
        )

    def _deltas(self, d: pl.DataFrame, counters: Counter[str]) -> tuple[pl.DataFrame, pl.Series]:
        """Deduplicate, count lateness, and sum the accepted deltas per key."""
        eid = d["event_id"]
        has_id = eid.is_not_null()
        dup = has_id & ~eid.is_first_distinct()
        fresh = d.filter(has_id & ~dup).select("event_id")
        if fresh.height and len(self.seen):
            seen = self.seen.lookup(fresh) >= 0
            if seen.any():
                dup_ids = fresh.filter(pl.Series(seen))["event_id"]
                dup = dup | (has_id & eid.is_in(dup_ids.implode()))
        accepted = d.filter(~dup)
        counters["deltas_duplicate"] += d.height - accepted.height
        counters["deltas_accepted"] += accepted.height
        new_ids = accepted["event_id"].drop_nulls()
        if new_ids.len():
            self.seen.insert(new_ids.to_frame())
        if accepted.height == 0:
            return accepted.clear(), new_ids
        et = accepted["event_time"].to_numpy()
        running = np.maximum.accumulate(np.concatenate([[self.watermark_ms], et]))
        counters["deltas_late"] += int(np.count_nonzero(et + self.options.late_after_ms < running[:-1]))
        self.watermark_ms = int(running[-1])
        agg = accepted.group_by("sku_id", "warehouse_id").agg(
            pl.col("available_delta").sum().alias("d"), pl.col("event_time").max().alias("t")
        )
        return agg, new_ids
