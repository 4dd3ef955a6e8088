from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from inventory360.config import Settings
from inventory360.engine.alerts import SafetyStock
from inventory360.errors import ConfigError
from inventory360.serve.app import create_app
from inventory360.serve.routes.stream import events
from inventory360.sinks.alerts import AlertSink, AlertStore
from inventory360.sinks.projection import SqliteProjection, SqliteProjectionSink

from ..sinks.helpers import rows

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[tuple[SqliteProjectionSink, AlertSink, SqliteProjection, AlertStore]]:
    safety = SafetyStock(default=10)
    proj = SqliteProjectionSink(tmp_path / "p.sqlite", safety)
    alerts = AlertSink(tmp_path / "a.sqlite", safety)
    store, astore = SqliteProjection(tmp_path / "p.sqlite"), AlertStore(tmp_path / "a.sqlite")
    yield proj, alerts, store, astore
    for x in (proj, alerts, store, astore):
        x.close()


def commit(lake: tuple[SqliteProjectionSink, AlertSink, SqliteProjection, AlertStore], table: object, cp: int) -> None:
    lake[0].commit(table, cp)  # type: ignore[arg-type]
    lake[1].commit(table, cp)  # type: ignore[arg-type]


@pytest.fixture
def client(lake: tuple[SqliteProjectionSink, AlertSink, SqliteProjection, AlertStore]) -> Iterator[TestClient]:
    app = create_app(Settings(), lake[2], lake[3], token=TOKEN)
    with TestClient(app) as c:
        yield c


