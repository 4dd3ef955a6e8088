"""Parity of the native (Rust) decoders with the Python reference decoders.

The reference is ``DeltaDecoder().decode`` / ``DebeziumOrderDecoder().decode``, i.e.
``record`` applied line by line. These tests fail, not skip, when the extension
``inventory360_native`` is not importable (build it with ``pip install ./native``).
"""

from __future__ import annotations

import importlib
import json
import os
import unicodedata
from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory360.records import DELTA_SCHEMA, ORDER_SCHEMA, WHITESPACE, Decoded
from inventory360.sources import native
from inventory360.sources.debezium import DebeziumOrderDecoder
from inventory360.sources.deltas import DeltaDecoder
from inventory360.sources.timestamps import MAX_MS, MIN_MS, parse_iso_ms

pytestmark = pytest.mark.unit


def _load_extension() -> ModuleType | None:
    try:
        return importlib.import_module("inventory360_native")
    except ImportError:
        return None


EXT = _load_extension()


@pytest.fixture(autouse=True)
def _require_extension() -> None:
    if EXT is None:
        pytest.fail("inventory360_native is not importable: run `pip install ./native`")


# ---------------------------------------------------------------------------------------
# helpers


class Raw(str):
    """JSON text emitted verbatim by :func:`dumps` (numbers json.dumps cannot write)."""


