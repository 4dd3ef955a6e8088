"""BucketRouter: Paimon's own buckets, each bucket in key order, and the same table contents."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypaimon import Schema
from pypaimon.write.row_key_extractor import FixedBucketRowKeyExtractor

from inventory360.records import SNAPSHOT_SCHEMA
from inventory360.sinks.paimon import BucketRouter, PaimonSnapshotSink, open_catalog, read_snapshot

KEYS = ["sku_id", "warehouse_id"]
text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


def rows(keys: list[tuple[str, str]]) -> pa.Table:
    n = len(keys)
    return pa.table(
        {
            "sku_id": [k[0] for k in keys],
            "warehouse_id": [k[1] for k in keys],
            "available_qty": list(range(n)),
            "reserved_qty": [i % 7 for i in range(n)],
            "updated_at": pa.array(range(n), pa.int64()).cast(pa.timestamp("ms")),
        }
    ).cast(SNAPSHOT_SCHEMA)


def pypaimon_buckets(table: object, data: pa.Table) -> list[int]:
    extractor = FixedBucketRowKeyExtractor(table.table_schema)  # type: ignore[attr-defined]
    return list(extractor.extract_partition_bucket_batch(data.combine_chunks().to_batches()[0])[1])


def make_table(tmp: Path, bucket: int, **options: str) -> object:
    catalog = open_catalog(tmp)
    catalog.create_database("db", True)
    opts = {"bucket": str(bucket), **options}
    schema = Schema.from_pyarrow_schema(SNAPSHOT_SCHEMA, primary_keys=KEYS, options=opts)
    catalog.create_table(f"db.t{bucket}", schema, True)
    return catalog.get_table(f"db.t{bucket}")


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[int, object]:
    tmp = tmp_path_factory.mktemp("router")
    return {b: make_table(tmp, b) for b in (1, 3, 8, 16)}


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(st.tuples(text, text), min_size=1, max_size=60), bucket=st.sampled_from([1, 3, 8, 16]))
def test_buckets_equal_pypaimons_for_any_keys(
    tables: dict[int, object], keys: list[tuple[str, str]], bucket: int
) -> None:
    data = rows(keys)
    router = BucketRouter(KEYS, bucket)
    assert router.buckets_of(data).tolist() == pypaimon_buckets(tables[bucket], data)


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(st.tuples(text, text), min_size=1, max_size=80, unique=True))
def test_route_splits_by_bucket_and_sorts_each_bucket_by_key(keys: list[tuple[str, str]]) -> None:
    data = rows(keys)
    router = BucketRouter(KEYS, 8)
    expected = router.buckets_of(data)
    bucket_of = {k: int(b) for k, b in zip(keys, expected, strict=True)}
    parts = router.route(data)
    assert [b for b, _ in parts] == sorted({b for b, _ in parts})
    seen = []
    for bucket, batch in parts:
        part_keys = list(zip(batch["sku_id"].to_pylist(), batch["warehouse_id"].to_pylist(), strict=True))
        assert all(bucket_of[k] == bucket for k in part_keys)
        assert part_keys == sorted(part_keys, key=lambda k: (k[0].encode(), k[1].encode()))
        seen += batch.to_pylist()
    assert sorted(seen, key=lambda r: r["available_qty"]) == data.to_pylist()


def splits_by_bucket(tmp: Path, table: str) -> list[tuple[int, pa.Table]]:
    t = open_catalog(tmp).get_table(f"db.{table}")
    rb = t.new_read_builder()
    return [
        (s.bucket, rb.new_read().to_arrow([s]).select(SNAPSHOT_SCHEMA.names)) for s in rb.new_scan().plan().splits()
    ]


def test_router_agrees_with_the_buckets_paimons_own_writer_chooses(tmp_path: Path) -> None:
    keys = [(f"SKU-{i:07d}", f"WH-{i % 13:03d}") for i in range(0, 40_000, 7)] + [("é-中", ""), ("x" * 40, "y")]
    data = rows(keys)
    router = BucketRouter(KEYS, 8)

    plain = PaimonSnapshotSink(tmp_path, "db", "plain", 8, "test")
    plain.router = None  # Paimon's Rust writer assigns the buckets
    plain.commit(data, 1)
    plain.close()
    parts = splits_by_bucket(tmp_path, "plain")
    assert {b for b, _ in parts} == set(range(8))
    for bucket, part in parts:
        assert set(router.buckets_of(part).tolist()) == {bucket}

    routed = PaimonSnapshotSink(tmp_path, "db", "routed", 8, "test")
    assert routed.router is not None
    routed.commit(data, 1)
    routed.close()
    table = open_catalog(tmp_path).get_table("db.routed")
    parts = splits_by_bucket(tmp_path, "routed")
    assert sum(p.num_rows for _, p in parts) == len(keys)
    for bucket, part in parts:
        assert set(pypaimon_buckets(table, part)) == {bucket}
    want = data.sort_by([("sku_id", "ascending"), ("warehouse_id", "ascending")])
    assert read_snapshot(tmp_path, "db", "routed").equals(want)
    assert read_snapshot(tmp_path, "db", "plain").equals(want)


def test_router_follows_a_bucket_key_other_than_the_primary_key(tmp_path: Path) -> None:
    table = make_table(tmp_path, 4, **{"bucket-key": "sku_id"})
    router = BucketRouter.create(table)
    assert router is not None and router.keys == ["sku_id"]
    data = rows([(f"SKU-{i}", f"WH-{i % 3}") for i in range(200)])
    assert router.buckets_of(data).tolist() == pypaimon_buckets(table, data)


def test_router_steps_aside_for_other_bucket_functions_and_dynamic_buckets(tmp_path: Path) -> None:
    assert BucketRouter.create(make_table(tmp_path, 5, **{"bucket-function.type": "hive"})) is None
    assert BucketRouter.create(make_table(tmp_path, -1)) is None
    assert BucketRouter.create(make_table(tmp_path, 6)) is not None
