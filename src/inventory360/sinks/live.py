"""The newest committed checkpoints in memory, in front of the durable projection.

When the pipeline and the API share a process (``inv360 demo``/``serve``/``run``), the
API need not wait for the projection's upserts: :class:`LiveProjection` is both a
:class:`SnapshotSink`, committed on the pipeline thread right after each engine
checkpoint is durable, and the :class:`ProjectionStore` the API reads. It keeps the rows
of recent checkpoints ("generations") and answers from them first:

* ``get`` and ``list_sku``: the newest generation holding the key wins, then the durable
  store (SQLite, written from its own thread) for keys not changed recently;
* ``changes_since``: straight from the generations when they reach back far enough (the
  dashboard's stream), else from the durable store;
* ``page`` and ``status`` (listings and aggregates): the durable store, which trails the
  engine by at most the commits queued for it.

Only committed checkpoints enter (``commit`` runs after the manifest is written), so the
API never shows a value a crash could take back. A generation is dropped once the durable
store has committed its checkpoint and it is older than ``keep_s`` (or when more than
``max_rows`` rows are held, oldest first, if the durable store falls far behind).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from inventory360.engine.alerts import Judge, Levels, SafetyStock
from inventory360.sinks.base import SnapshotSink
from inventory360.sinks.projection import Page, ProjectionStatus, ProjectionStore, StockRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Generation:
    """The committed rows of one checkpoint, judged (:meth:`Judge.levels`), with a key → row index."""

    checkpoint: int
    committed_at: float  # wall-clock seconds
    rows: pa.Table  # SNAPSHOT_SCHEMA, for vectorised searches
    levels: Levels
    index: dict[tuple[str, str], int]

    @classmethod
    def of(cls, checkpoint: int, rows: pa.Table, judge: Judge) -> Generation:
        """Judge ``rows`` and index them by key."""
        lv = judge.levels(rows)
        index = dict(zip(zip(lv.sku_id, lv.warehouse_id, strict=True), range(len(lv)), strict=True))
        return cls(checkpoint, time.time(), rows, lv, index)

    def row(self, i: int) -> StockRow:
        """Row ``i`` as the API's :class:`StockRow`."""
        lv = self.levels
        return StockRow(
            lv.sku_id[i],
            lv.warehouse_id[i],
            int(lv.available_qty[i]),
            int(lv.reserved_qty[i]),
            lv.updated_at_ms[i],
            int(lv.safety_stock[i]),
            bool(lv.low[i]),
        )