def dumps(value: Any, ascii_only: bool = False, spaced: bool = False) -> str:
    """JSON text; an object may be a list of (key, value) pairs (to repeat keys)."""
    sep, colon = (", ", ": ") if spaced else (",", ":")
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Obj):
        inner = sep.join(
            f"{json.dumps(k, ensure_ascii=ascii_only)}{colon}{dumps(v, ascii_only, spaced)}" for k, v in value.pairs
        )
        return "{" + inner + "}"
    if isinstance(value, dict):
        return dumps(Obj(list(value.items())), ascii_only, spaced)
    if isinstance(value, list):
        return "[" + sep.join(dumps(v, ascii_only, spaced) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


class Obj:
    """A JSON object as ordered (key, value) pairs; keys may repeat."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


def line(value: Any, **kw: Any) -> bytes:
    return dumps(value, **kw).encode("utf-8", "surrogatepass") + b"\n"


def assert_same(got: Decoded, want: Decoded) -> None:
    assert got.table.schema == want.table.schema
    assert got.table.to_pylist() == want.table.to_pylist()
    assert got.table.equals(want.table)
    assert got.errors == want.errors
    assert got.skipped == want.skipped


Decoder = Callable[[], Any]


def check(native_cls: Decoder, ref_cls: Decoder, buf: bytes, whole: bool = False) -> None:
    """Native and reference give the same Decoded, or raise the same exception type.

    The reference is ``record`` line by line; with ``whole`` it is the reference's
    ``decode`` (the same thing, through its block splitting above 512 lines).
    """
    try:
        ref = ref_cls()
        want = ref.decode(buf) if whole else ref._line_by_line(buf, 0)
    except Exception as exc:  # the reference raises: so must the native decoder
        with pytest.raises(type(exc)):
            native_cls().decode(buf)
        return
    assert_same(native_cls().decode(buf), want)


def check_deltas(buf: bytes, whole: bool = False) -> None:
    check(native.NativeDeltaDecoder, DeltaDecoder, buf, whole)


def check_orders(buf: bytes, whole: bool = False) -> None:
    check(native.NativeDebeziumOrderDecoder, DebeziumOrderDecoder, buf, whole)


def _any(values: list[Any]) -> list[Any]:
    """A mixed-type list of edge values (typed for mypy)."""
    return values


def each_line(check_fn: Callable[[bytes], None], lines: list[bytes]) -> None:
    """Every line alone (clear failures), then all together (line indexes)."""
    for one in lines:
        check_fn(one)
    check_fn(b"".join(lines))


# ---------------------------------------------------------------------------------------
# shared edge values

ISO_GOOD = [
    "2026-11-23",
    "2026-11-23T10",
    "2026-11-23T10:05",
    "2026-11-23T10:05:07",
    "2026-11-23 10:05:07",
    "2026-11-23T10:05:07.1",
    "2026-11-23T10:05:07.12",
    "2026-11-23T10:05:07.123",
    "2026-11-23T10:05:07.1239",
    "2026-11-23T10:05:07.123456789",
    "2026-11-23T10:05:07.999999999Z",
    "2026-11-23T10:05:07Z",
    "2026-11-23Z",
    "2026-11-23T10Z",
    "2026-11-23T10:05:07+05",
    "2026-11-23T10:05:07+0530",
    "2026-11-23T10:05:07+05:30",
    "2026-11-23T10:05:07-08:00",
    "2026-11-23T10:05:07+23:59",
    "2026-11-23T10:05:07-23:59",
    "2026-11-23T10:05:07+00:59",
    "2026-11-23T10:05:07+0059",
    "2026-11-23T10:05:07.5-00:00",
    "2024-02-29",
    "2000-02-29T00:00",
    "1969-12-31T23:59:59.999Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59.999999Z",
]
ISO_BAD = [
    "",
    " ",
    "2026",
    "2026-11",
    "2026-1-23",
    "26-11-23",
    "2026/11/23",
    "2026-11-23T",
    "2026-11-23T1",
    "2026-11-23T10:5",
    "2026-11-23T10:05:7",
    "2026-11-23T10:05:07.",
    "2026-11-23T10:05:07.1234567891",
    "2026-11-23t10:05:07",
    "2026-11-23T10:05:07z",
    "2026-11-23T10:05:07 Z",
    "2026-11-23T10:05:07+5",
    "2026-11-23T10:05:07+05:3",
    "2026-11-23T10:05:07+053",
    "2026-11-23T10:05:07+05:",
    "2026-11-23T10:05:07+24:00",
    "2026-11-23T10:05:07+2400",
    "2026-11-23T10:05:07+23:60x",
    "2026-11-23T10:05:07+00:60",
    "2026-11-23T10:05:07+00:99",
    "2026-11-23T10:05:07-05:99",
    "2026-11-23T10:05:07+0560",
    "2026-11-23T10:05:07-0099",
    "2026-11-23T10:05:07+99",
    "2026-11-23T24:00",
    "2026-11-23T23:60",
    "2026-11-23T23:59:60",
    "2026-02-29",
    "1900-02-29",
    "2026-13-01",
    "2026-00-01",
    "2026-04-31",
    "2026-01-00",
    "0000-01-01",
    "10000-01-01",
    " 2026-11-23",
    "2026-11-23 ",
    "2026-11-23\n",
    "2026-11-23T10:05:07Z\n",
    "2026-11-23T10:05:07.123Z\n",
    "2026-11-23T10:05:07+05:30\n",
    "2026-11-23\n\n",
    "\n2026-11-23",
    "2026-11-23\r",
    "2026-11-23T10:05:07.123Z\n ",
    "2026-11-23T10:05:07Zx",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59.999-00:01",
    "2026-11-23T10:05:07.12a",
    "２０２６-１１-２３T１０:０５:０７.１２３Z",
    "２０２６-11-23",
    "٢٠٢٦-11-23",
    "2026-11-23T10:05:07.१२३+०५:३०",
    "2026-11-23T10:05:07.12३Z",
    "2026-11-2３",
    "2026-11-23T1０:05",
    "2026-11-23T10:05:07+0５:30",
    "2026-11-23T10:05:07+05:3０",
]
INTS = [
    0,
    1,
    -1,
    1_700_000_000_000,
    -1_700_000_000_000,
    MIN_MS,
    MIN_MS - 1,
    MAX_MS,
    MAX_MS + 1,
    10**14 - 1,
    10**14,
    -(10**14),
    -(10**14) - 1,
    1_700_000_000_000_000,
    -1_700_000_000_000_001,
    10**17 - 1,
    10**17,
    -(10**17) - 1,
    1_700_000_000_000_000_000,
    -1_700_000_000_000_000_001,
    MAX_MS * 1000 + 999,
    (MAX_MS + 1) * 1000,
    MIN_MS * 1000,
    MIN_MS * 1000 - 1,
    2**63 - 1,
    -(2**63),
]
NUMBER_TOKENS = [
    Raw("-0"),
    Raw("0.0"),
    Raw("-0.0"),
    Raw("5.0"),
    Raw("1e2"),
    Raw("1E+2"),
    Raw("2.5"),
    Raw("9223372036854775808"),
    Raw("-9223372036854775809"),
    Raw("18446744073709551615"),
    Raw("18446744073709551616"),
    Raw("123456789012345678901234567890"),
    Raw("1" + "0" * 400),
    Raw("1e308"),
    Raw("1e-999"),
]
JUNK_VALUES: list[Any] = [None, True, False, [], [1, "a"], {}, {"a": {"b": [None]}}, 2.5]


# ---------------------------------------------------------------------------------------
# deltas: hand-written cases

DELTA = {
    "event_id": "e-1",
    "sku_id": "SKU-1",
    "warehouse_id": "WH-1",
    "available_delta": 5,
    "event_time": "2026-11-23T10:00:00.123Z",
}


def delta(**changes: Any) -> dict[str, Any]:
    rec = dict(DELTA)
    for k, v in changes.items():
        if v is ...:
            rec.pop(k, None)
        else:
            rec[k] = v
    return rec


def test_delta_fields_every_reason() -> None:
    lines = [line(DELTA), line(delta(event_id=...))]
    for name in ("sku_id", "warehouse_id"):
        for v in _any([..., None, 5, True, [], {}, "", "   ", "\u3000\x85\t", " x ", "\u00a0ü\u2009", 2.5]):
            lines.append(line(delta(**{name: v})))
    for v in _any([..., None, "5", 5.0, True, False, [], {}, *INTS, *NUMBER_TOKENS[:-3]]):
        lines.append(line(delta(available_delta=v)))
    for v in _any([..., None, True, "", "x", [], {}, *INTS, *NUMBER_TOKENS[:-3]]):
        lines.append(line(delta(event_time=v)))
    for v in _any([..., None, 5, True, [], {}, "", "  ", "\u2028", " id ", "x\u3000"]):
        lines.append(line(delta(event_id=v)))
    each_line(check_deltas, lines)


def test_delta_iso_grammar() -> None:
    texts = ISO_GOOD + ISO_BAD
    assert all(parse_iso_ms(t) is not None for t in ISO_GOOD)
    assert not any(parse_iso_ms(t) is not None and t[:4] != "0001" and t[:4] != "9999" for t in ISO_BAD)
    each_line(check_deltas, [line(delta(event_time=t)) for t in texts])


def test_delta_not_objects_and_invalid_json() -> None:
    lines = [
        b"null\n",
        b"5\n",
        b'"x"\n',
        b"[]\n",
        b"true\n",
        b"{\n",
        b"}\n",
        b'{"sku_id":"a",}\n',
        b"{'sku_id':'a'}\n",
        b"NaN\n",
        b'{"available_delta": NaN}\n',
        b"\xef\xbb\xbf{}\n",
        b"\x0c{}\n",
        b"{}\x0c\n",
        b"{} {}\n",
        b'{"a":"\x01"}\n',
        b'{"a":"\xff"}\n',
        b'{"a":"\xc0\x80"}\n',
        b'{"a":"\xed\xa0\x80"}\n',
        b'{"a":"\xf4\x90\x80\x80"}\n',
        b'{"a":"\\ud800"}\n',
        b'{"a":"\\udc00"}\n',
        b'{"a":"\\ud800\\u0041"}\n',
        b'{"a":"\\x"}\n',
        b'{"a":"\\u12"}\n',
        b'{"a":01}\n',
        b'{"a":1.}\n',
        b'{"a":-}\n',
        b'{"a":1e999}\n',
        b'{"a":-1e999}\n',
        b'{"a":' + b"1" * 400 + b"}\n",
        b'{"a":tru}\n',
        b'{"a" 1}\n',
        b'{"a":1 "b":2}\n',
        b"{1:2}\n",
        b'{"a":[1,]}\n',
        b'{"a":[1 2]}\n',
        b'{"a":"x\xe2\x80"}\n',
        b'"unterminated\n',
        b"\x00\n",
        b"\xff\n",
    ]
    for depth in (1023, 1024, 1025):
        body = b'{"sku_id":"a","x":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
        lines.append(body + b"\n")
        lines.append(b"[" * depth + b"]" * depth + b"\n")
    each_line(check_deltas, lines)


def test_delta_json_forms() -> None:
    good = line(DELTA)
    lines = [
        good,
        good[:-1] + b"\r\n",
        b"  \t" + good[:-1] + b" \t\r\n",
        line(DELTA, ascii_only=True, spaced=True),
        line(delta(sku_id="ü\u2603\U0001f600 é"), ascii_only=True),
        line(delta(sku_id="ü\u2603\U0001f600 é")),
        line(delta(sku_id='a"b\\c/d\b\f\n\r\t\x00\x7f')),
        b'{"\\u0073ku_id":"x","warehouse_id":"w","available_delta":1,"event_time":1}\n',
        b'{"sku_id":"\\ud83d\\ude00","warehouse_id":"w","available_delta":1,"event_time":1}\n',
        b'{"sku_id":"a\\/b","warehouse_id":"\\u0020w\\u3000","available_delta":1,"event_time":1}\n',
        line(Obj([*DELTA.items(), ("sku_id", "later")])),
        line(Obj([*DELTA.items(), ("sku_id", None)])),
        line(Obj([*DELTA.items(), ("available_delta", "x")])),
        line(Obj([("available_delta", "x"), *DELTA.items()])),
        line(delta(extra={"deep": [[[{"x": [1.5e300, -0, None]}]]]})),
        line(delta(available_delta=Raw("-0"))),
        line(delta(event_time=Raw("1700000000000"))),
        line(delta(event_time=Raw("1700000000000.0"))),
        line(delta(event_time="2026-11-23T10:00:00Z\n")),
    ]
    each_line(check_deltas, lines)


def test_delta_blank_lines_and_partial_tail() -> None:
    good = line(DELTA)
    for buf in [
        b"",
        b"\n",
        b"\n\n\n",
        b" \n\t\n\r\n\x0b\x0c\n",
        good + b"\n" + good + b"   \n",
        good + b"\x85\n",
        good + b"\xc2\xa0\n",
        good + good[:-5],
        good[:-1],
        b"\r\n" + good,
    ]:
        check_deltas(buf)


def test_delta_large_batch_matches_reference_decode() -> None:
    """Above 512 lines the reference splits the buffer into blocks: still the same result."""
    lines = []
    for i in range(3000):
        kind = i % 10
        if kind == 3:
            lines.append(line(delta(sku_id="")))
        elif kind == 5:
            lines.append(b"\n")
        elif kind == 7:
            lines.append(line(delta(event_time="2026-13-01T00:00:00Z")))
        else:
            lines.append(line(delta(sku_id=f"SKU-{i}", available_delta=i - 1500)))
    buf = b"".join(lines)
    check_deltas(buf)
    check_deltas(buf, whole=True)


def test_delta_int_times_large_batch() -> None:
    lines = [line(delta(event_time=v)) for v in INTS] * 40
    check_deltas(b"".join(lines))


# ---------------------------------------------------------------------------------------
# Debezium: hand-written cases

AFTER = {
    "order_id": 1001,
    "line_no": 1,
    "sku_id": "SKU-1",
    "warehouse_selection": "WH-1",
    "quantity": 2,
    "status": "reserved",
    "updated_at": "2026-11-23T10:00:00.123Z",
}
SOURCE = {
    "version": "2.7.0.Final",
    "connector": "mariadb",
    "name": "shop",
    "ts_ms": 1795428000000,
    "snapshot": "false",
    "db": "shop",
    "table": "order_lines",
    "server_id": 1,
    "gtid": "0-1-42",
    "file": "mysql-bin.000003",
    "pos": 4711,
    "row": 2,
    "thread": 7,
    "query": None,
}


def env(op: Any = "u", **changes: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "before": {**AFTER, "status": "new"},
        "after": dict(AFTER),
        "source": dict(SOURCE),
        "op": op,
        "ts_ms": 1795428000500,
        "transaction": None,
    }
    if op is ...:
        del rec["op"]
    for k, v in changes.items():
        if v is ...:
            rec.pop(k, None)
        else:
            rec[k] = v
    return rec


def image(**changes: Any) -> dict[str, Any]:
    rec = dict(AFTER)
    for k, v in changes.items():
        if v is ...:
            rec.pop(k, None)
        else:
            rec[k] = v
    return rec


def wrapped(payload: Any) -> dict[str, Any]:
    return {"schema": {"type": "struct", "fields": [{"field": "op"}]}, "payload": payload}


def test_orders_envelopes_and_tombstones() -> None:
    lines = [
        line(env("c")),
        line(env("r")),
        line(env("u")),
        line(env("d", after=None)),
        line(wrapped(env("c"))),
        line(wrapped(env("d", after=None))),
        b"null\n",
        b"  null \r\n",
        line(wrapped(None)),
        line({"payload": None}),
        line({"payload": 5}),
        line({"payload": "x"}),
        line({"payload": []}),
        line({"payload": env("c"), "op": "c", "after": image(sku_id="TOP")}),
        line({"payload": env("c"), "op": None}),
        line(Obj([("payload", env("c")), ("payload", env("r"))])),
        line(Obj([("payload", env("c")), ("payload", None)])),
        line(Obj([("payload", None), ("payload", env("u"))])),
        line(wrapped({**env("c"), "payload": None})),
        b"5\n",
        b'"x"\n',
        b"[]\n",
        b"true\n",
        line({}),
        line(wrapped({})),
        b"{}}\n",
        line(env("u"))[:-2] + b"\n",
    ]
    each_line(check_orders, lines)


def test_orders_op_and_images_every_reason() -> None:
    lines = []
    for op in _any([..., None, "x", "C", "", " c", 5, True, 2.5, Raw("1e2")]):
        lines.append(line(env(op)))
        lines.append(line(wrapped(env(op))))
    for side, op in (("after", "c"), ("after", "u"), ("before", "d")):
        for v in _any([..., None, 5, "x", [], True]):
            lines.append(line(env(op, **{side: v})))
    lines.append(line(env("d", before=image(order_id=None))))
    for name in ("order_id", "line_no"):
        for v in _any([..., None, "", "  ", " 42 ", "A-1", 0, -5, 2**63 - 1, True, 2.5, [], {}]):
            lines.append(line(env("c", after=image(**{name: v}))))
            lines.append(line(env("d", before=image(**{name: v}))))
        for tok in NUMBER_TOKENS[:-3]:
            lines.append(line(env("u", after=image(**{name: tok}))))
    for name in ("sku_id", "warehouse_selection", "status"):
        for v in _any([..., None, "", " \u3000", 5, True, [], {}, " v "]):
            lines.append(line(env("u", after=image(**{name: v}))))
            lines.append(line(env("d", before=image(**{name: v}))))
    for v in _any([..., None, -1, 0, 7, "2", 2.0, True, *NUMBER_TOKENS[:-3], -(2**63)]):
        lines.append(line(env("c", after=image(quantity=v))))
        lines.append(line(env("d", before=image(quantity=v))))
    each_line(check_orders, lines)


def test_orders_status_upper() -> None:
    statuses = [
        "reserved",
        " Reserved\t",
        "straße",
        "ﬁnal",
        "ǆ",
        "ǅ",
        "ŉ",
        "ΐ",
        "istanbul İ ı",
        "ꭰ",
        "\U00010428",
        "ⓐ",
        "µ",
        "ÿ",
        "ǰ̌",
        "Σς",
    ]
    lines = [line(env("u", after=image(status=s))) for s in statuses]
    lines += [line(env("u", after=image(status=s)), ascii_only=True) for s in statuses]
    each_line(check_orders, lines)


def test_orders_times() -> None:
    lines = []
    for v in ISO_GOOD + ISO_BAD + INTS + [True, 2.5, [], {}, *NUMBER_TOKENS[:-3]]:
        lines.append(line(env("u", after=image(updated_at=v))))
        lines.append(line(env("d", before=image(updated_at=v))))
    for v in _any([..., None, "1795428000500", 2.5, True, [], *INTS, *NUMBER_TOKENS[:-3]]):
        lines.append(line(env("u", ts_ms=v)))
        lines.append(line(env("u", ts_ms=v, after=image(updated_at=None))))
        lines.append(line(env("u", ts_ms=v, after=image(updated_at=...))))
        lines.append(line(env("d", ts_ms=v, after=None)))
    lines.append(line(env("u", ts_ms=..., after=image(updated_at="bad"))))
    each_line(check_orders, lines)


def test_orders_positions() -> None:
    lines = []
    for junk in _any([..., None, 5, "x", [], {}]):
        lines.append(line(env("u", source=junk)))
    fields: dict[str, list[Any]] = {
        "file": [
            ...,
            None,
            "",
            " ",
            5,
            [],
            "abc",
            "mysql-bin.000003",
            "mysql-bin.3",
            "bin-12x",
            "12",
            "x٣٤",
            "x１２",
            "bin.12\n",
            "bin.12\n\n",
            "12\n3",
            "\n",
            "bin.9223372036854775807",
            "bin.9223372036854775808",
            "bin.9999999999999999999",
            "bin.1000000000000000000",
            "bin." + "0" * 30 + "7",
            "bin." + "0" * 30 + "9223372036854775807",
            "bin." + "0" * 30,
            "bin.0",
            "bin." + "1" * 20,
            "bin." + "1" * 700,
            "bin." + "٠" * 19 + "1",
            "bin." + "٠" * 18 + "1",
            "bin.0٠0١",
            "bin.1٢",
            "bin.٢1",
            "bin.٢01",
            "bin.１２",
            "bin.12\r",
            "bin.0\n",
            "bin.٩٢٢٣٣٧٢٠٣٦٨٥٤٧٧٥٨٠٨",
            "bin.12\n",
            "bin." + "0" * 25 + "\n",
        ],
        "pos": [..., None, "4", 4.0, True, -1, 0, 2**63 - 1, Raw("9223372036854775808")],
        "row": [..., None, "1", 1.5, True, -3, 0, 2**63 - 1, Raw("18446744073709551615")],
    }
    for name, values in fields.items():
        for v in values:
            src: dict[str, Any] = dict(SOURCE)
            if v is ...:
                del src[name]
            else:
                src[name] = v
            lines.append(line(env("u", source=src)))
            lines.append(line(wrapped(env("d", after=None, source=src))))
    lines.append(line(Obj([("source", SOURCE), ("source", 5)])))
    lines.append(line(env("u", source=Obj([*SOURCE.items(), ("file", "b.9"), ("pos", 1)]))))
    lines.append(line(env("u", source=Obj([*SOURCE.items(), ("pos", "x")]))))
    each_line(check_orders, lines)


def test_orders_repeated_keys() -> None:
    lines = [
        line(Obj([*env("u").items(), ("after", 5)])),
        line(Obj([*env("u").items(), ("after", image(sku_id=...))])),
        line(Obj([("after", image(sku_id="first")), *env("u").items()])),
        line(env("u", after=Obj([*image().items(), ("quantity", -1)]))),
        line(env("u", after=Obj([*image().items(), ("quantity", None)]))),
        line(Obj([*env("u").items(), ("op", "d")])),
        line(Obj([*env("u").items(), ("op", None)])),
        line(Obj([("op", None), *env("c").items()])),
    ]
    each_line(check_orders, lines)


@pytest.mark.parametrize(
    "bad",
    [
        env([]),
        env({}),
        env(["c"]),
        wrapped(env([1])),
        env("u", source={**SOURCE, "file": "bin.9223372036854775808"}),
        env("u", source={**SOURCE, "file": "bin." + "9" * 30}),
        env("u", source={**SOURCE, "file": "bin." + "1" * 5000}),
    ],
)
def test_orders_odd_lines_never_raise(bad: dict[str, Any]) -> None:
    """Unhashable ops and binlog file numbers beyond int64: dead letter or no position, never a crash."""
    buf = line(env("c")) + line(bad)
    ref = DebeziumOrderDecoder().decode(buf)
    nat = native.NativeDebeziumOrderDecoder().decode(buf)
    assert nat.table.equals(ref.table)
    assert nat.errors == ref.errors
    assert ref.table.num_rows + len(ref.errors) == 2


def test_orders_unhashable_op_after_other_error_is_an_error() -> None:
    """The unhashable op is only reached when the envelope passed the payload checks."""
    check_orders(line({"payload": 5, "x": []}) + line(wrapped([])))


def test_orders_large_batch_matches_reference_decode() -> None:
    lines = []
    for i in range(2600):
        kind = i % 13
        if kind == 1:
            lines.append(line(wrapped(env("d", after=None))))
        elif kind == 4:
            lines.append(b"null\n")
        elif kind == 6:
            lines.append(line(env("u", after=image(quantity=-1))))
        elif kind == 9:
            lines.append(b"{oops\n")
        else:
            lines.append(line(env("u", after=image(order_id=10_000 + i, status=f" s{i % 3} "))))
    buf = b"".join(lines)
    check_orders(buf)
    check_orders(buf, whole=True)


def test_orders_nesting_depth() -> None:
    lines = []
    for depth in (1020, 1021, 1022, 1023, 1024):
        junk = Raw("[" * depth + "]" * depth)
        lines.append(line(env("u", after=image(extra=junk))))
        lines.append(line(wrapped(env("u", after=image(extra=junk)))))
        lines.append(line(wrapped(env("u", source={**SOURCE, "x": junk}))))
    each_line(check_orders, lines)


# ---------------------------------------------------------------------------------------
# Unicode tables, helpers, chunking, factories


def test_unicode_tables_match_this_python() -> None:
    assert EXT is not None
    assert unicodedata.unidata_version == EXT.UNICODE_VERSION, "regenerate native tables"
    chars = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert EXT.upper(chars) == chars.upper()
    assert EXT.strip(WHITESPACE + "x" + WHITESPACE) == "x"


def test_only_ascii_digits_are_digits() -> None:
    """Every Unicode decimal digit (and a few look-alikes) in every digit slot of a time."""
    assert EXT is not None
    chars = [chr(c) for c in range(0x110000) if chr(c).isdecimal() or chr(c).isdigit()] + ["\n", "\x00", "/", ":"]
    for ch in chars:
        for text in (
            f"2026-01-1{ch}T1{ch}:00:0{ch}.{ch}{ch}Z",
            f"2{ch}2{ch}-01-1{ch}",
            f"2026-01-01T00+1{ch}:0{ch}",
            f"2026-01-01T00:00:00.12{ch}",
        ):
            want = parse_iso_ms(text)
            assert (want is not None) == ("0" <= ch <= "9"), (hex(ord(ch)), text)
            assert EXT.parse_iso_ms(text) == want, (hex(ord(ch)), text)


def test_parse_iso_matches_reference() -> None:
    assert EXT is not None
    for text in ISO_GOOD + ISO_BAD:
        assert EXT.parse_iso_ms(text) == parse_iso_ms(text), text


def test_chunked_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [line(delta(sku_id=f"S{i}")) if i % 4 else b"bad\n" for i in range(200)]
    buf = b"".join(lines)
    want = DeltaDecoder().decode(buf)
    monkeypatch.setattr(native, "MAX_CHUNK", 700)
    assert_same(native.NativeDeltaDecoder().decode(buf), want)
    olines = [line(env("u")) if i % 3 else b"null\n" for i in range(60)]
    obuf = b"".join(olines) + b"{partial"
    owant = DebeziumOrderDecoder().decode(obuf)
    assert_same(native.NativeDebeziumOrderDecoder().decode(obuf), owant)


def test_pooled_buffers_are_reused_only_when_released() -> None:
    """Column buffers go back to the extension's pool when Arrow drops them, never before."""

    def batch(tag: int) -> bytes:
        return b"".join(line(delta(sku_id=f"S{tag}-{i}", available_delta=tag * 100_000 + i)) for i in range(40_000))

    dec = native.NativeDeltaDecoder()
    first = dec.decode(batch(1))
    snapshot = first.table.to_pydict()
    second = dec.decode(batch(2))
    assert first.table.to_pydict() == snapshot
    expected_second = second.table.to_pydict()
    del first
    third = dec.decode(batch(3))  # may reuse the buffers of the first table
    assert second.table.to_pydict() == expected_second
    assert third.table["available_delta"].to_pylist() == [300_000 + i for i in range(40_000)]
    assert third.table["sku_id"][39_999].as_py() == "S3-39999"


def test_available_and_factories(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.ENV_SWITCH, raising=False)
    assert native.available()
    assert type(native.delta_decoder()) is native.NativeDeltaDecoder
    assert type(native.order_decoder()) is native.NativeDebeziumOrderDecoder
    monkeypatch.setenv(native.ENV_SWITCH, "0")
    assert not native.available()
    assert type(native.delta_decoder()) is DeltaDecoder
    assert type(native.order_decoder()) is DebeziumOrderDecoder
    monkeypatch.setenv(native.ENV_SWITCH, "1")
    assert native.available()


def test_empty_tables_have_the_schemas() -> None:
    assert native.NativeDeltaDecoder().decode(b"x\n").table.schema == DELTA_SCHEMA
    assert native.NativeDebeziumOrderDecoder().decode(b"").table.schema == ORDER_SCHEMA


def test_memoryview_input() -> None:
    buf = line(DELTA) * 3
    assert_same(native.NativeDeltaDecoder().decode(memoryview(buf)), DeltaDecoder().decode(buf))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# property tests

#: Raise for deeper local runs, e.g. INV360_PARITY_EXAMPLES=5000.
EXAMPLES = int(os.environ.get("INV360_PARITY_EXAMPLES", "120"))

_DIGIT = st.sampled_from("0123456789")


def _often(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``good``; one time in ten ``bad``, one in twenty absent (``...``)."""
    return st.integers(0, 19).flatmap(lambda k: good if k < 17 else (bad if k < 19 else st.just(...)))


@st.composite
def iso_texts(draw: st.DrawFn) -> str:
    """Strings near the ISO grammar: valid forms, near misses, odd digits and suffixes."""

    def digits(n: int) -> str:
        return "".join(draw(_DIGIT) for _ in range(n))

    year = draw(
        st.sampled_from(["2026", "1970", "0001", "9999", "0000", "2024", "１９７０"]) | st.builds(digits, st.just(4))
    )
    month = draw(st.sampled_from(["01", "02", "12", "00", "13", "1", "٠٢"]))
    day = draw(st.sampled_from(["01", "28", "29", "30", "31", "32", "00"]))
    text = f"{year}-{month}-{day}"
    if draw(st.booleans()):
        text += draw(st.sampled_from(["T", " ", "t", "_"]))
        text += draw(st.sampled_from(["00", "23", "24", "9", "10"]))
        if draw(st.booleans()):
            text += ":" + draw(st.sampled_from(["00", "59", "60", "5"]))
            if draw(st.booleans()):
                text += ":" + draw(st.sampled_from(["00", "59", "60"]))
                if draw(st.booleans()):
                    text += "." + digits(draw(st.integers(0, 11)))
    zones = ["", "", "Z", "z", "+05", "-0800", "+05:30", "+23:59", "+24:00", "+5", "-00:99", "+05:60", "-0559", "+0５"]
    text += draw(st.sampled_from(zones))
    text += draw(st.sampled_from(["", "", "", "\n", "\n\n", " ", "x", "５"]))
    if draw(st.integers(0, 9)) == 0 and text:
        cut = draw(st.integers(0, len(text) - 1))
        text = text[:cut] + text[cut + 1 :]
    return text


@st.composite
def good_iso(draw: st.DrawFn) -> str:
    """A valid ISO time of the grammar, in one of its forms."""
    dt = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    text = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"
    level = draw(st.integers(0, 4))
    if level:
        text += draw(st.sampled_from("T ")) + f"{dt.hour:02d}"
    if level > 1:
        text += f":{dt.minute:02d}"
    if level > 2:
        text += f":{dt.second:02d}"
    if level > 3:
        text += "." + f"{dt.microsecond:06d}{draw(st.integers(0, 999)):03d}"[: draw(st.integers(1, 9))]
    text += draw(st.sampled_from(["", "Z", "Z", "+01:00", "-0530", "+14", "-23:59"]))
    return text


_SHORT = st.text(st.sampled_from(list("abcXYZ-_09.é\u3000ßǅﬁ\x85 \t")), max_size=6)
_UNI = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6)
_REGULAR_ID = st.from_regex(r"[A-Z]{2,4}-[0-9]{1,6}", fullmatch=True)
_ID = st.one_of(_REGULAR_ID, _REGULAR_ID, _REGULAR_ID, _SHORT, _UNI)
_INT = st.sampled_from(INTS) | st.integers(-(2**64), 2**64)
_NUM = st.sampled_from(NUMBER_TOKENS) | st.floats(allow_nan=False, allow_infinity=False)
_SCALAR = st.none() | st.booleans() | _INT | _NUM | _SHORT | iso_texts()
_JSON = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_SHORT, inner, max_size=3),
    max_leaves=6,
)
_TIME = _often(
    good_iso() | st.integers(MIN_MS, MAX_MS) | st.integers(MIN_MS * 1000, MAX_MS * 1000),
    iso_texts() | _INT | _SCALAR,
)


@st.composite
def objects(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> Obj:
    """An object of ``fields`` (absent when drawn as ``...``), shuffled, maybe with extra
    or repeated keys."""
    pairs = [(k, draw(v)) for k, v in fields.items()]
    pairs = [(k, v) for k, v in pairs if v is not ...]
    if draw(st.integers(0, 7)) == 0:
        key = draw(st.sampled_from(list(fields)))
        value = draw(fields[key])
        if value is not ...:
            pairs.append((key, value))
    if draw(st.integers(0, 7)) == 0:
        pairs.append((draw(_SHORT), draw(_JSON)))
    if draw(st.booleans()):
        pairs = draw(st.permutations(pairs))
    return Obj(pairs)


DELTA_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_id": _often(_ID, _JSON),
    "sku_id": _often(_ID, _JSON),
    "warehouse_id": _often(_ID, _JSON),
    "available_delta": _often(st.integers(-(2**63), 2**63 - 1), _JSON),
    "event_time": _TIME,
}
IMAGE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "order_id": _often(st.integers(-(2**63), 2**63 - 1) | _ID, _JSON),
    "line_no": _often(st.integers(0, 99) | _ID, _JSON),
    "sku_id": _often(_ID, _JSON),
    "warehouse_selection": _often(_ID, _JSON),
    "quantity": _often(st.integers(0, 2**63 - 1), st.integers(-3, 2**64) | _JSON),
    "status": _often(st.sampled_from(["reserved", " new ", "Shipped", "straße"]) | _ID, _JSON),
    "updated_at": _TIME,
}
SOURCE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "connector": st.just("mariadb"),
    "file": _often(
        st.sampled_from(["mysql-bin.000003", "b.9", "x", "b.٣", "b.1\n", "12\n3", "b.1٣", "b.٣1", "b.0１"])
        | st.builds(lambda z, d: "b." + "0" * z + d, st.integers(0, 25), st.from_regex(r"[0-9]{1,21}", fullmatch=True)),
        st.sampled_from(["", None, 5]) | _SHORT,
    ),
    "pos": _often(st.integers(0, 2**40), _SCALAR),
    "row": _often(st.integers(0, 9), _SCALAR),
}
_OP = st.sampled_from(["c", "r", "u", "d", "u", "u", "d"])
ENV_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "op": _often(_OP, _JSON),
    "before": _often(objects(IMAGE_FIELDS), _SCALAR),
    "after": _often(objects(IMAGE_FIELDS), _SCALAR),
    "source": _often(objects(SOURCE_FIELDS), _SCALAR),
    "ts_ms": _often(st.integers(MIN_MS, MAX_MS), _INT | _SCALAR),
}


@st.composite
def envelopes(draw: st.DrawFn) -> Any:
    """Debezium values: wrapped or bare envelopes, tombstones, odd payloads."""
    body = draw(objects(ENV_FIELDS))
    kind = draw(st.integers(0, 19))
    if kind < 8:
        return Obj([("schema", {"type": "struct"}), ("payload", body)])
    if kind == 8:
        return draw(st.sampled_from([None, Obj([("payload", None)]), 5, "x", Obj([])]))
    if kind == 9:
        return Obj([("payload", body), ("op", draw(_OP))])
    return body


def _mutate(data: bytes, draw: st.DrawFn) -> bytes:
    """Damage a line: cut, drop, replace or insert bytes (often invalid JSON / UTF-8)."""
    junks = [b"\xff", b"\xc3", b"\x00", b'"', b"\\", b"{", b"]", b",", b"\\u", b"\xed\xa0\x80"]
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.integers(0, 3))
        junk = draw(st.sampled_from(junks))
        if how == 0:
            data = data[:at]
        elif how == 1:
            data = data[:at] + data[at + 1 :]
        elif how == 2:
            data = data[:at] + junk + data[at + 1 :]
        else:
            data = data[:at] + junk + data[at:]
    return data.replace(b"\n", b" ")


@st.composite
def lines_of(draw: st.DrawFn, records: st.SearchStrategy[Any]) -> bytes:
    """A buffer: mostly records (some damaged), junk bytes, blank lines, odd line ends."""
    out = []
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.integers(0, 19))
        if kind < 16:
            value = draw(records)
            text = dumps(value, ascii_only=draw(st.booleans()), spaced=draw(st.booleans()))
            data = text.encode("utf-8", "surrogatepass").replace(b"\n", b"\\n")
            if kind == 15:
                data = _mutate(data, draw)
        elif kind == 16:
            data = draw(st.binary(max_size=20)).replace(b"\n", b"")
        elif kind == 17:
            data = draw(st.sampled_from([b"", b" ", b"\t\r", b"\x0b", b"null", b"{}", b"\xc2\xa0"]))
        else:
            data = dumps(draw(_JSON)).encode("utf-8", "surrogatepass").replace(b"\n", b" ")
        end = draw(st.sampled_from([b"\n", b"\n", b"\n", b"\r\n", b" \n"]))
        out.append(data + end)
    tail = draw(st.sampled_from([b"", b"", b'{"partial"']))
    return b"".join(out) + tail


_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_SETTINGS
@given(lines_of(objects(DELTA_FIELDS)))
def test_property_deltas(buf: bytes) -> None:
    check_deltas(buf)


@_SETTINGS
@given(lines_of(envelopes()))
def test_property_orders(buf: bytes) -> None:
    check_orders(buf)


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(iso_texts() | good_iso())
def test_property_iso(text: str) -> None:
    assert EXT is not None
    assert EXT.parse_iso_ms(text) == parse_iso_ms(text)
