"""JSON Lines files as a resumable source (one message value per line)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
from pathlib import Path
from typing import Any

from inventory360.errors import SourceError
from inventory360.sources.base import RawBatch, Source

_FINGERPRINT_BYTES = 64 * 1024
log = logging.getLogger(__name__)


def prefix_hash(path: Path, length: int) -> str:
    """SHA-256 (hex, 24 chars) of the first ``length`` bytes of ``path``."""
    with path.open("rb") as f:
        return hashlib.sha256(f.read(length)).hexdigest()[:24]


class JsonLinesFileSource(Source):
    """Reads whole lines from a byte offset of one file.

    Its checkpoint key is the file's absolute path; the position also records a hash of
    the file's first bytes (up to 64 KiB, as many as existed when first read), so a file
    that grows (a log being appended to) resumes where it stopped, while a different file
    put at the same path is read from the start.
    """

    def __init__(self, name: str, path: Path, tail: bool = False) -> None:
        self.name = name
        self.tail = tail  # another process appends: a last line without newline may be half written
        self.path = path.resolve()
        try:
            self._file = self.path.open("rb")
        except OSError as exc:
            raise SourceError(f"cannot read {name} file {path}: {exc.strerror}") from exc
        self.offset = 0
        self.line = 0
        self._fp_len = 0
        self._fp = ""
        self._mm: mmap.mmap | None = None

    @property
    def key(self) -> str:
        """Checkpoint key of this source."""
        return f"file:{self.path}"

    def position(self) -> dict[str, Any]:
        """Byte offset and line number of the next unread line, and the prefix hash."""
        return {
            "path": str(self.path),
            "offset": self.offset,
            "line": self.line,
            "fp": self._fp,
            "fp_len": self._fp_len,
        }

    def seek(self, position: Any) -> None:
        """Resume at a stored position, unless the file's first bytes changed."""
        fp_len = int(position.get("fp_len", 0))
        if fp_len and (self.path.stat().st_size < fp_len or prefix_hash(self.path, fp_len) != position.get("fp")):
            log.warning("%s is not the file read before at this path: reading it from the start", self.path)
            return
        self.offset = int(position["offset"])
        self.line = int(position["line"])
        self._fp_len, self._fp = fp_len, str(position.get("fp", ""))

    def backlog(self) -> int:
        """Bytes not read yet."""
        return max(0, self.path.stat().st_size - self.offset)

    def _mapped(self) -> mmap.mmap | None:
        """The file memory-mapped (re-mapped when it has grown); None while empty."""
        size = os.fstat(self._file.fileno()).st_size
        if self._mm is None or len(self._mm) < size:
            self._unmap()
            self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        return self._mm

    def read(self, max_bytes: int, wait: bool = True) -> RawBatch | None:
        """Complete lines from the current offset (a last line without a newline counts).

        The batch is a memoryview of the memory map: nothing is copied.
        ``n_lines`` is left at -1: the decoder knows the count, and the pipeline reports it
        back through :meth:`lines_decoded` (counting newlines here would scan twice).
        """
        mm = self._mapped()
        if mm is None or self.offset >= len(mm):
            return None
        end = min(self.offset + max_bytes, len(mm))
        cut = mm.rfind(b"\n", self.offset, end)
        if cut < 0:
            cut = mm.find(b"\n", end)
        if cut < 0 and self.tail:
            return None
        buf: bytes | memoryview
        if cut < 0:
            consumed, buf = len(mm) - self.offset, mm[self.offset :] + b"\n"
        else:
            consumed = cut + 1 - self.offset
            buf = memoryview(mm)[self.offset : cut + 1]
        if not self._fp_len:
            self._fp_len = min(consumed, _FINGERPRINT_BYTES)
            self._fp = hashlib.sha256(buf[: self._fp_len]).hexdigest()[:24]
        start = {"path": str(self.path), "offset": self.offset, "line": self.line}
        self.offset += consumed
        return RawBatch(self.name, buf, -1, start, {"path": str(self.path), "offset": self.offset})

    def lines_decoded(self, n: int) -> None:
        """Advance the line counter by the lines of the batch just read."""
        self.line += n

    def line_position(self, batch: RawBatch, line: int) -> dict[str, Any]:
        """File, 1-based line number and byte offset of a line of ``batch``."""
        offset = batch.start["offset"]
        if line:
            pos = -1
            buf = batch.buf if isinstance(batch.buf, bytes) else bytes(batch.buf)
            for _ in range(line):
                pos = buf.index(b"\n", pos + 1)
            offset += pos + 1
        return {"path": str(self.path), "line": batch.start["line"] + line + 1, "offset": offset}

    def close(self) -> None:
        """Close the map and the file."""
        self._unmap()
        self._file.close()

    def _unmap(self) -> None:
        if self._mm is not None:
            with contextlib.suppress(BufferError):  # a batch still holds a view: the map goes with it
                self._mm.close()
            self._mm = None
