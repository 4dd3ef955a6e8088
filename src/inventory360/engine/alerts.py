"""Safety stock and the LOW / RECOVERED crossing rule (SPEC §3).

A key is *low* when its compared quantity (``available_qty`` by default, ``atp_qty`` =
available − reserved when configured) is strictly below its safety stock. An alert is
emitted only when that boolean changes between two committed checkpoints: ``LOW`` when a
key becomes low, ``RECOVERED`` when it comes back to or above its safety stock. A key
never seen before counts as not low, so a key whose first committed value is already
below its safety stock emits one ``LOW``. The evaluation is per committed batch: a key
that dips and recovers inside one batch emits nothing (its committed value never crossed).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa

from inventory360.errors import ConfigError
from inventory360.records import pylist

Compare = Literal["available", "atp"]
AlertKind = Literal["LOW", "RECOVERED"]


@dataclass(frozen=True, slots=True)
class SafetyStock:
    """Safety stock per (sku_id, warehouse_id) plus a default for every other key."""

    default: int = 10
    per_key: tuple[tuple[tuple[str, str], int], ...] = ()
    compare: Compare = "available"

    @classmethod
    def load(cls, path: Path | None, default: int, compare: str = "available") -> SafetyStock:
        """Read a CSV with header ``sku_id,warehouse_id,safety_stock`` (ids trimmed).

        Raises :class:`ConfigError` naming the file and line when it cannot be used.
        """
        if compare not in ("available", "atp"):
            raise ConfigError(f"alerts.compare must be available or atp, not {compare!r}")
        cmp: Compare = "atp" if compare == "atp" else "available"
        if path is None:
            return cls(default, (), cmp)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read safety stock file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"safety stock file {path} is not UTF-8") from exc
        reader = csv.DictReader(text.splitlines())
        need = {"sku_id", "warehouse_id", "safety_stock"}
        if reader.fieldnames is None or not need <= {f.strip() for f in reader.fieldnames}:
            raise ConfigError(f"safety stock file {path} needs the header sku_id,warehouse_id,safety_stock")
        table: dict[tuple[str, str], int] = {}
        for n, rec in enumerate(reader, start=2):
            rec = {k.strip(): (v or "").strip() for k, v in rec.items() if k is not None}
            try:
                qty = int(rec["safety_stock"])
            except ValueError:
                raise ConfigError(f"{path}:{n}: safety_stock is not an integer") from None
            if not rec["sku_id"] or not rec["warehouse_id"] or qty < 0:
                raise ConfigError(f"{path}:{n}: empty id or negative safety_stock")
            table[(rec["sku_id"], rec["warehouse_id"])] = qty
        return cls(default, tuple(sorted(table.items())), cmp)

    def lookup(self) -> dict[tuple[str, str], int]:
        """The per-key table as a dict (build once per sink, not per row)."""
        return dict(self.per_key)

    def fingerprint(self) -> str:
        """Changes whenever any threshold or the compared quantity changes."""
        h = hashlib.sha256(f"{self.default}|{self.compare}".encode())
        for (sku, wh), qty in self.per_key:
            h.update(f"\0{sku}\0{wh}\0{qty}".encode())
        return h.hexdigest()[:16]


@dataclass(slots=True)
class Judged:
    """The quantities of committed snapshot rows, their safety stock and low flag (NumPy)."""

    available_qty: np.ndarray
    reserved_qty: np.ndarray
    safety_stock: np.ndarray
    low: np.ndarray  # bool: compared quantity < safety stock


@dataclass(slots=True)
class Levels:
    """:class:`Judged` rows with their keys and times as Python values (for row-wise sinks)."""

    sku_id: list[str]
    warehouse_id: list[str]
    updated_at_ms: list[int | None]
    available_qty: np.ndarray
    reserved_qty: np.ndarray
    safety_stock: np.ndarray
    low: np.ndarray

    def __len__(self) -> int:
        return len(self.sku_id)


class Judge:
    """Judges whole batches of snapshot rows against one :class:`SafetyStock` (vectorised)."""

    def __init__(self, safety: SafetyStock) -> None:
        self.safety = safety
        self._per_key = (
            pl.DataFrame(
                {
                    "sku_id": [k[0] for k, _ in safety.per_key],
                    "warehouse_id": [k[1] for k, _ in safety.per_key],
                    "safety_stock": [q for _, q in safety.per_key],
                },
                schema={"sku_id": pl.String, "warehouse_id": pl.String, "safety_stock": pl.Int64},
            )
            if safety.per_key
            else None
        )

    def thresholds(self, rows: pa.Table) -> np.ndarray:
        """The safety stock of each row's key."""
        n = rows.num_rows
        if self._per_key is None or n == 0:
            return np.full(n, self.safety.default, dtype=np.int64)
        keys = pl.DataFrame({"sku_id": rows["sku_id"], "warehouse_id": rows["warehouse_id"]})
        got = keys.join(self._per_key, on=["sku_id", "warehouse_id"], how="left", maintain_order="left")
        return got["safety_stock"].fill_null(self.safety.default).to_numpy().astype(np.int64, copy=False)

    def judge(self, rows: pa.Table) -> Judged:
        """Each row of ``rows`` (``SNAPSHOT_SCHEMA``) with its threshold and low flag (the one rule)."""
        av = int_values(rows["available_qty"])
        rs = int_values(rows["reserved_qty"])
        thr = self.thresholds(rows)
        qty = av - rs if self.safety.compare == "atp" else av
        return Judged(av, rs, thr, qty < thr)

    def levels(self, rows: pa.Table) -> Levels:
        """:meth:`judge`, with keys and times as Python values."""
        j = self.judge(rows)
        return Levels(
            pylist(rows["sku_id"]),
            pylist(rows["warehouse_id"]),
            pylist(rows["updated_at"]),
            j.available_qty,
            j.reserved_qty,
            j.safety_stock,
            j.low,
        )


def int_values(col: pa.ChunkedArray) -> np.ndarray:
    """An int64 column as numpy, nulls as 0."""
    filled = col.fill_null(0) if col.null_count else col
    return np.asarray(filled.to_numpy(), dtype=np.int64)
