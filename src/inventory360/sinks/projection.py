"""The serving projection: the current snapshot, readable by key, by SKU and page by page.

Two sides share one small contract:

* :class:`ProjectionStore` — the read interface the HTTP API uses (point get, per-SKU
  list, paged list with filters, last commit time, changes since a checkpoint). Cassandra
  will implement the same interface later.
* :class:`SqliteProjectionSink` — a :class:`SnapshotSink` that upserts the changed keys of
  each committed checkpoint into an embedded SQLite database (WAL mode) and records the
  checkpoint id **in the same transaction**, so ``last_committed()`` never runs ahead of
  or behind the rows: exactly-once and restart-safe. Re-sending a checkpoint is harmless
  (full values per key; a checkpoint not newer than the stored one is ignored).

:class:`SqliteProjection` reads the same file from any number of threads (one connection
per thread) while one pipeline thread writes.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from inventory360.engine.alerts import Judge, SafetyStock
from inventory360.errors import SinkError
from inventory360.sinks.base import SnapshotSink
from inventory360.sinks.sqlite import ThreadConnections

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inventory (
    sku_id TEXT NOT NULL,
    warehouse_id TEXT NOT NULL,
    available_qty INTEGER NOT NULL,
    reserved_qty INTEGER NOT NULL,
    updated_at INTEGER,
    safety_stock INTEGER NOT NULL,
    low INTEGER NOT NULL,
    checkpoint INTEGER NOT NULL,
    PRIMARY KEY (sku_id, warehouse_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inventory_by_warehouse ON inventory (warehouse_id, sku_id);
CREATE INDEX IF NOT EXISTS inventory_low ON inventory (sku_id, warehouse_id) WHERE low = 1;
CREATE INDEX IF NOT EXISTS inventory_by_checkpoint ON inventory (checkpoint);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
"""

_COLS = "sku_id, warehouse_id, available_qty, reserved_qty, updated_at, safety_stock, low"


@dataclass(frozen=True, slots=True)
class StockRow:
    """One key of the projection; ``atp_qty`` = available − reserved (SPEC §2)."""

    sku_id: str
    warehouse_id: str
    available_qty: int
    reserved_qty: int
    updated_at_ms: int | None
    safety_stock: int
    below_safety_stock: bool

    @property
    def atp_qty(self) -> int:
        """Available to promise."""
        return self.available_qty - self.reserved_qty


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; ``next_after`` is the last key when more rows may follow."""

    rows: list[StockRow]
    next_after: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class WarehouseTotals:
    """Aggregates of one warehouse."""

    warehouse_id: str
    keys: int
    below_safety_stock: int
    available_qty: int
    reserved_qty: int


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """Headline state: last checkpoint, when it was committed, counts and totals."""

    checkpoint: int
    committed_at: float | None  # wall-clock seconds of the last commit (or idle heartbeat)
    keys: int
    below_safety_stock: int
    available_qty: int
    reserved_qty: int
    warehouses: list[WarehouseTotals]


class ProjectionStore(ABC):
    """Read side of the serving projection. Every method is safe from any thread."""

    @abstractmethod
    def get(self, sku_id: str, warehouse_id: str) -> StockRow | None:
        """The row of one key, or None when the key has never been seen."""

    @abstractmethod
    def list_sku(self, sku_id: str) -> list[StockRow]:
        """Every warehouse row of one SKU, sorted by warehouse."""

    @abstractmethod
    def page(
        self,
        *,
        limit: int,
        after: tuple[str, str] | None = None,
        warehouse_id: str | None = None,
        below_safety_stock: bool = False,
        sku_prefix: str | None = None,
    ) -> Page:
        """Rows sorted by (sku_id, warehouse_id) strictly after ``after``, filtered."""

    @abstractmethod
    def last_commit_time(self) -> float | None:
        """Wall-clock seconds when the projection was last known current (None: never)."""

    @abstractmethod
    def last_checkpoint(self) -> int:
        """The checkpoint id of the newest committed batch (0 when none)."""

    @abstractmethod
    def status(self) -> ProjectionStatus:
        """Counts and totals (may be cached for about a second)."""

    @abstractmethod
    def changes_since(self, checkpoint: int, limit: int) -> tuple[list[StockRow], int]:
        """Rows changed by checkpoints after ``checkpoint`` and the newest checkpoint id.

        When more than ``limit`` rows changed, returns ``limit`` of them (the caller
        treats the rest as "reload").
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


