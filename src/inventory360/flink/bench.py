"""Embedded engine vs the Flink job on the same Kafka input: events/s, peak RSS, end-to-end latency.

``inv360 bench --engines embedded,flink`` and ``bench/bench_flink.py`` call :func:`main`.

1. **Input**: generated traffic (:mod:`inventory360.datagen`, 0.2 % invalid records)
   produced once to two fresh topics (``partitions`` each).
2. **Throughput**: each engine consumes both topics from the start to the end and writes
   the same outputs — the Paimon snapshot, LOW/RECOVERED alerts to a Kafka topic, dead
   letters (the engine: its file and its Kafka copy; Flink: the Kafka topic). The embedded
   engine runs in its own process (its peak RSS is its own ``ru_maxrss``); Flink runs the
   bounded job on the local mini-cluster at each parallelism (peak RSS: sampled sum of its
   process tree — PyFlink client, JVM, Python workers). Flink's wall time includes JVM and
   mini-cluster start; "job s" counts from submission to FINISHED. Every run must end with
   the same snapshot and the same number of dead letters.
3. **Latency**: each engine runs unbounded on fresh, empty topics; one probe delta at a
   time (a new key below its safety stock) is produced and timed until its LOW alert can
   be read from the alerts topic (``read_committed``): Kafka → engine → committed
   snapshot → alert on Kafka, at light load. Flink's alerts are transactional, committed
   with each checkpoint, so its latency follows ``checkpoint_interval_s``.

Needs Kafka and the Flink environment (``services/flink/setup.sh``).
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ENGINES = ("embedded", "flink")


@dataclass(slots=True)
class Topics:
    """The Kafka topics of one run."""

    deltas: str
    orders: str
    alerts: str
    dead_letters: str


@dataclass(slots=True)
class EngineRun:
    """The figures of one engine (at one parallelism)."""

    name: str
    wall_s: float
    job_s: float | None
    peak_rss_kib: int
    dead_letters: int = 0
    latency_ms: list[float] = field(default_factory=list)


def _percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN when empty."""
    s = sorted(values)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def create_topics(bootstrap: str, prefix: str, partitions: int) -> Topics:
    """Four fresh topics named ``<prefix>-<random>-{deltas,orders,alerts,dlq}``."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    tag = uuid.uuid4().hex[:8]
    t = Topics(*(f"{prefix}-{tag}-{k}" for k in ("deltas", "orders", "alerts", "dlq")))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [
            NewTopic(name, num_partitions=partitions, replication_factor=1)
            for name in (t.deltas, t.orders, t.alerts, t.dead_letters)
        ]
    )
    for fut in futures.values():
        fut.result(30)
    return t


def _embedded_pipeline(lake: Path, bootstrap: str, topics: Topics, poll_s: float) -> Any:
    """The engine as ``inv360 run`` wires it for Kafka: sources, alert sink and the Kafka copies."""
    from inventory360.cli.options import decoders
    from inventory360.engine.alerts import SafetyStock
    from inventory360.pipeline import Input, LakeLayout, Pipeline
    from inventory360.sinks.alerts import AlertSink
    from inventory360.sinks.kafka import KafkaAlertSink, KafkaDeadLetterSink, KafkaPublisher
    from inventory360.sources.kafka import KafkaSource

    d, o = decoders()
    layout = LakeLayout(lake)

    def sinks(pipeline_id: str) -> list[Any]:
        alerts = AlertSink(lake / "alerts.sqlite", SafetyStock())
        return [
            alerts,
            KafkaAlertSink(
                KafkaPublisher(bootstrap, topics.alerts), alerts.since, lake / "publish-alerts.json", pipeline_id
            ),
            KafkaDeadLetterSink(
                KafkaPublisher(bootstrap, topics.dead_letters),
                layout.dead_letters,
                lake / "publish-dead-letters.json",
                pipeline_id,
            ),
        ]

    return Pipeline(
        layout,
        [
            Input("deltas", KafkaSource("deltas", bootstrap, topics.deltas, poll_timeout=poll_s), d),
            Input("orders", KafkaSource("orders", bootstrap, topics.orders, poll_timeout=poll_s), o),
        ],
        extra_sinks=sinks,
    )


def _embedded_throughput(lake: str, bootstrap: str, topics: Topics, out: Any) -> None:
    t0 = time.perf_counter()
    p = _embedded_pipeline(Path(lake), bootstrap, topics, 2.0)
    p.open()
    p.run()
    p.close()
    dead = len(Path(lake, "dead_letters.jsonl").read_bytes().splitlines())
    out.put((time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, dead))


def _embedded_streaming(lake: str, bootstrap: str, topics: Topics, stop: Any) -> None:
    p = _embedded_pipeline(Path(lake), bootstrap, topics, 0.05)
    p.open()
    while not stop.is_set():
        if p.step() is None:
            time.sleep(0.01)
    p.close()


def flink_job(
    bootstrap: str,
    topics: Topics,
    warehouse: Path,
    parallelism: int,
    checkpoint_interval_s: float,
    bounded: bool,
) -> Any:
    """The Flink job of a bench run: same outputs as the embedded engine (no Cassandra)."""
    from inventory360.flink.job import FlinkJob

    return FlinkJob(
        topics.deltas,
        topics.orders,
        bootstrap,
        ["CREATED", "ALLOCATED"],
        warehouse,
        bounded=bounded,
        parallelism=parallelism,
        checkpoint_interval_s=checkpoint_interval_s,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        alerts_topic=topics.alerts,
        dead_letters_topic=topics.dead_letters,
    )


def count_messages(bootstrap: str, topic: str, idle_s: float = 3.0) -> int:
    """Committed messages in ``topic`` (read to the end, ``read_committed``)."""
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    n = 0
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_s:
            got = [m for m in c.consume(1000, 0.5) if m.error() is None]
            if got:
                n += len(got)
                last = time.monotonic()
        return n
    finally:
        c.close()


class AlertWatch(threading.Thread):
    """Reads an alerts topic (read_committed) and records when each key's first alert arrived."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        from confluent_kafka import Consumer

        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-{uuid.uuid4().hex}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe([topic])

    def run(self) -> None:
        """Consume until :attr:`stop` is set."""
        while not self.stop.is_set():
            for m in self._consumer.consume(100, 0.05):
                key = m.key() if m.error() is None else None
                if key is not None:
                    self.seen.setdefault(key.decode(), time.monotonic())
        self._consumer.close()


