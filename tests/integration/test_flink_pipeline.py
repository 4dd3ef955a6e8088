"""Differential test: the generated Flink SQL job equals the embedded engine, row for row.

Both read the same messages from the same (unique) Kafka topics; each writes its own
Paimon table; the snapshots (sku, warehouse, available, reserved, updated_at) must be
identical. Input: inventory360.datagen traffic (duplicates, local reordering, deltas
30-90 s late, status changes, warehouse/quantity moves, deletes) plus hand-made edge
cases (a redelivered older change, a wrapped envelope, a tombstone, a blind delete,
padded ids and statuses, µs and zoned times). The one input filter: no invalid records
(``invalid_rate = 0``) — the Flink job drops them instead of dead-lettering (see
``inventory360.flink.job.DEVIATIONS``). Runs services/flink/setup.sh (cached after the
first run) and needs Kafka (``services/svc up kafka``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from inventory360.cli.options import decoders
from inventory360.datagen import GeneratorSpec, generate
from inventory360.flink.job import FlinkJob
from inventory360.flink.maintain import maintenance_plan
from inventory360.flink.runner import run_plan
from inventory360.pipeline import Input, LakeLayout, Pipeline
from inventory360.sinks.kafka import produce_file
from inventory360.sinks.paimon import read_snapshot
from inventory360.sources.kafka import KafkaSource

BOOTSTRAP = "127.0.0.1:9092"
pytestmark = [pytest.mark.integration, pytest.mark.flink, pytest.mark.slow]
T = 1_793_491_200_000


Image = dict[str, object]


def env(op: str, before: Image | None, after: Image | None, pos: int, ts: int, wrap: bool = False) -> bytes:
    e = {
        "before": before,
        "after": after,
        "op": op,
        "ts_ms": ts,
        "source": {"file": "mysql-bin.000009", "pos": pos, "row": 0},
    }
    return orjson.dumps({"schema": {"type": "struct"}, "payload": e} if wrap else e)


def img(order: object, line: object, sku: str, wh: str, qty: int, status: str, at: object) -> Image:
    return {
        "order_id": order,
        "line_no": line,
        "sku_id": sku,
        "warehouse_selection": wh,
        "quantity": qty,
        "status": status,
        "updated_at": at,
    }


def edge_cases(data: Path) -> None:
    """Appended after the generated traffic; binlog file 9 sorts after datagen's file 1."""
    deltas = [
        {
            "sku_id": " EDGE-1 ",
            "warehouse_id": "WH-E\u00a0",
            "available_delta": 7,
            "event_time": "2026-11-02T01:00:00+02:00",
            "event_id": "e-1",
        },
        {
            "sku_id": "EDGE-1",
            "warehouse_id": "WH-E",
            "available_delta": 7,
            "event_time": T + 5,
            "event_id": "e-1",
        },  # dup id
        {
            "sku_id": "EDGE-1",
            "warehouse_id": "WH-E",
            "available_delta": -2,
            "event_time": "2026-11-01 00:00:00.5",
            "event_id": "  ",
        },
        {"sku_id": "EDGE-2", "warehouse_id": "WH-E", "available_delta": 1, "event_time": (T + 60_000) * 1000},  # µs
    ]
    a1 = img(900001, 1, "EDGE-1", "WH-E", 4, " created ", T + 1000)
    a2 = img("900001", "1", "EDGE-3", "WH-E", 5, "ALLOCATED", T + 2000)  # moves the line away from EDGE-1
    orders = [
        env("c", None, a1, 100, T + 1000),
        env("u", a1, a2, 200, T + 2000, wrap=True),
        env("c", None, a1, 100, T + 1000),  # redelivered older create: ignored by position
        env("c", None, img(900002, None, "EDGE-2", "WH-E", 3, "CREATED", None), 300, T + 3000),  # line_no 0, ts_ms time
        env("d", img(900003, 1, "EDGE-4", "WH-E", 1, "CREATED", T), None, 400, T + 4000),  # blind delete
        env("u", a2, img(900001, 1, "EDGE-3", "WH-E", 5, "SHIPPED", T + 5000), 500, T + 5000),
    ]
    with (data / "deltas.jsonl").open("ab") as f:
        f.writelines(orjson.dumps(d) + b"\n" for d in deltas)
    with (data / "orders.jsonl").open("ab") as f:
        f.writelines(o + b"\n" for o in orders)
        f.write(b"null\n")  # a tombstone


