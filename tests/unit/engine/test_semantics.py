"""SPEC §1-§2 as input events → expected snapshot rows (sku, wh, available, reserved, t)."""

from __future__ import annotations

from conftest import cdc, delta, line, rows_of, run_engine


def test_deltas_sum_per_key_whatever_the_order() -> None:
    rows, _ = run_engine([([delta("A", "W1", 5, t=3), delta("A", "W1", -2, t=1), delta("B", "W1", 7, t=2)], [])])
    assert rows == [("A", "W1", 3, 0, 3.0), ("B", "W1", 7, 0, 2.0)]


def test_duplicate_event_ids_are_ignored_within_and_across_batches() -> None:
    rows, engine = run_engine(
        [
            ([delta("A", "W", 5, eid="e1"), delta("A", "W", 5, eid="e1"), delta("A", "W", 1)], []),
            ([delta("A", "W", 5, eid="e1"), delta("A", "W", 2, eid="e2"), delta("A", "W", 1)], []),
        ]
    )
    assert rows == [("A", "W", 5 + 1 + 2 + 1, 0, 0.0)]
    assert len(engine.seen) == 2


def test_first_accepted_copy_of_an_event_id_wins() -> None:
    rows, _ = run_engine([([delta("A", "W", 5, eid="x")], []), ([delta("A", "W", 9, eid="x")], [])])
    assert rows == [("A", "W", 5, 0, 0.0)]


def test_late_deltas_are_counted_and_still_summed() -> None:
    from inventory360.engine.engine import Engine
    from inventory360.records import ORDER_SCHEMA
    from inventory360.sources.deltas import DeltaDecoder

    engine = Engine()
    msgs = [delta("A", "W", 1, t=100), delta("A", "W", 1, t=95), delta("A", "W", 1, t=89), delta("B", "W", 4, t=10)]
    decoded = DeltaDecoder().decode(b"".join(m + b"\n" for m in msgs))
    res = engine.process(decoded.table, ORDER_SCHEMA.empty_table())
    assert res.counters["deltas_late"] == 2  # t=89 and t=10 are > 10 s behind t=100
    assert rows_of(engine.keys.all_rows()) == [("A", "W", 3, 0, 100.0), ("B", "W", 4, 0, 10.0)]


def test_reserving_statuses_reserve_and_release() -> None:
    created = line(1, "A", "W", 3, "CREATED")
    allocated = line(1, "A", "W", 3, "ALLOCATED", t=5)
    shipped = line(1, "A", "W", 3, "SHIPPED", t=9)
    rows, _ = run_engine([([], [cdc("c", None, created, pos=10)])])
    assert rows == [("A", "W", 0, 3, 0.0)]
    rows, _ = run_engine([([], [cdc("c", None, created, pos=10), cdc("u", created, allocated, pos=20)])])
    assert rows == [("A", "W", 0, 3, 5.0)]
    rows, _ = run_engine(
        [
            (
                [],
                [
                    cdc("c", None, created, pos=10),
                    cdc("u", created, allocated, pos=20),
                    cdc("u", allocated, shipped, pos=30),
                ],
            )
        ]
    )
    assert rows == [("A", "W", 0, 0, 9.0)]


def test_status_back_to_reserving_reserves_again() -> None:
    a = line(1, "A", "W", 2, "CANCELLED", t=1)
    b = line(1, "A", "W", 2, " created ", t=2)  # trimmed, case-insensitive
    rows, _ = run_engine([([], [cdc("c", None, a, pos=1)]), ([], [cdc("u", a, b, pos=2)])])
    assert rows == [("A", "W", 0, 2, 2.0)]


def test_non_reserving_line_still_creates_the_key() -> None:
    rows, _ = run_engine([([], [cdc("c", None, line(1, "A", "W", 2, "SHIPPED", t=4), pos=1)])])
    assert rows == [("A", "W", 0, 0, 4.0)]


def test_delete_removes_the_reservation_and_uses_ts_ms() -> None:
    a = line(1, "A", "W", 4, "CREATED", t=1)
    rows, _ = run_engine([([], [cdc("c", None, a, pos=1), cdc("d", a, None, pos=2, t=7)])])
    assert rows == [("A", "W", 0, 0, 7.0)]


def test_blind_delete_touches_the_before_key_only() -> None:
    ghost = line(9, "G", "W", 4, "CREATED", t=1)
    rows, _ = run_engine([([], [cdc("d", ghost, None, pos=5, t=3)])])
    assert rows == [("G", "W", 0, 0, 3.0)]