def probe_latency(bootstrap: str, topics: Topics, probes: int, gap_s: float, ready_s: float = 180.0) -> list[float]:
    """Produce probe deltas one at a time and return each one's produce → alert latency (ms)."""
    from inventory360.sinks.kafka import producer

    watch = AlertWatch(bootstrap, topics.alerts)
    watch.start()
    p = producer(bootstrap, **{"linger.ms": 0})
    run = uuid.uuid4().hex[:6]

    def send(i: int) -> tuple[str, float]:
        key = f"LAT-{run}-{i:04d}|WH-L"
        value = orjson.dumps(
            {
                "sku_id": f"LAT-{run}-{i:04d}",
                "warehouse_id": "WH-L",
                "available_delta": 1,
                "event_time": int(time.time() * 1000),
                "event_id": f"lat-{run}-{i}",
            }
        )
        p.produce(topics.deltas, value, key.encode())
        p.flush(10)
        return key, time.monotonic()

    try:
        # Warm-up: the engine is up once the first probe's alert is readable.
        key, _ = send(0)
        deadline = time.monotonic() + ready_s
        while key not in watch.seen:
            if time.monotonic() > deadline:
                raise TimeoutError("the engine published no alert for the warm-up probe")
            time.sleep(0.05)
        sent = []
        for i in range(1, probes + 1):
            sent.append(send(i))
            time.sleep(gap_s)
        deadline = time.monotonic() + 120
        while any(k not in watch.seen for k, _ in sent) and time.monotonic() < deadline:
            time.sleep(0.05)
        return [(watch.seen[k] - t) * 1000 for k, t in sent if k in watch.seen]
    finally:
        watch.stop.set()
        watch.join(5)


