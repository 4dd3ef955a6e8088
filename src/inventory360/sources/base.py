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


class InvalidRecord(Exception):
    """A record breaks a rule of SPEC §1; the message is the dead-letter reason."""


class RecordDecoder(ABC):
    """Turns a buffer of newline-terminated message values into rows and dead letters.

    ``record`` is the reference: it decides every rule of SPEC §1 for one message, and
    ``decode`` applies it line by line. A faster ``decode`` (the native decoders) must
    give exactly the same result.
    """

    schema: pa.Schema

    @abstractmethod
    def record(self, value: bytes) -> Row | str | None:
        """Decode one message: a row, a one-line reason it is invalid, or None to skip."""

    def decode(self, buf: bytes | memoryview) -> Decoded:
        """Decode ``buf`` (complete lines, each ending in ``\\n``) line by line."""
        return self._line_by_line(bytes(buf) if isinstance(buf, memoryview) else buf, 0)

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


@dataclass(frozen=True, slots=True)
class RawBatch:
    """Complete lines read from one source, and where they start (``n_lines`` -1: unknown)."""

    source: str
    buf: bytes | memoryview  # a memoryview of a file's memory map, read without a copy
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
    def read(self, max_bytes: int, wait: bool = True) -> RawBatch | None:
        """Up to about ``max_bytes`` of complete lines, or None when nothing is pending.

        A source that can wait for new messages (Kafka) waits up to its poll timeout only
        when ``wait``; the pipeline first asks every source without waiting, so one idle
        source never holds up a busy one.
        """

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
