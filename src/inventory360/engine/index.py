"""Dense integer ids for string keys, looked up a batch at a time.

A sorted array of 64-bit row hashes is searched with ``numpy.searchsorted``; every hit is
verified against the stored key strings, so a hash collision can never merge two keys:
colliding keys live in a small exact side table. Keys get ids 0, 1, 2, … in insertion
order, which makes the index reproducible from its keys alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

Hasher = Callable[[pl.DataFrame], np.ndarray]

_SEED = 0x1F2E3D4C


def row_hash(keys: pl.DataFrame) -> np.ndarray:
    """64-bit hash of each row (stable within one process, which is all the index needs)."""
    return keys.hash_rows(seed=_SEED).to_numpy()


class KeyIndex:
    """Maps unique rows of string columns to dense ids (``int64``)."""

    def __init__(self, columns: Sequence[str], hasher: Hasher = row_hash) -> None:
        self.columns = list(columns)
        self._hasher = hasher
        self._chunks: list[pl.DataFrame] = []
        self._keys = pl.DataFrame(schema={c: pl.String for c in self.columns})
        self._hashes = np.empty(0, dtype=np.uint64)  # sorted, unique
        self._ids = np.empty(0, dtype=np.int64)  # id of the key holding each hash
        self._overflow: dict[tuple[str, ...], int] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def keys(self) -> pl.DataFrame:
        """All keys in id order (possibly in several memory chunks)."""
        if self._chunks:
            self._keys = pl.concat([self._keys, *self._chunks], rechunk=False)
            self._chunks = []
            if self._keys.n_chunks() > 32:
                self._keys = self._keys.rechunk()
        return self._keys

    def resolve_rows(self, keys: pl.DataFrame, insert: bool = True) -> np.ndarray:
        """Id of every row of ``keys`` (rows may repeat); -1 for unknown when not inserting.

        Rows are grouped by hash (``pandas.factorize``: one hash-table pass, no sort), each
        group is resolved once, and every row is compared with its group's first row so
        that two different keys sharing a hash are still told apart.
        """
        import pandas as pd

        keys = keys.select(self.columns)
        n = keys.height
        if n == 0:
            return np.empty(0, dtype=np.int64)
        h = self._hasher(keys).astype(np.uint64, copy=False)
        codes, uniq = pd.factorize(h)
        first = np.empty(uniq.size, dtype=np.int64)
        first[codes[::-1]] = np.arange(n - 1, -1, -1, dtype=np.int64)
        ids = self._resolve(keys[first], insert, np.asarray(uniq, dtype=np.uint64))[codes]
        if uniq.size < n:
            rep = keys[first[codes]]
            same = np.ones(n, dtype=bool)
            for c in self.columns:
                same &= (rep[c] == keys[c]).fill_null(False).to_numpy()
            odd = np.flatnonzero(~same)
            if odd.size:  # a hash shared by different keys within this batch
                sub = keys[odd]
                uniq_sub = sub.unique(maintain_order=True)
                got = self._resolve(uniq_sub, insert)
                lookup = {row: int(i) for row, i in zip(uniq_sub.rows(), got, strict=True)}
                ids[odd] = [lookup[row] for row in sub.rows()]
        return np.asarray(ids, dtype=np.int64)

    def lookup(self, keys: pl.DataFrame) -> np.ndarray:
        """Ids of ``keys`` (unique rows); -1 where a key is unknown."""
        return self._resolve(keys, insert=False)

    def insert(self, keys: pl.DataFrame) -> np.ndarray:
        """Ids of ``keys`` (unique rows), giving new keys the next free ids in row order."""
        return self._resolve(keys, insert=True)

    def _resolve(self, keys: pl.DataFrame, insert: bool, h: np.ndarray | None = None) -> np.ndarray:
        keys = keys.select(self.columns)
        n = keys.height
        out = np.full(n, -1, dtype=np.int64)
        if n == 0:
            return out
        if h is None:
            h = self._hasher(keys).astype(np.uint64, copy=False)
        if self._hashes.size:
            # Probing in hash order walks the sorted array forwards: far fewer cache misses.
            probe_order = np.argsort(h)
            pos = np.empty(n, dtype=np.int64)
            pos[probe_order] = np.searchsorted(self._hashes, h[probe_order])
            pos_c = np.minimum(pos, self._hashes.size - 1)
            hit = self._hashes[pos_c] == h
            hit_rows = np.flatnonzero(hit)
            if hit_rows.size:
                cand = self._ids[pos_c[hit_rows]]
                stored = self.keys[cand]
                probe = keys[hit_rows]
                same = np.ones(hit_rows.size, dtype=bool)
                for c in self.columns:
                    same &= (stored[c] == probe[c]).to_numpy()
                out[hit_rows[same]] = cand[same]
                clash = hit_rows[~same]
            else:
                clash = hit_rows
        else:
            hit = np.zeros(n, dtype=bool)
            clash = np.empty(0, dtype=np.int64)
        # A hash shared with a different key: exact side table (practically never used).
        for row in clash.tolist():
            key = tuple(keys.row(row))
            found = self._overflow.get(key)
            if found is None and insert:
                found = int(self._new_ids(keys[row : row + 1])[0])
                self._overflow[key] = found
            out[row] = -1 if found is None else found
        if insert:
            fresh = np.flatnonzero(~hit)
            if fresh.size:
                out[fresh] = self._insert_fresh(keys[fresh], h[fresh])
        return out

    def _insert_fresh(self, keys: pl.DataFrame, h: np.ndarray) -> np.ndarray:
        ids = self._new_ids(keys)
        order = np.argsort(h, kind="stable")
        own_h, own_ids = h[order], ids[order]
        dup = np.zeros(own_h.size, dtype=bool)
        dup[1:] = own_h[1:] == own_h[:-1]
        if dup.any():
            # Two new keys share a hash: the first one owns it, the others go aside.
            for row in own_ids[dup].tolist():
                self._overflow[tuple(keys.row(row - int(ids[0])))] = int(row)
            own_h, own_ids = own_h[~dup], own_ids[~dup]
        at = np.searchsorted(self._hashes, own_h)
        self._hashes = np.insert(self._hashes, at, own_h)
        self._ids = np.insert(self._ids, at, own_ids)
        return ids

    def _new_ids(self, keys: pl.DataFrame) -> np.ndarray:
        start = self._size
        self._size += keys.height
        self._chunks.append(keys)
        if len(self._chunks) > 64:
            _ = self.keys
        return np.arange(start, self._size, dtype=np.int64)
