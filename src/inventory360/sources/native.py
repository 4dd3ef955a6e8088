"""Native (Rust) decoders: the reference decoders' exact results, many times faster.

The extension module ``inventory360_native`` (crate ``native/``, ``pip install ./native``)
parses whole buffers of lines with the GIL released and hands back Arrow column buffers;
this module wraps them into :class:`~inventory360.records.Decoded` with exactly
:data:`~inventory360.records.DELTA_SCHEMA` / :data:`~inventory360.records.ORDER_SCHEMA`.

Contract: for any ``buf`` (complete lines, each ending in ``b"\\n"``; a trailing partial
line is ignored), ``NativeDeltaDecoder().decode(buf)`` equals the per-record reference
``DeltaDecoder.record`` applied line by line (same rows and values, same error line
indexes and reason strings, same skipped count), and likewise for
``NativeDebeziumOrderDecoder`` / ``DebeziumOrderDecoder.record``. ``record`` itself is
inherited unchanged and stays the reference; the pure-Python decoders' ``decode`` is
``record`` line by line, so this is the only fast path.

Set ``INV360_NATIVE=0`` to make :func:`available` false (the factories then return the
pure-Python decoders).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from inventory360.records import DELTA_SCHEMA, ORDER_SCHEMA, Decoded
from inventory360.sources.base import RecordDecoder
from inventory360.sources.debezium import DebeziumOrderDecoder
from inventory360.sources.deltas import DeltaDecoder

#: Environment variable that disables the native decoders when set to ``"0"``.
ENV_SWITCH = "INV360_NATIVE"

#: Buffers larger than this are decoded in pieces (string offsets are int32).
MAX_CHUNK = 256 << 20


def _load() -> ModuleType | None:
    try:
        return importlib.import_module("inventory360_native")
    except ImportError:
        return None


_native = _load()


def available() -> bool:
    """Whether the extension is importable and not disabled by ``INV360_NATIVE=0``."""
    return _native is not None and os.environ.get(ENV_SWITCH) != "0"


def key_map() -> Any:
    """A new native ``KeyMap`` (see :mod:`inventory360.engine.index`)."""
    if _native is None:
        raise RuntimeError("inventory360_native is not installed (pip install ./native)")
    return _native.KeyMap()


#: An Arrow string array as the extension takes it: ``(validity address or 0, offsets
#: address, data address or 0, offset, large)``. The caller keeps the array alive.
StringSpec = tuple[int, int, int, int, bool]


def string_spec(arr: pa.Array) -> StringSpec:
    """The addresses of a live ``string``/``large_string`` array for the extension."""
    valid, offsets, data = arr.buffers()[:3]
    return (
        valid.address if valid is not None and arr.null_count else 0,
        offsets.address,
        data.address if data is not None and data.size else 0,
        arr.offset,
        pa.types.is_large_string(arr.type),
    )


def paimon_bucket_order(columns: Sequence[pa.Array], buckets: int) -> tuple[np.ndarray, list[int]]:
    """Paimon's fixed bucket of each row of the string key ``columns``.

    Returns the row numbers grouped by bucket and sorted by key inside each bucket, and
    the number of rows of each bucket (see ``native/src/paimon.rs``).
    """
    if _native is None:
        raise RuntimeError("inventory360_native is not installed (pip install ./native)")
    perm, counts = _native.paimon_bucket_order([string_spec(c) for c in columns], len(columns[0]), buckets)
    return np.frombuffer(perm, dtype=np.int64), list(counts)


def int64_arg(arr: np.ndarray, writable: bool = False) -> tuple[int, int]:
    """``(address, count)`` of a contiguous int64 array, checked, for the extension."""
    if arr.dtype != np.int64 or arr.ndim != 1 or not arr.flags.c_contiguous or (writable and not arr.flags.writeable):
        raise ValueError("expected a contiguous 1-d int64 array" + (" (writable)" if writable else ""))
    return (arr.ctypes.data, arr.size)


def apply_touches(
    touches: Sequence[np.ndarray], state: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add touches to key columns in place (see ``native/src/scatter.rs``).

    ``touches`` are ``(kid, d_available, d_reserved, when)``, ``state`` the columns
    ``(available, reserved, updated_at)``: sums (wrapping like numpy) and the maximum
    time. Returns the distinct keys touched (sorted) with their available and
    reserved values from before.
    """
    if _native is None:
        raise RuntimeError("inventory360_native is not installed (pip install ./native)")
    others = [*touches, *state]
    if any(np.may_share_memory(a, b) for i, a in enumerate(state) for b in others[: len(touches) + i]):
        raise ValueError("state columns must not overlap each other or the touches")
    ids, before_a, before_r = _native.apply_touches(
        [int64_arg(a) for a in touches], [int64_arg(a, writable=True) for a in state]
    )
    return tuple(np.frombuffer(b, dtype=np.int64) for b in (ids, before_a, before_r))  # type: ignore[return-value]


