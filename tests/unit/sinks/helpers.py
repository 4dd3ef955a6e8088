"""Build snapshot row tables for sink tests."""

from __future__ import annotations

import pyarrow as pa

from inventory360.records import SNAPSHOT_SCHEMA

T0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z


def rows(*items: tuple[str, str, int, int] | tuple[str, str, int, int, int]) -> pa.Table:
    """(sku, wh, available, reserved[, seconds after T0]) → SNAPSHOT_SCHEMA table."""
    return pa.table(
        {
            "sku_id": [i[0] for i in items],
            "warehouse_id": [i[1] for i in items],
            "available_qty": [i[2] for i in items],
            "reserved_qty": [i[3] for i in items],
            "updated_at": pa.array([T0 + (i[4] if len(i) > 4 else 0) * 1000 for i in items]).cast(pa.timestamp("ms")),  # type: ignore[misc]
        }
    ).cast(SNAPSHOT_SCHEMA)