def _embedded_latency(bootstrap: str, work: Path, probes: int) -> list[float]:
    ctx = mp.get_context("spawn")
    lat = create_topics(bootstrap, "bench-latency", 1)
    stop = ctx.Event()
    proc = ctx.Process(target=_embedded_streaming, args=(str(work / "embedded-latency"), bootstrap, lat, stop))
    proc.start()
    try:
        return probe_latency(bootstrap, lat, probes, 0.5)
    finally:
        stop.set()
        proc.join(60)


def _flink_latency(bootstrap: str, work: Path, par: int, checkpoint_interval_s: float, probes: int) -> list[float]:
    from inventory360.flink.runner import run_plan

    lat = create_topics(bootstrap, "bench-latency", par)
    job = flink_job(bootstrap, lat, work / f"flink-latency-p{par}" / "warehouse", par, checkpoint_interval_s, False)
    stop = threading.Event()
    runner = threading.Thread(target=run_plan, args=(job.plan(),), kwargs={"stop": stop, "timeout": 1800})
    runner.start()
    try:
        return probe_latency(bootstrap, lat, probes, 0.5)
    finally:
        stop.set()
        runner.join(120)


def main(
    *,
    engines: Sequence[str] = ENGINES,
    events: int = 200_000,
    skus: int = 5000,
    warehouses: int = 10,
    seed: int = 7,
    parallelism: Sequence[int] = (1, 2),
    checkpoint_interval_s: float = 10.0,
    probes: int = 30,
    bootstrap: str = "127.0.0.1:9092",
    partitions: int = 8,
    work: Path | None = None,
    say: Callable[[str], None] = print,
) -> list[EngineRun]:
    """Run the comparison and print its table; returns the figures (``work`` None: a temporary folder)."""
    from inventory360.flink.runner import ensure_environment

    unknown = set(engines) - set(ENGINES)
    if unknown or not engines:
        from inventory360.errors import ConfigError

        raise ConfigError(f"--engines takes a comma-separated subset of {', '.join(ENGINES)}, not {engines}")
    if "flink" in engines:
        ensure_environment(setup=True)
    scratch = work is None
    work = Path(tempfile.mkdtemp(prefix="bench-engines-")) if work is None else work
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _compare(
            engines,
            events,
            skus,
            warehouses,
            seed,
            parallelism,
            checkpoint_interval_s,
            probes,
            bootstrap,
            partitions,
            work,
            say,
        )
    finally:
        if scratch:
            shutil.rmtree(work, ignore_errors=True)


