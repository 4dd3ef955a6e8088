"""Differential test: the PyFlink job equals the embedded engine — snapshot, dead letters, alerts, projection.

Both read the same messages from the same (unique) Kafka topics. Input: inventory360.datagen
traffic (duplicates, local reordering, deltas 30-90 s late, status changes,
warehouse/quantity moves, deletes, 1 % invalid records) plus hand-made edge cases (a
redelivered older change, a wrapped envelope, a tombstone, a blind delete, padded ids and
statuses, µs and zoned times, more invalid shapes). The Flink job runs unbounded (2 s
checkpoints, parallelism 2) while the input arrives in two phases; after each phase the
test waits until its Paimon table equals the embedded engine's, row for row. Then:

* dead letters: the Flink job's ``inventory_dlq`` messages equal the engine's dead-letter
  file (reason, original bytes, topic/partition/offset), record for record;
* projection: the Cassandra table the job wrote equals the snapshot;
* alerts: per key, the alerts alternate LOW/RECOVERED (once per crossing) with consistent
  fields, and the final side of every key equals the engine's and the snapshot's. Keys
  the engine and Flink observe at the same granularity (one message per key per phase)
  get identical alert sequences, RECOVERED included. (Elsewhere the granularity differs:
  the engine judges each micro-batch, Flink each aggregate update.)

Needs Kafka and Cassandra (``services/svc up kafka cassandra``); runs
services/flink/setup.sh (cached after the first run).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from inventory360.cli.options import decoders
from inventory360.datagen import GeneratorSpec, generate
from inventory360.engine.alerts import SafetyStock
from inventory360.flink.alerting import Thresholds
from inventory360.flink.job import FlinkJob
from inventory360.flink.maintain import maintenance_plan
from inventory360.flink.runner import RunResult, run_plan
from inventory360.pipeline import Input, LakeLayout, Pipeline
from inventory360.sinks.alerts import AlertSink, iso_ms
from inventory360.sinks.cassandra import CassandraProjection, CassandraTarget
from inventory360.sinks.kafka import delta_key, produce_file, produce_values
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


def delta(sku: str, wh: str, qty: int, at: object, eid: str | None = None) -> bytes:
    d: dict[str, object] = {"sku_id": sku, "warehouse_id": wh, "available_delta": qty, "event_time": at}
    if eid is not None:
        d["event_id"] = eid
    return orjson.dumps(d)


def edge_cases(data: Path) -> None:
    """Appended after the generated traffic; binlog file 9 sorts after datagen's file 1."""
    deltas = [
        delta(" EDGE-1 ", "WH-E\u00a0", 7, "2026-11-02T01:00:00+02:00", "e-1"),
        delta("EDGE-1", "WH-E", 7, T + 5, "e-1"),  # duplicate id
        delta("EDGE-1", "WH-E", -2, "2026-11-01 00:00:00.5", "  "),  # blank id: counts
        delta("EDGE-2", "WH-E", 1, (T + 60_000) * 1000),  # µs
        # Invalid: the engine's reasons must come back from the Flink job's dead-letter topic.
        b'{"sku_id": "EDGE-1", "warehouse_id": "WH-E", "available_delta": "5", "event_time": 1}',
        b'{"sku_id": "EDGE-1", "warehouse_id": "WH-E", "available_delta": 5}',
        b"\xff\xfe not utf-8",
        # One message per key in this phase: alerts the engine and Flink must agree on exactly.
        delta("ALERT-1", "WH-A", 3, T + 10_000),  # LOW (default 10)
        delta("ALERT-2", "WH-A", 40, T + 11_000),  # LOW (50 from the CSV)
        delta("ALERT-3", "WH-A", 15, T + 12_000),  # never low
    ]
    a1 = img(900001, 1, "EDGE-1", "WH-E", 4, " created ", T + 1000)
    a2 = img("900001", "1", "EDGE-3", "WH-E", 5, "ALLOCATED", T + 2000)  # moves the line away from EDGE-1
    orders = [
        env("c", None, a1, 100, T + 1000),
        env("u", a1, a2, 200, T + 2000, wrap=True),
        env("c", None, a1, 100, T + 1000),  # redelivered older create: ignored by position
        env("c", None, img(900002, None, "EDGE-2", "WH-E", 3, "CREATED", None), 300, T + 3000),  # line 0, ts_ms
        env("d", img(900003, 1, "EDGE-4", "WH-E", 1, "CREATED", T), None, 400, T + 4000),  # blind delete
        env("u", a2, img(900001, 1, "EDGE-3", "WH-E", 5, "SHIPPED", T + 5000), 500, T + 5000),
        env("x", None, a1, 600, T + 6000),  # invalid: op unknown
        env("c", None, img(900004, 1, "EDGE-5", "WH-E", -1, "CREATED", T), 700, T + 7000),  # invalid: negative
    ]
    with (data / "deltas.jsonl").open("ab") as f:
        f.writelines(d + b"\n" for d in deltas)
    with (data / "orders.jsonl").open("ab") as f:
        f.writelines(o + b"\n" for o in orders)
        f.write(b"null\n")  # a tombstone: skipped by both