def test_line_moving_warehouse_sku_and_quantity_moves_its_contribution() -> None:
    a = line(1, "A", "W1", 4, "CREATED", t=1)
    b = line(1, "A", "W2", 4, "CREATED", t=2)
    c = line(1, "B", "W2", 6, "ALLOCATED", t=3)
    rows, _ = run_engine([([], [cdc("c", None, a, pos=1)]), ([], [cdc("u", a, b, pos=2)])])
    assert rows == [("A", "W1", 0, 0, 2.0), ("A", "W2", 0, 4, 2.0)]
    rows, _ = run_engine([([], [cdc("c", None, a, pos=1), cdc("u", a, b, pos=2), cdc("u", b, c, pos=3)])])
    assert rows == [("A", "W1", 0, 0, 2.0), ("A", "W2", 0, 0, 3.0), ("B", "W2", 0, 6, 3.0)]


def test_redelivered_older_change_is_ignored() -> None:
    a = line(1, "A", "W", 4, "CREATED", t=1)
    b = line(1, "A", "W", 4, "SHIPPED", t=2)
    late_copy = cdc("c", None, a, pos=1)
    rows, _ = run_engine([([], [cdc("c", None, a, pos=1), cdc("u", a, b, pos=2)]), ([], [late_copy])])
    assert rows == [("A", "W", 0, 0, 2.0)]
    rows, _ = run_engine([([], [cdc("u", a, b, pos=2), late_copy])])  # same batch, reordered
    assert rows == [("A", "W", 0, 0, 2.0)]


def test_changes_without_position_apply_in_arrival_order() -> None:
    a = line(1, "A", "W", 4, "CREATED", t=5)
    b = line(1, "A", "W", 4, "SHIPPED", t=2)
    rows, _ = run_engine([([], [cdc("c", None, a), cdc("u", a, b)])])
    assert rows == [("A", "W", 0, 0, 5.0)]  # updated_at is the latest change time seen


def test_mixed_positioned_and_bare_changes_of_one_line() -> None:
    a = line(1, "A", "W", 4, "CREATED", t=1)
    b = line(1, "A", "W", 5, "CREATED", t=2)
    c = line(1, "A", "W", 6, "CREATED", t=3)
    # pos 20, then a bare change (applies), then pos 10 (applies: the last applied has no position)
    rows, _ = run_engine([([], [cdc("c", None, a, pos=20), cdc("u", a, b), cdc("u", b, c, pos=10)])])
    assert rows == [("A", "W", 0, 6, 3.0)]
    # pos 20, pos 10 (ignored), bare (applies)
    rows, _ = run_engine([([], [cdc("c", None, a, pos=20), cdc("u", a, c, pos=10), cdc("u", a, b)])])
    assert rows == [("A", "W", 0, 5, 2.0)]


def test_tombstones_and_wrapped_envelopes() -> None:
    a = line(1, "A", "W", 4, "CREATED", t=1)
    rows, _ = run_engine([([], [b"null", cdc("c", None, a, pos=1, wrap=True), b'{"schema":{},"payload":null}'])])
    assert rows == [("A", "W", 0, 4, 1.0)]


def test_configurable_reserving_set() -> None:
    a = line(1, "A", "W", 4, "PICKING", t=1)
    rows, _ = run_engine([([], [cdc("c", None, a, pos=1)])], reserving=("picking",))
    assert rows == [("A", "W", 0, 4, 1.0)]


def test_deltas_and_orders_meet_on_one_key() -> None:
    a = line(1, "A", "W", 4, "ALLOCATED", t=8)
    rows, _ = run_engine([([delta("A", "W", 10, t=3)], [cdc("c", None, a, pos=1)])])
    assert rows == [("A", "W", 10, 4, 8.0)]


def test_order_updated_at_encodings() -> None:
    base = line(1, "A", "W", 1, "CREATED")
    cases = {
        "2026-11-01T00:00:07.250Z": 7.25,
        "2026-11-01 07:00:07.250+07:00": 7.25,
        (1_793_491_200_000 + 7250) * 1000: 7.25,  # MicroTimestamp
        1_793_491_200_000 + 7250: 7.25,  # epoch ms
        None: 30.0,  # falls back to ts_ms
    }
    for value, expect in cases.items():
        after = {**base, "updated_at": value}
        rows, _ = run_engine([([], [cdc("c", None, after, pos=1, t=30)])])
        assert rows == [("A", "W", 0, 1, expect)], value
