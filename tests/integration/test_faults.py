"""Fault tests: `inv360 run` as a subprocess over real Kafka + Cassandra survives kill -9 and outages.

Each test uses its own topics and its own Cassandra table, produces generated data to
Kafka, injects the fault (kill -9, Cassandra down, Kafka restarted), and then checks that
the Paimon snapshot AND the Cassandra projection equal a clean file replay of the same
data (nothing lost, nothing doubled), and that the Kafka copies of alerts and dead
letters hold every record (deduplicated by their dedupe keys).

The MariaDB restart test runs the CDC path instead: rows of ``shop.order_lines`` changed
while MariaDB restarts → Debezium → ``orders_cdc`` → the engine; the result must be what
SPEC §2 says for the final table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pymysql  # type: ignore[import-untyped]
import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from inventory360.cli.options import build_inputs
from inventory360.datagen import GeneratorSpec, generate
from inventory360.pipeline import LakeLayout, Pipeline
from inventory360.sinks.cassandra import CassandraProjection, CassandraTarget
from inventory360.sinks.kafka import delta_key, order_key, produce_values
from inventory360.sinks.paimon import read_snapshot

pytestmark = pytest.mark.integration

BOOTSTRAP = "127.0.0.1:9092"
REPO = Path(__file__).resolve().parents[2]
INV360 = str(Path(sys.executable).parent / "inv360")
TOKEN = "fault-test-token"


@dataclass
class Setup:
    """Topics, table, data and the engine's config of one test."""

    tmp: Path
    tag: str
    data: Path
    config: Path
    target: CassandraTarget
    topics: dict[str, str]

    @property
    def lake(self) -> Path:
        return self.tmp / "lake"


