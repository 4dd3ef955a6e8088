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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa

from inventory360.errors import ConfigError

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


@dataclass(frozen=True, slots=True)
class KeyLevel:
    """One committed snapshot row judged against its safety stock."""

    sku_id: str
    warehouse_id: str
    available_qty: int
    reserved_qty: int
    updated_at_ms: int | None
    safety_stock: int
    low: bool


def levels(rows: pa.Table, safety: SafetyStock, table: dict[tuple[str, str], int] | None = None) -> Iterator[KeyLevel]:
    """Each row of ``rows`` (``SNAPSHOT_SCHEMA``) with its threshold and low flag."""
    table = safety.lookup() if table is None else table
    skus = rows.column("sku_id").to_pylist()
    whs = rows.column("warehouse_id").to_pylist()
    av = rows.column("available_qty").to_pylist()
    rs = rows.column("reserved_qty").to_pylist()
    ts = rows.column("updated_at").cast(pa.int64()).to_pylist()
    atp = safety.compare == "atp"
    default = safety.default
    for sku, wh, a, r, t in zip(skus, whs, av, rs, ts, strict=True):
        a = a or 0
        r = r or 0
        threshold = table.get((sku, wh), default) if table else default
        qty = a - r if atp else a
        yield KeyLevel(sku, wh, a, r, t, threshold, qty < threshold)
