"""JSON Lines files as a resumable source (one message value per line)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from inventory360.errors import SourceError
from inventory360.sources.base import RawBatch, Source

_FINGERPRINT_BYTES = 64 * 1024


def fingerprint(path: Path) -> str:
    """Identity of a file by its first 64 KiB, so a file that grows keeps its identity."""
    with path.open("rb") as f:
        head = f.read(_FINGERPRINT_BYTES)
    return hashlib.sha256(head).hexdigest()[:24]


class JsonLinesFileSource(Source):
    """Reads whole lines from a byte offset; the position is (fingerprint, offset, line)."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        try:
            self._file = path.open("rb")
            self.fingerprint = fingerprint(path)
        except OSError as exc:
            raise SourceError(f"cannot read {name} file {path}: {exc.strerror}") from exc
        self.offset = 0
        self.line = 0

    @property
    def key(self) -> str:
        """Checkpoint key of this source: the same file replayed again resumes here."""
        return f"file:{self.fingerprint}"

    def position(self) -> dict[str, Any]:
        """Byte offset and line number of the next unread line."""
        return {"path": str(self.path), "offset": self.offset, "line": self.line}

    def seek(self, position: Any) -> None:
        """Resume at a stored position."""
        self.offset = int(position["offset"])
        self.line = int(position["line"])

    def backlog(self) -> int:
        """Bytes not read yet."""
        return max(0, self.path.stat().st_size - self.offset)

    def read(self, max_bytes: int) -> RawBatch | None:
        """Complete lines starting at the current offset (a last line without a newline counts)."""
        self._file.seek(self.offset)
        data = self._file.read(max_bytes)
        if not data:
            return None
        cut = data.rfind(b"\n")
        while cut < 0:
            more = self._file.read(max_bytes)
            if not more:
                break
            data += more
            cut = data.rfind(b"\n")
        if cut < 0:
            consumed, buf = len(data), data + b"\n"
        else:
            consumed = cut + 1
            buf = data[:consumed]
        n = buf.count(b"\n")
        start = {"path": str(self.path), "offset": self.offset, "line": self.line}
        self.offset += consumed
        self.line += n
        end = {"path": str(self.path), "offset": self.offset, "line": self.line}
        return RawBatch(self.name, buf, n, start, end)

    def line_position(self, batch: RawBatch, line: int) -> dict[str, Any]:
        """File, 1-based line number and byte offset of a line of ``batch``."""
        offset = batch.start["offset"]
        if line:
            pos = -1
            for _ in range(line):
                pos = batch.buf.index(b"\n", pos + 1)
            offset += pos + 1
        return {"path": str(self.path), "line": batch.start["line"] + line + 1, "offset": offset}

    def close(self) -> None:
        """Close the file."""
        self._file.close()