def _create_topics(names: list[str], partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for fut in admin.create_topics(
        [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in names]
    ).values():
        fut.result(30)


def _engine_config(tmp_path: Path, target: CassandraTarget, topics: dict[str, str], orders_topic: str) -> Path:
    config = tmp_path / "engine.yaml"
    publish = {"alerts_topic": topics["alerts"], "dead_letters_topic": topics["dlq"]} if "alerts" in topics else {}
    config.write_text(
        yaml.safe_dump(
            {
                "lake": {"path": str(tmp_path / "lake")},
                "sources": {
                    "type": "kafka",
                    "bootstrap": BOOTSTRAP,
                    "deltas_topic": topics["deltas"],
                    "orders_topic": orders_topic,
                    "poll_timeout_s": 0.2,
                },
                "projection": {"type": "cassandra", "table": target.table, "request_timeout_s": 3},
                "publish": {"bootstrap": BOOTSTRAP, **publish} if publish else {},
                "alertmanager": {"enabled": False},
                # Small batches and a checkpoint each: faults land between many checkpoints
                # (tests/e2e/test_crash.py kills replays whose checkpoints cover several batches).
                "run": {"batch_mb": 0.25, "checkpoint_interval_s": 0},
                "alerts": {"default_safety_stock": 5},
            }
        )
    )
    return config


def _drop(s: Setup) -> None:
    """Drop the test's Cassandra tables and delete its own topics."""
    target = s.target
    try:
        cluster, session = target.connect()
        try:
            session.execute(f"DROP TABLE IF EXISTS {target.keyspace}.{target.table}", timeout=60)
            session.execute(f"DROP TABLE IF EXISTS {target.keyspace}.{target.meta_table}", timeout=60)
        finally:
            cluster.shutdown()
    except Exception:
        pass
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for fut in admin.delete_topics(list(s.topics.values())).values():
        fut.result(30)  # wait: a request still pending when the client goes away is dropped (topics leaked)


@pytest.fixture
def setup(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Setup]:
    """Own topics and table, generated data (``events``: 60,000 unless parametrised), engine config."""
    events: int = getattr(request, "param", 60_000)
    tag = uuid.uuid4().hex[:8]
    topics = {k: f"it-fault-{tag}-{k}" for k in ("deltas", "orders", "alerts", "dlq")}
    _create_topics([topics["deltas"], topics["orders"]], 4)
    _create_topics([topics["alerts"], topics["dlq"]], 1)
    target = CassandraTarget(table=f"it_fault_{tag}")
    data = tmp_path / "data"
    generate(data, GeneratorSpec(skus=400, warehouses=5, events=events, invalid_rate=0.002, seed=int(tag, 16) % 1000))
    config = _engine_config(tmp_path, target, topics, topics["orders"])
    s = Setup(tmp_path, tag, data, config, target, topics)
    yield s
    _drop(s)


def produce(s: Setup, part: int | None = None, parts: int = 2) -> int:
    """Send the generated lines (all, or chunk ``part`` of ``parts`` of each file) to their topics; returns how many."""
    n = 0
    for kind, key in (("deltas", delta_key), ("orders", order_key)):
        lines = [x for x in (s.data / f"{kind}.jsonl").read_bytes().splitlines() if x.strip()]
        if part is not None:
            lines = lines[len(lines) * part // parts : len(lines) * (part + 1) // parts]
        n += produce_values(BOOTSTRAP, s.topics[kind], lines, key)
    return n


class Engine:
    """`inv360 run --config …` as a subprocess (API on a free port)."""

    def __init__(self, s: Setup, name: str) -> None:
        self.log = (s.tmp / f"{name}.log").open("wb")
        env = {**os.environ, "INV360_API__TOKEN": TOKEN}
        self.proc = subprocess.Popen(
            [INV360, "run", "--config", str(s.config), "--port", "0"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        self.url = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            m = re.search(r"API (http://127\.0\.0\.1:\d+)/v1", line)
            if m:
                self.url = m.group(1)
                break
            if not line and self.proc.poll() is not None:
                break
        assert self.url, f"engine did not start: {(s.tmp / f'{name}.log').read_text()[-2000:]}"

    def metrics(self) -> dict[str, float]:
        text = httpx.get(self.url + "/metrics", timeout=5).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("inv360_") and " " in line:
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def events_in(self) -> int:
        m = self.metrics()
        return int(
            m.get('inv360_events_in_total{source="deltas"}', 0) + m.get('inv360_events_in_total{source="orders"}', 0)
        )

    def checkpoint(self) -> int:
        return int(self.metrics().get("inv360_checkpoint_id", 0))

    def wait_events(self, total: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        got = -1
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"engine exited with {self.proc.returncode}"
            try:
                got = self.events_in()
            except httpx.HTTPError:
                got = -1
            if got >= total:
                assert got == total, f"{got} events counted, {total} produced"
                return
            time.sleep(0.3)
        raise AssertionError(f"only {got} of {total} events processed in {timeout}s")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        self.log.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close()
        assert self.proc.returncode == 0, f"engine exit code {self.proc.returncode}"


def clean_replay(s: Setup) -> list[tuple[str, str, int, int, int | None]]:
    pipe = Pipeline(LakeLayout(s.tmp / "clean"), build_inputs([s.data / "deltas.jsonl"], [s.data / "orders.jsonl"]))
    pipe.open()
    pipe.run()
    pipe.close()
    return snapshot(s.tmp / "clean")


def snapshot(lake: Path) -> list[tuple[str, str, int, int, int | None]]:
    rows = read_snapshot(lake / "warehouse", "inventory360", "inventory_snapshot").to_pylist()
    return [
        (
            r["sku_id"],
            r["warehouse_id"],
            r["available_qty"],
            r["reserved_qty"],
            None if r["updated_at"] is None else int(r["updated_at"].timestamp() * 1000),
        )
        for r in rows
    ]


def cassandra_rows(target: CassandraTarget) -> list[tuple[str, str, int, int, int | None]]:
    store = CassandraProjection(target)
    try:
        return [r[:5] for r in store.rows()]
    finally:
        store.close()


def topic_dedupe_keys(topic: str) -> tuple[int, set[str]]:
    """(messages, distinct dedupe keys) of a one-partition topic."""
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"it-{uuid.uuid4()}", "enable.auto.commit": False})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.assign([TopicPartition(topic, 0, 0)])
        keys: set[str] = set()
        n = 0
        deadline = time.monotonic() + 30
        while n < high and time.monotonic() < deadline:
            for m in c.consume(1000, 1.0):
                if m.error() is None:
                    n += 1
                    keys.add(dict(m.headers() or [])["inv360-dedupe"].decode())
        return n, keys
    finally:
        c.close()


def check_equal_to_clean(s: Setup) -> None:
    want = clean_replay(s)
    assert len(want) > 1000
    assert snapshot(s.lake) == want, "Paimon snapshot differs from the clean replay"
    assert cassandra_rows(s.target) == want, "Cassandra projection differs from the clean replay"
    alerts = (s.lake / "alerts.jsonl").read_bytes().splitlines()
    n, keys = topic_dedupe_keys(s.topics["alerts"])
    assert alerts and len(keys) == len(alerts) and n >= len(alerts)
    dead = (s.lake / "dead_letters.jsonl").read_bytes().splitlines()
    clean_dead = (s.tmp / "clean" / "dead_letters.jsonl").read_bytes().splitlines()
    assert len(dead) == len(clean_dead) > 0
    n, keys = topic_dedupe_keys(s.topics["dlq"])
    assert len(keys) == len(dead) and n >= len(dead)


def test_kill9_and_restart_equals_clean_replay(setup: Setup) -> None:
    s = setup
    total = produce(s)
    first = Engine(s, "engine-1")
    try:
        deadline = time.monotonic() + 60
        while first.checkpoint() < 8:
            assert time.monotonic() < deadline, "engine made no progress"
            time.sleep(0.1)
        assert first.events_in() < total, "finished before the kill: make the data larger"
    finally:
        first.kill9()
    second = Engine(s, "engine-2")
    try:
        second.wait_events(total, timeout=90)
    finally:
        second.stop()
    check_equal_to_clean(s)


def svc(*args: str) -> None:
    subprocess.run([str(REPO / "services" / "svc"), *args], check=True, capture_output=True, timeout=300)


def bring_back(stopped: str | None, engine: Engine) -> None:
    """Start the service the test stopped (if any) and stop the engine, even when the first fails."""
    try:
        if stopped is not None:
            svc("up", stopped)
    finally:
        engine.stop()


def test_cassandra_outage_blocks_and_recovers_without_loss(setup: Setup) -> None:
    s = setup
    first_part = produce(s, 0)
    engine = Engine(s, "engine")
    stopped = False
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        engine.wait_events(first_part, timeout=60)
        # Listings read a scan of the projection cached for up to 1 s: wait for one after the commit.
        deadline = time.monotonic() + 10
        while not (items := httpx.get(engine.url + "/v1/inventory?limit=1", headers=auth, timeout=10).json()["items"]):
            assert time.monotonic() < deadline, "the committed rows never showed in the listing"
            time.sleep(0.2)
        item = items[0]
        point = f"{engine.url}/v1/inventory/{item['sku_id']}/{item['warehouse_id']}"
        assert httpx.get(point, headers=auth, timeout=10).status_code == 200
        svc("down", "cassandra")
        stopped = True
        down_at = time.monotonic()
        rest = produce(s, 1)
        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        assert engine.proc.poll() is None, "the engine must block and retry, not exit"
        assert engine.events_in() == first_part, "nothing can be committed while Cassandra is down"
        r = httpx.get(point, headers=auth, timeout=10)
        assert r.status_code == 503 and r.json()["error"]["status"] == 503, "the API says the projection is unavailable"
        svc("up", "cassandra")
        stopped = False
        engine.wait_events(first_part + rest, timeout=120)
        # The API's own driver session reconnects on its schedule (backoff up to 5 s).
        deadline = time.monotonic() + 20
        while (code := httpx.get(point, headers=auth, timeout=10).status_code) == 503:
            assert time.monotonic() < deadline, "the API never recovered from the Cassandra outage"
            time.sleep(0.5)
        assert code == 200
    finally:
        bring_back("cassandra" if stopped else None, engine)
    log = (s.tmp / "engine.log").read_text()
    assert "retrying in" in log, "each retry is logged"
    check_equal_to_clean(s)


@pytest.mark.parametrize("setup", [36_000], indirect=True)  # three chunks of 12,000: keeps the test short
def test_kafka_restart_mid_stream_loses_and_doubles_nothing(setup: Setup) -> None:
    s = setup
    first = produce(s, 0, 3)
    engine = Engine(s, "engine")
    stopped = False
    try:
        engine.wait_events(first, timeout=60)
        second = produce(s, 1, 3)
        deadline = time.monotonic() + 30
        while engine.events_in() == first:  # the engine is consuming the second chunk
            assert time.monotonic() < deadline, "the engine did not start on the second chunk"
            time.sleep(0.05)
        svc("down", "kafka")
        stopped = True
        at_down = engine.events_in()
        assert at_down < first + second, "finished the second chunk before the broker stopped: make it larger"
        time.sleep(16)  # longer than the publishers' message timeout (15 s): their retries are exercised
        assert engine.proc.poll() is None, "the engine must wait for the broker, not exit"
        svc("up", "kafka")
        stopped = False
        third = produce(s, 2, 3)
        engine.wait_events(first + second + third, timeout=90)
    finally:
        bring_back("kafka" if stopped else None, engine)
    log = (s.tmp / "engine.log").read_text()
    assert "retrying in" in log, "the blocked Kafka publishers log each retry"
    assert "brokers are down; the Kafka client keeps reconnecting" in log, "the outage is reported clearly"
    assert "Kafka reachable again after" in log, "and so is the recovery"
    assert log.count("Connection refused") < 30, "librdkafka's per-attempt connection failures are rate-limited"
    check_equal_to_clean(s)


# -- MariaDB restart on the CDC path ---------------------------------------------------------

CONNECT = "http://127.0.0.1:8083/connectors/inv360-orders-cdc/status"
STATUSES = ("CREATED", "ALLOCATED", "PICKING", "SHIPPED", "CANCELLED", "created", " Allocated ")


def connector_running() -> bool:
    try:
        st = httpx.get(CONNECT, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(st["connector"]["state"] == "RUNNING" and [t["state"] for t in st["tasks"]] == ["RUNNING"])


@dataclass
class OrderWriter:
    """Changes random lines of ``orders`` × ``lines`` (insert-or-update, update, move, delete) until stopped.

    Reconnects after any error (MariaDB restarting). A statement that failed may or may
    not have been applied, so only the final table is the truth; ``keys`` holds every
    (sku, warehouse) any statement used.
    """

    prefix: str
    base: int
    orders: int = 30
    lines: int = 2
    ok: int = 0
    failed: int = 0
    keys: set[tuple[str, str]] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rnd = random.Random(self.base)
        skus = [f"{self.prefix}S{i}" for i in range(6)]
        whs = ["W1", "W2", "W3"]
        db = None
        while not self.stop.is_set():
            order, line = self.base + rnd.randrange(self.orders), rnd.randrange(1, self.lines + 1)
            sku, wh = rnd.choice(skus), rnd.choice(whs)
            qty, status = rnd.randrange(1, 10), rnd.choice(STATUSES)
            op = rnd.random()
            if op < 0.4:
                sql = (
                    "INSERT INTO order_lines (order_id, line_no, sku_id, warehouse_selection, quantity, status)"
                    " VALUES (%s,%s,%s,%s,%s,%s) ON DUPLICATE KEY UPDATE sku_id=VALUES(sku_id),"
                    " warehouse_selection=VALUES(warehouse_selection), quantity=VALUES(quantity), status=VALUES(status)"
                )
                args: tuple[object, ...] = (order, line, sku, wh, qty, status)
                self.keys.add((sku, wh))
            elif op < 0.65:
                sql, args = "UPDATE order_lines SET status=%s WHERE order_id=%s AND line_no=%s", (status, order, line)
            elif op < 0.8:
                sql, args = "UPDATE order_lines SET quantity=%s WHERE order_id=%s AND line_no=%s", (qty, order, line)
            elif op < 0.9:
                sql = "UPDATE order_lines SET warehouse_selection=%s WHERE order_id=%s AND line_no=%s"
                args = (wh, order, line)
                self.keys.update((s, wh) for s in skus)
            else:
                sql, args = "DELETE FROM order_lines WHERE order_id=%s AND line_no=%s", (order, line)
            try:
                if db is None:
                    db = mariadb()
                with db.cursor() as cur:
                    cur.execute(sql, args)
                self.ok += 1
            except pymysql.err.MySQLError:
                self.failed += 1
                if db is not None:
                    with contextlib.suppress(pymysql.err.MySQLError):
                        db.close()
                db = None
                self.stop.wait(0.2)
            self.stop.wait(0.01)
        if db is not None:
            db.close()


def mariadb() -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1", port=3306, user="shop", password="shop", database="shop", autocommit=True, connect_timeout=5
    )


def final_table(base: int, orders: int) -> list[tuple[str, str, int, str, dt.datetime]]:
    db = mariadb()
    try:
        with db.cursor() as cur:
            cur.execute(
                "SELECT sku_id, warehouse_selection, quantity, status, updated_at FROM order_lines"
                " WHERE order_id >= %s AND order_id < %s",
                (base, base + orders),
            )
            return list(cur.fetchall())
    finally:
        db.close()


@pytest.fixture
def cdc_setup(tmp_path: Path) -> Iterator[Setup]:
    tag = uuid.uuid4().hex[:8]
    topics = {"deltas": f"it-fault-{tag}-deltas"}
    _create_topics([topics["deltas"]], 4)
    target = CassandraTarget(table=f"it_fault_{tag}")
    config = _engine_config(tmp_path, target, topics, "orders_cdc")
    s = Setup(tmp_path, tag, tmp_path, config, target, topics)
    yield s
    _drop(s)


def test_mariadb_restart_mid_cdc_stream_loses_and_doubles_nothing(cdc_setup: Setup) -> None:
    s = cdc_setup
    assert connector_running(), "Debezium connector not RUNNING: services/svc up connect"
    prefix = f"FT{s.tag}-"
    writer = OrderWriter(prefix, int(uuid.uuid4().int % 10**12) + 2 * 10**12)
    deltas: dict[tuple[str, str], int] = defaultdict(int)
    rnd = random.Random(s.tag)

    def send_deltas(n: int) -> None:
        values = []
        for _ in range(n):
            key = (f"{prefix}S{rnd.randrange(6)}", rnd.choice(["W1", "W2", "W3"]))
            qty = rnd.randrange(-5, 20)
            deltas[key] += qty
            body = {
                "sku_id": key[0],
                "warehouse_id": key[1],
                "available_delta": qty,
                "event_time": time.time_ns() // 10**6,
            }
            values.append(orjson.dumps(body))
        produce_values(BOOTSTRAP, s.topics["deltas"], values, delta_key)

    engine = Engine(s, "engine")
    thread = threading.Thread(target=writer.run, name="order-writer")
    stopped = False
    try:
        send_deltas(200)
        thread.start()
        time.sleep(4)  # changes before the restart
        ok_before = writer.ok
        svc("down", "mariadb")
        stopped = True
        time.sleep(2)
        svc("up", "mariadb")
        stopped = False
        time.sleep(4)  # changes right after the restart (the writer reconnects)
        send_deltas(200)
        writer.stop.set()
        thread.join(30)
        assert ok_before > 50 and writer.ok - ok_before > 50, f"too few changes around the restart: {writer}"
        assert writer.failed > 0, "the writer never saw MariaDB go down"

        rows = final_table(writer.base, writer.orders)
        reserved: dict[tuple[str, str], int] = defaultdict(int)
        changed: dict[tuple[str, str], int] = {}
        for sku, wh, qty, status, at in rows:
            if status.strip().upper() in ("CREATED", "ALLOCATED"):
                reserved[(sku, wh)] += qty
            ms = int(at.replace(tzinfo=dt.UTC).timestamp() * 1000)
            changed[(sku, wh)] = max(changed.get((sku, wh), 0), ms)
        assert sum(reserved.values()) > 0 and len(rows) > 10

        def ours(got: list[tuple[str, str, int, int, int | None]]) -> dict[tuple[str, str], tuple[int, int]]:
            return {(r[0], r[1]): (r[2], r[3]) for r in got if r[0].startswith(prefix)}

        def expected(keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
            return {k: (deltas.get(k, 0), reserved.get(k, 0)) for k in keys}

        def caught_up(rows: list[tuple[str, str, int, int, int | None]]) -> bool:
            """Every line's newest change is in: a last change that moves no quantity (a
            status change between two reserving ones) shows only in ``updated_at``."""
            at = {(r[0], r[1]): r[4] for r in rows}
            return all((at.get(k) or 0) >= ms for k, ms in changed.items())

        deadline = time.monotonic() + 60
        got: dict[tuple[str, str], tuple[int, int]] = {}
        while time.monotonic() < deadline:
            assert engine.proc.poll() is None, f"engine exited with {engine.proc.returncode}"
            now = cassandra_rows(s.target)
            got = ours(now)
            if got and got == expected(set(got)) and set(reserved) | set(deltas) <= set(got) and caught_up(now):
                break
            time.sleep(0.5)
        assert connector_running(), "the Debezium task did not survive the MariaDB restart"
    finally:
        writer.stop.set()
        if thread.is_alive():
            thread.join(30)
        try:
            bring_back("mariadb" if stopped else None, engine)
        finally:
            db = mariadb()
            try:
                with db.cursor() as cur:
                    cur.execute(
                        "DELETE FROM order_lines WHERE order_id >= %s AND order_id < %s",
                        (writer.base, writer.base + writer.orders),
                    )
            finally:
                db.close()
    assert got == expected(set(got)), "Cassandra projection differs from the final order_lines table"
    assert set(reserved) | set(deltas) <= set(got) <= writer.keys | set(deltas), "missing or unexpected keys"
    # The lake is written on its own thread (a background sink): it may trail the projection.
    deadline = time.monotonic() + 30
    while True:
        lake = {(r[0], r[1]): r for r in snapshot(s.lake) if r[0].startswith(prefix)}
        if caught_up(list(lake.values())) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {k: (r[2], r[3]) for k, r in lake.items()} == got, "Paimon snapshot differs from the projection"
    for key, ms in changed.items():
        at = lake[key][4] if key in lake else None
        assert at is not None and at >= ms, f"updated_at of {key} is older than its newest order line"
