"""Order-line state and the reservations derived from it (SPEC §1.2, §2).

Each line keeps its last applied after image (key, quantity, reserving or not) and the
Debezium position of that change. A batch of changes is applied per line in arrival
order with the rule "a change older than the last applied change is ignored", compared
by (binlog file, pos, row) when both sides have a position. Lines whose changes all
carry positions (the Debezium case) are decided with vectorised running maxima; lines
mixing positioned and unpositioned changes fall back to a small sequential loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from inventory360.engine.columns import Columns
from inventory360.engine.index import KeyIndex
from inventory360.engine.state import KeyTable

LINE_COLUMNS = ("order_id", "line_no")


class LineTable:
    """The current state of every order line ever seen (deleted lines stay as tombstones)."""

    def __init__(self) -> None:
        self.index = KeyIndex(LINE_COLUMNS)
        self.cols = Columns(
            {
                "key_id": (np.int64, -1),  # key of the live after image, -1 when none
                "quantity": (np.int64, 0),
                "reserving": (np.bool_, False),
                "live": (np.bool_, False),  # has an after image (created, not deleted)
                "known": (np.bool_, False),  # some change was applied
                "has_pos": (np.bool_, False),
                "pos_file": (np.int64, 0),
                "pos": (np.int64, 0),
                "pos_row": (np.int64, 0),
            }
        )

    def __len__(self) -> int:
        return len(self.index)

    def ids(self, lines: pl.DataFrame) -> np.ndarray:
        """Ids of unique (order_id, line_no) rows, creating lines as needed."""
        ids = self.index.insert(lines)
        self.cols.grow_to(len(self.index))
        return ids


@dataclass(slots=True)
class OrderOutcome:
    """What a batch of order changes did to the keys."""

    touch_kid: np.ndarray  # keys touched (may repeat) …
    touch_time: np.ndarray  # … and the change time of each touch
    res_kid: np.ndarray  # reservation changes per key (may repeat)
    res_delta: np.ndarray
    changed_lines: np.ndarray  # line ids whose state changed
    ignored_older: int


def _empty_outcome() -> OrderOutcome:
    e = np.empty(0, dtype=np.int64)
    return OrderOutcome(e, e, e, e, e, 0)


def apply_orders(lines: LineTable, keys: KeyTable, orders: pa.Table, reserving: frozenset[str]) -> OrderOutcome:
    """Apply decoded order changes (``ORDER_SCHEMA``, arrival order) to ``lines``."""
    if orders.num_rows == 0:
        return _empty_outcome()
    o = pl.from_arrow(orders).with_row_index("seq")  # type: ignore[union-attr]
    ulines = o.select(LINE_COLUMNS).unique(maintain_order=True)
    ulines = ulines.with_columns(pl.Series("lid", lines.ids(ulines)))
    o = o.join(ulines, on=list(LINE_COLUMNS), how="left").sort(["lid", "seq"])

    lid = o["lid"].to_numpy()
    has_pos = o["has_pos"].to_numpy()
    c = lines.cols.data
    s_known = c["known"][lid]
    s_has = c["has_pos"][lid] & s_known
    first = np.ones(lid.size, dtype=bool)
    first[1:] = lid[1:] != lid[:-1]
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    all_pos = np.logical_and.reduceat(has_pos, starts)[group]
    any_pos = np.logical_or.reduceat(has_pos, starts)[group]

    accepted = ~any_pos  # no positions at all: arrival order decides, every change applies
    vec = all_pos
    if vec.any():
        accepted |= vec & _accept_by_position(lines, o, lid, s_has, group, vec)
    mixed = any_pos & ~all_pos
    if mixed.any():
        accepted[mixed] = _accept_sequential(o.filter(pl.Series(mixed)), s_has[mixed], lines)

    a = o.filter(pl.Series(accepted))
    ignored = int(lid.size - a.height)
    if a.height == 0:
        return OrderOutcome(*(np.empty(0, dtype=np.int64),) * 5, ignored)
    return _outcome(lines, keys, a, reserving, ignored)


def _accept_by_position(
    lines: LineTable,
    o: pl.DataFrame,
    lid: np.ndarray,
    s_has: np.ndarray,
    group: np.ndarray,
    rows: np.ndarray,
) -> np.ndarray:
    """Accept mask where every change of the line has a position (running-maximum rule)."""
    c_file, c_pos, c_row = (o[n].to_numpy() for n in ("pos_file", "pos", "pos_row"))
    # Rank the events' and the stored positions together, so one integer compares them.
    n = lid.size
    from_state = np.flatnonzero(s_has & rows)
    sid = lid[from_state]
    st = lines.cols.data
    all_file = np.concatenate([c_file, st["pos_file"][sid]])
    all_pos = np.concatenate([c_pos, st["pos"][sid]])
    all_row = np.concatenate([c_row, st["pos_row"][sid]])
    order = np.lexsort((all_row, all_pos, all_file))
    key_sorted = np.stack([all_file[order], all_pos[order], all_row[order]])
    new_val = np.ones(order.size, dtype=bool)
    new_val[1:] = np.any(key_sorted[:, 1:] != key_sorted[:, :-1], axis=0)
    dense = np.empty(order.size, dtype=np.int64)
    dense[order] = np.cumsum(new_val)  # ranks start at 1
    rank_e = dense[:n]
    rank_s = np.zeros(n, dtype=np.int64)
    rank_s[from_state] = dense[n:]
    # Running maximum of earlier ranks within each line (groups are contiguous).
    span = int(dense.max()) + 2
    cm = np.maximum.accumulate(group * span + rank_e) - group * span
    prev = np.zeros(n, dtype=np.int64)
    prev[1:] = cm[:-1]
    first = np.ones(n, dtype=bool)
    first[1:] = group[1:] != group[:-1]
    prev[first] = 0
    return rank_e >= np.maximum(prev, rank_s)


def _accept_sequential(o: pl.DataFrame, s_has: np.ndarray, lines: LineTable) -> np.ndarray:
    """Accept mask decided change by change (lines mixing positioned and bare changes)."""
    c = lines.cols.data
    out = np.zeros(o.height, dtype=bool)
    last: dict[int, tuple[bool, tuple[int, int, int]]] = {}
    cols = zip(
        o["lid"].to_list(),
        o["has_pos"].to_list(),
        o["pos_file"].to_list(),
        o["pos"].to_list(),
        o["pos_row"].to_list(),
        s_has.tolist(),
        strict=True,
    )
    for i, (lid, has, pf, pp, pr, st_has) in enumerate(cols):
        if lid not in last:
            last[lid] = (
                st_has,
                (int(c["pos_file"][lid]), int(c["pos"][lid]), int(c["pos_row"][lid])),
            )
        l_has, l_pos = last[lid]
        if has and l_has and (pf, pp, pr) < l_pos:
            continue
        out[i] = True
        last[lid] = (has, (pf, pp, pr))
    return out


def _outcome(
    lines: LineTable, keys: KeyTable, a: pl.DataFrame, reserving: frozenset[str], ignored: int
) -> OrderOutcome:
    lid = a["lid"].to_numpy()
    is_del = (a["op"] == "d").to_numpy()
    time = a["change_time"].to_numpy()
    c = lines.cols.data

    kid_new = np.full(a.height, -1, dtype=np.int64)
    live_rows = np.flatnonzero(~is_del)
    if live_rows.size:
        kid_new[live_rows] = _key_ids(keys, a[live_rows], "sku_id", "warehouse_id")

    first = np.ones(lid.size, dtype=bool)
    first[1:] = lid[1:] != lid[:-1]
    last = np.ones(lid.size, dtype=bool)
    last[:-1] = lid[1:] != lid[:-1]
    prev = np.empty(lid.size, dtype=np.int64)
    prev[1:] = kid_new[:-1]
    state_key = np.where(c["live"][lid], c["key_id"][lid], -1)
    prev[first] = state_key[first]

    touch_k = [kid_new[~is_del], prev[(prev >= 0) & (is_del | (prev != kid_new))]]
    touch_t = [time[~is_del], time[(prev >= 0) & (is_del | (prev != kid_new))]]
    blind = np.flatnonzero(
        is_del
        & (prev < 0)
        & a["before_sku_id"].is_not_null().to_numpy()
        & a["before_warehouse_id"].is_not_null().to_numpy()
    )
    if blind.size:
        touch_k.append(_key_ids(keys, a[blind], "before_sku_id", "before_warehouse_id"))
        touch_t.append(time[blind])

    # Reservation change per line: the final state's contribution minus the stored one.
    fin = np.flatnonzero(last)
    f_lid = lid[fin]
    qty = a["quantity"].fill_null(0).to_numpy()
    f_res = a["status"].is_in(list(reserving)).fill_null(False).to_numpy()[fin] & ~is_del[fin]
    old_res = c["live"][f_lid] & c["reserving"][f_lid]
    res_kid = np.concatenate([c["key_id"][f_lid][old_res], kid_new[fin][f_res]])
    res_delta = np.concatenate([-c["quantity"][f_lid][old_res], qty[fin][f_res]])

    c["key_id"][f_lid] = kid_new[fin]
    c["quantity"][f_lid] = qty[fin]
    c["reserving"][f_lid] = f_res
    c["live"][f_lid] = ~is_del[fin]
    c["known"][f_lid] = True
    c["has_pos"][f_lid] = a["has_pos"].to_numpy()[fin]
    for name in ("pos_file", "pos", "pos_row"):
        c[name][f_lid] = a[name].to_numpy()[fin]
    return OrderOutcome(
        np.concatenate(touch_k),
        np.concatenate(touch_t),
        res_kid,
        res_delta,
        f_lid,
        ignored,
    )


def _key_ids(keys: KeyTable, rows: pl.DataFrame, sku: str, wh: str) -> np.ndarray:
    """Key ids for each row's (sku, wh) columns, creating keys as needed."""
    pairs = rows.select(pl.col(sku).alias("sku_id"), pl.col(wh).alias("warehouse_id"))
    uniq = pairs.unique(maintain_order=True)
    uniq = uniq.with_columns(pl.Series("kid", keys.ids(uniq)))
    joined = pairs.with_row_index("r").join(uniq, on=["sku_id", "warehouse_id"], how="left")
    return joined.sort("r")["kid"].to_numpy()