def ensure_schema(path: Path) -> None:
    """Create the database file in WAL mode with its tables (idempotent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(path, readonly=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(_SCHEMA)
    finally:
        conn.close()


def _row(r: tuple[object, ...]) -> StockRow:
    return StockRow(
        str(r[0]),
        str(r[1]),
        int(r[2]),  # type: ignore[call-overload]
        int(r[3]),  # type: ignore[call-overload]
        None if r[4] is None else int(r[4]),  # type: ignore[call-overload]
        int(r[5]),  # type: ignore[call-overload]
        bool(r[6]),
    )


class SqliteProjection(ProjectionStore):
    """Reads a projection file written by :class:`SqliteProjectionSink` (one connection per thread)."""

    def __init__(self, path: Path, status_ttl: float = 0.5) -> None:
        self.path = path
        ensure_schema(path)
        self._pool = ThreadConnections(lambda: _connect(path, readonly=True))
        self._status: tuple[float, int, ProjectionStatus] | None = None
        self._status_ttl = status_ttl

    def _conn(self) -> sqlite3.Connection:
        return self._pool.get()

    def _meta(self, conn: sqlite3.Connection) -> dict[str, object]:
        return dict(conn.execute("SELECT k, v FROM meta").fetchall())

    def get(self, sku_id: str, warehouse_id: str) -> StockRow | None:
        """See :meth:`ProjectionStore.get`."""
        r = (
            self._conn()
            .execute(f"SELECT {_COLS} FROM inventory WHERE sku_id = ? AND warehouse_id = ?", (sku_id, warehouse_id))
            .fetchone()
        )
        return None if r is None else _row(r)

    def list_sku(self, sku_id: str) -> list[StockRow]:
        """See :meth:`ProjectionStore.list_sku`."""
        cur = self._conn().execute(f"SELECT {_COLS} FROM inventory WHERE sku_id = ? ORDER BY warehouse_id", (sku_id,))
        return [_row(r) for r in cur.fetchall()]

    def page(
        self,
        *,
        limit: int,
        after: tuple[str, str] | None = None,
        warehouse_id: str | None = None,
        below_safety_stock: bool = False,
        sku_prefix: str | None = None,
    ) -> Page:
        """See :meth:`ProjectionStore.page`."""
        where: list[str] = []
        args: list[object] = []
        if after is not None:
            where.append("(sku_id, warehouse_id) > (?, ?)")
            args.extend(after)
        if warehouse_id is not None:
            where.append("warehouse_id = ?")
            args.append(warehouse_id)
        if below_safety_stock:
            where.append("low = 1")
        if sku_prefix:
            # Range instead of LIKE: exact, case-sensitive, and uses the primary key.
            where.append("sku_id >= ? AND sku_id < ?")
            args.extend([sku_prefix, sku_prefix + "\U0010ffff"])
        sql = f"SELECT {_COLS} FROM inventory"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY sku_id, warehouse_id LIMIT ?"
        args.append(limit + 1)
        rows = [_row(r) for r in self._conn().execute(sql, args).fetchall()]
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = (rows[-1].sku_id, rows[-1].warehouse_id) if more and rows else None
        return Page(rows, nxt)

    def last_checkpoint(self) -> int:
        """The checkpoint id of the newest committed batch (0 when none)."""
        r = self._conn().execute("SELECT v FROM meta WHERE k = 'checkpoint'").fetchone()
        return 0 if r is None else int(r[0])

    def last_commit_time(self) -> float | None:
        """See :meth:`ProjectionStore.last_commit_time`."""
        m = self._meta(self._conn())
        times = [float(m[k]) for k in ("committed_at", "current_at") if m.get(k) is not None]  # type: ignore[arg-type]
        return max(times) if times else None

    def status(self) -> ProjectionStatus:
        """See :meth:`ProjectionStore.status`; recomputed when the checkpoint moved and the TTL passed."""
        conn = self._conn()
        cp = self.last_checkpoint()
        now = time.monotonic()
        cached = self._status
        if cached is not None and (cached[1] == cp or now - cached[0] < self._status_ttl):
            return ProjectionStatus(
                cached[2].checkpoint,
                self.last_commit_time(),
                cached[2].keys,
                cached[2].below_safety_stock,
                cached[2].available_qty,
                cached[2].reserved_qty,
                cached[2].warehouses,
            )
        whs = [
            WarehouseTotals(str(w), int(k), int(lo or 0), int(a or 0), int(r or 0))
            for w, k, lo, a, r in conn.execute(
                "SELECT warehouse_id, COUNT(*), SUM(low), SUM(available_qty), SUM(reserved_qty) "
                "FROM inventory GROUP BY warehouse_id ORDER BY warehouse_id"
            ).fetchall()
        ]
        st = ProjectionStatus(
            cp,
            self.last_commit_time(),
            sum(w.keys for w in whs),
            sum(w.below_safety_stock for w in whs),
            sum(w.available_qty for w in whs),
            sum(w.reserved_qty for w in whs),
            whs,
        )
        self._status = (now, cp, st)
        return st

    def changes_since(self, checkpoint: int, limit: int) -> tuple[list[StockRow], int]:
        """See :meth:`ProjectionStore.changes_since`."""
        conn = self._conn()
        conn.execute("BEGIN")  # one read snapshot for the rows and the checkpoint id
        try:
            cp = self.last_checkpoint()
            if cp <= checkpoint:
                return [], cp
            cur = conn.execute(
                f"SELECT {_COLS} FROM inventory WHERE checkpoint > ? ORDER BY checkpoint LIMIT ?",
                (checkpoint, limit),
            )
            return [_row(r) for r in cur.fetchall()], cp
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every per-thread connection."""
        self._pool.close()