class LiveProjection(ProjectionStore):
    """Recent checkpoints in memory over a durable :class:`ProjectionStore` (module docstring).

    :attr:`sink` is the pipeline's side; the store owns (and closes) ``durable``.
    """

    def __init__(
        self, durable: ProjectionStore, safety: SafetyStock, keep_s: float = 5.0, max_rows: int = 2_000_000
    ) -> None:
        self.durable = durable
        self.keep_s = keep_s
        self.max_rows = max_rows
        self._judge = Judge(safety)
        # Oldest first, one per checkpoint with no gap (every commit passes here), replaced
        # whole and read without a lock: changes after checkpoint c are all in memory iff
        # c >= gens[0].checkpoint - 1 (older generations are in the durable store).
        self._gens: tuple[Generation, ...] = ()
        self._lock = threading.Lock()  # writers only
        self._current_at: float | None = None  # the pipeline's last "caught up" heartbeat
        self.sink = _LiveSink(self)

    # -- the sink side (pipeline thread) -------------------------------------------------
    def add(self, rows: pa.Table, checkpoint_id: int) -> None:
        """Add the rows of a durable checkpoint; drop generations the durable store holds."""
        gen = Generation.of(checkpoint_id, rows, self._judge)
        with self._lock:
            gens = self._gens
            if gens and checkpoint_id <= gens[-1].checkpoint:
                return  # re-sent after a restart: already held
            self._gens = self._evict((*gens, gen))

    def _evict(self, gens: tuple[Generation, ...]) -> tuple[Generation, ...]:
        try:
            durable = self.durable.last_checkpoint()
        except Exception as exc:  # the durable store is down: keep what we have (bounded below)
            log.debug("durable projection unreadable: %s", exc)
            durable = 0
        old = time.time() - self.keep_s
        held = sum(g.rows.num_rows for g in gens)
        drop = 0
        for g in gens[:-1]:
            if (g.checkpoint <= durable and g.committed_at < old) or held > self.max_rows:
                drop += 1
                held -= g.rows.num_rows
            else:
                break
        return gens[drop:]

    # -- the store side (any thread) -----------------------------------------------------
    def get(self, sku_id: str, warehouse_id: str) -> StockRow | None:
        """See :meth:`ProjectionStore.get`."""
        key = (sku_id, warehouse_id)
        for g in reversed(self._gens):
            i = g.index.get(key)
            if i is not None:
                return g.row(i)
        return self.durable.get(sku_id, warehouse_id)

    def list_sku(self, sku_id: str) -> list[StockRow]:
        """See :meth:`ProjectionStore.list_sku`."""
        gens = self._gens
        by_wh = {r.warehouse_id: r for r in self.durable.list_sku(sku_id)}
        for g in gens:  # oldest first: newer generations overwrite
            for i in pc.indices_nonzero(pc.equal(g.rows["sku_id"], sku_id)).to_pylist():
                by_wh[g.levels.warehouse_id[i]] = g.row(i)
        return [by_wh[w] for w in sorted(by_wh)]

    def page(
        self,
        *,
        limit: int,
        after: tuple[str, str] | None = None,
        warehouse_id: str | None = None,
        below_safety_stock: bool = False,
        sku_prefix: str | None = None,
    ) -> Page:
        """See :meth:`ProjectionStore.page` (from the durable store)."""
        return self.durable.page(
            limit=limit,
            after=after,
            warehouse_id=warehouse_id,
            below_safety_stock=below_safety_stock,
            sku_prefix=sku_prefix,
        )

    def mark_current(self, when: float | None = None) -> None:
        """Record that the pipeline is caught up (no new input) at ``when``: keeps freshness honest."""
        self._current_at = time.time() if when is None else when

    def last_commit_time(self) -> float | None:
        """See :meth:`ProjectionStore.last_commit_time`: the newest commit or heartbeat seen here.

        Only before the first of either does it ask the durable store (no query per request).
        """
        gens, current = self._gens, self._current_at
        if not gens and current is None:
            return self.durable.last_commit_time()
        return max(gens[-1].committed_at if gens else 0.0, current or 0.0)

    def last_checkpoint(self) -> int:
        """See :meth:`ProjectionStore.last_checkpoint`."""
        gens = self._gens
        return gens[-1].checkpoint if gens else self.durable.last_checkpoint()

    def status(self) -> ProjectionStatus:
        """See :meth:`ProjectionStore.status` (aggregates of the durable store)."""
        return self.durable.status()

    def changes_since(self, checkpoint: int, limit: int) -> tuple[list[StockRow], int]:
        """See :meth:`ProjectionStore.changes_since`; from memory when it reaches back to ``checkpoint``."""
        gens = self._gens
        if not gens or checkpoint < gens[0].checkpoint - 1:
            return self.durable.changes_since(checkpoint, limit)
        newest = gens[-1].checkpoint
        out: dict[tuple[str, str], StockRow] = {}
        for g in reversed(gens):  # newest first: the first row seen of a key is its current one
            if g.checkpoint <= checkpoint:
                break
            for key, i in g.index.items():
                if key not in out:
                    out[key] = g.row(i)
                    if len(out) >= limit:
                        return list(out.values()), newest
        return list(out.values()), newest

    def close(self) -> None:
        """Drop what is held and close the durable store."""
        self._gens = ()
        self.durable.close()


class _LiveSink(SnapshotSink):
    """The pipeline's handle on a :class:`LiveProjection` (committed on the pipeline thread)."""

    name = "live"

    def __init__(self, live: LiveProjection) -> None:
        self.live = live

    def commit(self, rows: pa.Table, checkpoint_id: int) -> None:
        """Hold the rows of a durable checkpoint in memory."""
        self.live.add(rows, checkpoint_id)

    def last_committed(self) -> int:
        """The newest checkpoint held, or on start the durable store's (nothing older is re-sent)."""
        return self.live.last_checkpoint()

    def mark_current(self) -> None:
        """The pipeline's "caught up" heartbeat."""
        self.live.mark_current()
