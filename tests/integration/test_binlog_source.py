"""The pure-Python binlog path gives the same reservations as Debezium, and resumes by GTID."""

from __future__ import annotations

import uuid

import orjson
import pymysql  # type: ignore[import-untyped]
import pytest

from inventory360.sources.binlog import BinlogSource
from inventory360.sources.debezium import DebeziumOrderDecoder

pytestmark = pytest.mark.integration


def drain(src: BinlogSource) -> list[dict[str, object]]:
    out = []
    while (raw := src.read(1 << 20)) is not None:
        out += [orjson.loads(v) for v in raw.buf.splitlines()]
    return out


def test_binlog_envelopes_decode_and_resume() -> None:
    sku = f"BL{uuid.uuid4().hex[:6]}"
    oid = int(uuid.uuid4().int % 10**12) + 2 * 10**12
    db = pymysql.connect(host="127.0.0.1", port=3306, user="shop", password="shop", database="shop", autocommit=True)
    src = BinlogSource("orders", "127.0.0.1", 3306, "cdc", "cdc")
    try:
        drain(src)  # everything before this test
        with db.cursor() as cur:
            cur.execute(
                "INSERT INTO order_lines (order_id, line_no, sku_id, warehouse_selection, quantity, status)"
                " VALUES (%s,1,%s,'W1',3,'CREATED')",
                (oid, sku),
            )
            cur.execute("UPDATE order_lines SET status='ALLOCATED', quantity=4 WHERE order_id=%s", (oid,))
        got = [e for e in drain(src) if (e["after"] or e["before"])["sku_id"] == sku]  # type: ignore[index]
        assert [e["op"] for e in got] == ["c", "u"]
        rows = [DebeziumOrderDecoder().record(orjson.dumps(e)) for e in got]
        assert all(isinstance(r, dict) for r in rows)
        assert [(r["status"], r["quantity"], r["has_pos"]) for r in rows] == [
            ("CREATED", 3, True),
            ("ALLOCATED", 4, True),
        ]  # type: ignore[index]
        assert rows[0]["pos"] < rows[1]["pos"]  # type: ignore[index]

        resumed = BinlogSource("orders", "127.0.0.1", 3306, "cdc", "cdc")
        resumed.seek(src.position())
        with db.cursor() as cur:
            cur.execute("DELETE FROM order_lines WHERE order_id=%s", (oid,))
        after = drain(resumed)
        assert [e["op"] for e in after if (e["before"] or {}).get("sku_id") == sku] == ["d"]  # type: ignore[union-attr]
    finally:
        with db.cursor() as cur:
            cur.execute("DELETE FROM order_lines WHERE order_id=%s", (oid,))
        db.close()
