"""Native scatter updates and id unions equal their numpy references."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory360.engine.engine import BatchResult, merge_results
from inventory360.engine.state import KeyTable
from inventory360.sources import native

I64 = st.integers(-(2**63), 2**63 - 1)


def numpy_apply(
    state: list[np.ndarray], kid: np.ndarray, d_a: np.ndarray, d_r: np.ndarray, when: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference: ``np.unique`` and ``ufunc.at``."""
    ids = np.unique(kid)
    before = state[0][ids].copy(), state[1][ids].copy()
    with np.errstate(over="ignore"):
        np.add.at(state[0], kid, d_a)
        np.add.at(state[1], kid, d_r)
    np.maximum.at(state[2], kid, when)
    return ids, *before


@settings(max_examples=200, deadline=None)
@given(
    n_keys=st.integers(1, 200),
    touches=st.lists(st.tuples(st.integers(0, 10**6), I64, I64, I64), max_size=300),
    seed=st.integers(0, 2**32 - 1),
)
def test_apply_touches_equals_numpy(n_keys: int, touches: list[tuple[int, int, int, int]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    state = [rng.integers(-(2**62), 2**62, n_keys) for _ in range(3)]
    kid = np.array([t[0] % n_keys for t in touches], dtype=np.int64)
    d_a, d_r, when = (np.array([t[i] for t in touches], dtype=np.int64) for i in (1, 2, 3))
    ref_state = [a.copy() for a in state]
    want = numpy_apply(ref_state, kid, d_a, d_r, when)
    got = native.apply_touches([kid, d_a, d_r, when], state)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
    for g, w in zip(state, ref_state, strict=True):
        assert np.array_equal(g, w)


def test_apply_touches_refuses_bad_input_before_changing_anything() -> None:
    state = [np.zeros(4, dtype=np.int64) for _ in range(3)]
    one = np.ones(1, dtype=np.int64)
    with pytest.raises(ValueError, match="out of range"):
        native.apply_touches([np.array([4]), one, one, one], state)
    with pytest.raises(ValueError, match="differ in length"):
        native.apply_touches([np.array([0, 1]), one, one, one], state)
    with pytest.raises(ValueError, match="overlap"):
        native.apply_touches([one, one, one, one], [state[0], state[0], state[1]])
    with pytest.raises(ValueError, match="overlap"):  # a view of the same memory
        native.apply_touches([one, one, one, one], [state[0], state[1], state[0][1:]])
    with pytest.raises(ValueError, match="overlap"):
        native.apply_touches([state[2][:1], one, one, one], state)
    with pytest.raises(ValueError, match="int64"):
        native.apply_touches([one.astype(np.int32), one, one, one], state)
    assert all(not a.any() for a in state)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 500), max_size=60), max_size=8))
def test_union_first_equals_numpy_unique(parts: list[list[int]]) -> None:
    arrays = [np.array(p, dtype=np.int64) for p in parts]
    ids, first = native.union_first(arrays)
    want_ids, want_first = np.unique(np.concatenate([np.empty(0, np.int64), *arrays]), return_index=True)
    assert np.array_equal(ids, want_ids)
    assert np.array_equal(first, want_first)
    ids_only, none = native.union_first(arrays, with_first=False)
    assert np.array_equal(ids_only, want_ids) and none.size == 0


def test_union_first_refuses_negative_ids() -> None:
    with pytest.raises(ValueError, match="negative"):
        native.union_first([np.array([3, -1])])


def _key_table(n: int) -> KeyTable:
    kt = KeyTable()
    kt.resolve([pa.array([f"s{i}" for i in range(n)]), pa.array(["w"] * n)])
    return kt


@pytest.mark.parametrize("n_touches", [3, 500])  # fewer than n_keys / 16 and more
def test_key_table_apply_is_the_same_with_and_without_the_extension(
    n_touches: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(n_touches)
    args = (
        rng.integers(0, 100, n_touches),
        rng.integers(-50, 50, n_touches),
        rng.integers(-50, 50, n_touches),
        rng.integers(0, 10**12, n_touches),
    )
    results = []
    for switch in ("1", "0"):
        monkeypatch.setenv(native.ENV_SWITCH, switch)
        kt = _key_table(100)
        out = kt.apply(*args)
        out2 = kt.apply(*args)
        v = kt.cols.view()
        results.append((out, out2, v["available_qty"].copy(), v["reserved_qty"].copy(), v["updated_at"].copy()))
    (a1, a2, *sa), (b1, b2, *sb) = results
    for x, y in zip([*a1, *a2, *sa], [*b1, *b2, *sb], strict=True):
        assert np.array_equal(x, y)


def test_merge_results_is_the_same_with_and_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    results = []
    for _ in range(5):
        changed = np.unique(rng.integers(0, 300, 80))
        results.append(
            BatchResult(
                changed,
                rng.integers(-9, 9, changed.size),
                rng.integers(-9, 9, changed.size),
                rng.integers(0, 2, changed.size).astype(bool),
                np.unique(rng.integers(0, 1000, 50)),
                pa.array([f"e{x}" for x in rng.integers(0, 10**6, 5)]),
            )
        )
    merged = []
    for switch in ("1", "0"):
        monkeypatch.setenv(native.ENV_SWITCH, switch)
        merged.append(merge_results(results))
    a, b = merged
    for name in ("changed", "before_available", "before_reserved", "existed", "changed_lines"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.new_event_ids.equals(b.new_event_ids)
