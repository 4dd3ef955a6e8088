"""Cassandra as the serving projection: a SnapshotSink that writes it and a ProjectionStore that reads it.

Table (``services/cassandra/schema.cql``; created when missing)::

    {keyspace}.{table}(sku_id text, warehouse_id text, available_qty bigint, reserved_qty bigint,
                       atp_qty bigint, updated_at timestamp, commit_id bigint,
                       PRIMARY KEY ((sku_id), warehouse_id))

and a small meta table ``{keyspace}.{table}_meta`` (created when missing), one row per
writing pipeline: ``(projection, writer) → checkpoint, ts_base, committed_at, current_at``.

Write contract (:class:`CassandraProjectionSink`):

* Rows are full values, upserted with ``USING TIMESTAMP ts_base + checkpoint_id``, where
  ``ts_base`` is the wall clock (µs) when the writer (the pipeline id) first wrote and is
  stored in the meta row. Cassandra keeps the cell with the highest write timestamp, so a
  re-sent *older* checkpoint can never overwrite values of a newer one, re-sending the same
  checkpoint writes the same cells, and a new pipeline (a later ``ts_base``) wins over an
  older one's leftovers.
* The writes of one checkpoint are grouped per partition (one UNLOGGED batch per
  ``sku_id``, at most ``batch_rows`` rows each, routed by the token-aware policy) and sent
  concurrently. Only when all of them succeeded is the checkpoint id recorded in the meta
  row (same timestamp rule). A crash in between leaves ``last_committed()`` behind, and the
  pipeline re-sends: idempotent.
* When Cassandra is unavailable (no host, timeouts, unavailable replicas) the sink blocks
  and retries with exponential backoff, logging every retry; rows are never dropped. A
  request Cassandra rejects (bad schema, auth) raises :class:`TerminalSinkError` at once.
  :meth:`CassandraProjectionSink.cancel` ends a blocked retry with :class:`TransientSinkError`
  (the checkpoint is already durable: the next start re-sends it).

Read contract (:class:`CassandraProjection`): ``get`` and ``list_sku`` are single-partition
queries (fail fast, no retry). ``page``, ``status`` and ``changes_since`` need a global
order Cassandra does not keep, so they read a full-table scan cached until the checkpoint
moves and at least ``scan_ttl`` seconds passed: fine for up to a few hundred thousand
keys, not for millions (the point lookups are the serving path). A read that fails because
Cassandra is unreachable or overloaded (no host, connection lost, timeouts, unavailable
replicas) or because no writer has created the table yet raises :class:`TransientSinkError`
(the API answers 503); a query Cassandra rejects propagates unchanged.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import pyarrow as pa

from inventory360.engine.alerts import SafetyStock
from inventory360.errors import TransientSinkError
from inventory360.records import pylist
from inventory360.sinks.base import SnapshotSink
from inventory360.sinks.cassandra_target import CassandraTarget, PendingBatches, retry
from inventory360.sinks.projection import Page, ProjectionStatus, ProjectionStore, StockRow, WarehouseTotals

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
_EPOCH = dt.datetime(1970, 1, 1)
_MS = dt.timedelta(milliseconds=1)


def _ms(value: dt.datetime | None) -> int | None:
    if value is None:
        return None
    return (value.replace(tzinfo=None) - _EPOCH) // _MS


class CassandraProjectionSink(SnapshotSink):
    """Upserts each checkpoint's changed keys into Cassandra (idempotent; see the module docstring).

    ``writer`` names the pipeline (its id); ``cancel`` (shared with the owner) ends blocked
    retries, including the initial connection, which is also retried until it succeeds.
    """

    name = "cassandra"

    def __init__(
        self,
        target: CassandraTarget,
        writer: str,
        *,
        batch_rows: int = 100,
        concurrency: int = 64,
        backoff: tuple[float, float] = (0.2, 5.0),
        cancel: threading.Event | None = None,
    ) -> None:
        self.target = target
        self.writer = writer
        self.batch_rows = batch_rows
        self.concurrency = concurrency
        self.backoff = backoff
        self.retries = 0  # transient failures retried so far (for tests and metrics)
        self._cancel = cancel or threading.Event()
        self._lock = threading.Lock()
        self._cluster: Any = None
        self._session: Any = None
        self._retry("connect", self._open)

    # -- connection and schema ---------------------------------------------------------
    def _open(self) -> None:
        if self._cluster is not None:
            return
        t = self.target
        cluster, session = t.connect()
        try:
            self._st = t.prepare(session)
            self._set_current = session.prepare(
                f"UPDATE {t.keyspace}.{t.meta_table} SET current_at = ? WHERE projection = ? AND writer = ?"
            )
            get_meta = session.prepare(
                f"SELECT checkpoint, ts_base FROM {t.keyspace}.{t.meta_table} WHERE projection = ? AND writer = ?"
            )
            for ps in (self._set_current, get_meta):
                ps.is_idempotent = True
            self._get_meta = get_meta
            row = session.execute(get_meta, (t.table, self.writer)).one()
            if row is None or row.ts_base is None:
                base = time.time_ns() // 1000
                # The base row is written below every checkpoint timestamp of this writer.
                session.execute(
                    f"UPDATE {t.keyspace}.{t.meta_table} USING TIMESTAMP %s SET ts_base = %s"
                    " WHERE projection = %s AND writer = %s",
                    (base, base, t.table, self.writer),
                )
                self._base = base
            else:
                self._base = int(row.ts_base)
        except BaseException:
            cluster.shutdown()
            raise
        self._cluster, self._session = cluster, session

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` until it succeeds; transient failures block with exponential backoff (until cancelled)."""
        return retry(what, fn, self.backoff, wait=self._cancel.wait, on_retry=self._count_retry)

    def _count_retry(self) -> None:
        self.retries += 1

    def cancel(self) -> None:
        """Make a blocked retry give up (orderly shutdown while Cassandra is down)."""
        self._cancel.set()

    # -- SnapshotSink -----------------------------------------------------------------------
    def last_committed(self) -> int:
        """See :meth:`SnapshotSink.last_committed` (read from the meta row; retried while unavailable)."""

        def read() -> int:
            self._open()
            row = self._session.execute(self._get_meta, (self.target.table, self.writer)).one()
            return 0 if row is None or row.checkpoint is None else int(row.checkpoint)

        return self._retry("read of the checkpoint", read)

    def commit(self, rows: pa.Table, checkpoint_id: int) -> None:
        """Upsert ``rows`` per partition, then record ``checkpoint_id``; blocks while Cassandra is down."""
        with self._lock:
            self._retry("connect", self._open)
            ts = self._base + checkpoint_id
            pending = PendingBatches(self._batches(rows, checkpoint_id, ts))
            if pending.batches:
                self._retry(
                    f"write of checkpoint {checkpoint_id} ({len(pending.batches)} batches)",
                    lambda: pending.send(self._session, self.concurrency),
                )
            now_ms = int(time.time() * 1000)
            self._retry(
                f"checkpoint {checkpoint_id} record",
                lambda: self._session.execute(
                    self._st.set_checkpoint, (ts, checkpoint_id, now_ms, self.target.table, self.writer)
                ),
            )

    def _batches(self, rows: pa.Table, checkpoint_id: int, ts: int) -> list[Any]:
        from cassandra.query import BatchStatement, BatchType

        skus = pylist(rows.column("sku_id"))
        whs = pylist(rows.column("warehouse_id"))
        av = pylist(rows.column("available_qty"))
        rs = pylist(rows.column("reserved_qty"))
        ts_ms = pylist(rows.column("updated_at"))
        by_sku: dict[str, list[int]] = defaultdict(list)
        for i, sku in enumerate(skus):
            by_sku[sku].append(i)
        out: list[Any] = []
        for idx in by_sku.values():
            for start in range(0, len(idx), self.batch_rows):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                batch.is_idempotent = True
                for i in idx[start : start + self.batch_rows]:
                    a, r = av[i] or 0, rs[i] or 0
                    batch.add(self._st.insert, (skus[i], whs[i], a, r, a - r, ts_ms[i], checkpoint_id, ts))
                out.append(batch)
        return out

    def mark_current(self, when: float | None = None) -> None:
        """Record that the pipeline is caught up (no new input); best effort, never blocks long."""
        if self._session is None:
            return
        at = int((time.time() if when is None else when) * 1000)
        try:
            self._session.execute(self._set_current, (at, self.target.table, self.writer), timeout=2)
        except Exception as exc:
            log.debug("Cassandra heartbeat failed: %s", exc)

    def close(self) -> None:
        """Shut the driver down."""
        if self._cluster is not None:
            self._cluster.shutdown()
            self._cluster = self._session = None


