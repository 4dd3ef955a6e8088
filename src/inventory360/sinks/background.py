"""A snapshot sink committed from its own thread, merging checkpoints that queue up.

The pipeline thread hands each checkpoint's rows to :class:`BackgroundSink` and goes on
with the next batch; a worker thread commits them to the wrapped sink. When the wrapped
sink is slower than the engine, the checkpoints waiting for it are merged into one commit
(the last row of each key wins, and the newest checkpoint id is recorded), which is exact
because rows carry full values: the sink ends in the same state as if it had committed
each checkpoint in turn, only with fewer writes. Only idempotent, state-like sinks may be
wrapped (the projection); the alert sink is not, since it judges each checkpoint.

The wrapped sink is created, used and closed only on the worker thread (pypaimon's Rust
writer must stay on the thread that made it), from the factory given to the constructor.

A failure of the wrapped sink is raised from the next :meth:`commit`, :meth:`flush` or
:meth:`close`, which stops the pipeline; the durable engine checkpoint is re-sent on the
next start (``last_committed`` tells how far the sink got). ``max_pending_rows`` bounds
the memory held for a slow sink: beyond it, :meth:`commit` waits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa

from inventory360.records import KEY_COLUMNS, SNAPSHOT_SCHEMA
from inventory360.sinks.base import SnapshotSink

log = logging.getLogger(__name__)

T = TypeVar("T")


def merge_rows(tables: list[pa.Table]) -> pa.Table:
    """Concatenated snapshot rows with only the last row of each key, in first-seen key order."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return SNAPSHOT_SCHEMA.empty_table()
    if len(tables) == 1:
        return tables[0]
    df = pl.from_arrow(pa.concat_tables(tables))
    assert isinstance(df, pl.DataFrame)
    return df.unique(subset=list(KEY_COLUMNS), keep="last", maintain_order=True).to_arrow().cast(SNAPSHOT_SCHEMA)


class BackgroundSink(SnapshotSink):
    """Commits to the sink ``factory`` makes, from a worker thread (see the module docstring)."""

    def __init__(self, factory: Callable[[], SnapshotSink], max_pending_rows: int = 2_000_000) -> None:
        self.max_pending_rows = max_pending_rows
        self._cv = threading.Condition()
        self._pending: list[tuple[pa.Table, int]] = []
        self._pending_rows = 0
        self._calls: list[tuple[Callable[[SnapshotSink], Any], list[Any]]] = []
        self._busy = False
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(factory,), name="inv360-sink", daemon=True)
        self._thread.start()
        self.name = self._call(lambda inner: inner.name)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _call(self, fn: Callable[[SnapshotSink], T]) -> T:
        """Run ``fn(inner)`` on the worker (after what is queued) and return its result."""
        box: list[Any] = []
        with self._cv:
            self._raise()
            self._calls.append((fn, box))
            self._cv.notify_all()
            self._cv.wait_for(lambda: bool(box) or self._error is not None)
            self._raise()
        ok, value = box[0]
        if not ok:
            raise value
        result: T = value
        return result

    def commit(self, rows: pa.Table, checkpoint_id: int) -> None:
        """Queue ``rows``; waits while more than ``max_pending_rows`` rows are queued."""
        with self._cv:
            self._raise()
            while self._pending_rows > self.max_pending_rows and self._error is None:
                self._cv.wait()
            self._raise()
            self._pending.append((rows, checkpoint_id))
            self._pending_rows += rows.num_rows
            self._cv.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued checkpoint is committed; False on timeout."""
        with self._cv:
            done = self._cv.wait_for(lambda: self._error is not None or not (self._pending or self._busy), timeout)
            self._raise()
            return done

    def last_committed(self) -> int:
        """See :meth:`SnapshotSink.last_committed` (after the queue is drained)."""
        return self._call(lambda inner: inner.last_committed())

    def mark_current(self) -> None:
        """Forward the projection's "caught up" heartbeat once the queue is drained."""

        def mark(inner: SnapshotSink) -> None:
            fn: Any = getattr(inner, "mark_current", None)
            if fn is not None:
                fn()

        self._call(mark)

    def close(self) -> None:
        """Commit what is queued, close the wrapped sink and stop the worker."""
        try:
            self.flush()
        finally:
            with self._cv:
                self._closing = True
                self._cv.notify_all()
            self._thread.join()
            self._raise()

    def _run(self, factory: Callable[[], SnapshotSink]) -> None:
        try:
            inner = factory()
        except BaseException as exc:
            self._fail(exc)
            return
        try:
            while self._serve(inner):
                pass
        finally:
            try:
                inner.close()
            except Exception as exc:
                log.error("closing the %s sink failed: %s", inner.name, exc)
                self._fail(exc)

    def _serve(self, inner: SnapshotSink) -> bool:
        """One round: queued commits (merged), then queued calls; False to stop."""
        with self._cv:
            self._cv.wait_for(lambda: self._pending or self._calls or self._closing)
            if not (self._pending or self._calls):
                return False
            batch, self._pending = self._pending, []
            calls, self._calls = self._calls, []
            self._pending_rows = 0
            self._busy = True
            self._cv.notify_all()
        try:
            if batch:
                inner.commit(merge_rows([t for t, _ in batch]), batch[-1][1])
        except BaseException as exc:
            log.error("%s sink failed: %s", inner.name, exc)
            self._fail(exc)
            return False
        for fn, box in calls:
            try:
                box.append((True, fn(inner)))
            except BaseException as exc:
                box.append((False, exc))
        with self._cv:
            self._busy = False
            self._cv.notify_all()
        return True

    def _fail(self, exc: BaseException) -> None:
        with self._cv:
            self._error = exc
            self._busy = False
            self._cv.notify_all()
