"""Contracts of the sink stage."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyarrow as pa


class SnapshotSink(ABC):
    """Receives the changed snapshot rows of each checkpoint.

    Rows carry full values (not increments), so writing the same checkpoint twice is
    harmless: every snapshot sink is idempotent per key. ``commit`` is called only after
    the engine's checkpoint ``checkpoint_id`` is durable; after a crash the engine calls
    ``last_committed`` and re-sends the rows of a checkpoint the sink has not committed.
    A failure raised from ``commit`` stops the pipeline before the next batch.
    """

    name: str

    @abstractmethod
    def commit(self, rows: pa.Table, checkpoint_id: int) -> None:
        """Upsert ``rows`` (``SNAPSHOT_SCHEMA``) and record ``checkpoint_id`` atomically."""

    @abstractmethod
    def last_committed(self) -> int:
        """The highest checkpoint id committed here (0 when none)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release resources."""
