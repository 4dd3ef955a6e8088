"""API benchmark (not a test): append-to-visible latency under load, and point-lookup latency/throughput.

    .venv/bin/python bench/bench_api.py [--rate 100000] [--seconds 10] [--concurrency 32]

Phase 1 runs the whole service in this process (pipeline tailing JSON Lines files +
SQLite projection + alerts + API on 127.0.0.1) while a load process (its own interpreter,
as real producers are) appends generated traffic at ``--rate`` events/s. Every 100 ms it
also appends a probe delta (+1 on key BENCH-PROBE/WH-P) and polls that key through the
HTTP API every 20 ms: the time from append to the API showing the new value is the
end-to-end latency. It reports the p50/p99 of that latency and the ingest rate the
engine actually sustained.

Phase 2 (ingest idle) runs ``--concurrency`` httpx async clients doing GET
/v1/inventory/{sku}/{wh} on random existing keys for ``--lookup-seconds`` and reports
p50/p99 latency and requests/s. Client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import shutil
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import numpy as np
import orjson

from inventory360.config import Settings
from inventory360.datagen import GeneratorSpec, TrafficGenerator
from inventory360.serve.runtime import Service, tailing_inputs

TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def generate(n: int, skus: int, warehouses: int) -> list[tuple[str, bytes]]:
    spec = GeneratorSpec(skus=skus, warehouses=warehouses, events=n, seed=11, start_ms=int(time.time() * 1000))
    return list(TrafficGenerator(spec).messages())


def load(
    deltas: Path, orders: Path, url: str, rate: int, seconds: int, skus: int, warehouses: int, conn: Connection
) -> None:
    """The load, in its own process (it must not share the service's GIL): append traffic at ``rate``
    plus a probe delta every 100 ms, and poll the probe key through the API every 20 ms.

    Sends ``("ready", n)`` once the traffic is generated, then ``("done", probes, seen)``: append
    and first-seen ``time.monotonic()`` per probe (the clock is system-wide on Linux).
    """
    msgs = generate(int(rate * seconds), skus, warehouses)
    conn.send(("ready", len(msgs)))
    conn.recv()  # go
    probes: dict[int, float] = {}
    seen: dict[int, float] = {}
    done = threading.Event()

    def poller() -> None:
        with httpx.Client(base_url=url, headers=AUTH, timeout=10) as c:
            while not done.is_set():
                r = c.get("/v1/inventory/BENCH-PROBE/WH-P")
                now = time.monotonic()
                if r.status_code == 200:
                    for k in range(1, r.json()["available_qty"] + 1):
                        seen.setdefault(k, now)
                time.sleep(0.02)

    p = threading.Thread(target=poller)
    p.start()
    chunk = max(1, int(rate * 0.01))
    k = 0
    t0 = time.monotonic()
    next_probe = t0
    with deltas.open("ab") as fd, orders.open("ab") as fo:
        for i in range(0, len(msgs), chunk):
            due = t0 + i / rate
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            part = msgs[i : i + chunk]
            fd.write(b"".join(m + b"\n" for kind, m in part if kind == "deltas"))
            fo.write(b"".join(m + b"\n" for kind, m in part if kind == "orders"))
            if time.monotonic() >= next_probe:
                k += 1
                probe = {
                    "event_id": f"probe-{k}",
                    "sku_id": "BENCH-PROBE",
                    "warehouse_id": "WH-P",
                    "available_delta": 1,
                    "event_time": int(time.time() * 1000),
                }
                fd.write(orjson.dumps(probe) + b"\n")
                next_probe += 0.1
                fd.flush()
                probes[k] = time.monotonic()
            fd.flush()
            fo.flush()
    print(f"writer: {len(msgs):,} messages in {time.monotonic() - t0:.1f}s", flush=True)
    deadline = time.monotonic() + 60
    while len(seen) < len(probes) and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    p.join()
    conn.send(("done", probes, seen))


def phase1(args: argparse.Namespace, work: Path) -> Service:
    deltas, orders = work / "deltas.jsonl", work / "orders.jsonl"
    deltas.touch()
    orders.touch()
    svc = Service(
        Settings(),
        work / "lake",
        tailing_inputs([deltas], [orders]),
        TOKEN,
        port=0,
        batch_bytes=args.batch_mb << 20,
        min_interval=0.0,
    )
    svc.start()
    print(f"generating {args.rate * args.seconds:,} messages (in the load process) ...", flush=True)
    ours, theirs = mp.get_context("spawn").Pipe()
    child = mp.get_context("spawn").Process(
        target=load,
        args=(deltas, orders, svc.server.url, args.rate, args.seconds, args.skus, args.warehouses, theirs),
    )
    child.start()
    _, n_msgs = ours.recv()
    t_start = time.monotonic()
    lines0 = svc.pipeline.counters["deltas_in"] + svc.pipeline.counters["orders_in"]
    ours.send("go")
    t_end: float | None = None  # when the engine has read every traffic message

    def consumed() -> int:
        return svc.pipeline.counters["deltas_in"] + svc.pipeline.counters["orders_in"] - lines0

    while not ours.poll(0.02):
        if not svc.runner.is_alive():
            child.kill()
            raise SystemExit(f"the pipeline stopped: {svc.runner.error}")
        if t_end is None and consumed() >= n_msgs:
            t_end = time.monotonic()
    _, probes, seen = ours.recv()
    child.join()
    total = n_msgs + len(probes)
    while consumed() < total:
        if not svc.runner.is_alive():
            raise SystemExit(f"the pipeline stopped: {svc.runner.error}")
        time.sleep(0.02)
    t_end = t_end or time.monotonic()
    lat = [(seen[k] - probes[k]) * 1000 for k in probes if k in seen]
    alerts = svc.alert_store.last_seq()
    print(
        f"ingest: {total:,} events in {t_end - t_start:.1f}s = {total / (t_end - t_start):,.0f} events/s "
        f"(offered {args.rate:,}/s), checkpoints {svc.pipeline.manifest.checkpoint}, "
        f"keys {len(svc.pipeline.engine.keys):,}, alerts {alerts:,}"
    )
    print(
        f"append→visible in API: n={len(lat)} of {len(probes)} probes, p50 {pct(lat, 50):.0f} ms, "
        f"p99 {pct(lat, 99):.0f} ms, max {max(lat):.0f} ms"
    )
    return svc


def phase2_wrk(args: argparse.Namespace, svc: Service, keys: list[tuple[str, str]], work: Path) -> None:
    """wrk (Debian package) in its own process: the client does not share the server's GIL."""
    import subprocess

    paths = ",".join(f'"/v1/inventory/{s}/{w}"' for s, w in keys[:20_000])
    script = work / "keys.lua"
    script.write_text(
        f"local paths = {{{paths}}}\n"
        "request = function()\n"
        "  return wrk.format('GET', paths[math.random(#paths)], {['Authorization']='Bearer " + TOKEN + "'})\n"
        "end\n"
    )
    cmd = [
        "wrk",
        "-t2",
        f"-c{args.concurrency}",
        f"-d{int(args.lookup_seconds)}s",
        "--latency",
        "-s",
        str(script),
        svc.server.url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    print("$ " + " ".join(cmd))
    print(
        "\n".join(
            line
            for line in out.splitlines()
            if any(k in line for k in ("50%", "99%", "Requests/sec", "Non-2xx", "requests in"))
        )
    )


async def phase2(args: argparse.Namespace, svc: Service, keys: list[tuple[str, str]]) -> None:
    lat: list[float] = []
    stop = time.monotonic() + args.lookup_seconds
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=svc.server.url, headers=AUTH, limits=limits, timeout=10) as c:

        async def worker() -> None:
            rnd = random.Random()
            while time.monotonic() < stop:
                sku, wh = rnd.choice(keys)
                t0 = time.perf_counter()
                r = await c.get(f"/v1/inventory/{sku}/{wh}")
                lat.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        dt = time.monotonic() - t0
    print(
        f"point lookups at concurrency {args.concurrency}: {len(lat):,} in {dt:.1f}s = {len(lat) / dt:,.0f} req/s, "
        f"p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=100_000, help="offered events/s")
    ap.add_argument("--seconds", type=int, default=10, help="seconds of traffic")
    ap.add_argument("--skus", type=int, default=10_000)
    ap.add_argument("--warehouses", type=int, default=10)
    ap.add_argument("--batch-mb", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--lookup-seconds", type=float, default=10.0)
    ap.add_argument("--httpx", action="store_true", help="use the in-process httpx client even when wrk exists")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="inv360-bench-api-") as tmp:
        svc = phase1(args, Path(tmp))
        try:
            keys = [(r.sku_id, r.warehouse_id) for r in svc.store.page(limit=100_000).rows]
            if shutil.which("wrk") and not args.httpx:
                phase2_wrk(args, svc, keys, Path(tmp))
            else:
                asyncio.run(phase2(args, svc, keys))
        finally:
            svc.stop()


if __name__ == "__main__":
    main()
