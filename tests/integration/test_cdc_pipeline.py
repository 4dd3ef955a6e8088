"""MariaDB rows → Debezium → Kafka `orders_cdc` (+ deltas on `inventory_delta`) → engine → Paimon."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pymysql  # type: ignore[import-untyped]
import pytest

from inventory360.cli.options import decoders
from inventory360.pipeline import Input, LakeLayout, Pipeline
from inventory360.sinks.kafka import delta_key, produce_values
from inventory360.sinks.paimon import read_snapshot
from inventory360.sources.kafka import KafkaSource

BOOTSTRAP = "127.0.0.1:9092"
pytestmark = pytest.mark.integration


def pipeline(lake: Path) -> Pipeline:
    d, o = decoders()
    return Pipeline(
        LakeLayout(lake),
        [
            Input("deltas", KafkaSource("deltas", BOOTSTRAP, "inventory_delta", poll_timeout=0.3), d),
            Input("orders", KafkaSource("orders", BOOTSTRAP, "orders_cdc", poll_timeout=0.3), o),
        ],
        batch_bytes=4 << 20,
    )


def ours(pipe: Pipeline, prefix: str) -> dict[tuple[str, str], tuple[int, int]]:
    rows = pipe.engine.keys.all_rows().to_pylist()
    return {
        (r["sku_id"], r["warehouse_id"]): (r["available_qty"], r["reserved_qty"])
        for r in rows
        if r["sku_id"].startswith(prefix)
    }


def run_until(pipe: Pipeline, check: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipe.step()
        if check():
            return
    raise AssertionError("the changes did not reach the engine in time")


def test_mariadb_changes_flow_through_debezium_into_the_lake(tmp_path: Path) -> None:
    p = f"IT{uuid.uuid4().hex[:6]}-"
    a, b = p + "A", p + "B"
    base = int(uuid.uuid4().int % 10**12) + 10**12  # order ids unique to this run
    db = pymysql.connect(host="127.0.0.1", port=3306, user="shop", password="shop", database="shop", autocommit=True)
    lake = tmp_path / "lake"
    try:
        with db.cursor() as cur:
            cur.executemany(
                "INSERT INTO order_lines (order_id, line_no, sku_id, warehouse_selection, quantity, status)"
                " VALUES (%s,%s,%s,%s,%s,%s)",
                [
                    (base, 1, a, "W1", 5, "CREATED"),
                    (base, 2, a, "W2", 2, "ALLOCATED"),
                    (base + 1, 1, b, "W1", 4, "created"),
                ],
            )
        produce_values(
            BOOTSTRAP,
            "inventory_delta",
            [
                orjson.dumps(
                    {
                        "sku_id": a,
                        "warehouse_id": "W1",
                        "available_delta": 10,
                        "event_time": "2026-11-24T00:00:00Z",
                        "event_id": p + "d1",
                    }
                )
            ]
            * 2,
            delta_key,
        )
        first = pipeline(lake)
        first.open()
        want1 = {(a, "W1"): (10, 5), (a, "W2"): (0, 2), (b, "W1"): (0, 4)}
        run_until(first, lambda: ours(first, p) == want1)
        first.close()  # restart between the inserts and the updates

        with db.cursor() as cur:
            cur.execute("UPDATE order_lines SET status='SHIPPED' WHERE order_id=%s AND line_no=1", (base,))
            cur.execute("UPDATE order_lines SET warehouse_selection='W2', quantity=6 WHERE order_id=%s", (base + 1,))
            cur.execute("DELETE FROM order_lines WHERE order_id=%s AND line_no=2", (base,))
        produce_values(
            BOOTSTRAP,
            "inventory_delta",
            [
                orjson.dumps(
                    {"sku_id": a, "warehouse_id": "W1", "available_delta": -5, "event_time": "2026-11-24T00:00:05Z"}
                )
            ],
            delta_key,
        )
        second = pipeline(lake)
        second.open()
        want2 = {(a, "W1"): (5, 0), (a, "W2"): (0, 0), (b, "W1"): (0, 0), (b, "W2"): (0, 6)}
        run_until(second, lambda: ours(second, p) == want2)
        second.close()
    finally:
        with db.cursor() as cur:
            cur.execute("DELETE FROM order_lines WHERE order_id IN (%s, %s)", (base, base + 1))
        db.close()
    lake_rows = read_snapshot(lake / "warehouse", "inventory360", "inventory_snapshot").to_pylist()
    got = {
        (r["sku_id"], r["warehouse_id"]): (r["available_qty"], r["reserved_qty"])
        for r in lake_rows
        if r["sku_id"].startswith(p)
    }
    assert got == want2
