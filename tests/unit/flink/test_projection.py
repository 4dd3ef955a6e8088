"""Pure parts of the Flink job's Cassandra writer: timestamps, batching, schema."""

from __future__ import annotations

import re

from inventory360.flink.projection import META_CQL, TABLE_CQL, CassandraConfig, WriteClock, replica_batches
from inventory360.sinks import cassandra as engine_sink


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


def _columns(cql: str) -> list[str]:
    return re.sub(r"\s+", " ", cql.split("(", 1)[1]).strip().split(", ")


def test_schema_is_the_engines_projection_table() -> None:
    fields = {"ks": "supply", "table": "inventory_projection", "meta": "inventory_projection_meta"}
    assert _columns(TABLE_CQL.format(**fields)) == _columns(engine_sink._TABLE_CQL.format(**fields))
    assert _columns(META_CQL.format(**fields)) == _columns(engine_sink._META_CQL.format(**fields))


def test_config_round_trips_through_the_plan() -> None:
    c = CassandraConfig(hosts=("a", "b"), keyspace="k", table="t", username="u", password="p", consistency="ONE")
    assert CassandraConfig.from_json(c.to_json()) == c
