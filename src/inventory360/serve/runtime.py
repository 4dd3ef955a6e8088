"""One process that ingests, serves and (for the demo) generates traffic.

:class:`Service` wires a :class:`~inventory360.pipeline.Pipeline` (extra sinks: the SQLite
projection and the alert sink), the metrics hook, and the API (uvicorn in a thread).
:class:`PipelineRunner` loops over ``step()`` in its own thread, at most one commit per
``min_interval`` seconds, and records "caught up" heartbeats when the sources are idle.
:class:`DemoFeed` appends generated messages to JSON Lines files at a steady rate.

Stopping (:meth:`Service.stop`) is orderly: the feed stops, the runner finishes its
current step and closes the pipeline (sinks, sources, files), then the server stops.

Layout under the lake folder: the pipeline's ``warehouse/``, ``state/`` and
``dead_letters.jsonl``, plus ``projection.sqlite`` (or the Cassandra table of
``projection.type: cassandra``), ``alerts.sqlite``, ``alerts.jsonl`` and, with
``publish.*``, the markers ``publish-alerts.json`` / ``publish-dead-letters.json`` of the
Kafka copies. With ``alertmanager.enabled`` a second server takes Alertmanager's webhook.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from inventory360.errors import ConfigError
from inventory360.sources.files import JsonLinesFileSource

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from inventory360.config import Settings
    from inventory360.pipeline import Input, Pipeline
    from inventory360.sinks.alerts import AlertStore
    from inventory360.sinks.projection import ProjectionStore

log = logging.getLogger(__name__)


def projection_path(lake: Path) -> Path:
    """The projection database of a lake folder."""
    return lake / "projection.sqlite"


def alerts_path(lake: Path) -> Path:
    """The alert database of a lake folder."""
    return lake / "alerts.sqlite"


def tailing_inputs(deltas: list[Path], orders: list[Path]) -> list[Input]:
    """One tailed input per file (files are created empty when missing)."""
    from inventory360.cli.options import decoders
    from inventory360.pipeline import Input, Kind

    inputs: list[Input] = []
    groups: tuple[tuple[Kind, list[Path]], ...] = (("deltas", deltas), ("orders", orders))
    for kind, paths in groups:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
            d, o = decoders()
            inputs.append(Input(kind, JsonLinesFileSource(kind, path, tail=True), d if kind == "deltas" else o))
    return inputs


def settings_inputs(settings: Settings) -> list[Input]:
    """The inputs of ``settings.sources`` (files tailed, Kafka topics or the binlog); ConfigError when none."""
    from inventory360.cli.options import decoders
    from inventory360.pipeline import Input
    from inventory360.sources.kafka import KafkaSource

    src = settings.sources
    if src.type == "files":
        if not src.deltas and not src.orders:
            raise ConfigError("no sources: set sources.deltas and/or sources.orders")
        return tailing_inputs(list(src.deltas), list(src.orders))
    inputs: list[Input] = []
    if src.type == "kafka":
        for kind, topic in (("deltas", src.deltas_topic), ("orders", src.orders_topic)):
            if topic:
                d, o = decoders()
                source = KafkaSource(kind, src.bootstrap, topic, src.poll_timeout_s, src.client)
                inputs.append(Input("deltas" if kind == "deltas" else "orders", source, d if kind == "deltas" else o))
        if not inputs:
            raise ConfigError("no sources: set sources.deltas_topic and/or sources.orders_topic")
        return inputs
    from inventory360.sources.binlog import BinlogSource

    inputs = tailing_inputs(list(src.deltas), [])
    if src.deltas_topic:
        if not src.deltas_bootstrap:
            raise ConfigError("sources.deltas_topic needs sources.deltas_bootstrap")
        d, _ = decoders()
        inputs.append(Input("deltas", KafkaSource("deltas", src.deltas_bootstrap, src.deltas_topic), d))
    _, o = decoders()
    binlog = BinlogSource(
        "orders",
        src.host,
        src.port,
        src.user,
        src.password.get_secret_value(),
        schema=src.schema_name,
        table=src.table,
        server_id=src.server_id,
        is_mariadb=src.is_mariadb,
    )
    inputs.append(Input("orders", binlog, o))
    return inputs


class PipelineRunner(threading.Thread):
    """Runs ``pipeline`` until :meth:`stop`; the error that ended it is in ``error``."""

    def __init__(
        self,
        pipeline: Pipeline,
        on_idle: list[Any] | None = None,
        min_interval: float = 0.1,
        idle_sleep: float = 0.05,
    ) -> None:
        super().__init__(name="inv360-pipeline", daemon=True)
        self.pipeline = pipeline
        self.on_idle = on_idle or []
        self.min_interval = min_interval
        self.idle_sleep = idle_sleep
        self.opened = threading.Event()
        self.error: BaseException | None = None
        self._stop_requested = threading.Event()

    def run(self) -> None:
        """Open, loop over steps, close (always)."""
        try:
            self.pipeline.open()
            self.opened.set()
            last_idle = 0.0
            while not self._stop_requested.is_set():
                t0 = time.monotonic()
                stats = self.pipeline.step()
                if stats is None:
                    if t0 - last_idle >= 1.0:
                        last_idle = t0
                        for hook in self.on_idle:
                            hook()
                    self._stop_requested.wait(self.idle_sleep)
                elif stats.committed:  # a batch not yet checkpointed goes straight on
                    self._stop_requested.wait(max(0.0, self.min_interval - (time.monotonic() - t0)))
        except BaseException as exc:  # reported by the owner, which decides the exit code
            self.error = exc
            log.error("pipeline stopped: %s", exc)
        finally:
            self.opened.set()
            try:
                self.pipeline.close()
            except Exception as exc:
                log.error("closing the pipeline failed: %s", exc)
                self.error = self.error or exc

    def stop(self, timeout: float | None = 60.0) -> None:
        """Finish the current step, close the pipeline and wait for the thread."""
        self._stop_requested.set()
        if self.is_alive():
            self.join(timeout)


class ApiServer:
    """uvicorn serving ``app`` in a background thread (port 0 picks a free port)."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        import uvicorn

        self.app = app
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self.server: uvicorn.Server = uvicorn.Server(config)
        self.host = host
        self._thread = threading.Thread(target=self.server.run, name="inv360-api", daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        """Start serving; raises :class:`ConfigError` when the port cannot be bound."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"cannot serve on {self.host}:{self.server.config.port} (in use or not allowed)")
            time.sleep(0.02)

    @property
    def port(self) -> int:
        """The bound port."""
        for srv in self.server.servers:
            for sock in srv.sockets:
                return int(sock.getsockname()[1])
        return int(self.server.config.port)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Close event streams, stop accepting and wait for the thread."""
        self.app.state.stopping.set()
        self.server.should_exit = True
        self._thread.join(10)


@dataclass
class Service:
    """Pipeline + projection + alerts + API in one process (see module docstring)."""

    settings: Settings
    lake: Path
    inputs: list[Input]
    token: str
    host: str = "127.0.0.1"
    port: int = 0
    batch_bytes: int = 1 << 20
    min_interval: float = 0.1
    pipeline: Pipeline = field(init=False)
    runner: PipelineRunner = field(init=False)
    server: ApiServer = field(init=False)
    webhook: ApiServer | None = field(init=False, default=None)
    store: ProjectionStore = field(init=False)
    alert_store: AlertStore = field(init=False)
    _proj: list[Any] = field(init=False, default_factory=list)
    _cancel: threading.Event = field(init=False, default_factory=threading.Event)

    def __post_init__(self) -> None:
        from inventory360.cli.replay import settings_to_options
        from inventory360.engine.alerts import SafetyStock
        from inventory360.ops.metrics import PipelineMetrics, new_registry
        from inventory360.pipeline import LakeLayout, Pipeline
        from inventory360.serve.app import create_app
        from inventory360.sinks.alerts import AlertSink, AlertStore
        from inventory360.sinks.background import BackgroundSink
        from inventory360.sinks.live import LiveProjection
        from inventory360.sinks.projection import SqliteProjection, SqliteProjectionSink

        s = self.settings
        safety = SafetyStock.load(s.alerts.safety_stock_file, s.alerts.default_safety_stock, s.alerts.compare)
        lake = self.lake
        target = cassandra_target(s)
        dead_letters = lake / "dead_letters.jsonl"

        def sinks(pipeline_id: str) -> list[Any]:
            out: list[Any] = []
            if target is None:
                # The API reads recent checkpoints from memory; SQLite upserts run beside
                # the engine, merging checkpoints that queue up.
                assert isinstance(self.store, LiveProjection)
                out.append(self.store.sink)  # first: visible as soon as the checkpoint is durable
                self._proj.append(self.store.sink)
                out.append(BackgroundSink(lambda: SqliteProjectionSink(projection_path(lake), safety)))
            else:
                from inventory360.sinks.cassandra import CassandraProjectionSink

                out.append(CassandraProjectionSink(target, pipeline_id, cancel=self._cancel))
            self._proj.append(out[-1])  # the durable projection's sink
            alert_sink = AlertSink(alerts_path(lake), safety, export=lake / "alerts.jsonl")
            out.append(alert_sink)
            out.extend(publish_sinks(s, lake, pipeline_id, alert_sink.since, dead_letters, self._cancel))
            return out

        self.pipeline = Pipeline(
            LakeLayout(lake, s.lake.database, s.lake.table, s.lake.bucket),
            self.inputs,
            options=settings_to_options(s),
            dead_letters=dead_letters,
            batch_bytes=self.batch_bytes,
            extra_sinks=sinks,
            background_lake=True,
            checkpoint_interval=s.run.checkpoint_interval_s,
        )
        registry = new_registry()
        metrics = PipelineMetrics(registry)
        metrics.attach(self.pipeline)
        if target is None:
            self.store = LiveProjection(SqliteProjection(projection_path(lake)), safety)
        else:
            from inventory360.sinks.cassandra import CassandraProjection

            self.store = CassandraProjection(target, safety)
        self.alert_store = AlertStore(alerts_path(lake))
        app = create_app(s, self.store, self.alert_store, registry=registry, token=self.token)
        self.server = ApiServer(app, self.host, self.port)
        am = s.alertmanager
        if am.enabled:
            from inventory360.serve.webhook import create_webhook_app
            from inventory360.sinks.kafka import KafkaPublisher

            topic = am.topic or s.publish.alerts_topic
            if not s.publish.bootstrap or not topic:
                raise ConfigError(
                    "alertmanager.enabled needs publish.bootstrap and alertmanager.topic (or alerts_topic)"
                )
            hook = create_webhook_app(KafkaPublisher(s.publish.bootstrap, topic), am.forward_resolved)
            self.webhook = ApiServer(hook, am.host, am.port)
        self.runner = PipelineRunner(
            self.pipeline, on_idle=[self._caught_up, metrics.refresh], min_interval=self.min_interval
        )

    def _caught_up(self) -> None:
        for proj in self._proj:
            proj.mark_current()

    def start(self) -> None:
        """Serve first (readyz says not ready until loaded), then ingest."""
        self.server.start()
        if self.webhook is not None:
            self.webhook.start()
        self.runner.start()

    def stop(self) -> None:
        """Orderly stop; re-raises the error that stopped the pipeline, if any.

        Sinks blocked on an unavailable server (Cassandra, Kafka) give up; their checkpoint
        is durable and is re-sent on the next start.
        """
        self._cancel.set()
        self.runner.stop()
        if self.webhook is not None:
            self.webhook.stop()
        self.server.stop()
        self.store.close()
        self.alert_store.close()
        if self.runner.error is not None:
            raise self.runner.error


def cassandra_target(settings: Settings) -> Any:
    """The :class:`CassandraTarget` of ``settings.projection`` (None for the SQLite projection)."""
    from inventory360.sinks.cassandra_target import CassandraTarget

    return CassandraTarget.from_settings(settings.projection)


def publish_sinks(
    settings: Settings,
    lake: Path,
    pipeline_id: str,
    alerts: Any,
    dead_letters: Path,
    cancel: threading.Event,
) -> list[Any]:
    """The Kafka copies of ``settings.publish`` (alerts, dead letters); they must follow the alert sink."""
    from inventory360.sinks.kafka import KafkaAlertSink, KafkaDeadLetterSink, KafkaPublisher

    pub = settings.publish
    out: list[Any] = []
    if not pub.bootstrap:
        return out
    if pub.alerts_topic:
        publisher = KafkaPublisher(pub.bootstrap, pub.alerts_topic, cancel)
        out.append(KafkaAlertSink(publisher, alerts, lake / "publish-alerts.json", pipeline_id))
    if pub.dead_letters_topic:
        publisher = KafkaPublisher(pub.bootstrap, pub.dead_letters_topic, cancel)
        out.append(KafkaDeadLetterSink(publisher, dead_letters, lake / "publish-dead-letters.json", pipeline_id))
    return out


class DemoFeed(threading.Thread):
    """Appends generated traffic to ``deltas.jsonl`` / ``orders.jsonl`` under ``folder`` at ``rate`` messages/s.

    Each start is a new *run* (counted in ``feed.json``): a new seed, order ids and binlog
    file numbers above every earlier run's, event times from the wall clock, so a restarted
    demo continues the same state instead of replaying old ids.
    """

    def __init__(self, folder: Path, rate: float, skus: int, warehouses: int, invalid_rate: float = 0.0005) -> None:
        from inventory360.datagen import GeneratorSpec, TrafficGenerator

        super().__init__(name="inv360-demo-feed", daemon=True)
        folder.mkdir(parents=True, exist_ok=True)
        meta = folder / "feed.json"
        run = int(orjson.loads(meta.read_bytes())["run"]) + 1 if meta.exists() else 1
        meta.write_bytes(orjson.dumps({"run": run}))
        self.deltas = folder / "deltas.jsonl"
        self.orders = folder / "orders.jsonl"
        spec = GeneratorSpec(
            skus=skus,
            warehouses=warehouses,
            events=1 << 62,
            seed=run,
            invalid_rate=invalid_rate,
            start_ms=int(time.time() * 1000),
            ms_per_event=0,  # event time follows the wall clock (set per chunk below)
        )
        self.gen = TrafficGenerator(spec)
        self.gen.next_order = run * 100_000_000 + 1
        self.gen.binlog_file = run * 1000
        self.rate = rate
        self.produced = 0
        self._stop_requested = threading.Event()
        for p in (self.deltas, self.orders):
            p.touch(exist_ok=True)

    def run(self) -> None:
        """Write complete lines in chunks about every 50 ms until stopped."""
        messages = self.gen.messages()
        t0 = time.monotonic()
        with self.deltas.open("ab") as fd, self.orders.open("ab") as fo:
            while not self._stop_requested.wait(0.05):
                due = int((time.monotonic() - t0) * self.rate) - self.produced
                if due <= 0:
                    continue
                self.gen.now = max(self.gen.now, int(time.time() * 1000))
                chunks: dict[str, list[bytes]] = {"deltas": [], "orders": []}
                for _ in range(due):
                    kind, msg = next(messages)
                    chunks[kind].append(msg)
                fd.write(b"".join(m + b"\n" for m in chunks["deltas"]))
                fo.write(b"".join(m + b"\n" for m in chunks["orders"]))
                fd.flush()
                fo.flush()
                self.produced += due

    def stop(self) -> None:
        """Stop after the current chunk (lines are always complete)."""
        self._stop_requested.set()
        if self.is_alive():
            self.join(10)