def topics(n: int) -> list[str]:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    names = [f"it-flink-{uuid.uuid4().hex[:8]}-{i}" for i in range(n)]
    for fut in admin.create_topics([NewTopic(t, num_partitions=4, replication_factor=1) for t in names]).values():
        fut.result(30)
    return names


def test_flink_job_equals_the_embedded_engine(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, GeneratorSpec(skus=200, warehouses=4, events=30_000, invalid_rate=0.0, seed=23))
    edge_cases(data)
    t_deltas, t_orders = topics(2)
    produce_file(BOOTSTRAP, t_deltas, data / "deltas.jsonl", "deltas")
    produce_file(BOOTSTRAP, t_orders, data / "orders.jsonl", "orders")

    d, o = decoders()
    engine = Pipeline(
        LakeLayout(tmp_path / "embedded"),
        [
            Input("deltas", KafkaSource("deltas", BOOTSTRAP, t_deltas), d),
            Input("orders", KafkaSource("orders", BOOTSTRAP, t_orders), o),
        ],
        batch_bytes=1 << 20,
    )
    engine.open()
    engine.run()
    engine.close()
    assert engine.counters["dead_letters"] == 0

    job = FlinkJob(
        t_deltas,
        t_orders,
        BOOTSTRAP,
        ["CREATED", "ALLOCATED"],
        tmp_path / "flink" / "warehouse",
        group_id=f"it-{t_deltas}",
        bounded=True,
        checkpoint_interval_s=2,
        parallelism=2,
    )
    res = run_plan(job.plan(), setup=True, timeout=240)
    assert res.status["status"] == "FINISHED"

    want = read_snapshot(tmp_path / "embedded" / "warehouse", "inventory360", "inventory_snapshot")
    got = read_snapshot(tmp_path / "flink" / "warehouse", "inventory360", "inventory_snapshot")
    assert want.num_rows > 500
    if not got.equals(want):
        a = {(r["sku_id"], r["warehouse_id"]): r for r in want.to_pylist()}
        b = {(r["sku_id"], r["warehouse_id"]): r for r in got.to_pylist()}
        diff = [(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
        pytest.fail(f"{len(diff)} keys differ, e.g. {diff[:5]}")
    edge = {(r["sku_id"], r["warehouse_id"]): r for r in got.to_pylist() if r["sku_id"].startswith("EDGE")}
    assert edge[("EDGE-1", "WH-E")]["available_qty"] == 5  # 7 once (dup id) − 2 (blank id counts)
    assert edge[("EDGE-1", "WH-E")]["reserved_qty"] == 0  # moved away, stale create ignored
    assert edge[("EDGE-2", "WH-E")]["reserved_qty"] == 3
    assert edge[("EDGE-3", "WH-E")]["reserved_qty"] == 0  # shipped
    assert ("EDGE-4", "WH-E") in edge  # a blind delete creates the key it names

    # Maintenance through Flink batch procedures leaves the snapshot unchanged.
    res = run_plan(
        maintenance_plan(
            tmp_path / "flink" / "warehouse", "inventory360", "inventory_snapshot", retain_max=1, tag="it"
        ),
        timeout=240,
    )
    assert ["Success"] in res.rows
    assert (tmp_path / "flink/warehouse/inventory360.db/inventory_snapshot/tag/tag-it").exists()
    assert read_snapshot(tmp_path / "flink" / "warehouse", "inventory360", "inventory_snapshot").equals(want)
