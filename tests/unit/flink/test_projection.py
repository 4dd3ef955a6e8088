"""Pure parts of the Flink job's Cassandra writer: timestamps, batching, schema."""

from __future__ import annotations

import subprocess
import sys

from inventory360.config import CassandraProjectionSettings, SqliteProjectionSettings
from inventory360.flink.projection import WriteClock, replica_batches
from inventory360.sinks.cassandra_target import CassandraTarget


def test_write_clock_is_strictly_increasing_even_when_the_wall_clock_is_not() -> None:
    now = iter([5_000_000, 5_000_000, 4_000_000, 9_000_000])
    clock = WriteClock(lambda: next(now))
    assert [clock.next() for _ in range(4)] == [5_000, 5_001, 5_002, 9_000]


def test_batches_share_a_replica_and_keep_a_partition_together() -> None:
    rows = {(f"S{i % 7}", f"W{i}"): (i, 0, None) for i in range(40)}
    owner = {f"S{i}": "h1" if i < 4 else "h2" for i in range(7)}
    batches = replica_batches(rows, owner.__getitem__, 5)
    assert sum(len(b) for b in batches) == 40
    assert all(len(b) <= 5 for b in batches)
    assert all(len({owner[k[0]] for k, _ in b}) == 1 for b in batches)
    flat = [k for b in batches for k, _ in b]
    assert flat == sorted(flat, key=lambda k: (owner[k[0]], k))  # sorted within each replica's run
    assert replica_batches({}, owner.__getitem__, 5) == []


def test_the_flink_writer_imports_no_dataframe_library() -> None:
    """The Flink workers' venv has the cassandra driver but not Polars: the writer and its
    shared target module must stay importable there."""
    code = (
        "import sys, inventory360.flink.projection; "
        "bad = sorted({'polars', 'pandas', 'inventory360.sinks.cassandra'} & set(sys.modules)); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_target_round_trips_through_the_plan_and_comes_from_settings() -> None:
    c = CassandraTarget(hosts=("a", "b"), keyspace="k", table="t", username="u", password="p", consistency="ONE")
    assert CassandraTarget.from_json(c.to_json()) == c
    p = CassandraProjectionSettings(hosts=["h"], table="t", password="s3cret", consistency="ONE")
    t = CassandraTarget.from_settings(p)
    assert t is not None and (t.hosts, t.table, t.password, t.consistency) == (("h",), "t", "s3cret", "ONE")
    assert t.meta_table == "t_meta"
    assert CassandraTarget.from_settings(SqliteProjectionSettings()) is None
