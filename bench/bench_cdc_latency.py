"""MariaDB commit → Debezium → Kafka → `inv360 run` → Cassandra projection → API: visibility latency.

Needs the services (`services/svc up`). Starts `inv360 run --config configs/local-services.yaml`
as a subprocess (own lake folder, API on a free port, webhook off), waits until it is
caught up, then for each of --changes order lines: INSERT (autocommit) a CREATED line
for a fresh SKU in MariaDB and poll GET /v1/inventory/{sku}/{wh} until reserved_qty
shows it. Prints p50 / p90 / p99 / max of commit → visible, in milliseconds.

    .venv/bin/python bench/bench_cdc_latency.py --changes 200 --interval 0.05
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pymysql  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[1]


def start_engine(lake: Path, token: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "INV360_API__TOKEN": token,
        "INV360_LAKE__PATH": str(lake),
        "INV360_ALERTMANAGER__ENABLED": "false",
    }
    inv360 = str(Path(sys.executable).parent / "inv360")
    proc = subprocess.Popen(
        [inv360, "run", "--config", str(REPO / "configs" / "local-services.yaml"), "--port", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=(lake.parent / "engine.log").open("wb"),
    )
    assert proc.stdout is not None
    for _ in range(20):
        m = re.search(r"API (http://\S+)/v1", proc.stdout.readline().decode())
        if m:
            return proc, m.group(1)
    proc.kill()
    raise SystemExit(f"engine did not start; see {lake.parent / 'engine.log'}")


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.05, help="Pause between changes (s).")
    ap.add_argument("--timeout", type=float, default=30.0, help="Give up on one change after this (s).")
    args = ap.parse_args()

    token = uuid.uuid4().hex
    work = Path(tempfile.mkdtemp(prefix="inv360-cdc-bench-"))
    proc, url = start_engine(work / "lake", token)
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    db = pymysql.connect(host="127.0.0.1", port=3306, user="shop", password="shop", database="shop", autocommit=True)
    tag = uuid.uuid4().hex[:6]
    base = int(time.time() * 1000) * 1000  # order ids unique to this run
    lat: list[float] = []
    try:
        t0 = time.monotonic()
        while client.get("/readyz").status_code != 200:  # caught up with the existing topics
            if time.monotonic() - t0 > 120:
                raise SystemExit("engine not ready after 120 s")
            time.sleep(0.2)
        print(f"engine ready after {time.monotonic() - t0:.1f} s; measuring {args.changes} changes", flush=True)
        for i in range(args.changes):
            sku, qty = f"BENCH{tag}-{i}", 1 + i % 7
            with db.cursor() as cur:
                cur.execute(
                    "INSERT INTO order_lines (order_id, line_no, sku_id, warehouse_selection, quantity, status)"
                    " VALUES (%s, 1, %s, 'W1', %s, 'CREATED')",
                    (base + i, sku, qty),
                )
            committed = time.perf_counter()
            deadline = committed + args.timeout
            while True:
                r = client.get(f"/v1/inventory/{sku}/W1")
                if r.status_code == 200 and r.json()["reserved_qty"] == qty:
                    lat.append((time.perf_counter() - committed) * 1000)
                    break
                if time.perf_counter() > deadline:
                    print(f"change {i} not visible after {args.timeout} s", flush=True)
                    break
                time.sleep(0.005)
            time.sleep(args.interval)
    finally:
        with db.cursor() as cur:
            cur.execute("DELETE FROM order_lines WHERE order_id BETWEEN %s AND %s", (base, base + args.changes))
        db.close()
        client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    if not lat:
        raise SystemExit("no change became visible")
    print(
        f"MariaDB commit -> API visible over {len(lat)} changes (ms): "
        f"p50 {pct(lat, 50):.0f}  p90 {pct(lat, 90):.0f}  p99 {pct(lat, 99):.0f}  max {max(lat):.0f}  "
        f"mean {statistics.fmean(lat):.0f}"
    )


if __name__ == "__main__":
    main()
