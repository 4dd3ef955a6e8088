"""Integration tests against the real local services started by `services/svc up`.

They assume every service is up (the test runner starts them beforehand) and FAIL, never
skip, when one is not reachable. Everything talks to 127.0.0.1 only.

    services/svc up && .venv/bin/pytest -m integration tests/integration
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pymysql  # type: ignore[import-untyped]
import pytest
from cassandra.cluster import (  # type: ignore[import-untyped]
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
)
from cassandra.policies import WhiteListRoundRobinPolicy  # type: ignore[import-untyped]
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

pytestmark = pytest.mark.integration

REPO = pathlib.Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PORTS = {
    "mariadb": 3306,
    "kafka": 9092,
    "connect": 8083,
    "cassandra": 9042,
    "prometheus": 9090,
    "alertmanager": 9093,
}
KAFKA = f"{HOST}:{PORTS['kafka']}"
TOPICS = {"inventory_delta": 8, "orders_cdc": 8, "inventory_alerts": 1, "inventory_dlq": 1}
CONNECTOR = "inv360-orders-cdc"
ENGINE_METRICS_PORT = 8360
ENGINE_WEBHOOK_PORT = 8361


def require(service: str) -> None:
    """Fail (not skip) with a clear message when a service does not accept connections."""
    port = PORTS[service]
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return
    except OSError as exc:
        error = exc
    pytest.fail(
        f"{service} is not reachable on {HOST}:{port} ({error}); "
        f"start it with `services/svc up {service}` (see services/README.md)",
        pytrace=False,
    )


# --------------------------------------------------------------------------- kafka
@pytest.fixture(scope="module")
def admin() -> AdminClient:
    require("kafka")
    return AdminClient({"bootstrap.servers": KAFKA})


def test_kafka_topics_exist(admin: AdminClient) -> None:
    meta = admin.list_topics(timeout=10)
    for name, partitions in TOPICS.items():
        assert name in meta.topics, f"topic {name} missing (services/svc up kafka creates it)"
        assert len(meta.topics[name].partitions) == partitions, name
        for p in meta.topics[name].partitions.values():
            assert len(p.replicas) == 1


@pytest.fixture
def scratch_topic(admin: AdminClient) -> Iterator[str]:
    """A throw-away topic, so the round trip leaves the pipeline's topics untouched."""
    name = f"inv360_it_{uuid.uuid4().hex[:12]}"
    for fut in admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)]).values():
        fut.result(timeout=30)
    try:
        yield name
    finally:
        for fut in admin.delete_topics([name]).values():
            fut.result(timeout=30)


