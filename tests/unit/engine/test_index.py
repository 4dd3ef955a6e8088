"""KeyIndex never merges two keys, even when every hash collides."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from inventory360.engine.index import KeyIndex


def weak(df: pl.DataFrame) -> np.ndarray:
    return (df.hash_rows(seed=3).to_numpy() % 5).astype(np.uint64)


@pytest.mark.parametrize("hasher", [None, weak])
def test_ids_are_dense_exact_and_stable(hasher: object) -> None:
    ix = KeyIndex(["a", "b"]) if hasher is None else KeyIndex(["a", "b"], hasher=hasher)  # type: ignore[arg-type]
    ref: dict[tuple[str, str], int] = {}
    rng = np.random.default_rng(1)
    for it in range(40):
        keys = pl.DataFrame(
            {
                "a": [f"k{x}" for x in rng.integers(0, 200, 30)],
                "b": [f"w{x}" for x in rng.integers(0, 2, 30)],
            }
        ).unique(maintain_order=True)
        got = ix.insert(keys) if it % 3 else ix.lookup(keys)
        for (a, b), g in zip(keys.rows(), got, strict=True):
            if it % 3 and (a, b) not in ref:
                ref[(a, b)] = len(ref)
            assert g == ref.get((a, b), -1)
    assert ix.keys.rows() == list(ref)
    assert len(ix) == len(ref)


@pytest.mark.parametrize("hasher", [None, weak])
def test_resolve_rows_with_repeats(hasher: object) -> None:
    ix = KeyIndex(["a", "b"]) if hasher is None else KeyIndex(["a", "b"], hasher=hasher)  # type: ignore[arg-type]
    rng = np.random.default_rng(2)
    ref: dict[tuple[str, str], int] = {}
    for _ in range(20):
        rows = pl.DataFrame(
            {"a": [f"k{x}" for x in rng.integers(0, 60, 50)], "b": [f"w{x}" for x in rng.integers(0, 2, 50)]}
        )
        got = ix.resolve_rows(rows)
        for (a, b), g in zip(rows.rows(), got, strict=True):
            assert ref.setdefault((a, b), int(g)) == g  # one id per key, forever
    assert sorted(ref.values()) == list(range(len(ref)))  # dense and distinct
    assert {tuple(r): i for i, r in enumerate(ix.keys.rows())} == ref
    unknown = pl.DataFrame({"a": ["zz", "k1"], "b": ["w0", "w0"]})
    assert ix.resolve_rows(unknown, insert=False).tolist() == [-1, ref[("k1", "w0")]]
