"""The keyed micro-batch engine: decoded deltas and order changes in, changed keys out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from inventory360.engine.columns import one_array
from inventory360.engine.index import KeyIndex
from inventory360.engine.reservations import LineTable, apply_orders
from inventory360.engine.state import NEVER, KeyTable
from inventory360.sources import native

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
    new_event_ids: pa.Array  # event ids seen for the first time (strings)
    counters: Counter[str] = field(default_factory=Counter)


def merge_results(results: list[BatchResult]) -> BatchResult:
    """What consecutive batches changed together, as if they had been one batch.

    Keys and lines are the union; a key's values before (and whether it existed) are those
    from before the first batch that changed it; new event ids and counters add up.
    ``results`` is not empty.
    """
    if len(results) == 1:
        return results[0]
    # ``first``: each key's first occurrence; batches are in order.
    changed, first = _union([r.changed for r in results], with_first=True)
    lines = _union([r.changed_lines for r in results], with_first=False)[0]
    counters: Counter[str] = Counter()
    for r in results:
        counters.update(r.counters)
    return BatchResult(
        changed,
        np.concatenate([r.before_available for r in results])[first],
        np.concatenate([r.before_reserved for r in results])[first],
        np.concatenate([r.existed for r in results])[first],
        lines,
        pa.concat_arrays([r.new_event_ids.cast(pa.string()) for r in results]),
        counters,
    )


def _union(parts: list[np.ndarray], with_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct ids of ``parts`` and (``with_first``) each one's first occurrence."""
    if native.available():
        return native.union_first(parts, with_first)
    if with_first:
        ids, first = np.unique(np.concatenate(parts), return_index=True)
        return ids, first
    return np.unique(np.concatenate(parts)), np.empty(0, dtype=np.int64)


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
        new_ids: pa.Array = pa.array([], pa.string())

        if deltas.num_rows:
            kid, d, t, new_ids = self._deltas(deltas, counters)
            if kid.size:
                kids.append(kid)
                d_av.append(d)
                d_rs.append(np.zeros(kid.size, dtype=np.int64))
                when.append(t)

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

    def _deltas(
        self, d: pa.Table, counters: Counter[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array]:
        """Deduplicate and count lateness; the accepted deltas' key ids, amounts and times.

        Returns ``(key_id, available_delta, event_time, new_event_ids)`` of the accepted
        rows in arrival order; an ``event_id`` seen before (in an earlier batch or earlier
        in this one) makes its row a duplicate.
        """
        n = d.num_rows
        eid = d["event_id"]
        dup = np.zeros(n, dtype=bool)
        new_ids: pa.Array = pa.array([], pa.string())
        with_id = np.flatnonzero(eid.is_valid().to_numpy(zero_copy_only=False)) if eid.null_count else None
        n_with_id = n if with_id is None else with_id.size
        if n_with_id:
            _, created = self.seen.resolve_new([eid], with_id)
            fresh = np.zeros(n_with_id, dtype=bool)
            fresh[created] = True
            dup[~fresh if with_id is None else with_id[~fresh]] = True
            first = created if with_id is None else with_id[created]
            new_ids = eid.take(pa.array(first, pa.int64())).combine_chunks()
        acc = np.flatnonzero(~dup) if dup.any() else None
        n_acc = n if acc is None else acc.size
        counters["deltas_duplicate"] += n - n_acc
        counters["deltas_accepted"] += n_acc
        e = np.empty(0, dtype=np.int64)
        if n_acc == 0:
            return e, e, e, new_ids
        et = _int_column(d, "event_time", acc)
        amount = _int_column(d, "available_delta", acc)
        running = np.maximum.accumulate(np.concatenate([[self.watermark_ms], et]))
        counters["deltas_late"] += int(np.count_nonzero(et + self.options.late_after_ms < running[:-1]))
        self.watermark_ms = int(running[-1])
        kid = self.keys.resolve([d["sku_id"], d["warehouse_id"]], acc)
        return kid, amount, et, new_ids


def _int_column(table: pa.Table, name: str, rows: np.ndarray | None) -> np.ndarray:
    """A non-null int64 column as numpy, optionally only ``rows``."""
    col = table[name]
    arr = one_array(col)
    values = np.asarray(arr.to_numpy(zero_copy_only=False))
    return values if rows is None else values[rows]
