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


@pytest.mark.slow
def test_kill_dash_nine_during_replay_gives_the_clean_snapshot(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run("generate", "--out", str(data), "--skus", "20000", "--warehouses", "20", "--events", str(EVENTS), "--invalid-rate", "0.001")
    files = ["--deltas", str(data / "deltas.jsonl"), "--orders", str(data / "orders.jsonl")]

    clean = tmp_path / "clean"
    run("replay", "--lake", str(clean), *files)
    expected = run("snapshot", "--lake", str(clean))

    crashed = tmp_path / "crashed"
    rnd = random.Random(5)
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen([*INV360, "replay", "--lake", str(crashed), "--batch-mb", "6", *files], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(3.0, 9.0))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    run("replay", "--lake", str(crashed), "--batch-mb", "6", *files)
    assert kills >= 2, "the replay finished before it could be killed: raise INV360_CRASH_EVENTS"
    got = run("snapshot", "--lake", str(crashed))
    assert got.count("\n") > 10_000
    assert got == expected
    # Dead letters are exactly-once too: the file is cut back to the checkpoint on restart.
    assert (crashed / "dead_letters.jsonl").read_bytes() == (clean / "dead_letters.jsonl").read_bytes()