def _unavailable_is_transient(read: Callable[P, T]) -> Callable[P, T]:
    """Raise :class:`TransientSinkError` for the failures of ``read`` that waiting can cure (module docstring)."""

    @functools.wraps(read)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        from cassandra import AuthenticationFailed, DriverException, InvalidRequest, RequestValidationException
        from cassandra.cluster import NoHostAvailable
        from cassandra.connection import ConnectionException

        try:
            return read(*args, **kwargs)
        except (NoHostAvailable, ConnectionException, DriverException) as exc:
            text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            if isinstance(exc, InvalidRequest) and ("does not exist" in text or "unconfigured table" in text):
                raise TransientSinkError(f"Cassandra projection not created yet: {text}") from exc
            if isinstance(exc, RequestValidationException | AuthenticationFailed):
                raise
            raise TransientSinkError(f"Cassandra projection unavailable: {type(exc).__name__}: {text}") from exc

    return wrapper


_COLS = "sku_id, warehouse_id, available_qty, reserved_qty, updated_at, commit_id"
_Q_GET = f"SELECT {_COLS} FROM {{k}}.{{t}} WHERE sku_id = ? AND warehouse_id = ?"
_Q_SKU = f"SELECT {_COLS} FROM {{k}}.{{t}} WHERE sku_id = ?"
_Q_ALL = f"SELECT {_COLS} FROM {{k}}.{{t}}"
_Q_META = "SELECT writer, checkpoint, committed_at, current_at FROM {k}.{t} WHERE projection = ?"


