"""Parallelism advice on recorded lag series."""

from __future__ import annotations

import pytest

from inventory360.flink.advise import DEFAULT_SLOT_RATE, LagSample, advise


def series(points: list[tuple[float, int, int]]) -> list[LagSample]:
    return [LagSample(t, end, committed) for t, end, committed in points]


def test_keeping_up_at_low_load_scales_down() -> None:
    # 5,000 msg/s produced, the job commits all of it; lag stays ~ one checkpoint.
    s = series([(0, 1_000_000, 995_000), (10, 1_050_000, 1_045_000), (20, 1_100_000, 1_095_000)])
    a = advise(s, current_parallelism=4, partitions=8)
    assert a.produce_rate == pytest.approx(5000)
    assert a.consume_rate == pytest.approx(5000)
    assert a.parallelism == 1 and a.slots == 1
    assert "scale down from 4" in a.text()
    assert f"{DEFAULT_SLOT_RATE:,.0f}" in a.text()


def test_falling_behind_uses_the_observed_rate_per_slot() -> None:
    # 120k/s produced, 40k/s committed at parallelism 1: lag grows by 80k/s.
    s = series([(0, 0, 0), (30, 3_600_000, 1_200_000), (60, 7_200_000, 2_400_000)])
    a = advise(s, current_parallelism=1, partitions=8)
    assert a.lag == 4_800_000 and a.lag_trend == pytest.approx(80_000)
    # need = 120k × 1.5 + 4.8M / 300 = 196k/s; 40k per slot → 5
    assert a.parallelism == 5
    assert "never caught up" in a.text() and "scale up from 1" in a.text()


def test_capped_by_partitions() -> None:
    s = series([(0, 0, 0), (10, 5_000_000, 100_000)])
    a = advise(s, current_parallelism=1, partitions=4)
    assert a.parallelism == 4
    assert "4 partitions" in a.text()


def test_steady_state_keeps_parallelism() -> None:
    s = series([(0, 0, 0), (10, 600_000, 600_000)])
    a = advise(s, current_parallelism=2, partitions=8, slot_rate=50_000)
    assert a.parallelism == 2
    assert "keep the current parallelism" in a.text()


def test_needs_two_ordered_samples() -> None:
    with pytest.raises(ValueError):
        advise(series([(0, 0, 0)]), current_parallelism=1, partitions=1)
    with pytest.raises(ValueError):
        advise(series([(5, 0, 0), (5, 1, 1)]), current_parallelism=1, partitions=1)
