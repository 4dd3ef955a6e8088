"""Re-capture the Debezium test vectors in services/samples/ from the running services.

    services/svc up connect && .venv/bin/python services/samples/capture_orders_cdc.py

Inserts, updates and deletes one row of shop.order_lines (order_id 700001) and writes the
value of each resulting orders_cdc record, byte for byte as it is on the wire, into
orders_cdc_c.json, orders_cdc_u.json, orders_cdc_d.json, and the record key into
orders_cdc_key.json. The delete is followed by a tombstone (same key, null value), which is
checked but not saved.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time
import uuid

import pymysql  # type: ignore[import-untyped]
from confluent_kafka import Consumer, Message, TopicPartition

HERE = pathlib.Path(__file__).resolve().parent
ORDER_ID = 700001


def main() -> int:
    """Capture the three envelopes and the key; return the process exit code."""
    consumer = Consumer(
        {
            "bootstrap.servers": "127.0.0.1:9092",
            "group.id": f"capture-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    # start from the current end of every partition, so only our records are read
    meta = consumer.list_topics("orders_cdc", timeout=10).topics["orders_cdc"]
    tps = []
    for p in meta.partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition("orders_cdc", p), timeout=10)
        tps.append(TopicPartition("orders_cdc", p, high))
    consumer.assign(tps)

    db = pymysql.connect(
        host="127.0.0.1", port=3306, user="shop", password="shop", database="shop", autocommit=True
    )
    with db.cursor() as cur:
        cur.execute("DELETE FROM order_lines WHERE order_id = %s", (ORDER_ID,))
        time.sleep(1.0)  # let that delete (if any) pass before we start reading
        for tp in tps:
            _, tp.offset = consumer.get_watermark_offsets(
                TopicPartition("orders_cdc", tp.partition), timeout=10
            )
        consumer.assign(tps)
        cur.execute(
            "INSERT INTO order_lines"
            " (order_id, line_no, sku_id, warehouse_selection, quantity, status) "
            "VALUES (%s, 1, 'SKU-000042', 'WH-BER-1', 5, 'NEW')",
            (ORDER_ID,),
        )
        time.sleep(0.05)
        cur.execute(
            "UPDATE order_lines SET quantity = 3, status = 'ALLOCATED'"
            " WHERE order_id = %s AND line_no = 1",
            (ORDER_ID,),
        )
        time.sleep(0.05)
        cur.execute("DELETE FROM order_lines WHERE order_id = %s AND line_no = 1", (ORDER_ID,))

    records: list[Message] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(records) < 4:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        records.append(msg)
    consumer.close()
    if len(records) < 4:
        print(f"only {len(records)} of 4 records arrived", file=sys.stderr)
        return 1

    ops: dict[str, bytes] = {}
    for msg in records[:3]:
        raw = msg.value()
        assert raw is not None
        ops[json.loads(raw)["op"]] = raw
    tomb = records[3]
    assert tomb.value() is None and tomb.key() == records[2].key(), (
        "expected a tombstone after the delete"
    )
    assert sorted(ops) == ["c", "d", "u"], sorted(ops)
    for op, raw in ops.items():
        (HERE / f"orders_cdc_{op}.json").write_bytes(raw + b"\n")
    key = records[0].key()
    assert key is not None
    (HERE / "orders_cdc_key.json").write_bytes(key + b"\n")
    print("wrote", ", ".join(f"orders_cdc_{op}.json" for op in "cud"), "and orders_cdc_key.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
