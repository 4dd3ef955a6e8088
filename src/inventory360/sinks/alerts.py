"""Low-stock alerts as a snapshot sink: crash-safe state, an alert table and a JSONL export.

:class:`AlertSink` judges every committed row against its safety stock
(:mod:`inventory360.engine.alerts`) and emits ``LOW`` / ``RECOVERED`` once per crossing.
In **one SQLite transaction** (``synchronous = FULL``) it appends the alerts to the table
``alerts`` (sequence numbers without gaps), updates the set of low keys and records the
checkpoint id. A checkpoint not newer than the stored one is ignored, so the pipeline's
re-send after ``kill -9`` produces each alert exactly once.

The JSON Lines export (``alerts.jsonl``, one alert per line with its ``seq``) is derived
from that table: after each commit the sink appends every alert whose ``seq`` is above the
last complete line of the file. On open, a torn last line is cut off and the missing
alerts are appended again, so the file never repeats or misses an alert.

:class:`AlertStore` reads the table from any thread (for the API and the event stream).
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from inventory360.engine.alerts import AlertKind, Judge, Judged, SafetyStock
from inventory360.errors import SinkError
from inventory360.records import pylist
from inventory360.sinks.base import SnapshotSink
from inventory360.sinks.sqlite import ThreadConnections
from inventory360.sources.timestamps import iso_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    sku_id TEXT NOT NULL,
    warehouse_id TEXT NOT NULL,
    available_qty INTEGER NOT NULL,
    reserved_qty INTEGER NOT NULL,
    safety_stock INTEGER NOT NULL,
    compare TEXT NOT NULL,
    event_time INTEGER,
    checkpoint INTEGER NOT NULL,
    emitted_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_event_time ON alerts (event_time);
CREATE TABLE IF NOT EXISTS low_keys (sku_id TEXT NOT NULL, warehouse_id TEXT NOT NULL,
    PRIMARY KEY (sku_id, warehouse_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
"""

_COLS = (
    "seq, kind, sku_id, warehouse_id, available_qty, reserved_qty, safety_stock, compare, event_time, "
    "checkpoint, emitted_at"
)


