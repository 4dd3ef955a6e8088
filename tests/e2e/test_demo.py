"""`inv360 demo` as a real subprocess: URL line, API with the token, numbers move, SIGTERM, restart, kill -9."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
import orjson

TOKEN = "demo-e2e-token"


def start(work: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "INV360_API__TOKEN": TOKEN}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inventory360.cli",
            "demo",
            "--work",
            str(work),
            "--port",
            "0",
            "--rate",
            "2000",
            "--skus",
            "200",
            "--warehouses",
            "4",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"dashboard (http://127\.0\.0\.1:\d+)/dashboard/#token=(\S+)", line)
        if m:
            assert m.group(2) == TOKEN
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"no URL line; stderr: {proc.communicate()[1]}")


def status(base: str) -> dict[str, int]:
    r = httpx.get(f"{base}/v1/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_for(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_demo_runs_stops_and_continues(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc, base = start(work)
    try:
        assert httpx.get(f"{base}/v1/status", timeout=5).status_code == 401
        wait_for(lambda: status(base)["checkpoint"] >= 2)
        first = status(base)
        wait_for(lambda: status(base)["checkpoint"] > first["checkpoint"] + 2)
        later = status(base)
        assert later["keys"] >= first["keys"] > 0
        assert (later["available_qty"], later["reserved_qty"]) != (first["available_qty"], first["reserved_qty"])
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        page = httpx.get(f"{base}/v1/inventory?limit=1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).json()
        sku, wh = page["items"][0]["sku_id"], page["items"][0]["warehouse_id"]
        one = httpx.get(f"{base}/v1/inventory/{sku}/{wh}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert one.json()["freshness_ms"] < 5_000
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'inv360_events_in_total{source="deltas"}' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped at checkpoint" in err
    stopped_at = int(re.findall(r"stopped at checkpoint (\d+)", err)[-1])

    # Restart: continues from the checkpoint; then kill -9 and start once more.
    proc, base = start(work)
    try:
        wait_for(lambda: status(base)["checkpoint"] > stopped_at + 2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    proc, base = start(work)
    try:
        before = status(base)["checkpoint"]
        wait_for(lambda: status(base)["checkpoint"] > before + 2)
        alerts_api = status(base)["alerts"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err

    # Alerts: gap-free sequence, exported once each, alternating LOW/RECOVERED per key.
    lines = [orjson.loads(x) for x in (work / "lake" / "alerts.jsonl").read_bytes().splitlines()]
    assert [a["seq"] for a in lines] == list(range(1, len(lines) + 1))
    assert len(lines) >= alerts_api > 0
    per_key: dict[tuple[str, str], list[str]] = defaultdict(list)
    for a in lines:
        per_key[(a["sku_id"], a["warehouse_id"])].append(a["kind"])
    for kinds in per_key.values():
        assert kinds == ["LOW", "RECOVERED"] * (len(kinds) // 2) + ["LOW"] * (len(kinds) % 2)