def test_kafka_produce_consume_round_trip(scratch_topic: str) -> None:
    payloads = [json.dumps({"n": i, "id": uuid.uuid4().hex}).encode() for i in range(10)]
    producer = Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True, "acks": "all"})
    errors: list[Any] = []

    def on_delivery(err: Any, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    for i, value in enumerate(payloads):
        producer.produce(
            scratch_topic,
            key=f"k{i}".encode(),
            value=value,
            on_delivery=on_delivery,
        )
    assert producer.flush(30) == 0 and not errors, errors

    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"it-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(scratch_topic, 0, 0)])
    got: list[bytes | None] = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < len(payloads) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            got.append(msg.value())
    finally:
        consumer.close()
    assert got == payloads


# ---------------------------------------------------------------- mariadb -> debezium
@pytest.fixture(scope="module")
def shop_db() -> Iterator[pymysql.connections.Connection]:
    require("mariadb")
    conn = pymysql.connect(
        host=HOST,
        port=PORTS["mariadb"],
        user="shop",
        password="shop",
        database="shop",
        autocommit=True,
    )
    try:
        yield conn
    finally:
        conn.close()


def test_mariadb_binlog_configured_for_cdc(shop_db: pymysql.connections.Connection) -> None:
    with shop_db.cursor() as cur:
        cur.execute("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@bind_address")
        assert cur.fetchone() == (1, "ROW", "FULL", "FULL", "127.0.0.1")


def test_connector_running() -> None:
    require("connect")
    status = httpx.get(f"http://{HOST}:{PORTS['connect']}/connectors/{CONNECTOR}/status", timeout=10).json()
    assert status["connector"]["state"] == "RUNNING", status
    assert [t["state"] for t in status["tasks"]] == ["RUNNING"], status


def _orders_cdc_consumer_at_end() -> Consumer:
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": f"it-{uuid.uuid4()}", "enable.auto.commit": False})
    parts = consumer.list_topics("orders_cdc", timeout=10).topics["orders_cdc"].partitions
    tps = []
    for p in parts:
        _, high = consumer.get_watermark_offsets(TopicPartition("orders_cdc", p), timeout=10)
        tps.append(TopicPartition("orders_cdc", p, high))
    consumer.assign(tps)
    return consumer


def _records_for(consumer: Consumer, key: dict[str, int], count: int, timeout: float = 30) -> list[Message]:
    want = json.dumps(key, separators=(",", ":")).encode()
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        if msg.key() == want:
            found.append(msg)
    return found


def _envelope(msg: Message) -> dict[str, Any]:
    value = msg.value()
    assert value is not None, "expected a change event, got a tombstone"
    env: dict[str, Any] = json.loads(value)
    return env


def test_mariadb_change_arrives_as_debezium_envelope(
    shop_db: pymysql.connections.Connection,
) -> None:
    require("kafka")
    require("connect")
    order_id = 900_000_000 + uuid.uuid4().int % 100_000_000
    key = {"order_id": order_id, "line_no": 1}
    consumer = _orders_cdc_consumer_at_end()
    try:
        with shop_db.cursor() as cur:
            cur.execute(
                "INSERT INTO order_lines"
                " (order_id, line_no, sku_id, warehouse_selection, quantity, status) "
                "VALUES (%s, 1, 'SKU-IT-1', 'WH-IT', 7, 'NEW')",
                (order_id,),
            )
        created = _records_for(consumer, key, 1)
        assert created, "no Debezium record for the insert reached orders_cdc within 30 s"
        env = _envelope(created[0])
        assert env["op"] == "c"
        assert env["before"] is None
        after = env["after"]
        assert {
            k: after[k] for k in ("order_id", "line_no", "sku_id", "warehouse_selection", "quantity", "status")
        } == {
            "order_id": order_id,
            "line_no": 1,
            "sku_id": "SKU-IT-1",
            "warehouse_selection": "WH-IT",
            "quantity": 7,
            "status": "NEW",
        }
        # TIMESTAMP(3) arrives as an ISO-8601 UTC string with millisecond precision
        assert isinstance(after["updated_at"], str) and after["updated_at"].endswith("Z"), after["updated_at"]
        src = env["source"]
        assert src["db"] == "shop" and src["table"] == "order_lines"
        assert isinstance(src["file"], str) and isinstance(src["pos"], int) and isinstance(src["row"], int)
        assert isinstance(env["ts_ms"], int)

        with shop_db.cursor() as cur:
            cur.execute(
                "UPDATE order_lines SET quantity = 2, status = 'ALLOCATED' WHERE order_id = %s",
                (order_id,),
            )
            cur.execute("DELETE FROM order_lines WHERE order_id = %s", (order_id,))
        later = _records_for(consumer, key, 3)
        assert len(later) == 3, f"expected update, delete and tombstone records, got {len(later)} within 30 s"
        updated, deleted, tombstone = later
        upd = _envelope(updated)
        assert upd["op"] == "u"
        assert upd["before"]["quantity"] == 7 and upd["after"]["quantity"] == 2
        assert upd["after"]["status"] == "ALLOCATED"
        dele = _envelope(deleted)
        assert dele["op"] == "d" and dele["after"] is None and dele["before"]["quantity"] == 2
        assert tombstone.value() is None, "tombstones.on.delete (default true) should follow a delete"
        # the saved test vectors have the same shape as what arrives live
        for op, live in (("c", env), ("u", upd), ("d", dele)):
            sample = json.loads((REPO / "services" / "samples" / f"orders_cdc_{op}.json").read_text())
            assert set(sample) == set(live) and set(sample["source"]) == set(live["source"]), op
    finally:
        consumer.close()
        with shop_db.cursor() as cur:
            cur.execute("DELETE FROM order_lines WHERE order_id = %s", (order_id,))


# ------------------------------------------------------------------------- cassandra
def test_cassandra_insert_select_round_trip() -> None:
    require("cassandra")
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([HOST]), request_timeout=30)
    cluster = Cluster([HOST], port=PORTS["cassandra"], execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    try:
        session = cluster.connect("supply")
        assert session.execute("SELECT release_version FROM system.local").one()[0].startswith("5.0")
        sku = f"it-{uuid.uuid4()}"
        now_ms = int(time.time() * 1000)
        insert = session.prepare(
            "INSERT INTO inventory_projection (sku_id, warehouse_id, available_qty,"
            " reserved_qty, atp_qty, updated_at, commit_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        ts = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC)
        session.execute(insert, (sku, "WH-1", 10, 3, 7, ts, 42))
        session.execute(insert, (sku, "WH-2", 5, 0, 5, ts, 43))
        rows = list(session.execute("SELECT * FROM inventory_projection WHERE sku_id = %s", (sku,)))
        assert [(r.warehouse_id, r.available_qty, r.reserved_qty, r.atp_qty, r.commit_id) for r in rows] == [
            ("WH-1", 10, 3, 7, 42),
            ("WH-2", 5, 0, 5, 43),
        ]
        assert rows[0].updated_at.replace(tzinfo=dt.UTC).timestamp() == pytest.approx(now_ms / 1000, abs=0.001)
        session.execute("DELETE FROM inventory_projection WHERE sku_id = %s", (sku,))
    finally:
        cluster.shutdown()


# ----------------------------------------------------------- prometheus / alertmanager
def test_prometheus_ready_with_rules_and_alertmanager() -> None:
    require("prometheus")
    base = f"http://{HOST}:{PORTS['prometheus']}"
    assert httpx.get(f"{base}/-/ready", timeout=10).status_code == 200
    groups = httpx.get(f"{base}/api/v1/rules", timeout=10).json()["data"]["groups"]
    names = {r["name"] for g in groups for r in g["rules"]}
    assert {
        "InventoryStale",
        "SourceLagGrowing",
        "DeadLettersIncreasing",
        "KeysBelowSafetyStock",
    } <= names
    # service discovery publishes targets and alertmanagers a few seconds after start
    engine_url = f"http://{HOST}:{ENGINE_METRICS_PORT}/metrics"
    alerts_url = f"http://{HOST}:{PORTS['alertmanager']}/api/v2/alerts"
    deadline = time.monotonic() + 20
    while True:
        targets = httpx.get(f"{base}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        ams = httpx.get(f"{base}/api/v1/alertmanagers", timeout=10).json()["data"]
        found_target = any(t["scrapeUrl"] == engine_url for t in targets)
        found_am = any(a["url"] == alerts_url for a in ams["activeAlertmanagers"])
        if (found_target and found_am) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert found_target, targets
    assert found_am, ams


def test_alertmanager_ready() -> None:
    require("alertmanager")
    assert httpx.get(f"http://{HOST}:{PORTS['alertmanager']}/-/ready", timeout=10).status_code == 200


def _promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail(
            "promtool not found (Debian package prometheus; `services/svc fetch prometheus`)",
            pytrace=False,
        )
    return exe


def test_promtool_check_rules() -> None:
    res = subprocess.run(
        [_promtool(), "check", "rules", str(REPO / "ops/prometheus/rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_rule_unit_tests() -> None:
    res = subprocess.run(
        [_promtool(), "test", "rules", str(REPO / "ops/prometheus/rules_test.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr


class _FakeEngine(BaseHTTPRequestHandler):
    """Stands in for the engine: serves /metrics and receives Alertmanager's webhook."""

    metrics = b""
    received: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(self.metrics)))
        self.end_headers()
        self.wfile.write(self.metrics)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/alertmanager":
            self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_alert_reaches_engine_webhook() -> None:
    """Prometheus scrapes :8360, fires KeysBelowSafetyStock, Alertmanager posts to :8361."""
    require("prometheus")
    require("alertmanager")
    _FakeEngine.received.clear()
    # a label unique to this run: Alertmanager keeps a notification log across restarts and
    # would not notify an identical alert again within repeat_interval
    run = uuid.uuid4().hex[:12]
    _FakeEngine.metrics = (
        f'# TYPE inv360_keys_below_safety_stock gauge\ninv360_keys_below_safety_stock{{it_run="{run}"}} 3\n'
    ).encode()
    servers = []
    for port in (ENGINE_METRICS_PORT, ENGINE_WEBHOOK_PORT):
        try:
            servers.append(ThreadingHTTPServer((HOST, port), _FakeEngine))
        except OSError as exc:
            for s in servers:
                s.server_close()
            pytest.skip(f"port {port} is taken ({exc}): is the inventory360 engine running? Stop it to run this test.")
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        deadline = time.monotonic() + 45
        firing: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not firing:
            firing = [
                a
                for n in list(_FakeEngine.received)
                for a in n["alerts"]
                if a["labels"]["alertname"] == "KeysBelowSafetyStock"
                and a["labels"].get("it_run") == run
                and a["status"] == "firing"
            ]
            time.sleep(0.2)
        assert firing, "no KeysBelowSafetyStock notification reached the webhook within 45 s"
        assert firing[0]["labels"]["severity"] == "info"
        assert firing[0]["labels"]["job"] == "inventory360"
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
