"""Every rule and dead-letter reason of SPEC §1 and §5, for both decoders."""

from __future__ import annotations

import orjson
import pytest

from conftest import T0
from inventory360.sources.debezium import DebeziumOrderDecoder
from inventory360.sources.deltas import DeltaDecoder
from inventory360.sources.timestamps import iso_ms, parse_iso_ms

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
        "event_time": T0,
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


@pytest.mark.parametrize(
    "text",
    [
        "２０２６-11-01",  # fullwidth digits: the grammar's digits are ASCII 0-9
        "٢٠٢٦-11-01",
        "2026-11-01T00:00:00.１Z",
        "2026-11-01T00:00+0５:00",
        "2026-11-01\n",  # nothing may follow the time, not even a final newline
        "2026-11-01T00:00:00Z\n",
        "2026-11-01T00:00:00+05:60",  # zone minutes < 60
        "2026-11-01T00:00:00+05:99",
        "2026-11-01T00:00:00-0099",
        "2026-11-01T00:00:00+24:00",  # zone hours < 24
        "2026-11-01T24:00",  # time of day in range
        "2026-11-01T23:60",
        "2026-11-01T23:59:60",
        "2026-11-01T23:59:60.000Z",
    ],
)
def test_event_time_rejected(text: str) -> None:
    assert parse_iso_ms(text) is None
    assert DeltaDecoder().record(orjson.dumps({**GOOD, "event_time": text})) == "event_time: not a valid time"


def test_zone_offset_limits() -> None:
    assert parse_iso_ms("2026-11-01T23:59+23:59") == T0
    assert parse_iso_ms("2026-11-01T00:00:00-00:59") == T0 + 59 * 60_000


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


@pytest.mark.parametrize(
    ("file", "position"),
    [
        ("mysql-bin.000012", (True, 12, 99, 0)),
        ("bin.12\n", (True, 0, 99, 0)),  # no trailing digits: file number 0
        ("12\n3", (True, 3, 99, 0)),
        ("bin.١٢", (True, 0, 99, 0)),  # only ASCII digits count
        ("bin.1٢", (True, 0, 99, 0)),
        ("bin.٢1", (True, 1, 99, 0)),
        ("bin." + "0" * 30 + "7", (True, 7, 99, 0)),
        ("bin.9223372036854775807", (True, 2**63 - 1, 99, 0)),
        ("bin.9223372036854775808", (False, 0, 0, 0)),
        ("", (False, 0, 0, 0)),
    ],
)
def test_order_binlog_file_number(file: str, position: tuple[bool, int, int, int]) -> None:
    row = DebeziumOrderDecoder().record(orjson.dumps({**envelope(), "source": {"file": file, "pos": 99}}))
    assert isinstance(row, dict)
    assert (row["has_pos"], row["pos_file"], row["pos"], row["pos_row"]) == position


def test_decode_is_record_line_by_line() -> None:
    """decode() of a big buffer says, line for line, what record() says of each line."""
    lines = [orjson.dumps({**GOOD, "event_time": t}) for t in ("2026-11-01", "1500-01-01", "2300-01-01", "x")]
    lines += [b'{"available_delta": NaN}', b'{"a": 1e999}', b"\xef\xbb\xbf{}", b'{"a":"\xff"}']
    lines += [orjson.dumps({**GOOD, "event_time": v}) for v in (-(2**63), 2**63 - 1, T0 * 1000)]
    buf = b"\n".join(lines * 300) + b"\n"
    dec = DeltaDecoder()
    out = dec.decode(buf)
    verdicts = [dec.record(v) for v in buf.split(b"\n")[:-1]]
    assert out.errors == [(i, v) for i, v in enumerate(verdicts) if isinstance(v, str)]
    rows = [{**v, "line": i} for i, v in enumerate(verdicts) if isinstance(v, dict)]
    assert out.table.to_pylist() == [{c: r[c] for c in out.table.column_names} for r in rows]
    assert out.table.num_rows == 6 * 300
    assert len(out.errors) == 5 * 300
    assert set(out.table["event_time"].to_pylist()) == {
        T0,
        -14_831_769_600_000,  # 1500-01-01
        10_413_792_000_000,  # 2300-01-01
        -(2**63) // 10**6,  # ns, floored
        (2**63 - 1) // 10**6,
    }


def test_decode_batches_keep_line_numbers_and_count_skips() -> None:
    good = orjson.dumps(GOOD)
    buf = b"\n".join([good, b"", b"{bad", good, b"   ", orjson.dumps({**GOOD, "sku_id": ""})]) + b"\n"
    out = DeltaDecoder().decode(buf)
    assert out.table["line"].to_pylist() == [0, 3]
    assert out.errors == [(2, "invalid JSON"), (5, "sku_id: empty")]
    assert out.skipped == 2


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (1_793_491_200_001, "2026-11-01T00:00:00.001Z"),
        (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),  # exact (a float division gave .998)
        (None, None),
    ],
)
def test_iso_ms_is_exact_and_round_trips(ms: int | None, text: str | None) -> None:
    assert iso_ms(ms) == text
    if text is not None:
        assert parse_iso_ms(text) == ms
