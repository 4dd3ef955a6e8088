"""Time values of SPEC §1 turned into epoch milliseconds (UTC).

Accepted ISO-8601 grammar (one definition for every decoder, including the native one)::

    YYYY-MM-DD [ (T|' ') hh [ :mm [ :ss [ .f{1,9} ] ] ] ] [ Z | ±hh [ [:]mm ] ]

matched against the whole string (nothing before or after, not even a final ``\n``);
every digit is an ASCII ``0-9``. Date and time-of-day fields must name a real instant
(hh < 24, mm < 60, ss < 60), a zone offset must have hh < 24 and mm < 60.
A string without a zone is UTC. Fractions below a millisecond are floored. Integers are
epoch milliseconds, except Debezium's ``MicroTimestamp``/``NanoTimestamp`` which are told
apart by magnitude (|v| ≥ 10¹⁴ is µs, ≥ 10¹⁷ is ns: 10¹⁴ ms is the year 5138).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta, timezone

#: 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: what TIMESTAMP(3) can hold.
MIN_MS = -62_135_596_800_000
MAX_MS = 253_402_300_799_999

ISO_PATTERN = (
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ]([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?)?)?"
    r"(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_ISO = re.compile(ISO_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_iso_ms(text: str) -> int | None:
    """Epoch ms of an ISO-8601 string of the grammar above, or None when invalid."""
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    y, mo, d, hh, mi, ss, frac, zone = m.groups()
    try:
        tz = UTC
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            hours, mins = int(digits[:2]), int(digits[2:4] or "0")
            if hours >= 24 or mins >= 60:
                return None
            tz = timezone(sign * timedelta(minutes=hours * 60 + mins))
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


@functools.lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    d = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=second)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds and a Z (None stays None); exact, cached per second."""
    if ms is None:
        return None
    second, milli = divmod(ms, 1000)
    return f"{_iso_second(second)}.{milli:03d}Z"
