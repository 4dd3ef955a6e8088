"""Contracts of the source stage: where raw messages come from and how they decode."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from inventory360.records import Decoded

#: A decoded row as the reference decoders build it (keys are the schema's columns).
Row = dict[str, Any]

#: Below this many lines a block that failed the vectorised path is decoded line by line.
_BISECT_FLOOR = 2048


class InvalidRecord(Exception):
    """A record breaks a rule of SPEC §1; the message is the dead-letter reason."""


class RecordDecoder(ABC):
    """Turns a buffer of newline-terminated message values into rows and dead letters.

    ``record`` is the reference: it decides every rule of SPEC §1 for one message.
    ``fast`` may decode a whole block at once; it must give exactly what ``record``
    gives, or return None (the block is then split in halves until the vectorised path
    succeeds or the halves are small enough to go line by line).
    """

    schema: pa.Schema

    @abstractmethod
    def record(self, value: bytes) -> Row | str | None:
        """Decode one message: a row, a one-line reason it is invalid, or None to skip."""

    def fast(self, buf: bytes, n_lines: int) -> Decoded | None:
        """Decode a block in one vectorised pass, or None when it cannot be trusted."""
        return None

    def decode(self, buf: bytes) -> Decoded:
        """Decode ``buf`` (complete lines, each ending in ``\\n``)."""
        parts: list[Decoded] = []
        self._bisect(buf, 0, buf.count(b"\n"), parts)
        if len(parts) == 1:
            return parts[0]
        tables = [p.table for p in parts if p.table.num_rows]
        table = pa.concat_tables(tables) if tables else self.schema.empty_table()
        errors = [e for p in parts for e in p.errors]
        return Decoded(table, errors, sum(p.skipped for p in parts))

    def _bisect(self, buf: bytes, base: int, n_lines: int, out: list[Decoded]) -> None:
        if n_lines == 0:
            return
        if n_lines > _BISECT_FLOOR // 4:
            done = self.fast(buf, n_lines)
            if done is not None:
                if base:
                    done.table = done.table.set_column(0, "line", pa.compute.add(done.table["line"], base))
                    done.errors = [(i + base, r) for i, r in done.errors]
                out.append(done)
                return
            if n_lines > _BISECT_FLOOR:
                half = n_lines // 2
                cut = _nth_newline(buf, half) + 1
                self._bisect(buf[:cut], base, half, out)
                self._bisect(buf[cut:], base + half, n_lines - half, out)
                return
        out.append(self._line_by_line(buf, base))

    def _line_by_line(self, buf: bytes, base: int) -> Decoded:
        rows: list[Row] = []
        errors: list[tuple[int, str]] = []
        skipped = 0
        for i, value in enumerate(buf.split(b"\n")[:-1]):
            if not value.strip():
                skipped += 1
                continue
            got = self.record(value)
            if got is None:
                skipped += 1
            elif isinstance(got, str):
                errors.append((base + i, got))
            else:
                got["line"] = base + i
                rows.append(got)
        return Decoded(pa.Table.from_pylist(rows, schema=self.schema), errors, skipped)


class JsonRecordDecoder(RecordDecoder):
    """A decoder whose messages are JSON values: parse, then apply :meth:`from_json`."""

    @abstractmethod
    def from_json(self, value: Any) -> Row | None:
        """Row of a parsed message, None to skip it; raises :class:`InvalidRecord`."""

    def record(self, value: bytes) -> Row | str | None:
        """Decode one message (the reference for every rule)."""
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            return "invalid JSON"
        try:
            return self.from_json(obj)
        except InvalidRecord as bad:
            return str(bad)


def _nth_newline(buf: bytes, n: int) -> int:
    """Offset of the ``n``-th (1-based) newline of ``buf``."""
    pos = -1
    for _ in range(n):
        pos = buf.index(b"\n", pos + 1)
    return pos


@dataclass(frozen=True, slots=True)
class RawBatch:
    """Complete lines read from one source, and where they start (``n_lines`` -1: unknown)."""

    source: str
    buf: bytes
    n_lines: int
    start: dict[str, Any]
    end: dict[str, Any]


class Source(ABC):
    """A resumable stream of newline-delimited message values.

    ``position`` is a JSON-serialisable value that, passed back to ``seek``, makes the
    source deliver exactly the messages after the last one returned by ``read``. The
    engine stores it in its checkpoint; the source never commits anything itself.
    """

    name: str

    @abstractmethod
    def read(self, max_bytes: int) -> RawBatch | None:
        """Up to about ``max_bytes`` of complete lines, or None when nothing is pending."""

    @abstractmethod
    def position(self) -> Any:
        """Where the next ``read`` starts."""

    @abstractmethod
    def seek(self, position: Any) -> None:
        """Continue after a position previously returned by :meth:`position`."""

    def backlog(self) -> int | None:
        """Bytes (or messages) known to be pending, when the source can tell."""
        return None

    def lines_decoded(self, n: int) -> None:  # noqa: B027 - optional hook
        """Told how many lines the batch just read held (sources that count lines)."""

    def line_position(self, batch: RawBatch, line: int) -> dict[str, Any]:
        """The position of line ``line`` of ``batch``, for dead letters."""
        return {**batch.start, "line_in_batch": line}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files or connections."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
