"""The `inv360` command-line contract, run as real subprocesses."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import orjson

from conftest import cdc, delta, line, write_lines

INV360 = [sys.executable, "-m", "inventory360.cli"]


def inv360(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*INV360, *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"inv360 {args} exited {proc.returncode}: {proc.stderr}")
    return proc


def snapshot(lake: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(inv360("snapshot", "--lake", str(lake)).stdout)))


def test_replay_snapshot_and_idempotent_rerun(tmp_path: Path) -> None:
    a = line(1, "A", "W1", 2, "CREATED", t=4)
    d = write_lines(
        tmp_path / "d.jsonl",
        [
            delta("A", "W1", 10, t=1, eid="e1"),
            delta("A", "W1", 10, t=1, eid="e1"),
            b'{"sku_id":"A"}',
            delta("B", "W2", 3, t=2),
        ],
    )
    o = write_lines(tmp_path / "o.jsonl", [cdc("c", None, a, pos=5), b"null"])
    lake = tmp_path / "lake"
    run = inv360("replay", "--lake", str(lake), "--deltas", str(d), "--orders", str(o))
    assert "1 dead letters" in run.stderr
    want = [
        {
            "sku_id": "A",
            "warehouse_id": "W1",
            "available_qty": "10",
            "reserved_qty": "2",
            "updated_at": "2026-11-01T00:00:04.000Z",
        },
        {
            "sku_id": "B",
            "warehouse_id": "W2",
            "available_qty": "3",
            "reserved_qty": "0",
            "updated_at": "2026-11-01T00:00:02.000Z",
        },
    ]
    assert snapshot(lake) == want
    inv360("replay", "--lake", str(lake), "--deltas", str(d), "--orders", str(o))
    assert snapshot(lake) == want  # a finished file adds nothing
    dead = [orjson.loads(x) for x in (lake / "dead_letters.jsonl").read_bytes().splitlines()]
    assert [(x["reason"], x["position"]["line"], x["payload"]) for x in dead] == [
        ("warehouse_id: missing", 3, '{"sku_id":"A"}')
    ]
    more = write_lines(tmp_path / "d2.jsonl", [delta("B", "W2", -1, t=9)])
    inv360("replay", "--lake", str(lake), "--deltas", str(more))
    assert snapshot(lake)[1]["available_qty"] == "2"
    jsonl = inv360("snapshot", "--lake", str(lake), "--format", "jsonl").stdout.splitlines()
    assert orjson.loads(jsonl[0]) == {
        "sku_id": "A",
        "warehouse_id": "W1",
        "available_qty": 10,
        "reserved_qty": 2,
        "updated_at": "2026-11-01T00:00:04.000Z",
    }


def test_custom_dead_letter_file(tmp_path: Path) -> None:
    d = write_lines(tmp_path / "d.jsonl", [b"\xff\xfe garbage", delta("A", "W", 1)])
    dlq = tmp_path / "out" / "dlq.jsonl"
    inv360("replay", "--lake", str(tmp_path / "lake"), "--deltas", str(d), "--dlq", str(dlq))
    rec = orjson.loads(dlq.read_bytes())
    assert rec["reason"] == "invalid JSON" and "payload_base64" in rec and rec["position"]["line"] == 1


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = inv360("replay", "--lake", str(tmp_path), check=False)
    assert bad.returncode == 2 and "nothing to replay" in bad.stderr and "Traceback" not in bad.stderr
    missing = inv360("replay", "--lake", str(tmp_path), "--deltas", str(tmp_path / "nope.jsonl"), check=False)
    assert missing.returncode == 2
    cfg = tmp_path / "c.yaml"
    cfg.write_text("engine:\n  late_after_ms: -3\n")
    d = write_lines(tmp_path / "d.jsonl", [delta("A", "W", 1)])
    badcfg = inv360(
        "--config",
        str(cfg),
        "replay",
        "--lake",
        str(tmp_path / "l"),
        "--deltas",
        str(d),
        check=False,
    )
    assert badcfg.returncode == 2 and "engine.late_after_ms" in badcfg.stderr
    nolake = inv360("snapshot", "--lake", str(tmp_path), check=False)
    assert nolake.returncode == 2 and "holds no lake" in nolake.stderr
    assert "Traceback" not in nolake.stderr


def test_generate_is_deterministic(tmp_path: Path) -> None:
    for out in ("a", "b"):
        inv360("generate", "--out", str(tmp_path / out), "--events", "3000", "--seed", "7")
    assert (tmp_path / "a" / "orders.jsonl").read_bytes() == (tmp_path / "b" / "orders.jsonl").read_bytes()
    lines = (tmp_path / "a" / "deltas.jsonl").read_bytes().splitlines() + (
        tmp_path / "a" / "orders.jsonl"
    ).read_bytes().splitlines()
    assert len(lines) == 3000