@dataclass(frozen=True, slots=True)
class _Scan:
    checkpoint: int
    at: float
    keys: list[tuple[str, str]]
    rows: list[StockRow]
    commit_ids: list[int]
    status: ProjectionStatus


class CassandraProjection(ProjectionStore):
    """Reads the projection written by :class:`CassandraProjectionSink` (thread-safe; one driver session).

    ``safety`` decides each row's ``safety_stock`` and ``below_safety_stock`` (they are not
    stored in Cassandra). The session is opened lazily, so the API can start while
    Cassandra is still coming up; a read that fails while Cassandra is unreachable raises
    :class:`TransientSinkError` (see the module docstring), other failures the driver's error.
    """

    def __init__(self, target: CassandraTarget, safety: SafetyStock | None = None, scan_ttl: float = 1.0) -> None:
        self.target = target
        self.safety = safety or SafetyStock()
        self._table = self.safety.lookup()
        self.scan_ttl = scan_ttl
        self._lock = threading.Lock()
        self._session: Any = None
        self._cluster: Any = None
        self._scan: _Scan | None = None

    def _s(self) -> Any:
        with self._lock:
            if self._session is None:
                t = self.target
                self._cluster, self._session = t.connect(timeout=min(t.request_timeout, 5.0))
                self._prepared: dict[str, Any] = {}
            return self._session

    def _q(self, cql: str) -> Any:
        """A prepared statement, cached once the table exists (the writer may create it later)."""
        session = self._s()
        ps = self._prepared.get(cql)
        if ps is None:
            ps = self._prepared[cql] = session.prepare(cql.format(k=self.target.keyspace, t=self.target.table))
        return ps

    def _meta_rows(self) -> list[Any]:
        from cassandra import InvalidRequest

        try:
            ps = self._q(_Q_META.replace("{t}", self.target.meta_table))
        except InvalidRequest:  # no writer has created the meta table yet
            return []
        return list(self._s().execute(ps, (self.target.table,)))

    def _row(self, r: Any) -> StockRow:
        a, res = int(r.available_qty or 0), int(r.reserved_qty or 0)
        threshold = self._table.get((r.sku_id, r.warehouse_id), self.safety.default)
        qty = a - res if self.safety.compare == "atp" else a
        return StockRow(r.sku_id, r.warehouse_id, a, res, _ms(r.updated_at), threshold, qty < threshold)

    @_unavailable_is_transient
    def get(self, sku_id: str, warehouse_id: str) -> StockRow | None:
        """See :meth:`ProjectionStore.get`."""
        r = self._s().execute(self._q(_Q_GET), (sku_id, warehouse_id)).one()
        return None if r is None else self._row(r)

    @_unavailable_is_transient
    def list_sku(self, sku_id: str) -> list[StockRow]:
        """See :meth:`ProjectionStore.list_sku` (clustering order is by warehouse)."""
        return [self._row(r) for r in self._s().execute(self._q(_Q_SKU), (sku_id,))]

    def _meta(self) -> tuple[int, float | None]:
        """(checkpoint of the most recently committing writer, newest commit-or-heartbeat time)."""
        best: tuple[float, int] = (-1.0, 0)
        newest: float | None = None
        for r in self._meta_rows():
            committed = _ms(r.committed_at)
            if committed is not None and committed / 1000 > best[0]:
                best = (committed / 1000, int(r.checkpoint or 0))
            for ms in (committed, _ms(r.current_at)):
                if ms is not None and (newest is None or ms / 1000 > newest):
                    newest = ms / 1000
        return best[1], newest

    @_unavailable_is_transient
    def last_commit_time(self) -> float | None:
        """See :meth:`ProjectionStore.last_commit_time`."""
        return self._meta()[1]

    @_unavailable_is_transient
    def last_checkpoint(self) -> int:
        """Checkpoint id of the writer that committed last (0 when none)."""
        return self._meta()[0]

    def _scanned(self) -> _Scan:
        cp = self.last_checkpoint()
        now = time.monotonic()
        cached = self._scan
        if cached is not None and (cached.checkpoint == cp or now - cached.at < self.scan_ttl):
            return cached
        from cassandra.query import SimpleStatement

        stmt = SimpleStatement(_Q_ALL.format(k=self.target.keyspace, t=self.target.table), fetch_size=5000)
        found = sorted(
            ((self._row(r), int(r.commit_id or 0)) for r in self._s().execute(stmt, timeout=60)),
            key=lambda x: (x[0].sku_id, x[0].warehouse_id),
        )
        rows = [r for r, _ in found]
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for r in rows:
            t = totals[r.warehouse_id]
            t[0] += 1
            t[1] += int(r.below_safety_stock)
            t[2] += r.available_qty
            t[3] += r.reserved_qty
        whs = [WarehouseTotals(w, *totals[w]) for w in sorted(totals)]
        status = ProjectionStatus(
            cp,
            None,
            len(rows),
            sum(w.below_safety_stock for w in whs),
            sum(w.available_qty for w in whs),
            sum(w.reserved_qty for w in whs),
            whs,
        )
        scan = _Scan(cp, now, [(r.sku_id, r.warehouse_id) for r in rows], rows, [c for _, c in found], status)
        self._scan = scan
        return scan

    @_unavailable_is_transient
    def page(
        self,
        *,
        limit: int,
        after: tuple[str, str] | None = None,
        warehouse_id: str | None = None,
        below_safety_stock: bool = False,
        sku_prefix: str | None = None,
    ) -> Page:
        """See :meth:`ProjectionStore.page` (served from the cached scan)."""
        scan = self._scanned()
        start = 0 if after is None else bisect.bisect_right(scan.keys, after)
        if sku_prefix:
            start = max(start, bisect.bisect_left(scan.keys, (sku_prefix, "")))
        out: list[StockRow] = []
        more = False
        for r in itertools.islice(scan.rows, start, None):
            if sku_prefix and not r.sku_id.startswith(sku_prefix):
                break
            if warehouse_id is not None and r.warehouse_id != warehouse_id:
                continue
            if below_safety_stock and not r.below_safety_stock:
                continue
            if len(out) == limit:
                more = True
                break
            out.append(r)
        nxt = (out[-1].sku_id, out[-1].warehouse_id) if more and out else None
        return Page(out, nxt)

    @_unavailable_is_transient
    def status(self) -> ProjectionStatus:
        """See :meth:`ProjectionStore.status`."""
        st = self._scanned().status
        return ProjectionStatus(
            st.checkpoint,
            self.last_commit_time(),
            st.keys,
            st.below_safety_stock,
            st.available_qty,
            st.reserved_qty,
            st.warehouses,
        )

    @_unavailable_is_transient
    def changes_since(self, checkpoint: int, limit: int) -> tuple[list[StockRow], int]:
        """See :meth:`ProjectionStore.changes_since`; the id returned is the one the cached scan is known to include."""
        scan = self._scanned()
        if scan.checkpoint <= checkpoint:
            return [], scan.checkpoint
        changed = sorted((c, i) for i, c in enumerate(scan.commit_ids) if checkpoint < c <= scan.checkpoint)
        return [scan.rows[i] for _, i in changed[:limit]], scan.checkpoint

    def rows(self) -> list[tuple[str, str, int, int, int | None, int]]:
        """Every row as ``(sku_id, warehouse_id, available, reserved, updated_at_ms, commit_id)``, sorted (tests)."""
        from cassandra.query import SimpleStatement

        session = self._s()
        stmt = SimpleStatement(_Q_ALL.format(k=self.target.keyspace, t=self.target.table), fetch_size=5000)
        out = [
            (r.sku_id, r.warehouse_id, int(r.available_qty), int(r.reserved_qty), _ms(r.updated_at), int(r.commit_id))
            for r in session.execute(stmt, timeout=60)
        ]
        return sorted(out)

    def close(self) -> None:
        """Shut the driver down."""
        with self._lock:
            if self._cluster is not None:
                self._cluster.shutdown()
            self._cluster = self._session = None
