"""Dense integer ids for string keys, resolved a batch at a time.

Keys are rows of one or more Arrow string columns (nulls allowed). They get ids 0, 1, 2, …
in insertion order, which makes the index reproducible from its keys alone (checkpoints
store keys in id order). Two keys never share an id: every lookup compares whole keys.

The map itself is the native ``KeyMap`` (``native/src/keymap.rs``: an open-addressing
table over an arena of encoded keys, run with the GIL released) when the extension is
available, else :class:`_DictMap`, a plain dict that is the reference the native map is
tested against. Either way the map holds the key strings too: :meth:`KeyIndex.take`
gathers them by id for snapshot rows and checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeAlias

import numpy as np
import pyarrow as pa

from inventory360.engine.columns import one_array
from inventory360.sources import native

Column: TypeAlias = pa.Array | pa.ChunkedArray


class _Map(Protocol):
    def __len__(self) -> int: ...

    def resolve(
        self, columns: list[pa.Array], rows: np.ndarray | None, insert: bool
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def take(self, ids: np.ndarray, ncols: int) -> list[pa.Array]: ...


class _NativeMap:
    """The Rust ``KeyMap`` behind :class:`_Map` (Arrow buffers passed by address)."""

    def __init__(self) -> None:
        self._map = native.key_map()

    def __len__(self) -> int:
        return len(self._map)

    def resolve(self, columns: list[pa.Array], rows: np.ndarray | None, insert: bool) -> tuple[np.ndarray, np.ndarray]:
        specs = [native.string_spec(arr) for arr in columns]
        sel = None
        if rows is not None:
            rows = np.ascontiguousarray(rows, dtype=np.int64)
            sel = native.int64_arg(rows)
        ids, created = self._map.resolve(specs, len(columns[0]), sel, insert)
        return np.frombuffer(ids, dtype=np.int64), np.frombuffer(created, dtype=np.int64)

    def take(self, ids: np.ndarray, ncols: int) -> list[pa.Array]:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        out = []
        for offsets, data, valid, nulls in self._map.gather(native.int64_arg(ids), ncols):
            mask = None if valid is None else pa.py_buffer(valid)
            out.append(pa.StringArray.from_buffers(ids.size, pa.py_buffer(offsets), pa.py_buffer(data), mask, nulls))
        return out


class _DictMap:
    """Reference map: a dict from key tuples to ids."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str | None, ...], int] = {}
        self._keys: list[tuple[str | None, ...]] = []

    def __len__(self) -> int:
        return len(self._ids)

    def resolve(self, columns: list[pa.Array], rows: np.ndarray | None, insert: bool) -> tuple[np.ndarray, np.ndarray]:
        if rows is not None:
            take = pa.array(rows, pa.int64())
            columns = [c.take(take) for c in columns]
        out: list[int] = []
        created: list[int] = []
        for k, key in enumerate(zip(*(c.to_pylist() for c in columns), strict=True)):
            got = self._ids.get(key)
            if got is None:
                if not insert:
                    out.append(-1)
                    continue
                got = self._ids[key] = len(self._ids)
                self._keys.append(key)
                created.append(k)
            out.append(got)
        return np.array(out, dtype=np.int64), np.array(created, dtype=np.int64)

    def take(self, ids: np.ndarray, ncols: int) -> list[pa.Array]:
        rows = [self._keys[i] for i in ids.tolist()]
        return [pa.array([r[c] for r in rows], pa.string()) for c in range(ncols)]


def _string_array(col: Column) -> pa.Array:
    arr = one_array(col)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    return arr


class KeyIndex:
    """Maps unique rows of string columns to dense ids (``int64``)."""

    def __init__(self, columns: Sequence[str], use_native: bool | None = None) -> None:
        self.columns = list(columns)
        if use_native is None:
            use_native = native.available()
        self._map: _Map = _NativeMap() if use_native else _DictMap()

    def __len__(self) -> int:
        return len(self._map)

    def take(self, ids: np.ndarray) -> pa.Table:
        """The keys ``ids`` (in that order) as a table of string columns."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= len(self)):
            raise IndexError("key id out of range")
        cols = self._map.take(ids, len(self.columns))
        return pa.table(dict(zip(self.columns, cols, strict=True)))

    def resolve_new(
        self, columns: Sequence[Column], rows: np.ndarray | None = None, insert: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ids of rows ``rows`` (default: all) of ``columns``, and which of them created keys.

        Rows may repeat; unknown keys get the next free ids in row order when ``insert``
        (else -1). The second array holds the positions (within the selection) of the
        rows that created keys, in id order.
        """
        arrays = [_string_array(c) for c in columns]
        if len(arrays) != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} key columns, got {len(arrays)}")
        ids, created = self._map.resolve(arrays, rows, insert)
        return ids, created

    def resolve(self, columns: Sequence[Column], rows: np.ndarray | None = None, insert: bool = True) -> np.ndarray:
        """Ids of rows ``rows`` (default: all) of ``columns``; see :meth:`resolve_new`."""
        return self.resolve_new(columns, rows, insert)[0]