@dataclass(frozen=True, slots=True)
class Alert:
    """One crossing of a key's safety stock (SPEC §3)."""

    seq: int
    kind: AlertKind
    sku_id: str
    warehouse_id: str
    available_qty: int
    reserved_qty: int
    safety_stock: int
    compare: str
    event_time_ms: int | None
    checkpoint: int
    emitted_at: float

    def to_json(self) -> dict[str, object]:
        """The export / API shape: both quantities, ATP, threshold and ISO times."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "sku_id": self.sku_id,
            "warehouse_id": self.warehouse_id,
            "available_qty": self.available_qty,
            "reserved_qty": self.reserved_qty,
            "safety_stock": self.safety_stock,
            "compare": self.compare,
            "checkpoint": self.checkpoint,
            "atp_qty": self.available_qty - self.reserved_qty,
            "event_time": iso_ms(self.event_time_ms),
            "emitted_at": iso_ms(int(self.emitted_at * 1000)),
        }


def _key(sku: str, wh: str) -> str:
    """One string per key, ``<len(sku)>:<sku>:<wh>``: unambiguous whatever the ids hold."""
    return f"{len(sku)}:{sku}:{wh}"


def _keys_of(rows: pa.Table) -> pa.ChunkedArray:
    """:func:`_key` of every row, vectorised."""
    sku_len = pc.cast(pc.utf8_length(rows["sku_id"]), pa.string())
    return pc.binary_join_element_wise(sku_len, rows["sku_id"], rows["warehouse_id"], ":")


#: Columns of the ``alerts`` table, in order.
_TABLE_COLS = (
    "seq",
    "kind",
    "sku_id",
    "warehouse_id",
    "available_qty",
    "reserved_qty",
    "safety_stock",
    "compare",
    "event_time",
    "checkpoint",
    "emitted_at",
)


def _new_alerts(
    rows: pa.Table,
    crossed: np.ndarray,
    judged: Judged,
    last_seq: int,
    compare: str,
    checkpoint_id: int,
    now: float,
) -> dict[str, pa.Array]:
    """The alerts of the rows at ``crossed`` as columns of the ``alerts`` table (no Python loop)."""
    n = int(crossed.size)
    take = pa.array(crossed, pa.int64())
    return {
        "seq": pa.array(np.arange(last_seq + 1, last_seq + 1 + n, dtype=np.int64)),
        "kind": pa.array(np.where(judged.low[crossed], "LOW", "RECOVERED").astype(object), pa.string()),
        "sku_id": rows["sku_id"].take(take).combine_chunks(),
        "warehouse_id": rows["warehouse_id"].take(take).combine_chunks(),
        "available_qty": pa.array(judged.available_qty[crossed]),
        "reserved_qty": pa.array(judged.reserved_qty[crossed]),
        "safety_stock": pa.array(judged.safety_stock[crossed]),
        "compare": pa.array([compare] * n, pa.string()),
        "event_time": rows["updated_at"].take(take).combine_chunks().cast(pa.int64()),
        "checkpoint": pa.array(np.full(n, checkpoint_id, dtype=np.int64)),
        "emitted_at": pa.array(np.full(n, now, dtype=np.float64)),
    }


def _export_lines(new: dict[str, pa.Array], now: float) -> bytes:
    """JSON Lines of new alerts (emitted at ``now``), each exactly ``Alert.to_json()`` (vectorised with Polars)."""

    def iso(ms: pa.Array) -> pl.Expr:
        return pl.lit(pl.Series(ms)).cast(pl.Datetime("ms")).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")

    av, rs = pl.Series(new["available_qty"]), pl.Series(new["reserved_qty"])
    df = pl.DataFrame(
        {
            "seq": pl.Series(new["seq"]),
            "kind": pl.Series(new["kind"]),
            "sku_id": pl.Series(new["sku_id"]),
            "warehouse_id": pl.Series(new["warehouse_id"]),
            "available_qty": av,
            "reserved_qty": rs,
            "safety_stock": pl.Series(new["safety_stock"]),
            "compare": pl.Series(new["compare"]),
            "checkpoint": pl.Series(new["checkpoint"]),
            "atp_qty": av - rs,
        }
    ).with_columns(
        event_time=iso(new["event_time"]),
        emitted_at=pl.lit(iso_ms(int(now * 1000))),
    )
    return df.write_ndjson().encode()


def _alert(r: tuple[object, ...]) -> Alert:
    return Alert(
        int(r[0]),  # type: ignore[call-overload]
        "LOW" if r[1] == "LOW" else "RECOVERED",
        str(r[2]),
        str(r[3]),
        int(r[4]),  # type: ignore[call-overload]
        int(r[5]),  # type: ignore[call-overload]
        int(r[6]),  # type: ignore[call-overload]
        str(r[7]),
        None if r[8] is None else int(r[8]),  # type: ignore[call-overload]
        int(r[9]),  # type: ignore[call-overload]
        float(r[10]),  # type: ignore[arg-type]
    )


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(_SCHEMA)
    return conn


class AlertSink(SnapshotSink):
    """Evaluates crossings per checkpoint; state, alerts and checkpoint id commit together.

    ``export`` is the JSON Lines file (None: none).
    """

    name = "alerts"

    def __init__(
        self,
        path: Path,
        safety: SafetyStock,
        export: Path | None = None,
    ) -> None:
        self.path = path
        self.safety = safety
        self._judge = Judge(safety)
        self.export = export
        try:
            self._conn = _connect(path)
            self._conn.execute("PRAGMA synchronous = FULL")  # alerts leave the process: never roll back
            self._low: set[str] = {
                _key(sku, wh) for sku, wh in self._conn.execute("SELECT sku_id, warehouse_id FROM low_keys")
            }
            self._last_seq = int(self._conn.execute("SELECT coalesce(max(seq), 0) FROM alerts").fetchone()[0])
        except sqlite3.Error as exc:
            raise SinkError(f"cannot open alert store {path}: {exc}") from exc
        self._exported = self._repair_export()

    @property
    def keys_below_safety_stock(self) -> int:
        """How many keys are low as of the last committed checkpoint."""
        return len(self._low)

    def last_committed(self) -> int:
        """See :meth:`SnapshotSink.last_committed`."""
        r = self._conn.execute("SELECT v FROM meta WHERE k = 'checkpoint'").fetchone()
        return 0 if r is None else int(r[0])

    def commit(self, rows: pa.Table, checkpoint_id: int) -> None:
        """Emit the crossings of ``rows`` and persist them with the low set and ``checkpoint_id``."""
        if checkpoint_id <= self.last_committed():
            return
        now = time.time()
        cmp = self.safety.compare
        judged = self._judge.judge(rows)
        low = judged.low
        if self._low:
            low_now = pa.array(list(self._low), pa.string())
            was = pc.is_in(_keys_of(rows), value_set=low_now).to_numpy(zero_copy_only=False).astype(bool)
            crossed = np.flatnonzero(low != was)
        else:
            crossed = np.flatnonzero(low)
        seq = self._last_seq
        new = _new_alerts(rows, crossed, judged, seq, cmp, checkpoint_id, now)
        n = len(new["seq"])
        is_low = pa.array(low[crossed])
        went_low, went_ok = (
            list(zip(pylist(new["sku_id"].filter(m)), pylist(new["warehouse_id"].filter(m)), strict=True))
            for m in (is_low, pc.invert(is_low))
        )
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT INTO alerts (seq, kind, sku_id, warehouse_id, available_qty, reserved_qty, safety_stock, "
                    "compare, event_time, checkpoint, emitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    zip(*(pylist(new[c]) for c in _TABLE_COLS), strict=True),
                )
                conn.executemany("INSERT OR IGNORE INTO low_keys VALUES (?, ?)", went_low)
                conn.executemany("DELETE FROM low_keys WHERE sku_id = ? AND warehouse_id = ?", went_ok)
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('checkpoint', ?)", (checkpoint_id,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise SinkError(f"alert commit {checkpoint_id} failed: {exc}") from exc
        self._low.update(_key(sku, wh) for sku, wh in went_low)
        self._low.difference_update(_key(sku, wh) for sku, wh in went_ok)
        self._last_seq = seq + n
        if n and self.export is not None:
            self._append_export(_export_lines(new, now), seq + n)

    def since(self, seq: int, limit: int = 1_000_000) -> list[Alert]:
        """Alerts with a sequence number above ``seq``, oldest first."""
        cur = self._conn.execute(f"SELECT {_COLS} FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        return [_alert(r) for r in cur.fetchall()]

    def _repair_export(self) -> int:
        """Cut a torn last line, append what the file misses; returns the last exported seq."""
        if self.export is None:
            return 0
        self.export.parent.mkdir(parents=True, exist_ok=True)
        last = 0
        with self.export.open("a+b") as f:
            size = f.seek(0, os.SEEK_END)
            tail_from = max(0, size - 64 * 1024)
            f.seek(tail_from)
            tail = f.read()
            cut = tail.rfind(b"\n")
            keep = tail_from + cut + 1 if cut >= 0 else 0
            if keep != size:
                f.truncate(keep)
            if cut >= 0:
                prev = tail.rfind(b"\n", 0, cut)
                last = int(orjson.loads(tail[prev + 1 : cut])["seq"])
        self._exported = last
        self._write_export(self.since(last))
        return self._exported

    def _write_export(self, alerts: list[Alert]) -> None:
        """Append ``alerts`` (read back from the table) not yet in the file."""
        data = b"".join(orjson.dumps(a.to_json()) + b"\n" for a in alerts if a.seq > self._exported)
        if data:
            self._append_export(data, alerts[-1].seq)

    def _append_export(self, data: bytes, last_seq: int) -> None:
        assert self.export is not None
        with self.export.open("ab") as f:
            f.write(data)
        self._exported = last_seq

    def close(self) -> None:
        """Close the database."""
        self._conn.close()


class AlertStore:
    """Reads the alert table from any thread (one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        _connect(path).close()
        self._pool = ThreadConnections(self._open)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        return conn

    def _conn(self) -> sqlite3.Connection:
        return self._pool.get()

    def since(self, seq: int = 0, since_ms: int | None = None, limit: int = 100) -> list[Alert]:
        """Alerts after sequence ``seq`` and (when given) with event time ≥ ``since_ms``, oldest first."""
        sql = f"SELECT {_COLS} FROM alerts WHERE seq > ?"
        args: list[object] = [seq]
        if since_ms is not None:
            sql += " AND event_time >= ?"
            args.append(since_ms)
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        return [_alert(r) for r in self._conn().execute(sql, args).fetchall()]

    def latest(self, limit: int) -> list[Alert]:
        """The newest ``limit`` alerts, oldest first."""
        cur = self._conn().execute(f"SELECT {_COLS} FROM alerts ORDER BY seq DESC LIMIT ?", (limit,))
        return [_alert(r) for r in reversed(cur.fetchall())]

    def last_seq(self) -> int:
        """The newest sequence number (0 when none)."""
        r = self._conn().execute("SELECT MAX(seq) FROM alerts").fetchone()
        return 0 if r is None or r[0] is None else int(r[0])

    def keys_below_safety_stock(self) -> int:
        """Keys currently low."""
        r = self._conn().execute("SELECT COUNT(*) FROM low_keys").fetchone()
        return int(r[0])

    def close(self) -> None:
        """Close every per-thread connection."""
        self._pool.close()
