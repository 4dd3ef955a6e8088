"""Engine state to and from Arrow tables (the checkpoint's base and segment files).

Key ids are dense and given in insertion order, and a segment lists its changed keys in
id order, so replaying base + segments recreates exactly the same ids; line state refers
to keys by id and the restored key count is checked against the manifest.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from inventory360.engine.engine import BatchResult, Engine

KEY_STATE = ("available_qty", "reserved_qty", "updated_at")
LINE_STATE = (
    "key_id",
    "quantity",
    "reserving",
    "live",
    "known",
    "has_pos",
    "pos_file",
    "pos",
    "pos_row",
)


def _rows(ids: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray | slice]:
    """Ids to gather names by, and the index that takes their values from the state.

    All ``n`` rows (``ids`` None) are taken as a slice: a view, not a copy.
    """
    if ids is None:
        return np.arange(n, dtype=np.int64), slice(0, n)
    return ids, ids


def _keys(engine: Engine, ids: np.ndarray | None) -> pa.Table:
    ids, at = _rows(ids, len(engine.keys))
    names = engine.keys.index.take(ids)
    cols = {c: pa.array(engine.keys.cols[c][at]) for c in KEY_STATE}
    return pa.table(
        {
            "sku_id": names["sku_id"],
            "warehouse_id": names["warehouse_id"],
            **cols,
        }
    )


def _lines(engine: Engine, ids: np.ndarray | None) -> pa.Table:
    ids, at = _rows(ids, len(engine.lines))
    names = engine.lines.index.take(ids)
    cols = {c: pa.array(engine.lines.cols[c][at]) for c in LINE_STATE}
    return pa.table({"order_id": names["order_id"], "line_no": names["line_no"], **cols})


def changes(engine: Engine, result: BatchResult, rows: pa.Table | None = None) -> dict[str, pa.Table]:
    """What a batch changed, as segment tables.

    ``rows`` may be the changed keys' snapshot rows (``KeyTable.rows(result.changed)``),
    already built for the sinks; they are reused instead of gathered again.
    """
    if rows is not None:
        keys = rows.set_column(4, "updated_at", rows["updated_at"].cast(pa.int64()))
    else:
        keys = _keys(engine, result.changed)
    return {
        "keys": keys,
        "lines": _lines(engine, np.sort(result.changed_lines)),
        "events": pa.table({"event_id": result.new_event_ids.cast(pa.string())}),
    }


def full(engine: Engine) -> dict[str, pa.Table]:
    """The keys and order lines, as base tables (event ids: :func:`all_events`)."""
    return {
        "keys": _keys(engine, None),
        "lines": _lines(engine, None),
    }


def all_events(engine: Engine) -> pa.Table:
    """Every event id seen, in id order, as one base table."""
    return pa.table({"event_id": engine.seen.take(np.arange(len(engine.seen), dtype=np.int64))["event_id"]})


def load(engine: Engine, part: str, table: pa.Table) -> None:
    """Apply a base or segment table to ``engine`` (upsert by key)."""
    if table.num_rows == 0:
        return
    if part == "keys":
        ids = engine.keys.resolve([table["sku_id"], table["warehouse_id"]])
        for c in KEY_STATE:
            engine.keys.cols[c][ids] = table[c].to_numpy()
    elif part == "lines":
        ids = engine.lines.resolve([table["order_id"], table["line_no"]])
        for c in LINE_STATE:
            engine.lines.cols[c][ids] = table[c].to_numpy()
    else:
        engine.seen.resolve([table["event_id"]])
