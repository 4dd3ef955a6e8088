"""Dead letters as JSON Lines: original bytes, source position, one-line reason (SPEC §5).

The file's length is part of every checkpoint. After a crash the file is cut back to
the checkpointed length before the batch is processed again, so each rejected record
appears exactly once.
"""

from __future__ import annotations

import base64
import os
from collections import Counter
from pathlib import Path

import orjson

from inventory360.records import DeadLetter


class DeadLetterFile:
    """Appends dead letters to a JSON Lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")
        self.counts: Counter[str] = Counter()

    def truncate(self, length: int) -> None:
        """Cut the file back to a checkpointed length (recovery)."""
        self._file.flush()
        if self.path.stat().st_size > length:
            os.truncate(self.path, length)
        self._file.seek(0, os.SEEK_END)

    def write(self, letters: list[DeadLetter]) -> None:
        """Append records (not durable until :meth:`flush`)."""
        for dl in letters:
            rec: dict[str, object] = {
                "source": dl.source,
                "reason": dl.reason,
                "position": dl.position,
            }
            try:
                rec["payload"] = dl.payload.decode("utf-8")
            except UnicodeDecodeError:
                rec["payload_base64"] = base64.b64encode(dl.payload).decode("ascii")
            self._file.write(orjson.dumps(rec) + b"\n")
            self.counts[dl.reason] += 1

    def flush(self) -> int:
        """Make everything written durable; returns the file length to checkpoint."""
        self._file.flush()
        os.fsync(self._file.fileno())
        return self._file.tell()

    def close(self) -> None:
        """Close the file."""
        self._file.close()
