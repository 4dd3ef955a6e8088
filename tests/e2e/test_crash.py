"""kill -9 a real `inv360 replay` repeatedly over ≥ 1,000,000 events; nothing lost or doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

INV360 = [sys.executable, "-m", "inventory360.cli"]
EVENTS = int(os.environ.get("INV360_CRASH_EVENTS", "1000000"))


def run(*args: str) -> str:
    return subprocess.run([*INV360, *args], check=True, capture_output=True, text=True, timeout=1800).stdout


def checkpoint(lake: Path) -> int:
    """Newest checkpoint id on disk (0 before the first)."""
    ids = (
        [int(p.stem.split("-")[1]) for p in (lake / "state").glob("manifest-*.json")]
        if (lake / "state").exists()
        else []
    )
    return max(ids, default=0)


@pytest.mark.slow
def test_kill_dash_nine_during_replay_gives_the_clean_snapshot(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(
        "generate",
        "--out",
        str(data),
        "--skus",
        "20000",
        "--warehouses",
        "20",
        "--events",
        str(EVENTS),
        "--invalid-rate",
        "0.001",
    )
    files = ["--deltas", str(data / "deltas.jsonl"), "--orders", str(data / "orders.jsonl")]

    clean = tmp_path / "clean"
    run("replay", "--lake", str(clean), *files)
    expected = run("snapshot", "--lake", str(clean))

    crashed = tmp_path / "crashed"
    rnd = random.Random(5)
    kills = 0
    for attempt in range(5):
        proc = subprocess.Popen(
            [*INV360, "replay", "--lake", str(crashed), "--batch-mb", "4", "--checkpoint-interval", "0.2", *files],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if attempt:  # the first kill lands before or during the first checkpoint
            start = checkpoint(crashed)
            while proc.poll() is None and checkpoint(crashed) <= start:
                time.sleep(0.05)
        time.sleep(rnd.uniform(0.0, 0.5 if attempt else 2.0))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    run("replay", "--lake", str(crashed), "--batch-mb", "4", *files)
    assert kills >= 3, "the replay finished before it could be killed: raise INV360_CRASH_EVENTS"
    got = run("snapshot", "--lake", str(crashed))
    assert got.count("\n") > 10_000
    assert got == expected
    # Dead letters are exactly-once too: the file is cut back to the checkpoint on restart.
    # (Batch sizes differ between the runs, so only the order across the two sources may differ.)
    dead = sorted((crashed / "dead_letters.jsonl").read_bytes().splitlines())
    assert len(dead) > 100
    assert dead == sorted((clean / "dead_letters.jsonl").read_bytes().splitlines())
