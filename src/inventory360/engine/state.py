"""Per-key snapshot state: available and reserved sums and the last change time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from inventory360.engine.columns import Columns
from inventory360.engine.index import KeyIndex
from inventory360.records import KEY_COLUMNS, SNAPSHOT_SCHEMA
from inventory360.sources import native

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

    def resolve(self, columns: Sequence[pa.ChunkedArray | pa.Array], rows: np.ndarray | None = None) -> np.ndarray:
        """Id of every selected ``(sku_id, warehouse_id)`` row (rows may repeat), creating keys."""
        ids = self.index.resolve(columns, rows)
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
        n_keys = len(self)
        c = self.cols.data
        if native.available():
            state = [c[name][:n_keys] for name in ("available_qty", "reserved_qty", "updated_at")]
            touches = [np.ascontiguousarray(a, dtype=np.int64) for a in (kid, d_avail, d_res, when)]
            return native.apply_touches(touches, state)
        if kid.size * 16 < n_keys:
            ids = np.unique(kid)
        else:
            touched = np.zeros(n_keys, dtype=bool)
            touched[kid] = True
            ids = np.flatnonzero(touched)
        before_a, before_r = c["available_qty"][ids], c["reserved_qty"][ids]
        np.add.at(c["available_qty"], kid, d_avail)
        np.add.at(c["reserved_qty"], kid, d_res)
        np.maximum.at(c["updated_at"], kid, when)
        return ids, before_a, before_r

    def rows(self, ids: np.ndarray) -> pa.Table:
        """Snapshot rows (lake schema) of ``ids``."""
        keys = self.index.take(ids)
        c = self.cols.data
        return pa.table(
            {
                "sku_id": keys["sku_id"],
                "warehouse_id": keys["warehouse_id"],
                "available_qty": pa.array(c["available_qty"][ids]),
                "reserved_qty": pa.array(c["reserved_qty"][ids]),
                "updated_at": pa.array(c["updated_at"][ids]).cast(pa.timestamp("ms")),
            }
        ).cast(SNAPSHOT_SCHEMA)

    def all_rows(self) -> pa.Table:
        """Every row, sorted by key."""
        ids = np.arange(len(self), dtype=np.int64)
        return self.rows(ids).sort_by([("sku_id", "ascending"), ("warehouse_id", "ascending")])
