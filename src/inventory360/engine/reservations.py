"""Order-line state and the reservations derived from it (SPEC §1.2, §2).

Each line keeps its last applied after image (key, quantity, reserving or not) and the
Debezium position of that change. A batch of changes is applied per line in arrival
order with the rule "a change older than the last applied change is ignored", compared
by (binlog file, pos, row) when both sides have a position. Lines whose changes all
carry positions (the Debezium case) are decided with vectorised running maxima; lines
mixing positioned and unpositioned changes fall back to a small sequential loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from inventory360.engine.columns import Columns, one_array
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

    def resolve(self, columns: Sequence[pa.ChunkedArray | pa.Array], rows: np.ndarray | None = None) -> np.ndarray:
        """Id of every selected ``(order_id, line_no)`` row (rows may repeat), creating lines."""
        ids = self.index.resolve(columns, rows)
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
    n = orders.num_rows
    if n == 0:
        return _empty_outcome()
    lid_all = lines.resolve([orders[c] for c in LINE_COLUMNS])
    # By line, arrival order kept within a line: sorting the values line << k | arrival
    # (unique) and splitting them again is about 4x as fast as numpy's stable argsort.
    k = n.bit_length()
    if int(lid_all.max()) < 1 << (62 - k):
        packed = np.sort((lid_all << k) | np.arange(n, dtype=np.int64))
        order = packed & ((1 << k) - 1)
        lid = packed >> k
    else:
        order = np.argsort(lid_all, kind="stable")
        lid = lid_all[order]
    col = _Columns(orders, order)
    has_pos = col.np("has_pos")
    c = lines.cols.data
    s_has = c["has_pos"][lid] & c["known"][lid]
    first = np.ones(n, dtype=bool)
    first[1:] = lid[1:] != lid[:-1]
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    all_pos = np.logical_and.reduceat(has_pos, starts)[group]
    any_pos = np.logical_or.reduceat(has_pos, starts)[group]

    accepted = ~any_pos  # no positions at all: arrival order decides, every change applies
    if all_pos.any():
        accepted |= all_pos & _accept_by_position(lines, col, lid, s_has, group, all_pos)
    mixed = np.flatnonzero(any_pos & ~all_pos)
    if mixed.size:
        accepted[mixed] = _accept_sequential(lines, col, lid, s_has, mixed)
    acc = np.flatnonzero(accepted)
    ignored = n - acc.size
    if acc.size == 0:
        return OrderOutcome(*(np.empty(0, dtype=np.int64),) * 5, ignored)
    return _outcome(lines, keys, orders, col, acc, lid[acc], reserving, ignored)


class _Columns:
    """Numpy views of order columns (nulls as 0), reordered by ``order``; each made once."""

    def __init__(self, table: pa.Table, order: np.ndarray) -> None:
        self.table = table
        self.order = order
        self._made: dict[str, np.ndarray] = {}

    def np(self, name: str) -> np.ndarray:
        out = self._made.get(name)
        if out is None:
            col = self.table[name]
            arr = one_array(col)
            if arr.null_count:
                arr = arr.fill_null(0)
            out = self._made[name] = np.asarray(arr.to_numpy(zero_copy_only=False))[self.order]
        return out


def _accept_by_position(
    lines: LineTable, col: _Columns, lid: np.ndarray, s_has: np.ndarray, group: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Accept mask where every change of the line has a position (running-maximum rule)."""
    c_file, c_pos, c_row = (col.np(n) for n in ("pos_file", "pos", "pos_row"))
    # Rank the events' and the stored positions together, so one integer compares them.
    n = lid.size
    from_state = np.flatnonzero(s_has & rows)
    sid = lid[from_state]
    st = lines.cols.data
    all_file = np.concatenate([c_file, st["pos_file"][sid]])
    all_pos = np.concatenate([c_pos, st["pos"][sid]])
    all_row = np.concatenate([c_row, st["pos_row"][sid]])
    new_val = np.ones(all_file.size, dtype=bool)
    if _packs(all_file, 15) and _packs(all_pos, 32) and _packs(all_row, 16):
        # One int64 per position, same order as (file, pos, row): one sort instead of three.
        packed = (all_file << 48) | (all_pos << 16) | all_row
        if _in_order(packed[:n], packed[n:], from_state, group, rows):
            return np.ones(n, dtype=bool)
        order = np.argsort(packed)
        sp = packed[order]
        new_val[1:] = sp[1:] != sp[:-1]
    else:
        order = np.lexsort((all_row, all_pos, all_file))
        f, p, r = all_file[order], all_pos[order], all_row[order]
        new_val[1:] = (f[1:] != f[:-1]) | (p[1:] != p[:-1]) | (r[1:] != r[:-1])
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
    result: np.ndarray = rank_e >= np.maximum(prev, rank_s)
    return result


