"""Every rule and dead-letter reason of SPEC §1 and §5, for both decoders."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import T0
from inventory360.sources.debezium import DebeziumOrderDecoder
from inventory360.sources.deltas import DeltaDecoder

GOOD = {
    "sku_id": "A",
    "warehouse_id": "W",
    "available_delta": 3,
    "event_time": "2026-11-01T00:00:00Z",
}


def one(dec: object, value: bytes) -> object:
    return dec.record(value)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"sku_id": None}, "sku_id: missing"),
        ({"sku_id": 5}, "sku_id: not a string"),
        ({"sku_id": "  "}, "sku_id: empty"),
        ({"warehouse_id": None}, "warehouse_id: missing"),
        ({"warehouse_id": ""}, "warehouse_id: empty"),
        ({"available_delta": None}, "available_delta: missing"),
        ({"available_delta": 1.5}, "available_delta: not an integer"),
        ({"available_delta": 2.0}, "available_delta: not an integer"),
        ({"available_delta": True}, "available_delta: not an integer"),
        ({"available_delta": "5"}, "available_delta: not an integer"),
        ({"event_time": None}, "event_time: missing"),
        ({"event_time": "yesterday"}, "event_time: not a valid time"),
        ({"event_time": "2026-13-01T00:00:00"}, "event_time: not a valid time"),
        ({"event_time": 1.5}, "event_time: not a valid time"),
        ({"event_time": 10**16 * 1000}, "event_time: not a valid time"),
        ({"event_id": 7}, "event_id: not a string"),
    ],
)
def test_delta_reasons(patch: dict[str, object], reason: str) -> None:
    rec = {**GOOD, **patch}
    rec = {k: v for k, v in rec.items() if v is not None}
    assert DeltaDecoder().record(orjson.dumps(rec)) == reason


def test_delta_shapes() -> None:
    d = DeltaDecoder()
    assert d.record(b"{nope") == "invalid JSON"
    assert d.record(b"[1]") == "not a JSON object"
    assert d.record(b"null") == "not a JSON object"
    row = d.record(orjson.dumps({**GOOD, "sku_id": " A ", "extra": {"x": 1}, "event_id": " "}))
    assert row == {
        "sku_id": "A",
        "warehouse_id": "W",
        "available_delta": 3,
        "event_time": T0 - 2_678_400_000 + 2_678_400_000,
        "event_id": None,
    }


@pytest.mark.parametrize(
    ("text", "ms_after_t0"),
    [
        ("2026-11-01", 0),
        ("2026-11-01T00:00:01.5", 1500),
        ("2026-11-01 00:00:01.999999Z", 1999),
        ("2026-11-01T07:00:00+07:00", 0),
        ("2026-11-01T07:00:00+0700", 0),
        ("2026-10-31T23:00-01", 0),
        (T0 + 42, 42),
    ],
)
def test_event_time_forms(text: object, ms_after_t0: int) -> None:
    row = DeltaDecoder().record(orjson.dumps({**GOOD, "event_time": text}))
    assert isinstance(row, dict)
    assert row["event_time"] == T0 + ms_after_t0


def envelope(op: str = "c", **image: object) -> dict[str, object]:
    img = {
        "order_id": 7,
        "line_no": 1,
        "sku_id": "A",
        "warehouse_selection": "W",
        "quantity": 2,
        "status": "CREATED",
    }
    img.update(image)
    img = {k: v for k, v in img.items() if v is not None}
    return {
        "before": img if op == "d" else None,
        "after": None if op == "d" else img,
        "op": op,
        "ts_ms": T0,
    }


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"before": None, "after": None, "ts_ms": T0}, "op: missing"),
        ({**envelope(), "op": "t"}, "op: unknown"),
        ({**envelope(), "after": None}, "after: missing"),
        ({**envelope(), "after": [1]}, "after: not a JSON object"),
        ({**envelope("d"), "before": None}, "before: missing"),
        (envelope(order_id=None), "order_id: missing"),
        (envelope(order_id=1.5), "order_id: not a string or integer"),
        (envelope(order_id=" "), "order_id: empty"),
        (envelope(line_no=True), "line_no: not a string or integer"),
        (envelope(sku_id=None), "sku_id: missing"),
        (envelope(warehouse_selection=""), "warehouse_selection: empty"),
        (envelope(quantity=None), "quantity: missing"),
        (envelope(quantity=-1), "quantity: negative"),
        (envelope(quantity=1.0), "quantity: not an integer"),
        (envelope(status=None), "status: missing"),
        (envelope(updated_at="soon"), "updated_at: not a valid time"),
        ({**envelope(), "ts_ms": "x"}, "ts_ms: not an integer"),
        ({k: v for k, v in envelope().items() if k != "ts_ms"}, "ts_ms: missing"),
        ({"schema": {}, "payload": 5}, "payload: not a JSON object"),
        ([1, 2], "not a JSON object"),
    ],
)
def test_order_reasons(env: object, reason: str) -> None:
    assert DebeziumOrderDecoder().record(orjson.dumps(env)) == reason


def test_order_rows() -> None:
    dec = DebeziumOrderDecoder()
    assert dec.record(b"null") is None
    assert dec.record(b'{"schema":null,"payload":null}') is None
    row = dec.record(
        orjson.dumps(
            {
                **envelope(line_no=None, status=" allocated "),
                "source": {"file": "mysql-bin.000012", "pos": 99, "row": 2},
            }
        )
    )
    assert isinstance(row, dict)
    assert (row["order_id"], row["line_no"], row["status"], row["change_time"]) == (
        "7",
        "0",
        "ALLOCATED",
        T0,
    )
    assert (row["has_pos"], row["pos_file"], row["pos"], row["pos_row"]) == (True, 12, 99, 2)
    d = dec.record(orjson.dumps({**envelope("d"), "ts_ms": T0 + 5}))
    assert isinstance(d, dict)
    assert (d["op"], d["sku_id"], d["before_sku_id"], d["change_time"], d["has_pos"]) == (
        "d",
        None,
        "A",
        T0 + 5,
        False,
    )


def test_decode_batches_keep_line_numbers_and_count_skips() -> None:
    good = orjson.dumps(GOOD)
    buf = b"\n".join([good, b"", b"{bad", good, b"   ", orjson.dumps({**GOOD, "sku_id": ""})]) + b"\n"
    out = DeltaDecoder().decode(buf)
    assert out.table["line"].to_pylist() == [0, 3]
    assert out.errors == [(2, "invalid JSON"), (5, "sku_id: empty")]
    assert out.skipped == 2


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.sampled_from(["A", " B ", "2026-11-01T00:00:00Z", "2026-11-01 01:02:03.4567+01:00", "2026-02-30", ""]),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {},
                optional={k: values for k in ("sku_id", "warehouse_id", "available_delta", "event_time", "event_id")},
            ),
            st.just(GOOD),
        ),
        min_size=5,
        max_size=60,
    )
)
def test_vectorised_path_equals_reference(records: list[dict[str, object]]) -> None:
    """The Arrow fast path (with bisection) must decide exactly like record()."""
    dec = DeltaDecoder()
    lines = []
    for r in records:
        try:
            lines.append(orjson.dumps(r))
        except TypeError:
            lines.append(b"{bad")
    lines = lines * (3000 // len(lines) + 1)  # big enough for the vectorised path + bisection
    buf = b"\n".join(lines) + b"\n"
    fast = dec.decode(buf)
    slow = dec._line_by_line(buf, 0)
    assert fast.errors == slow.errors
    assert fast.table.equals(slow.table)
    assert fast.skipped == slow.skipped
