"""Fault tests: `inv360 run` as a subprocess over real Kafka + Cassandra survives kill -9 and a Cassandra outage.

Each test uses its own topics and its own Cassandra table, produces generated data to
Kafka, injects the fault, and then checks that the Paimon snapshot AND the Cassandra
projection equal a clean file replay of the same data (nothing lost, nothing doubled),
and that the Kafka copies of alerts and dead letters hold every record (deduplicated by
their dedupe keys).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
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


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    tag = uuid.uuid4().hex[:8]
    topics = {k: f"it-fault-{tag}-{k}" for k in ("deltas", "orders", "alerts", "dlq")}
    _create_topics([topics["deltas"], topics["orders"]], 4)
    _create_topics([topics["alerts"], topics["dlq"]], 1)
    target = CassandraTarget(table=f"it_fault_{tag}")
    data = tmp_path / "data"
    generate(data, GeneratorSpec(skus=400, warehouses=5, events=60_000, invalid_rate=0.002, seed=int(tag, 16) % 1000))
    config = tmp_path / "engine.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "lake": {"path": str(tmp_path / "lake")},
                "sources": {
                    "type": "kafka",
                    "bootstrap": BOOTSTRAP,
                    "deltas_topic": topics["deltas"],
                    "orders_topic": topics["orders"],
                    "poll_timeout_s": 0.2,
                },
                "projection": {"type": "cassandra", "table": target.table, "request_timeout_s": 3},
                "publish": {
                    "bootstrap": BOOTSTRAP,
                    "alerts_topic": topics["alerts"],
                    "dead_letters_topic": topics["dlq"],
                },
                "alertmanager": {"enabled": False},
                "run": {"batch_mb": 0.25},
                "alerts": {"default_safety_stock": 5},
            }
        )
    )
    yield Setup(tmp_path, tag, data, config, target, topics)
    try:
        cluster, session = target.connect()
        try:
            session.execute(f"DROP TABLE IF EXISTS {target.keyspace}.{target.table}", timeout=60)
            session.execute(f"DROP TABLE IF EXISTS {target.keyspace}.{target.meta_table}", timeout=60)
        finally:
            cluster.shutdown()
    except Exception:
        pass
    AdminClient({"bootstrap.servers": BOOTSTRAP}).delete_topics(list(topics.values()))


def produce(s: Setup, half: int | None = None) -> int:
    """Send the generated lines (all, or the first/second ``half`` of each file) to their topics; returns the count."""
    n = 0
    for kind, key in (("deltas", delta_key), ("orders", order_key)):
        lines = [x for x in (s.data / f"{kind}.jsonl").read_bytes().splitlines() if x.strip()]
        mid = len(lines) // 2
        lines = lines if half is None else lines[:mid] if half == 0 else lines[mid:]
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


def test_cassandra_outage_blocks_and_recovers_without_loss(setup: Setup) -> None:
    s = setup
    first_part = produce(s, 0)
    engine = Engine(s, "engine")
    stopped = False
    try:
        engine.wait_events(first_part, timeout=60)
        svc("down", "cassandra")
        stopped = True
        down_at = time.monotonic()
        rest = produce(s, 1)
        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        assert engine.proc.poll() is None, "the engine must block and retry, not exit"
        assert engine.events_in() < first_part + rest, "nothing can be committed while Cassandra is down"
        svc("up", "cassandra")
        stopped = False
        engine.wait_events(first_part + rest, timeout=120)
    finally:
        if stopped:
            svc("up", "cassandra")
        engine.stop()
    log = (s.tmp / "engine.log").read_text()
    assert "retrying in" in log, "each retry is logged"
    check_equal_to_clean(s)