def _in_order(
    events: np.ndarray, stored: np.ndarray, from_state: np.ndarray, group: np.ndarray, rows: np.ndarray
) -> bool:
    """Whether every change of the ``rows`` lines comes at or after the line's previous one.

    The usual case (a binlog read in order): then every change is accepted, with no need
    to rank positions. ``events`` are the changes' packed positions (grouped by line),
    ``stored`` those of the lines' stored changes at ``from_state``.
    """
    same_line = group[1:] == group[:-1]
    if np.any(same_line & rows[1:] & (events[1:] < events[:-1])):
        return False
    return not np.any(events[from_state] < stored)


def _packs(values: np.ndarray, bits: int) -> bool:
    """Whether every value is in ``[0, 2**bits)``."""
    return not values.size or (int(values.min()) >= 0 and int(values.max()) < (1 << bits))


def _accept_sequential(
    lines: LineTable, col: _Columns, lid: np.ndarray, s_has: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Accept mask decided change by change (lines mixing positioned and bare changes)."""
    c = lines.cols.data
    has, pf, pp, pr = (col.np(n)[rows].tolist() for n in ("has_pos", "pos_file", "pos", "pos_row"))
    out = np.zeros(rows.size, dtype=bool)
    last: dict[int, tuple[bool, tuple[int, int, int]]] = {}
    for i, (line_id, st_has) in enumerate(zip(lid[rows].tolist(), s_has[rows].tolist(), strict=True)):
        if line_id not in last:
            last[line_id] = (st_has, (int(c["pos_file"][line_id]), int(c["pos"][line_id]), int(c["pos_row"][line_id])))
        l_has, l_pos = last[line_id]
        here = (pf[i], pp[i], pr[i])
        if has[i] and l_has and here < l_pos:
            continue
        out[i] = True
        last[line_id] = (has[i], here)
    return out


def _outcome(
    lines: LineTable,
    keys: KeyTable,
    orders: pa.Table,
    col: _Columns,
    acc: np.ndarray,
    lid: np.ndarray,
    reserving: frozenset[str],
    ignored: int,
) -> OrderOutcome:
    """Touches and reservation changes of the accepted changes ``acc`` of ``col`` (sorted by line)."""
    rows = col.order[acc]  # the accepted changes' rows of ``orders``
    num = {name: col.np(name)[acc] for name in ("change_time", "quantity", "has_pos", "pos_file", "pos", "pos_row")}
    is_del = _mask(pc.equal(orders["op"], "d"), rows)
    time = num["change_time"]
    c = lines.cols.data

    kid_new = np.full(rows.size, -1, dtype=np.int64)
    live_rows = np.flatnonzero(~is_del)
    if live_rows.size:
        kid_new[live_rows] = keys.resolve([orders["sku_id"], orders["warehouse_id"]], rows[live_rows])

    first = np.ones(lid.size, dtype=bool)
    first[1:] = lid[1:] != lid[:-1]
    last = np.ones(lid.size, dtype=bool)
    last[:-1] = lid[1:] != lid[:-1]
    prev = np.empty(lid.size, dtype=np.int64)
    prev[1:] = kid_new[:-1]
    state_key = np.where(c["live"][lid], c["key_id"][lid], -1)
    prev[first] = state_key[first]

    moved = (prev >= 0) & (is_del | (prev != kid_new))
    touch_k = [kid_new[~is_del], prev[moved]]
    touch_t = [time[~is_del], time[moved]]
    blind = np.flatnonzero(is_del & (prev < 0))
    if blind.size:
        before = [orders["before_sku_id"], orders["before_warehouse_id"]]
        named = _mask(pc.and_(before[0].is_valid(), before[1].is_valid()), rows[blind])
        blind = blind[named]
    if blind.size:
        touch_k.append(keys.resolve(before, rows[blind]))
        touch_t.append(time[blind])

    # Reservation change per line: the final state's contribution minus the stored one.
    fin = np.flatnonzero(last)
    f_lid = lid[fin]
    qty = num["quantity"]
    statuses = pa.array(sorted(reserving), pa.string())
    f_res = _mask(pc.fill_null(pc.is_in(orders["status"], statuses), False), rows[fin]) & ~is_del[fin]
    old_res = c["live"][f_lid] & c["reserving"][f_lid]
    res_kid = np.concatenate([c["key_id"][f_lid][old_res], kid_new[fin][f_res]])
    res_delta = np.concatenate([-c["quantity"][f_lid][old_res], qty[fin][f_res]])

    c["key_id"][f_lid] = kid_new[fin]
    c["quantity"][f_lid] = qty[fin]
    c["reserving"][f_lid] = f_res
    c["live"][f_lid] = ~is_del[fin]
    c["known"][f_lid] = True
    for name in ("has_pos", "pos_file", "pos", "pos_row"):
        c[name][f_lid] = num[name][fin]
    return OrderOutcome(np.concatenate(touch_k), np.concatenate(touch_t), res_kid, res_delta, f_lid, ignored)


def _mask(values: pa.ChunkedArray | pa.Array, rows: np.ndarray) -> np.ndarray:
    """A non-null boolean column as numpy, taken at ``rows``."""
    arr = one_array(values)
    out: np.ndarray = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)[rows]
    return out
