"""Per-key snapshot state: available and reserved sums and the last change time."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from inventory360.engine.columns import Columns
from inventory360.engine.index import KeyIndex
from inventory360.records import KEY_COLUMNS, SNAPSHOT_SCHEMA

NEVER = np.iinfo(np.int64).min


class KeyTable:
    """One row per (sku_id, warehouse_id) ever touched; rows are never deleted (SPEC §2)."""

    def __init__(self) -> None:
        self.index = KeyIndex(KEY_COLUMNS)
        self.cols = Columns(
            {
                "available_qty": (np.int64, 0),
                "reserved_qty": (np.int64, 0),
                "updated_at": (np.int64, NEVER),
            }
        )

    def __len__(self) -> int:
        return len(self.index)

    def ids(self, keys: pl.DataFrame) -> np.ndarray:
        """Ids of unique ``(sku_id, warehouse_id)`` rows, creating keys as needed."""
        ids = self.index.insert(keys)
        self.cols.grow_to(len(self.index))
        return ids

    def row_ids(self, keys: pl.DataFrame) -> np.ndarray:
        """Id of every ``(sku_id, warehouse_id)`` row (rows may repeat), creating keys."""
        ids = self.index.resolve_rows(keys)
        self.cols.grow_to(len(self.index))
        return ids

    def apply(
        self, kid: np.ndarray, d_avail: np.ndarray, d_res: np.ndarray, when: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Add the per-touch changes (``kid`` may repeat).

        Returns the changed ids (sorted) and their available and reserved quantities from
        before this call (alerts and projections compare them).
        """
        if kid.size == 0:
            return kid, kid, kid
        agg = (
            pl.DataFrame({"kid": kid, "a": d_avail, "r": d_res, "t": when})
            .group_by("kid")
            .agg(pl.col("a").sum(), pl.col("r").sum(), pl.col("t").max())
            .sort("kid")
        )
        ids = agg["kid"].to_numpy()
        add_a, add_r, latest = (agg[c].to_numpy() for c in ("a", "r", "t"))
        c = self.cols.data
        before_a, before_r = c["available_qty"][ids], c["reserved_qty"][ids]
        c["available_qty"][ids] += add_a
        c["reserved_qty"][ids] += add_r
        c["updated_at"][ids] = np.maximum(c["updated_at"][ids], latest)
        return ids, before_a, before_r

    def rows(self, ids: np.ndarray) -> pa.Table:
        """Snapshot rows (lake schema) of ``ids``."""
        keys = self.index.keys[ids] if ids.size else self.index.keys.clear()
        c = self.cols.data
        return pa.table(
            {
                "sku_id": keys["sku_id"].to_arrow(),
                "warehouse_id": keys["warehouse_id"].to_arrow(),
                "available_qty": pa.array(c["available_qty"][ids]),
                "reserved_qty": pa.array(c["reserved_qty"][ids]),
                "updated_at": pa.array(c["updated_at"][ids]).cast(pa.timestamp("ms")),
            }
        ).cast(SNAPSHOT_SCHEMA)

    def all_rows(self) -> pa.Table:
        """Every row, sorted by key."""
        ids = np.arange(len(self), dtype=np.int64)
        return self.rows(ids).sort_by([("sku_id", "ascending"), ("warehouse_id", "ascending")])