def union_first(parts: Sequence[np.ndarray], with_first: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of non-negative int64 id arrays, sorted, with first occurrences.

    Like ``np.unique(np.concatenate(parts), return_index=True)``: the second array is the
    index of each value's first occurrence in the parts' concatenation (empty unless
    ``with_first``).
    """
    if _native is None:
        raise RuntimeError("inventory360_native is not installed (pip install ./native)")
    arrays = [np.ascontiguousarray(p, dtype=np.int64) for p in parts]
    ids, first = _native.union_first([int64_arg(a) for a in arrays], with_first)
    return np.frombuffer(ids, dtype=np.int64), np.frombuffer(first, dtype=np.int64)


def _buffer(obj: Any) -> pa.Buffer | None:
    return None if obj is None else pa.py_buffer(obj)


def _column(n_rows: int, spec: tuple[Any, ...], field: pa.Field) -> pa.Array:
    """One column from the extension's ``(kind, buffers..., validity, null_count)``."""
    if spec[0] == "str":
        _, offsets, data, validity, nulls = spec
        return pa.StringArray.from_buffers(n_rows, pa.py_buffer(offsets), pa.py_buffer(data), _buffer(validity), nulls)
    _, values, validity, nulls = spec
    return pa.Array.from_buffers(field.type, n_rows, [_buffer(validity), pa.py_buffer(values)], null_count=nulls)


def _to_decoded(result: tuple[Any, ...], schema: pa.Schema) -> Decoded:
    n_rows, columns, errors, skipped = result
    arrays = [_column(n_rows, spec, field) for spec, field in zip(columns, schema, strict=True)]
    table = pa.Table.from_arrays(arrays, schema=schema)
    return Decoded(table, errors, skipped)


def _chunks(buf: bytes) -> list[tuple[int, bytes]]:
    """``buf`` cut at newlines into pieces of about :data:`MAX_CHUNK` bytes, with first-line indexes."""
    out: list[tuple[int, bytes]] = []
    start, base = 0, 0
    while start < len(buf):
        cut = buf.rfind(b"\n", start, start + MAX_CHUNK)
        if cut < 0:
            cut = buf.find(b"\n", start + MAX_CHUNK)
        end = len(buf) if cut < 0 else cut + 1
        piece = buf[start:end]
        out.append((base, piece))
        base += piece.count(b"\n")
        start = end
    return out


class _NativeMixin(RecordDecoder):
    """``decode`` through an extension function; ``record`` stays the reference."""

    _function = ""

    def _require(self) -> None:
        if _native is None:
            raise RuntimeError("inventory360_native is not installed (pip install ./native)")

    def decode(self, buf: bytes | memoryview) -> Decoded:
        """Decode ``buf`` (complete lines, each ending in ``\\n``) exactly as the reference.

        Any C-contiguous buffer is read in place (a memory-mapped file is not copied).
        """
        fn = getattr(_native, self._function)
        if len(buf) <= MAX_CHUNK:
            return _to_decoded(fn(buf), self.schema)
        if not isinstance(buf, bytes):
            buf = bytes(buf)
        parts: list[Decoded] = []
        for base, piece in _chunks(buf):
            part = _to_decoded(fn(piece), self.schema)
            if base:
                line = pc.add(part.table["line"], pa.scalar(base, pa.int64()))
                part.table = part.table.set_column(0, self.schema.field(0), line)
                part.errors = [(i + base, r) for i, r in part.errors]
            parts.append(part)
        tables = [p.table for p in parts if p.table.num_rows]
        table = pa.concat_tables(tables) if tables else self.schema.empty_table()
        errors = [e for p in parts for e in p.errors]
        return Decoded(table, errors, sum(p.skipped for p in parts))


class NativeDeltaDecoder(_NativeMixin, DeltaDecoder):
    """:class:`DeltaDecoder` whose ``decode`` runs in Rust (same results, same schema)."""

    _function = "decode_deltas"
    schema = DELTA_SCHEMA

    def __init__(self) -> None:
        super().__init__()
        self._require()


class NativeDebeziumOrderDecoder(_NativeMixin, DebeziumOrderDecoder):
    """:class:`DebeziumOrderDecoder` whose ``decode`` runs in Rust (same results, same schema)."""

    _function = "decode_orders"
    schema = ORDER_SCHEMA

    def __init__(self) -> None:
        super().__init__()
        self._require()


def delta_decoder() -> DeltaDecoder:
    """A delta decoder: the native one when :func:`available`, else the reference."""
    return NativeDeltaDecoder() if available() else DeltaDecoder()


def order_decoder() -> DebeziumOrderDecoder:
    """A Debezium order decoder: the native one when :func:`available`, else the reference."""
    return NativeDebeziumOrderDecoder() if available() else DebeziumOrderDecoder()