def test_token_required_on_v1_only(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dGVzdA=="}):
        r = client.get("/v1/inventory", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["status"] == 401
        assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_create_app_needs_a_token(lake: tuple[SqliteProjectionSink, AlertSink, SqliteProjection, AlertStore]) -> None:
    with pytest.raises(ConfigError):
        create_app(Settings(), lake[2])


def test_point_sku_and_listing(
    client: TestClient, lake: tuple[SqliteProjectionSink, AlertSink, SqliteProjection, AlertStore]
) -> None:
    commit(lake, rows(("A", "W1", 50, 8, 3), ("A", "W2", 4, 1), ("B", "W1", 12, 0)), 1)
    r = client.get("/v1/inventory/A/W1", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert body["available_qty"] == 50 and body["reserved_qty"] == 8 and body["atp_qty"] == 42
    assert body["updated_at"] == "2026-11-01T00:00:03.000Z"
    assert 0 <= body["freshness_ms"] < 10_000
    sku = client.get("/v1/inventory/A", headers=AUTH).json()
    assert [w["warehouse_id"] for w in sku["warehouses"]] == ["W1", "W2"]
    assert sku["total"] == {"available_qty": 54, "reserved_qty": 9, "atp_qty": 45}
    low = client.get("/v1/inventory", params={"below_safety_stock": "true"}, headers=AUTH).json()
    assert [(i["sku_id"], i["warehouse_id"]) for i in low["items"]] == [("A", "W2")]
    page1 = client.get("/v1/inventory", params={"limit": 2}, headers=AUTH).json()
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    page2 = client.get("/v1/inventory", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=AUTH).json()
    assert [(i["sku_id"], i["warehouse_id"]) for i in page2["items"]] == [("B", "W1")]
    assert page2["next_cursor"] is None
    wh = client.get("/v1/inventory", params={"warehouse_id": "W1", "q": "B"}, headers=AUTH).json()
    assert [i["sku_id"] for i in wh["items"]] == ["B"]
    st = client.get("/v1/status", headers=AUTH).json()
    assert (st["keys"], st["below_safety_stock"], st["available_qty"], st["alerts"]) == (3, 1, 66, 1)
    assert client.get("/v1/inventory/A/W9", headers=AUTH).status_code == 404
    assert client.get("/v1/inventory/Z", headers=AUTH).json()["error"]["status"] == 404


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/inventory/" + "x" * 129 + "/W1", {}, 422),
        ("/v1/inventory/A%20B/W1", {}, 422),
        ("/v1/inventory/A/W%3Cscript%3E", {}, 422),
        ("/v1/inventory/%E2%98%83", {}, 422),
        ("/v1/inventory", {"limit": 0}, 422),
        ("/v1/inventory", {"limit": 1001}, 422),
        ("/v1/inventory", {"limit": "ten"}, 422),
        ("/v1/inventory", {"below_safety_stock": "maybe"}, 422),
        ("/v1/inventory", {"warehouse_id": "a;b"}, 422),
        ("/v1/inventory", {"cursor": "!!!"}, 400),
        ("/v1/inventory", {"cursor": "e30"}, 400),
        ("/v1/alerts", {"since": "yesterday"}, 400),
        ("/v1/alerts", {"limit": -1}, 422),
        ("/v1/nothing", {}, 404),
    ],
)
def test_invalid_parameters_are_4xx_json(client: TestClient, path: str, params: dict[str, object], status: int) -> None:
    r = client.get(path, params=params, headers=AUTH)  # type: ignore[arg-type]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["status"] == status


def test_alerts_since_and_latest(
    client: TestClient, lake: tuple[SqliteProjectionSink, AlertSink, SqliteProjection, AlertStore]
) -> None:
    commit(lake, rows(("A", "W", 5, 0, 1), ("B", "W", 5, 0, 2)), 1)
    commit(lake, rows(("A", "W", 50, 0, 60)), 2)
    all_ = client.get("/v1/alerts", headers=AUTH).json()
    assert [(a["seq"], a["kind"], a["sku_id"]) for a in all_["alerts"]] == [
        (1, "LOW", "A"),
        (2, "LOW", "B"),
        (3, "RECOVERED", "A"),
    ]
    assert all_["next_since"] == 3
    assert [a["seq"] for a in client.get("/v1/alerts?since=2", headers=AUTH).json()["alerts"]] == [3]
    by_time = client.get("/v1/alerts", params={"since": "2026-11-01T00:00:02Z"}, headers=AUTH).json()
    assert [a["seq"] for a in by_time["alerts"]] == [2, 3]
    assert [a["seq"] for a in client.get("/v1/alerts?latest=true&limit=1", headers=AUTH).json()["alerts"]] == [3]


def test_readyz_follows_freshness(lake: tuple[SqliteProjectionSink, AlertSink, SqliteProjection, AlertStore]) -> None:
    s = Settings()
    s.api.ready_max_staleness_s = 60
    with TestClient(create_app(s, lake[2], lake[3], token=TOKEN)) as c:
        assert c.get("/readyz").status_code == 503  # nothing committed yet
        commit(lake, rows(("A", "W", 5, 0)), 1)
        assert c.get("/readyz").status_code == 200
        lake[0].mark_current(0.0)  # an old heartbeat does not make it fresher than the commit
        assert c.get("/readyz").status_code == 200
        s2 = Settings()
        s2.api.ready_max_staleness_s = 1e-9
        with TestClient(create_app(s2, lake[2], lake[3], token=TOKEN)) as stale:
            assert stale.get("/readyz").status_code == 503


def test_metrics_names(
    client: TestClient, lake: tuple[SqliteProjectionSink, AlertSink, SqliteProjection, AlertStore]
) -> None:
    commit(lake, rows(("A", "W", 5, 0)), 1)
    client.get("/v1/inventory/A/W", headers=AUTH)
    text = client.get("/metrics").text
    assert "inv360_freshness_seconds " in text
    assert "inv360_keys_below_safety_stock 1.0" in text
    assert 'inv360_http_requests_total{route="get_key",status="2xx"} 1.0' in text


def test_stream_events(lake: tuple[SqliteProjectionSink, AlertSink, SqliteProjection, AlertStore]) -> None:
    commit(lake, rows(("A", "W", 50, 0)), 1)

    async def collect() -> list[tuple[str, dict[str, object]]]:
        out = []
        gen = events(lake[2], lake[3], poll=0.01, max_events=3)
        async for chunk in gen:
            head, data = chunk.decode().strip().split("\n")
            out.append((head.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
            if len(out) == 1:
                commit(lake, rows(("A", "W", 5, 0)), 2)
        return out

    got = asyncio.run(collect())
    assert [k for k, _ in got] == ["status", "snapshot", "alert"]
    assert got[1][1]["checkpoint"] == 2 and got[1][1]["rows"][0]["available_qty"] == 5  # type: ignore[index]
    assert got[2][1]["kind"] == "LOW"


def test_dashboard_is_self_contained(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/dashboard/"
    page = client.get("/dashboard/")
    assert page.status_code == 200 and "Inventory 360" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "style.css"):
        body = client.get(f"/dashboard/{asset}")
        assert body.status_code == 200
        assert "http://" not in body.text and "https://" not in body.text
    assert "https://" not in page.text
    assert client.get("/openapi.json").json()["paths"]["/v1/inventory/{sku_id}/{warehouse_id}"]