#: Phase 2: each ALERT key gets one more message; both engines see exactly one update per key.
PHASE_2 = [
    delta("ALERT-1", "WH-A", 20, T + 20_000),  # 23: RECOVERED
    delta("ALERT-2", "WH-A", 10, T + 21_000),  # 50: back to its threshold, RECOVERED
    delta("ALERT-3", "WH-A", -14, T + 22_000),  # 1: LOW
]


def topics(n: int) -> list[str]:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    names = [f"it-flink-{uuid.uuid4().hex[:8]}-{i}" for i in range(n)]
    for fut in admin.create_topics([NewTopic(t, num_partitions=4, replication_factor=1) for t in names]).values():
        fut.result(30)
    return names


def consume_all(topic: str, idle_s: float = 4.0) -> list[Any]:
    """Every committed message of ``topic`` (read_committed: the job's sinks are transactional)."""
    c = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"it-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    out: list[Any] = []
    last = time.monotonic()
    while time.monotonic() - last < idle_s:
        for m in c.consume(1000, 0.5):
            if m.error() is None:
                out.append(m)
                last = time.monotonic()
    c.close()
    return out


def wait_until_equal(warehouse: Path, want: Any, what: str, limit: float = 200.0) -> None:
    deadline = time.monotonic() + limit
    got = None
    while time.monotonic() < deadline:
        try:
            got = read_snapshot(warehouse, "inventory360", "inventory_snapshot")
            if got.equals(want):
                return
        except Exception:  # the table or its first snapshot does not exist yet
            pass
        time.sleep(2)
    if got is None:
        pytest.fail(f"{what}: the Flink job never committed a snapshot")
    a = {(r["sku_id"], r["warehouse_id"]): r for r in want.to_pylist()}
    b = {(r["sku_id"], r["warehouse_id"]): r for r in got.to_pylist()}
    diff = [(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
    pytest.fail(f"{what}: {len(diff)} keys differ, e.g. {diff[:5]}")


def test_flink_job_equals_the_embedded_engine(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, GeneratorSpec(skus=200, warehouses=4, events=30_000, invalid_rate=0.01, seed=23))
    edge_cases(data)
    csv = tmp_path / "safety.csv"
    csv.write_text("sku_id,warehouse_id,safety_stock\nALERT-2,WH-A,50\n")
    safety = SafetyStock.load(csv, 10)
    t_deltas, t_orders, t_alerts, t_dlq = topics(4)
    produce_file(BOOTSTRAP, t_deltas, data / "deltas.jsonl", "deltas")
    produce_file(BOOTSTRAP, t_orders, data / "orders.jsonl", "orders")

    # The embedded engine, with its alert sink (judged on every committed micro-batch).
    d, o = decoders()
    alert_db = tmp_path / "embedded" / "alerts.sqlite"
    engine = Pipeline(
        LakeLayout(tmp_path / "embedded"),
        [
            Input("deltas", KafkaSource("deltas", BOOTSTRAP, t_deltas), d),
            Input("orders", KafkaSource("orders", BOOTSTRAP, t_orders), o),
        ],
        batch_bytes=1 << 20,
        extra_sinks=lambda _pid: [AlertSink(alert_db, safety)],
    )
    engine.open()
    engine.run()

    # The Flink job, unbounded, with every output.
    table = f"it_flink_{uuid.uuid4().hex[:12]}"
    target = CassandraTarget(table=table)
    job = FlinkJob(
        t_deltas,
        t_orders,
        BOOTSTRAP,
        ["CREATED", "ALLOCATED"],
        tmp_path / "flink" / "warehouse",
        group_id=f"it-{t_deltas}",
        checkpoint_interval_s=2,
        parallelism=2,
        alerts_topic=t_alerts,
        dead_letters_topic=t_dlq,
        thresholds=Thresholds(safety.default, dict(safety.per_key), safety.compare),
        cassandra=CassandraTarget(table=table),
    )
    stop = threading.Event()
    result: list[RunResult | BaseException] = []

    def run() -> None:
        try:
            result.append(run_plan(job.plan(), setup=True, timeout=600, stop=stop))
        except BaseException as exc:
            result.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    warehouse = tmp_path / "flink" / "warehouse"
    try:
        want = read_snapshot(tmp_path / "embedded" / "warehouse", "inventory360", "inventory_snapshot")
        assert want.num_rows > 500
        wait_until_equal(warehouse, want, "phase 1")
        produce_values(BOOTSTRAP, t_deltas, PHASE_2, delta_key)
        engine.run()
        want = read_snapshot(tmp_path / "embedded" / "warehouse", "inventory360", "inventory_snapshot")
        wait_until_equal(warehouse, want, "phase 2")
        time.sleep(3 * job.checkpoint_interval_s)  # the Kafka transactions of that checkpoint commit too
    finally:
        stop.set()
        runner.join(60)
        engine.close()
    assert result and not isinstance(result[0], BaseException), result
    assert result[0].status["status"] == "STOPPED", result[0].output[-3000:]

    # Edge cases of the snapshot itself.
    edge = {(r["sku_id"], r["warehouse_id"]): r for r in want.to_pylist() if r["sku_id"].startswith("EDGE")}
    assert edge[("EDGE-1", "WH-E")]["available_qty"] == 5  # 7 once (dup id) − 2 (blank id counts)
    assert edge[("EDGE-1", "WH-E")]["reserved_qty"] == 0  # moved away, stale create ignored
    assert edge[("EDGE-2", "WH-E")]["reserved_qty"] == 3
    assert edge[("EDGE-3", "WH-E")]["reserved_qty"] == 0  # shipped
    assert ("EDGE-4", "WH-E") in edge  # a blind delete creates the key it names

    # Dead letters: the engine's file, record for record (reason, bytes, topic/partition/offset).
    dlq = consume_all(t_dlq)
    got_dead = sorted((orjson.loads(m.value()) for m in dlq), key=lambda r: orjson.dumps(r["position"]))
    want_dead = [orjson.loads(x) for x in (tmp_path / "embedded" / "dead_letters.jsonl").read_bytes().splitlines()]
    want_dead.sort(key=lambda r: orjson.dumps(r["position"]))
    assert len(want_dead) >= 100
    assert got_dead == want_dead
    assert {"invalid JSON", "available_delta: not an integer", "op: unknown", "quantity: negative"} <= {
        r["reason"] for r in got_dead
    }
    assert all(m.key() == dict(m.headers())["inv360-dedupe"] for m in dlq)

    # Projection: the Cassandra table equals the snapshot.
    rows = cassandra_rows(target)
    snap = [
        (r["sku_id"], r["warehouse_id"], r["available_qty"], r["reserved_qty"], _ms(r["updated_at"]))
        for r in want.to_pylist()
    ]
    assert rows == sorted(snap)

    # Alerts: once per crossing, consistent, and the same final side as the engine and the snapshot.
    flink_alerts: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for m in consume_all(t_alerts):
        a = orjson.loads(m.value())
        assert m.key() == f"{a['sku_id']}|{a['warehouse_id']}".encode()
        flink_alerts[(a["sku_id"], a["warehouse_id"])].append(a)
    sink = AlertSink(alert_db, safety)
    engine_alerts: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for e in sink.since(0):
        engine_alerts[(e.sku_id, e.warehouse_id)].append(e)
    sink.close()
    assert len(flink_alerts) > 50
    lookup = safety.lookup()
    for row in want.to_pylist():
        key = (row["sku_id"], row["warehouse_id"])
        threshold = lookup.get(key, safety.default)
        low = row["available_qty"] < threshold
        seq = flink_alerts.get(key, [])
        assert [a["kind"] for a in seq] == ["LOW", "RECOVERED"] * (len(seq) // 2) + ["LOW"] * (len(seq) % 2), key
        for a in seq:
            assert a["safety_stock"] == threshold and a["atp_qty"] == a["available_qty"] - a["reserved_qty"]
            assert (a["available_qty"] < threshold) == (a["kind"] == "LOW"), a
        assert (bool(seq) and seq[-1]["kind"] == "LOW") == low, key
        engine_seq = engine_alerts.get(key, [])
        assert (bool(engine_seq) and engine_seq[-1].kind == "LOW") == low, key
    exact = {k for k in flink_alerts.keys() | engine_alerts.keys() if k[0].startswith("ALERT-")}
    assert exact == {("ALERT-1", "WH-A"), ("ALERT-2", "WH-A"), ("ALERT-3", "WH-A")}
    for key in exact:
        got = [
            (a["kind"], a["available_qty"], a["reserved_qty"], a["safety_stock"], a["event_time"])
            for a in flink_alerts[key]
        ]
        expected = [
            (e.kind, e.available_qty, e.reserved_qty, e.safety_stock, iso_ms(e.event_time_ms))
            for e in engine_alerts[key]
        ]
        assert got == expected, key
    assert [a["kind"] for a in flink_alerts[("ALERT-2", "WH-A")]] == ["LOW", "RECOVERED"]

    # Maintenance through Flink batch procedures leaves the snapshot unchanged.
    res = run_plan(
        maintenance_plan(warehouse, "inventory360", "inventory_snapshot", retain_max=1, tag="it"), timeout=240
    )
    assert ["Success"] in res.rows
    assert (warehouse / "inventory360.db/inventory_snapshot/tag/tag-it").exists()
    assert read_snapshot(warehouse, "inventory360", "inventory_snapshot").equals(want)


def cassandra_rows(target: CassandraTarget, limit: float = 120.0) -> list[tuple[Any, ...]]:
    """The projection's rows, then drop the test's tables; waits out a Cassandra restart (other tests do them)."""
    deadline = time.monotonic() + limit
    while True:
        proj = CassandraProjection(target)
        try:
            rows = [r[:5] for r in proj.rows()]
            for t in (target.table, target.meta_table):
                proj._s().execute(f"DROP TABLE IF EXISTS {target.keyspace}.{t}", timeout=60)
            return rows
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(3)
        finally:
            proj.close()


def _ms(value: Any) -> int | None:
    import datetime as dt

    if value is None:
        return None
    return int((value - dt.datetime(1970, 1, 1)) // dt.timedelta(milliseconds=1))