def _compare(
    engines: Sequence[str],
    events: int,
    skus: int,
    warehouses: int,
    seed: int,
    parallelism: Sequence[int],
    checkpoint_interval_s: float,
    probes: int,
    bootstrap: str,
    partitions: int,
    work: Path,
    say: Callable[[str], None],
) -> list[EngineRun]:
    from inventory360.datagen import GeneratorSpec, generate
    from inventory360.flink.runner import run_plan
    from inventory360.sinks.kafka import produce_file
    from inventory360.sinks.paimon import read_snapshot

    say(f"generating {events:,} events ({skus:,} SKUs × {warehouses} warehouses) under {work}")
    generate(
        work / "data", GeneratorSpec(skus=skus, warehouses=warehouses, events=events, seed=seed, invalid_rate=0.002)
    )
    topics = create_topics(bootstrap, "bench-engines", partitions)
    produce_file(bootstrap, topics.deltas, work / "data" / "deltas.jsonl", "deltas")
    produce_file(bootstrap, topics.orders, work / "data" / "orders.jsonl", "orders")
    ctx = mp.get_context("spawn")
    runs: list[EngineRun] = []
    want: Any = None

    def check(warehouse: Path, name: str, dead: int) -> None:
        nonlocal want
        got = read_snapshot(warehouse, "inventory360", "inventory_snapshot")
        if want is None:
            want = (got, dead)
        elif not got.equals(want[0]) or dead != want[1]:
            raise AssertionError(f"{name}: snapshot or dead letters differ from the first run's")

    if "embedded" in engines:
        say("embedded engine: throughput")
        out_topics = create_topics(bootstrap, "bench-engines-out", partitions)
        run_topics = Topics(topics.deltas, topics.orders, out_topics.alerts, out_topics.dead_letters)
        q = ctx.Queue()
        proc = ctx.Process(target=_embedded_throughput, args=(str(work / "embedded"), bootstrap, run_topics, q))
        proc.start()
        wall, rss, dead = q.get()
        proc.join()
        check(work / "embedded" / "warehouse", "embedded", dead)
        run = EngineRun("embedded (1 process)", wall, None, rss, dead)
        if probes:
            say("embedded engine: latency")
            run.latency_ms = _embedded_latency(bootstrap, work, probes)
        runs.append(run)

    for par in parallelism if "flink" in engines else ():
        say(f"Flink, parallelism {par}: throughput")
        out_topics = create_topics(bootstrap, "bench-engines-out", partitions)
        run_topics = Topics(topics.deltas, topics.orders, out_topics.alerts, out_topics.dead_letters)
        warehouse = work / f"flink-p{par}" / "warehouse"
        job = flink_job(bootstrap, run_topics, warehouse, par, checkpoint_interval_s, bounded=True)
        t0 = time.perf_counter()
        res = run_plan(job.plan(), timeout=3600)
        wall = time.perf_counter() - t0
        dead = count_messages(bootstrap, run_topics.dead_letters)
        check(warehouse, f"Flink p={par}", dead)
        run = EngineRun(f"Flink, parallelism {par}", wall, float(res.status["seconds"]), res.peak_rss_kib, dead)
        if probes:
            say(f"Flink, parallelism {par}: latency")
            run.latency_ms = _flink_latency(bootstrap, work, par, checkpoint_interval_s, probes)
        runs.append(run)

    say("")
    say(table(runs, events, skus, warehouses, partitions, checkpoint_interval_s))
    return runs


def table(runs: Sequence[EngineRun], events: int, skus: int, warehouses: int, partitions: int, cp: float) -> str:
    """The comparison as a Markdown table; ratios are against the first run."""
    head = (
        f"{events:,} events ({skus:,} SKUs × {warehouses} warehouses, {partitions} partitions per topic; "
        f"Flink checkpoints every {cp:g} s); same snapshot and dead letters in every run\n\n"
        "| engine | events/s (wall) | × | job s | events/s (job) | peak RSS | × | latency p50 | p99 | × p50 |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    base = runs[0] if runs else None
    lines = [head]
    for r in runs:
        rate = events / r.wall_s
        job = "-" if r.job_s is None else f"{r.job_s:.1f}"
        job_rate = "-" if r.job_s is None else f"{events / r.job_s:,.0f}"
        p50, p99 = _percentile(r.latency_ms, 50), _percentile(r.latency_ms, 99)
        assert base is not None
        b50 = _percentile(base.latency_ms, 50)
        lines.append(
            f"| {r.name} | {rate:,.0f} | {rate / (events / base.wall_s):.2f} | {job} | {job_rate} | "
            f"{r.peak_rss_kib / 1024:,.0f} MiB | {r.peak_rss_kib / base.peak_rss_kib:.1f} | "
            f"{_ms(p50)} | {_ms(p99)} | {p50 / b50:.1f} |"
            if r.latency_ms and base.latency_ms
            else f"| {r.name} | {rate:,.0f} | {rate / (events / base.wall_s):.2f} | {job} | {job_rate} | "
            f"{r.peak_rss_kib / 1024:,.0f} MiB | {r.peak_rss_kib / base.peak_rss_kib:.1f} | - | - | - |"
        )
    return "\n".join(lines)


def _ms(v: float) -> str:
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms"
