"""The exactly-once loop: read → decode → engine → checkpoint → sinks.

Per micro-batch, in this order:

1. read complete lines from every source and decode them (bad lines → dead letters);
2. apply the batch to the engine;
3. append the dead letters and fsync the file;

and per checkpoint:

4. write the state changes as segment files and publish the manifest (the commit point:
   source positions, dead-letter file length, counters and state change together);
5. commit the changed keys to every snapshot sink (Paimon first) with the checkpoint id.

A pipeline that has caught up with its sources checkpoints every batch. Under a backlog
(a replay, a restart after downtime) it checkpoints at most every ``checkpoint_interval``
seconds, covering all batches since the last one: the same snapshot, with fewer commits
and each key written once per checkpoint rather than once per batch. The interval is the
Flink checkpoint interval of this engine; 0 checkpoints every batch.

On start the newest manifest is loaded: state is rebuilt, sources seek to their stored
positions, the dead-letter file is cut back to its stored length, and any sink whose
``last_committed()`` is behind the manifest gets the missing rows again (rows carry full
values, so re-sending is idempotent). A ``kill -9`` anywhere therefore ends in the same
snapshot as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

from inventory360.engine import persist
from inventory360.engine.checkpoint import EVENT_FILES_MAX, STATE_PARTS, CheckpointStore, Manifest
from inventory360.engine.engine import BatchResult, Engine, EngineOptions, merge_results
from inventory360.engine.state import NEVER
from inventory360.errors import CheckpointError
from inventory360.records import DELTA_SCHEMA, ORDER_SCHEMA, SNAPSHOT_SCHEMA, DeadLetter
from inventory360.sinks.base import SnapshotSink
from inventory360.sinks.dead_letter import DeadLetterFile
from inventory360.sources.base import RecordDecoder, Source

log = logging.getLogger(__name__)

Kind = Literal["deltas", "orders"]


@dataclass(slots=True)
class Input:
    """A source and the decoder of its messages."""

    kind: Kind
    source: Source
    decoder: RecordDecoder


@dataclass(slots=True)
class StepStats:
    """What one micro-batch did (for progress and metrics)."""

    checkpoint: int
    lines: int
    bytes: int
    dead_letters: int
    changed_keys: int
    #: Wall time of the batch; of a checkpoint, from the start of its first batch to the
    #: end of its commits (how long its oldest input waited for the lake at most).
    seconds: float
    commit_seconds: float
    result: BatchResult | None = None
    rows: pa.Table | None = None
    #: False for a batch processed but not yet checkpointed (``checkpoint`` is then the
    #: previous one); a checkpoint's stats add up all batches it covers.
    committed: bool = True
    batches: int = 1


@dataclass(slots=True)
class LakeLayout:
    """Where a pipeline keeps its lake, state and dead letters under one folder."""

    root: Path
    database: str = "inventory360"
    table: str = "inventory_snapshot"
    bucket: int = 8

    @property
    def warehouse(self) -> Path:
        """The Paimon warehouse."""
        return self.root / "warehouse"

    @property
    def state(self) -> Path:
        """The checkpoint folder."""
        return self.root / "state"

    @property
    def dead_letters(self) -> Path:
        """Default dead-letter file."""
        return self.root / "dead_letters.jsonl"


SinkFactory = Callable[[str], Sequence[SnapshotSink]]
OnCommit = Callable[[StepStats], None]


@dataclass
class Pipeline:
    """Owns the engine, its checkpoints, the dead-letter file and the snapshot sinks."""

    layout: LakeLayout
    inputs: list[Input]
    options: EngineOptions = field(default_factory=EngineOptions)
    dead_letters: Path | None = None
    batch_bytes: int = 64 << 20
    compact_min_rows: int = 200_000
    event_files_max: int = EVENT_FILES_MAX
    extra_sinks: SinkFactory | None = None
    on_commit: list[OnCommit] = field(default_factory=list)
    #: Commit the Paimon table from a worker thread (see ``sinks/background.py``): the engine
    #: goes on with the next batch meanwhile, and checkpoints that queue up while Paimon is
    #: busy are merged into one commit. Off for ``replay`` (one Paimon commit per checkpoint).
    background_lake: bool = False
    #: Seconds between checkpoints while sources have a backlog (see the module docstring).
    checkpoint_interval: float = 1.0

    def __post_init__(self) -> None:
        self.engine = Engine(self.options)
        self.store = CheckpointStore(self.layout.state)
        self.dlq = DeadLetterFile(self.dead_letters or self.layout.dead_letters)
        self.manifest = Manifest()
        self.counters: Counter[str] = Counter()
        self.sinks: list[SnapshotSink] = []
        self._segment_rows = 0
        self._pending: list[StepStats] = []
        self._pending_since = 0.0
        self._dlq_bytes = 0
        self._failed = False
        #: Lines processed (decoded, whether checkpointed yet or not) since the start.
        self.lines_processed = 0

    # -- start-up -------------------------------------------------------------------
    def open(self) -> None:
        """Restore the newest checkpoint and bring every sink up to it."""
        from inventory360.sinks.paimon import PaimonSnapshotSink

        m = self.store.latest()
        if m is None:
            m = Manifest(pipeline_id=f"inv360-{uuid.uuid4()}")
        else:
            self._restore(m)
        self.manifest = m
        self.counters = Counter(m.counters)
        self.dlq.truncate(m.dead_letters_bytes)
        for inp in self.inputs:
            pos = m.positions.get(_source_key(inp.source))
            if pos is not None:
                inp.source.seek(pos)
        lay = self.layout
        def lake() -> SnapshotSink:
            return PaimonSnapshotSink(lay.warehouse, lay.database, lay.table, lay.bucket, m.pipeline_id)

        if self.background_lake:
            from inventory360.sinks.background import BackgroundSink

            self.sinks = [BackgroundSink(lake)]
        else:
            self.sinks = [lake()]
        if self.extra_sinks is not None:
            self.sinks.extend(self.extra_sinks(m.pipeline_id))
        if m.checkpoint:
            for sink in self.sinks:
                done = sink.last_committed()
                if done < m.checkpoint:
                    log.info("re-sending checkpoint %d to %s (had %d)", m.checkpoint, sink.name, done)
                    sink.commit(self._rows_after(done), m.checkpoint)

    def _restore(self, m: Manifest) -> None:
        started = time.monotonic()
        for part in STATE_PARTS:
            persist.load(self.engine, part, self.store.read_part("base", m.base, part))
        for seg in m.segments:
            for part in STATE_PARTS:
                persist.load(self.engine, part, self.store.read_part("seg", seg, part))
        for kind, num in m.events():
            persist.load(self.engine, "events", self.store.read_part(kind, num, "events"))
        got = (len(self.engine.keys), len(self.engine.lines), len(self.engine.seen))
        if got != (m.key_count, m.line_count, m.event_id_count):
            raise CheckpointError(
                f"checkpoint {m.checkpoint} restored {got[0]} keys, {got[1]} lines and {got[2]} event ids, "
                f"manifest says {m.key_count}, {m.line_count} and {m.event_id_count}"
            )
        self.engine.watermark_ms = int(NEVER) if m.watermark_ms is None else m.watermark_ms
        self._segment_rows = int(m.extra.get("segment_rows", 0))
        log.info(
            "restored checkpoint %d (%d keys, %d lines, %d event ids) in %.2fs",
            m.checkpoint,
            m.key_count,
            m.line_count,
            m.event_id_count,
            time.monotonic() - started,
        )

    def _rows_after(self, done: int) -> pa.Table:
        m = self.manifest
        if m.segments and m.segments[-1] == m.checkpoint and done >= m.checkpoint - 1:
            keys = self.store.read_part("seg", m.checkpoint, "keys")
            return _as_snapshot(keys)
        return self.engine.keys.all_rows()

    # -- the loop ---------------------------------------------------------------------
    def step(self) -> StepStats | None:
        """Process one micro-batch, or checkpoint the pending ones once the sources are idle.

        Returns the batch's stats (``committed`` False until a checkpoint covers it), the
        stats of the checkpoint taken, or None when every source is idle and nothing waits.
        """
        try:
            return self._step()
        except BaseException:
            self._failed = True  # close() then checkpoints nothing more
            raise

    def _step(self) -> StepStats | None:
        t0 = time.perf_counter()
        deltas: list[pa.Table] = []
        orders: list[pa.Table] = []
        letters: list[DeadLetter] = []
        lines = nbytes = 0
        raws = [(inp, inp.source.read(self.batch_bytes, wait=False)) for inp in self.inputs]
        if all(raw is None for _, raw in raws):
            if self._pending:  # caught up: checkpoint now
                return self._commit_pending()
            for i, inp in enumerate(self.inputs):  # all idle: now let a source wait for news
                raws[i] = (inp, inp.source.read(self.batch_bytes, wait=True))
                if raws[i][1] is not None:
                    break
        for inp, raw in raws:
            if raw is None:
                continue
            nbytes += len(raw.buf)
            decoded = inp.decoder.decode(raw.buf)
            n = decoded.table.num_rows + len(decoded.errors) + decoded.skipped
            inp.source.lines_decoded(n)
            lines += n
            (deltas if inp.kind == "deltas" else orders).append(decoded.table)
            self.counters[f"{inp.kind}_in"] += n
            self.counters[f"{inp.kind}_skipped"] += decoded.skipped
            if decoded.errors:
                whole = raw.buf if isinstance(raw.buf, bytes) else bytes(raw.buf)
                raw = dataclasses.replace(raw, buf=whole)  # dead letters keep slices of it
                values = whole.split(b"\n")
                for line, reason in decoded.errors:
                    letters.append(
                        DeadLetter(
                            inp.source.name,
                            reason,
                            values[line],
                            inp.source.line_position(raw, line),
                        )
                    )
        if nbytes == 0:
            return self._commit_pending() if self._pending else None
        result = self.engine.process(_concat(deltas, DELTA_SCHEMA), _concat(orders, ORDER_SCHEMA))
        self.counters.update(result.counters)
        for dl in letters:
            self.counters[f"dead_letters:{dl.reason}"] += 1
        self.dlq.write(letters)
        self._dlq_bytes = self.dlq.flush()
        self.lines_processed += lines
        batch = StepStats(
            self.manifest.checkpoint,
            lines,
            nbytes,
            len(letters),
            int(result.changed.size),
            time.perf_counter() - t0,
            0.0,
            result,
            committed=False,
        )
        if not self._pending:
            self._pending_since = t0
        self._pending.append(batch)
        if time.perf_counter() - self._pending_since >= self.checkpoint_interval:
            return self._commit_pending()
        return batch

    def _commit_pending(self) -> StepStats:
        """Checkpoint the batches processed since the last checkpoint and commit the sinks."""
        pending, self._pending = self._pending, []
        t1 = time.perf_counter()
        result = merge_results([p.result for p in pending if p.result is not None])
        rows = self.engine.keys.rows(result.changed)
        cid = self._checkpoint(result, self._dlq_bytes, rows)
        for sink in self.sinks:
            sink.commit(rows, cid)
        t2 = time.perf_counter()
        stats = StepStats(
            cid,
            sum(p.lines for p in pending),
            sum(p.bytes for p in pending),
            sum(p.dead_letters for p in pending),
            int(result.changed.size),
            t2 - self._pending_since,
            t2 - t1,
            result,
            rows,
            batches=len(pending),
        )
        for hook in self.on_commit:
            hook(stats)
        return stats

    def _checkpoint(self, result: BatchResult, dlq_bytes: int, rows: pa.Table) -> int:
        m = self.manifest
        cid = m.checkpoint + 1
        changed = persist.changes(self.engine, result, rows)
        seg_rows = sum(changed[part].num_rows for part in STATE_PARTS)
        base_rows = m.key_count + m.line_count
        if m.checkpoint == 0 or self._segment_rows + seg_rows > max(base_rows, self.compact_min_rows):
            for part, table in persist.full(self.engine).items():
                self.store.write_part("base", cid, part, table)
            base, segments = cid, []
            self._segment_rows = 0
        else:
            for part in STATE_PARTS:
                self.store.write_part("seg", cid, part, changed[part])
            base, segments = m.base, [*m.segments, cid]
            self._segment_rows += seg_rows
        # Event ids are only added: their files outlive base rewrites (see checkpoint.py).
        events = m.events() if m.checkpoint else []
        if not events or len(events) >= self.event_files_max:
            self.store.write_part("base", cid, "events", persist.all_events(self.engine))
            events = [("base", cid)]
        else:
            self.store.write_part("seg", cid, "events", changed["events"])
            events = [*events, ("seg", cid)]
        positions = dict(m.positions)
        for inp in self.inputs:
            positions[_source_key(inp.source)] = inp.source.position()
        wm = self.engine.watermark_ms
        self.manifest = Manifest(
            checkpoint=cid,
            pipeline_id=m.pipeline_id,
            base=base,
            segments=segments,
            positions=positions,
            dead_letters_bytes=dlq_bytes,
            watermark_ms=None if wm == int(NEVER) else wm,
            key_count=len(self.engine.keys),
            line_count=len(self.engine.lines),
            event_id_count=len(self.engine.seen),
            event_files=[[kind, num] for kind, num in events],
            counters=dict(self.counters),
            extra={**m.extra, "segment_rows": self._segment_rows, "committed_at": time.time()},
        )
        self.store.commit(self.manifest)
        return cid

    def run(self, until_idle: bool = True, idle_sleep: float = 0.05) -> int:
        """Loop over :meth:`step`; returns the number of lines processed."""
        start = self.lines_processed
        while True:
            stats = self.step()
            if stats is None:
                if until_idle:
                    return self.lines_processed - start
                time.sleep(idle_sleep)

    def backlog(self) -> int:
        """Bytes (or messages) still pending in all sources, where known."""
        return sum(inp.source.backlog() or 0 for inp in self.inputs)

    def close(self, checkpoint: bool = True) -> None:
        """Checkpoint the batches not checkpointed yet, then release sinks, sources and files.

        Nothing is checkpointed when ``checkpoint`` is False or a step has failed: those
        batches are then redone from the last checkpoint on the next start.
        """
        try:
            if checkpoint and self._pending and not self._failed:
                self._commit_pending()
        finally:
            for sink in self.sinks:
                sink.close()
            for inp in self.inputs:
                inp.source.close()
            self.dlq.close()


def _source_key(source: Source) -> str:
    return str(getattr(source, "key", source.name))


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return schema.empty_table()
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def _as_snapshot(keys: pa.Table) -> pa.Table:
    t = keys.select(["sku_id", "warehouse_id", "available_qty", "reserved_qty", "updated_at"])
    ts = t["updated_at"].to_numpy()
    t = t.set_column(4, "updated_at", pa.array(np.asarray(ts, dtype=np.int64)).cast(pa.timestamp("ms")))
    return t.cast(SNAPSHOT_SCHEMA)
