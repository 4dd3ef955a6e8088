"""Time values of SPEC §1 turned into epoch milliseconds (UTC).

Accepted ISO-8601 grammar (one definition for every decoder, including the native one)::

    YYYY-MM-DD [ (T|' ') hh [ :mm [ :ss [ .f{1,9} ] ] ] ] [ Z | ±hh [ [:]mm ] ]

A string without a zone is UTC. Fractions below a millisecond are floored. Integers are
epoch milliseconds, except Debezium's ``MicroTimestamp``/``NanoTimestamp`` which are told
apart by magnitude (|v| ≥ 10¹⁴ is µs, ≥ 10¹⁷ is ns: 10¹⁴ ms is the year 5138).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: what TIMESTAMP(3) can hold.
MIN_MS = -62_135_596_800_000
MAX_MS = 253_402_300_799_999

ISO_PATTERN = (
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_ISO = re.compile(ISO_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_iso_ms(text: str) -> int | None:
    """Epoch ms of an ISO-8601 string of the grammar above, or None when invalid."""
    m = _ISO.match(text)
    if m is None:
        return None
    y, mo, d, hh, mi, ss, frac, zone = m.groups()
    try:
        tz = UTC
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
            if minutes >= 24 * 60:
                return None
            tz = timezone(sign * timedelta(minutes=minutes))
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=tz)
    except ValueError:
        return None
    delta = dt - _EPOCH
    ms = (delta.days * 86_400 + delta.seconds) * 1000
    if frac:
        ms += int(frac.ljust(9, "0")[:3])
    return ms


def int_time_ms(value: int) -> int:
    """Normalise an integer time (ms, or Debezium µs/ns by magnitude) to epoch ms."""
    magnitude = abs(value)
    if magnitude >= 10**17:
        return value // 1_000_000
    if magnitude >= 10**14:
        return value // 1000
    return value


def in_range(ms: int) -> bool:
    """Whether ``ms`` fits a TIMESTAMP(3) between years 1 and 9999."""
    return MIN_MS <= ms <= MAX_MS


def iso_column_ms(values: pa.Array) -> pa.Array:
    """Vectorised :func:`parse_iso_ms` over a string array (nulls stay null, invalid → null).

    Arrow's own ISO parser does the work when the whole column parses under one of
    "zoned" or "naive"; only mixed or odd columns fall back to Python, per distinct value.
    """
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    ok = pc.match_substring_regex(values, ISO_PATTERN)
    for target in (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns")):
        try:
            parsed = pc.cast(values, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        ns_arr = parsed.cast(pa.int64())
        ns = pc.fill_null(ns_arr, 0).to_numpy(zero_copy_only=False)
        mask = ns_arr.is_null().to_numpy(zero_copy_only=False)
        ms = pa.array(np.floor_divide(ns, 1_000_000), pa.int64(), mask=mask)
        ms = pc.if_else(pc.fill_null(ok, False), ms, pa.scalar(None, pa.int64()))
        return _mask_range(ms)
    return _per_value(values)


def int_column_ms(values: pa.Array) -> pa.Array:
    """Vectorised :func:`int_time_ms` over an int64 array."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    arr = pc.fill_null(values, 0).to_numpy(zero_copy_only=False)
    mag = np.abs(arr)
    out = np.where(mag >= 10**17, arr // 1_000_000, np.where(mag >= 10**14, arr // 1000, arr))
    return _mask_range(pa.array(out, pa.int64(), mask=values.is_null().to_numpy(False)))


def _mask_range(ms: pa.Array) -> pa.Array:
    good = pc.and_(pc.greater_equal(ms, MIN_MS), pc.less_equal(ms, MAX_MS))
    return pc.if_else(good, ms, pa.scalar(None, pa.int64()))


def _per_value(values: pa.Array) -> pa.Array:
    uniq = pc.unique(values)
    parsed: dict[str, int | None] = {}
    for text in uniq.to_pylist():
        if text is None:
            continue
        ms = parse_iso_ms(text)
        parsed[text] = ms if ms is not None and in_range(ms) else None
    return pa.array([None if v is None else parsed[v] for v in values.to_pylist()], pa.int64())