class SqliteProjectionSink(SnapshotSink):
    """Writes the projection: rows and checkpoint id in one SQLite transaction (idempotent).

    ``safety`` decides each row's ``safety_stock`` and ``below_safety_stock`` flag; when it
    differs from the one stored with the file, every row is re-judged on open.
    """

    name = "projection"

    def __init__(self, path: Path, safety: SafetyStock | None = None) -> None:
        self.path = path
        self.safety = safety or SafetyStock()
        self._judge = Judge(self.safety)
        try:
            ensure_schema(path)
            self._conn = _connect(path, readonly=False)
            self._conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable against process crashes
            self._conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: upserts stay in memory
        except sqlite3.Error as exc:
            raise SinkError(f"cannot open projection {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._rejudge()

    def _rejudge(self) -> None:
        fp = self.safety.fingerprint()
        r = self._conn.execute("SELECT v FROM meta WHERE k = 'safety'").fetchone()
        if r is not None and r[0] == fp:
            return
        query = "SELECT sku_id, warehouse_id, available_qty, reserved_qty FROM inventory"
        stored = self._conn.execute(query).fetchall()
        rows = pa.table(
            {
                "sku_id": pa.array([r[0] for r in stored], pa.string()),
                "warehouse_id": pa.array([r[1] for r in stored], pa.string()),
                "available_qty": pa.array([r[2] for r in stored], pa.int64()),
                "reserved_qty": pa.array([r[3] for r in stored], pa.int64()),
                "updated_at": pa.nulls(len(stored), pa.timestamp("ms")),
            }
        )
        lv = self._judge.levels(rows)
        upd = zip(lv.safety_stock.tolist(), lv.low.astype(np.int64).tolist(), lv.sku_id, lv.warehouse_id, strict=True)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "UPDATE inventory SET safety_stock = ?, low = ? WHERE sku_id = ? AND warehouse_id = ?", upd
            )
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('safety', ?)", (fp,))
            self._conn.execute("COMMIT")

    def last_committed(self) -> int:
        """See :meth:`SnapshotSink.last_committed`."""
        r = self._conn.execute("SELECT v FROM meta WHERE k = 'checkpoint'").fetchone()
        return 0 if r is None else int(r[0])

    def commit(self, rows: pa.Table, checkpoint_id: int) -> None:
        """Upsert ``rows`` and store ``checkpoint_id`` in one transaction (older ids are ignored)."""
        # In key order, upserts walk the primary-key B-tree forwards (about half the cost).
        rows = rows.sort_by([("sku_id", "ascending"), ("warehouse_id", "ascending")])
        lv = self._judge.levels(rows)
        data = zip(
            lv.sku_id,
            lv.warehouse_id,
            lv.available_qty.tolist(),
            lv.reserved_qty.tolist(),
            lv.updated_at_ms,
            lv.safety_stock.tolist(),
            lv.low.astype(np.int64).tolist(),
            itertools.repeat(checkpoint_id, len(lv)),
            strict=False,
        )
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    if checkpoint_id <= self.last_committed():
                        self._conn.execute("ROLLBACK")
                        return
                    self._conn.executemany(
                        "INSERT INTO inventory VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sku_id, warehouse_id) "
                        "DO UPDATE SET available_qty = excluded.available_qty, reserved_qty = excluded.reserved_qty, "
                        "updated_at = excluded.updated_at, safety_stock = excluded.safety_stock, low = excluded.low, "
                        "checkpoint = excluded.checkpoint",
                        data,
                    )
                    self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('checkpoint', ?)", (checkpoint_id,))
                    self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('committed_at', ?)", (time.time(),))
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise SinkError(f"projection commit {checkpoint_id} failed: {exc}") from exc

    def mark_current(self, when: float | None = None) -> None:
        """Record that the pipeline is caught up at ``when`` (no new input): keeps freshness honest."""
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('current_at', ?)", (time.time() if when is None else when,)
            )

    def close(self) -> None:
        """Close the writer connection."""
        with self._lock:
            self._conn.close()
