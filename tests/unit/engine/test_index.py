"""KeyIndex: dense, exact, stable ids; the native map equals the dict reference."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory360.engine.index import KeyIndex


def all_keys(ix: KeyIndex) -> list[tuple[str | None, ...]]:
    """Every key in id order, gathered back from the index."""
    return [tuple(r.values()) for r in ix.take(np.arange(len(ix))).to_pylist()]


def frame_ids(ix: KeyIndex, frame: pl.DataFrame, insert: bool = True) -> np.ndarray:
    return ix.resolve([frame[c].to_arrow() for c in ix.columns], insert=insert)


BACKENDS = [pytest.param(True, id="native"), pytest.param(False, id="dict")]


@pytest.mark.parametrize("use_native", BACKENDS)
def test_ids_are_dense_exact_and_stable(use_native: bool) -> None:
    ix = KeyIndex(["a", "b"], use_native=use_native)
    ref: dict[tuple[str, str], int] = {}
    rng = np.random.default_rng(1)
    for it in range(40):
        keys = pl.DataFrame(
            {
                "a": [f"k{x}" for x in rng.integers(0, 200, 30)],
                "b": [f"w{x}" for x in rng.integers(0, 2, 30)],
            }
        ).unique(maintain_order=True)
        got = frame_ids(ix, keys, insert=bool(it % 3))
        for (a, b), g in zip(keys.rows(), got, strict=True):
            if it % 3 and (a, b) not in ref:
                ref[(a, b)] = len(ref)
            assert g == ref.get((a, b), -1)
    assert all_keys(ix) == list(ref)
    assert len(ix) == len(ref)


@pytest.mark.parametrize("use_native", BACKENDS)
def test_resolve_rows_with_repeats(use_native: bool) -> None:
    ix = KeyIndex(["a", "b"], use_native=use_native)
    rng = np.random.default_rng(2)
    ref: dict[tuple[str, str], int] = {}
    for _ in range(20):
        rows = pl.DataFrame(
            {"a": [f"k{x}" for x in rng.integers(0, 60, 50)], "b": [f"w{x}" for x in rng.integers(0, 2, 50)]}
        )
        got = frame_ids(ix, rows)
        for (a, b), g in zip(rows.rows(), got, strict=True):
            assert ref.setdefault((a, b), int(g)) == g  # one id per key, forever
    assert sorted(ref.values()) == list(range(len(ref)))  # dense and distinct
    assert {r: i for i, r in enumerate(all_keys(ix))} == ref
    unknown = pl.DataFrame({"a": ["zz", "k1"], "b": ["w0", "w0"]})
    assert frame_ids(ix, unknown, insert=False).tolist() == [-1, ref[("k1", "w0")]]


@pytest.mark.parametrize("use_native", BACKENDS)
def test_column_boundaries_nulls_and_slices(use_native: bool) -> None:
    """("ab", "c") and ("a", "bc") differ; null differs from ""; sliced arrays are read at their offset."""
    ix = KeyIndex(["a", "b"], use_native=use_native)
    a = pa.array(["x", "ab", "a", None, "", "ab", None, ""])
    b = pa.array(["y", "c", "bc", "", None, "c", "", None], pa.large_string())
    assert ix.resolve([a, b]).tolist() == [0, 1, 2, 3, 4, 1, 3, 4]
    assert ix.resolve([a.slice(5), b.slice(5)], insert=False).tolist() == [1, 3, 4]
    chunked = pa.chunked_array([a.slice(0, 3), a.slice(3)])
    assert ix.resolve([chunked, b], rows=np.array([7, 2, 2])).tolist() == [4, 2, 2]
    assert all_keys(ix) == [("x", "y"), ("ab", "c"), ("a", "bc"), (None, ""), ("", None)]


@pytest.mark.parametrize("use_native", BACKENDS)
def test_resolve_new_reports_the_rows_that_created_keys(use_native: bool) -> None:
    ix = KeyIndex(["e"], use_native=use_native)
    ids, created = ix.resolve_new([pa.array(["p", "q", "p", "r"])], rows=np.array([3, 2, 1, 0]))
    assert ids.tolist() == [0, 1, 2, 1] and created.tolist() == [0, 1, 2]
    ids, created = ix.resolve_new([pa.array(["q", "s", "s"])])
    assert ids.tolist() == [2, 3, 3] and created.tolist() == [1]


keys_st = st.lists(st.tuples(st.none() | st.text(max_size=4), st.sampled_from(["", "w", "wé", "w\x00"])), max_size=40)


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(st.tuples(keys_st, st.booleans()), max_size=6))
def test_native_map_equals_the_dict_reference(batches: list[tuple[list[tuple[str | None, str]], bool]]) -> None:
    fast, ref = KeyIndex(["a", "b"], use_native=True), KeyIndex(["a", "b"], use_native=False)
    for rows, insert in batches:
        cols = [pa.array([r[0] for r in rows], pa.string()), pa.array([r[1] for r in rows], pa.string())]
        got, want = fast.resolve_new(cols, insert=insert), ref.resolve_new(cols, insert=insert)
        assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()
    assert all_keys(fast) == all_keys(ref)
