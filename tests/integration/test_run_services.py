"""`inv360 run` against the real services: Kafka in, Cassandra projection served by the API, webhook → Kafka."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from tests.integration.test_faults import BOOTSTRAP, TOKEN, Engine, Setup, produce
from tests.integration.test_faults import setup as setup

pytestmark = pytest.mark.integration


def test_local_services_config_loads() -> None:
    from inventory360.config import load_settings

    s = load_settings(Path(__file__).resolve().parents[2] / "configs" / "local-services.yaml")
    assert s.sources.type == "kafka" and s.projection.type == "cassandra"
    assert s.publish.alerts_topic == "inventory_alerts" and s.publish.dead_letters_topic == "inventory_dlq"
    assert s.alertmanager.enabled and s.alertmanager.port == 8361 and s.api.port == 8360


def test_run_serves_cassandra_and_forwards_alertmanager_webhooks(setup: Setup) -> None:
    s = setup
    cfg = yaml.safe_load(s.config.read_text())
    cfg["alertmanager"] = {"enabled": True, "port": 0}
    s.config.write_text(yaml.safe_dump(cfg))
    total = produce(s)
    engine = Engine(s, "engine")
    try:
        engine.wait_events(total, timeout=90)
        h = {"Authorization": f"Bearer {TOKEN}"}
        deadline = time.monotonic() + 30  # listings read a scan of the projection, cached briefly
        while not (page := httpx.get(engine.url + "/v1/inventory?limit=3", headers=h, timeout=10).json())["items"]:
            assert time.monotonic() < deadline, page
            time.sleep(0.5)
        first = page["items"][0]
        one = httpx.get(f"{engine.url}/v1/inventory/{first['sku_id']}/{first['warehouse_id']}", headers=h, timeout=10)
        assert one.status_code == 200 and one.json()["available_qty"] == first["available_qty"]
        assert httpx.get(engine.url + "/readyz", timeout=10).status_code == 200
        assert "inv360_checkpoint_id" in httpx.get(engine.url + "/metrics", timeout=10).text
        log = (s.tmp / "engine.log").read_text()
        hook = _webhook_url(engine)
        payload = {
            "version": "4",
            "status": "firing",
            "receiver": "inv360",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "InventoryStale"},
                    "startsAt": "2026-11-24T00:00:00Z",
                    "fingerprint": "f1",
                },
                {"status": "resolved", "labels": {"alertname": "Other"}, "fingerprint": "f2"},
            ],
        }
        r = httpx.post(hook, json=payload, timeout=30)
        assert r.status_code == 200 and r.json() == {"forwarded": 1}, (r.text, log[-500:])
    finally:
        engine.stop()
    ops = [m for m in _messages(s.topics["alerts"]) if m["type"] == "ops"]
    assert [(m["alertname"], m["status"], m["fingerprint"]) for m in ops] == [("InventoryStale", "firing", "f1")]


def _webhook_url(engine: Engine) -> str:
    assert engine.proc.stdout is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = re.search(r"webhook (http://\S+/alertmanager)", engine.proc.stdout.readline().decode())
        if m:
            return m.group(1)
    raise AssertionError("no webhook URL announced")


def _messages(topic: str) -> list[dict[str, object]]:
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "it-run-services", "enable.auto.commit": False})
    try:
        _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.assign([TopicPartition(topic, 0, 0)])
        out: list[dict[str, object]] = []
        deadline = time.monotonic() + 30
        while len(out) < high and time.monotonic() < deadline:
            out += [orjson.loads(m.value()) for m in c.consume(1000, 1.0) if m.error() is None]
        return out
    finally:
        c.close()
