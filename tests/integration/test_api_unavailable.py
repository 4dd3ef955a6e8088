"""The API over a Cassandra projection that cannot be read answers 503 with a JSON error, not 500.

One test points the reader at a port where nothing listens (Cassandra down); the other
reads a table no writer has created yet from the real Cassandra (services/svc up
cassandra), then creates it and sees the same request succeed.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from inventory360.config import Settings
from inventory360.records import SNAPSHOT_SCHEMA
from inventory360.serve.app import create_app
from inventory360.sinks.cassandra import CassandraProjection, CassandraProjectionSink, CassandraTarget

pytestmark = pytest.mark.integration

TOKEN = "unavailable-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def assert_503(client: TestClient, path: str) -> None:
    r = client.get(path, headers=AUTH)
    assert r.status_code == 503, f"{path}: {r.status_code} {r.text}"
    error = r.json()["error"]
    assert error["status"] == 503 and "unavailable" in error["message"]
    assert r.headers["retry-after"] == "1"


def test_api_answers_503_while_cassandra_cannot_be_reached() -> None:
    store = CassandraProjection(CassandraTarget(port=closed_port(), request_timeout=2))
    try:
        with TestClient(create_app(Settings(), store, token=TOKEN)) as client:
            for path in (
                "/v1/inventory/SKU1/W1",
                "/v1/inventory/SKU1",
                "/v1/inventory?limit=5",
                "/v1/status",
                "/v1/stream?max_events=1",
            ):
                assert_503(client, path)
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "not ready" and "unavailable" in ready.json()["reason"]
            assert client.get("/healthz").status_code == 200
            metrics = client.get("/metrics")
            assert metrics.status_code == 200, "/metrics must keep answering while the store is down"
            assert "inv360_freshness_seconds +Inf" in metrics.text
            assert 'inv360_http_requests_total{route="get_key",status="5xx"} 1.0' in metrics.text
            assert client.get("/v1/inventory/SKU1/W1").status_code == 401, "the token is still checked first"
    finally:
        store.close()


@pytest.fixture
def target() -> Iterator[CassandraTarget]:
    t = CassandraTarget(table=f"it_unavail_{uuid.uuid4().hex[:10]}", request_timeout=5)
    cluster, session = t.connect()  # fails here, not in a writer retrying for ever, when Cassandra is down
    yield t
    try:
        session.execute(f"DROP TABLE IF EXISTS {t.keyspace}.{t.table}", timeout=60)
        session.execute(f"DROP TABLE IF EXISTS {t.keyspace}.{t.meta_table}", timeout=60)
    finally:
        cluster.shutdown()


def test_api_answers_503_until_the_projection_table_exists(target: CassandraTarget) -> None:
    store = CassandraProjection(target)
    try:
        with TestClient(create_app(Settings(), store, token=TOKEN)) as client:
            assert_503(client, "/v1/inventory/SKU1/W1")
            assert_503(client, "/v1/status")
            assert client.get("/metrics").status_code == 200
            sink = CassandraProjectionSink(target, "writer-1")
            try:
                row = {"sku_id": ["SKU1"], "warehouse_id": ["W1"], "available_qty": [7], "reserved_qty": [2]}
                at = pa.array([1_793_491_200_000], pa.int64()).cast(pa.timestamp("ms"))
                sink.commit(pa.table({**row, "updated_at": at}).cast(SNAPSHOT_SCHEMA), 1)
            finally:
                sink.close()
            r = client.get("/v1/inventory/SKU1/W1", headers=AUTH)
            assert r.status_code == 200, r.text
            assert (r.json()["available_qty"], r.json()["reserved_qty"], r.json()["atp_qty"]) == (7, 2, 5)
            assert client.get("/v1/status", headers=AUTH).json()["keys"] == 1
    finally:
        store.close()
