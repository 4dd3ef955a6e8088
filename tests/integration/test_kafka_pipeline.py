"""The pipeline reading real Kafka topics equals the file replay; restarts resume exactly."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from inventory360.cli.options import decoders
from inventory360.datagen import GeneratorSpec, generate
from inventory360.pipeline import Input, LakeLayout, Pipeline
from inventory360.sinks.kafka import produce_file
from inventory360.sinks.paimon import read_snapshot
from inventory360.sources.kafka import KafkaSource

BOOTSTRAP = "127.0.0.1:9092"
pytestmark = pytest.mark.integration


def topics(n: int) -> list[str]:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    names = [f"it-{uuid.uuid4().hex[:8]}-{i}" for i in range(n)]
    for fut in admin.create_topics([NewTopic(t, num_partitions=4, replication_factor=1) for t in names]).values():
        fut.result(30)
    return names


def kafka_pipeline(lake: Path, t_deltas: str, t_orders: str, batch: int) -> Pipeline:
    d, o = decoders()
    return Pipeline(
        LakeLayout(lake),
        [
            Input("deltas", KafkaSource("deltas", BOOTSTRAP, t_deltas), d),
            Input("orders", KafkaSource("orders", BOOTSTRAP, t_orders), o),
        ],
        batch_bytes=batch,
    )


def test_kafka_replay_matches_files_across_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, GeneratorSpec(skus=300, warehouses=4, events=40_000, invalid_rate=0.002, seed=11))
    t_deltas, t_orders = topics(2)
    assert produce_file(BOOTSTRAP, t_deltas, data / "deltas.jsonl", "deltas") > 10_000
    produce_file(BOOTSTRAP, t_orders, data / "orders.jsonl", "orders")

    from inventory360.cli.options import build_inputs

    files = Pipeline(LakeLayout(tmp_path / "files"), build_inputs([data / "deltas.jsonl"], [data / "orders.jsonl"]))
    files.open()
    files.run()
    files.close()

    lake = tmp_path / "kafka"
    first = kafka_pipeline(lake, t_deltas, t_orders, batch=256 << 10)
    first.open()
    for i in range(3):
        assert first.step() is not None, f"step {i} found nothing"
    first.close()  # a restart in the middle: offsets come back from the checkpoint
    second = kafka_pipeline(lake, t_deltas, t_orders, batch=256 << 10)
    second.open()
    second.run()
    assert second.counters["deltas_in"] + second.counters["orders_in"] == 40_000
    second.close()

    got = read_snapshot(lake / "warehouse", "inventory360", "inventory_snapshot")
    want = read_snapshot(tmp_path / "files" / "warehouse", "inventory360", "inventory_snapshot")
    assert got.num_rows > 1000
    assert got.equals(want)
    dead = [orjson.loads(x) for x in (lake / "dead_letters.jsonl").read_bytes().splitlines()]
    assert dead and all({"topic", "partition", "offset"} <= set(d["position"]) for d in dead)
    assert len(dead) == len((tmp_path / "files" / "dead_letters.jsonl").read_bytes().splitlines())
