"""The Apache Paimon primary-key table ``inventory_snapshot`` (SPEC §2), via pypaimon.

One long-lived stream writer on pypaimon's Rust write path; one commit per engine
checkpoint with the checkpoint id as Paimon's commit identifier, so a restarted engine
can tell whether its last checkpoint reached the lake. ``sequence.field`` is
``updated_at``: a stale writer can never move a row back in time.

Rows reach the writer already split by bucket and sorted by key (:class:`BucketRouter`,
Paimon's own bucket function in native code): the writer then neither hashes every row
again nor really sorts (its sort of each bucket only confirms the order). That is 40% of
the sink's CPU (``bench/bench_paimon_write.py``). The router checks itself against
pypaimon's bucket function when the sink opens and steps aside on any mismatch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from inventory360.engine.columns import one_array
from inventory360.errors import TerminalSinkError
from inventory360.records import SNAPSHOT_SCHEMA
from inventory360.sinks.base import SnapshotSink
from inventory360.sources import native

log = logging.getLogger(__name__)

NATIVE = {"write.native.enabled": "true", "read.native.enabled": "true"}
#: Plain-encoded Parquet columns: quantities and times hardly repeat, so dictionaries cost
#: CPU and bytes (``bench/bench_paimon_write.py``: 0.86 instead of 0.98 µs and 12.5
#: instead of 17.9 bytes per row). Also applied to tables created before, for new files.
FILE_OPTIONS = {"parquet.enable.dictionary": "false"}


def table_options(bucket: int) -> dict[str, str]:
    """Options the table is created with."""
    return {"bucket": str(bucket), "sequence.field": "updated_at", **NATIVE, **FILE_OPTIONS}


def open_catalog(warehouse: Path) -> Any:
    """A filesystem Paimon catalog rooted at ``warehouse``."""
    from pypaimon import CatalogFactory

    warehouse.mkdir(parents=True, exist_ok=True)
    return CatalogFactory.create({"warehouse": warehouse.resolve().as_uri()})


def open_table(warehouse: Path, database: str, table: str, bucket: int, create: bool) -> Any:
    """The snapshot table, created on first use when ``create``."""
    from pypaimon import Schema

    catalog = open_catalog(warehouse)
    ident = f"{database}.{table}"
    if create:
        catalog.create_database(database, True)
        schema = Schema.from_pyarrow_schema(
            SNAPSHOT_SCHEMA,
            primary_keys=["sku_id", "warehouse_id"],
            options=table_options(bucket),
        )
        catalog.create_table(ident, schema, True)
    try:
        t = catalog.get_table(ident)
    except Exception as exc:
        raise TerminalSinkError(f"no Paimon table {ident} under {warehouse}") from exc
    return t.copy({**NATIVE, **FILE_OPTIONS})


def read_snapshot(warehouse: Path, database: str, table: str) -> pa.Table:
    """The whole table read back from Paimon, sorted by key."""
    t = open_table(warehouse, database, table, 8, create=False)
    rb = t.new_read_builder()
    splits = rb.new_scan().plan().splits()
    data = rb.new_read().to_arrow(splits)
    if data is None or data.num_rows == 0:
        return SNAPSHOT_SCHEMA.empty_table()
    data = data.select([f.name for f in SNAPSHOT_SCHEMA]).cast(SNAPSHOT_SCHEMA)
    return data.sort_by([("sku_id", "ascending"), ("warehouse_id", "ascending")])


#: Keys the router's self-check compares with pypaimon: inline (≤ 7 bytes) and
#: variable-length strings, empty and non-ASCII ones.
_PROBE_KEYS = [
    (f"{p}{i}", w)
    for i, (p, w) in enumerate(
        [("SKU-", "WH-1"), ("", ""), ("x" * 7, "y" * 8), ("sku-\u00e9\u4e2d", "\U0001f4e6 wh"), ("S" * 40, "W")] * 8
    )
]


class BucketRouter:
    """Splits rows by Paimon bucket, each bucket sorted by key, for ``write_arrow_batch``.

    Only for tables in fixed-bucket mode whose bucket key (by default the primary key)
    is made of string columns, with the default bucket function, and only when the native
    function agrees with pypaimon's on :data:`_PROBE_KEYS`; :meth:`create` returns None
    otherwise (the writer then assigns buckets itself). A bucket is sorted by its bucket
    key, which is the primary key for ``inventory_snapshot``.
    """

    def __init__(self, keys: list[str], buckets: int) -> None:
        self.keys = keys
        self.buckets = buckets

    @classmethod
    def create(cls, table: Any) -> BucketRouter | None:
        """A router for ``table``, or None when it cannot vouch for the buckets."""
        schema = table.table_schema
        options = schema.options
        buckets = int(options.get("bucket", -1))
        keys = list(schema.bucket_keys)
        types = {f.name: str(f.type).upper() for f in schema.fields}
        if (
            not native.available()
            or buckets < 1
            or options.get("bucket-function.type", "default").lower() != "default"
            or not keys
            or any(not types.get(k, "").startswith(("STRING", "VARCHAR", "CHAR")) for k in keys)
        ):
            return None
        router = cls(keys, buckets)
        try:
            from pypaimon.write.row_key_extractor import FixedBucketRowKeyExtractor

            probe = pa.table({k: [row[i % 2] for row in _PROBE_KEYS] for i, k in enumerate(keys)})
            ours = router.buckets_of(probe)
            theirs = FixedBucketRowKeyExtractor(schema).extract_partition_bucket_batch(probe.to_batches()[0])[1]
        except Exception:
            log.warning("Paimon bucket self-check failed; the writer assigns buckets", exc_info=True)
            return None
        if ours.tolist() != list(theirs):
            log.warning("native Paimon buckets disagree with pypaimon's; the writer assigns buckets")
            return None
        return router

    def buckets_of(self, rows: pa.Table) -> np.ndarray:
        """The bucket of each row (for checks; :meth:`route` is the write path)."""
        perm, counts = native.paimon_bucket_order([one_array(rows[k]) for k in self.keys], self.buckets)
        out = np.empty(rows.num_rows, dtype=np.int64)
        out[perm] = np.repeat(np.arange(self.buckets), counts)
        return out

    def route(self, rows: pa.Table) -> list[tuple[int, pa.RecordBatch]]:
        """``rows`` as one record batch per non-empty bucket, each sorted by key."""
        rows = rows.combine_chunks()
        perm, counts = native.paimon_bucket_order([rows[k].chunk(0) for k in self.keys], self.buckets)
        batch = rows.take(perm).combine_chunks().to_batches()[0]
        out, start = [], 0
        for bucket, n in enumerate(counts):
            if n:
                out.append((bucket, batch.slice(start, n)))
                start += n
        return out


class PaimonSnapshotSink(SnapshotSink):
    """Upserts changed keys into ``inventory_snapshot``; idempotent per key."""

    name = "paimon"

    def __init__(self, warehouse: Path, database: str, table: str, bucket: int, commit_user: str) -> None:
        self.table = open_table(warehouse, database, table, bucket, create=True)
        self.commit_user = commit_user
        builder = self.table.new_stream_write_builder()._with_commit_user(commit_user)
        self._write = builder.new_write()
        self._commit = builder.new_commit()
        self.router = BucketRouter.create(self.table)

    def commit(self, rows: pa.Table, checkpoint_id: int) -> None:
        """Write the rows and commit them as ``checkpoint_id``."""
        if rows.num_rows and self.router is not None:
            for bucket, batch in self.router.route(rows):
                self._write.write_arrow_batch(batch, bucket)
        elif rows.num_rows:
            self._write.write_arrow(rows)
        messages = self._write.prepare_commit(checkpoint_id)
        self._commit.commit(messages, checkpoint_id)

    def last_committed(self) -> int:
        """Newest commit identifier of this engine's commit user (0 when none)."""
        manager = self.table.snapshot_manager()
        snap = manager.get_latest_snapshot()
        while snap is not None:
            if snap.commit_user == self.commit_user:
                return int(snap.commit_identifier)
            if snap.id <= 1:
                break
            snap = manager.get_snapshot_by_id(snap.id - 1)
        return 0

    def close(self) -> None:
        """Close writer and committer."""
        for part in (self._write, self._commit):
            try:
                part.close()
            except Exception:  # pragma: no cover - best effort at shutdown
                log.debug("closing Paimon %s failed", type(part).__name__, exc_info=True)
