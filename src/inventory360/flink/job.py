r"""The pipeline (SPEC §1-§5) as a PyFlink job: SQL generated from the shared settings.

Shape (``inv360 flink sql`` prints the SQL; :mod:`._pyflink_main` wires the Python stages)::

    inventory_delta (raw) → [py] decode ─┬ dead letters ─────────────────────────────────────┐
                                         └ first per event_id ─┬ SUM by key ──────────┐       │
                                                               └ keys touched ─┐      │       ├→ Kafka inventory_dlq
    orders_cdc (raw) → [py] decode ─┬ dead letters ────────────────────────────┼──────┼───────┘
                                    └ accept by binlog position ┬ keys touched ┴ MAX ─┤ UNION ALL → GROUP BY key
                                                                └ last per line → SUM ┘        │ (changelog)
                                                 ┌─────────────────────────────────────────────┤
                                                 ↓                                             ↓
                                   Paimon inventory_snapshot        [py] crossings → Kafka inventory_alerts
                                                                         upserts → Cassandra projection

How each SPEC rule is met, and where Flink differs (see :data:`DEVIATIONS`):

* Decoding — both topics are read as raw bytes and decoded in Python by the embedded
  engine's own decoders (:mod:`.decode`): the same messages are accepted, skipped or
  rejected, and rejected ones go to the dead-letter topic with the engine's reason, the
  original bytes and topic/partition/offset (SPEC §5). Times arrive as epoch ms.
* ``available_qty`` — SUM of accepted deltas by key. No event-time window or watermark
  anywhere, so late deltas are always summed (SPEC §6.3).
* ``event_id`` — ``ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proctime) = 1``, Flink's
  keep-first-row deduplication (append-only, one state entry per id, never expired unless
  ``flink.state_ttl`` is set). Deltas without an ``event_id`` bypass it.
* Order lines — a change is accepted when its binlog position (file number, pos, row) is ≥
  the running maximum of its line (``MAX … OVER (PARTITION BY line ORDER BY proctime)``),
  i.e. SPEC's "older than the last applied change is ignored"; a change without a position
  is always accepted (arrival order). The current state of a line is its last accepted
  change (``ROW_NUMBER … ORDER BY proctime DESC = 1``, a retracting changelog); ``op = d``
  makes it dead.
* ``reserved_qty`` — ``SUM(CASE WHEN status IN (reserving) THEN quantity ELSE 0 END)`` over
  the live lines' current state grouped by (sku, warehouse_selection): a line that moves
  retracts from its old key.
* ``updated_at`` — MAX of the change time over append-only streams of *touches*: every
  accepted delta touches its key (its event time is aggregated with its quantity, so both
  reach the final aggregate in one row), every accepted order change its after key and,
  through ``LAG`` over the line's accepted changes, the key of the previous live state
  when the line moves or is deleted (a delete of a dead/unknown line touches its before
  image's key). Being append-only it never moves backwards (SPEC §6.4).
* The three per-key aggregates are combined by ``UNION ALL`` + ``GROUP BY`` (one row per
  key, bounded state, no join amplification: SPEC §6.2). Its changelog feeds the Paimon
  table (same options as the embedded engine's) and the Python operator that emits
  edge-triggered alerts (:mod:`.alerting`) and upserts the Cassandra projection
  (:mod:`.projection`). The branches reach the final aggregate independently, so between
  checkpoints a row may show an order change's reservation before its touch (or the
  reverse); ``available_qty`` only ever moves by whole accepted deltas, in order. Paimon
  sees checkpoint-consistent states only; see :data:`DEVIATIONS` for the alerts.
* Exactly-once: Kafka offsets are in Flink's checkpoints, Paimon commits and the Kafka
  sinks' transactions complete with each checkpoint (``flink.checkpoint_interval_s``);
  Cassandra upserts are drained before each checkpoint and idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inventory360.flink.alerting import Thresholds
from inventory360.flink.decode import DELTA_COLUMNS, MESSAGE_COLUMNS, ORDER_COLUMNS
from inventory360.flink.settings import JobSettings
from inventory360.sinks.cassandra_target import CassandraTarget

#: Where the Flink job differs from SPEC / the embedded engine. Printed by ``inv360 flink sql``.
DEVIATIONS = (
    "Alerts are judged on every update of the aggregate (Flink mini-batches), the embedded engine's on every "
    "committed micro-batch: a dip that recovers inside one engine batch may alert here. Both alert once per "
    "crossing they observe and end with the same keys low. Between checkpoints an update may show an order "
    "change's reservation and its updated_at one mini-batch apart, so an alert's reserved_qty/event_time may "
    "lag an order change in flight, and with alerts.compare = atp a rare transient crossing can be reported.",
    "An order line that mixes changes with and without a binlog position compares new positions with the "
    "highest position seen, not with the last applied change's (the engine resets on a bare change).",
    "Ordering ties: 'first' delta of an event_id and 'previous' change of a line are by processing time "
    "at the operator, which equals Kafka order only when a key's messages share a partition "
    "(inventory360.sinks.kafka keys them so).",
)

#: Source root shipped to the Python workers (``python.files``): they import the decoders.
SRC = Path(__file__).resolve().parents[2]


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def _with(opts: dict[str, str]) -> str:
    return ",\n  ".join(f"{quote(k)} = {quote(v)}" for k, v in opts.items())


def _columns(cols: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(ident(n) for n, _ in cols)


@dataclass(slots=True)
class FlinkJob:
    """The generated job: configuration, DDL, views, the Python stages' parameters and the INSERTs.

    Contract: :mod:`._pyflink_main` run on :meth:`plan` computes SPEC §2's snapshot into
    ``catalog.database.table`` (created when missing, with the embedded engine's options),
    dead-letters what the engine's decoders reject to ``dead_letters_topic``, publishes
    LOW/RECOVERED crossings to ``alerts_topic`` and upserts the snapshot into ``cassandra``
    (each output only when configured).
    """

    deltas_topic: str
    orders_topic: str
    bootstrap: str
    reserving_statuses: list[str]
    warehouse: Path
    database: str = "inventory360"
    table: str = "inventory_snapshot"
    bucket: int = 8
    catalog: str = "inv360_lake"
    group_id: str = "inv360-flink"
    startup_mode: str = "earliest-offset"
    bounded: bool = False
    parallelism: int = 1
    checkpoint_interval_s: float = 10.0
    state_backend: str = "hashmap"
    state_ttl: str | None = None
    job_name: str = "inventory360-snapshot"
    checkpoint_dir: str | None = None
    restart_attempts: int = 3
    extra: dict[str, str] = field(default_factory=dict)
    #: Kafka of the output topics (alerts, dead letters); None: ``bootstrap``.
    publish_bootstrap: str | None = None
    alerts_topic: str | None = "inventory_alerts"
    dead_letters_topic: str | None = "inventory_dlq"
    #: ``exactly-once`` (transactions committed with each checkpoint) or ``at-least-once``.
    delivery: str = "exactly-once"
    thresholds: Thresholds = field(default_factory=Thresholds)
    cassandra: CassandraTarget | None = None

    @classmethod
    def from_settings(cls, js: JobSettings, lake: Path | None = None) -> FlinkJob:
        """The job for ``js``; the lake folder is ``lake`` or ``settings.lake.path``.

        Outputs follow the engine's settings: ``publish.alerts_topic`` /
        ``publish.dead_letters_topic`` (default the SPEC's ``inventory_alerts`` /
        ``inventory_dlq``) on ``publish.bootstrap`` (default ``kafka.bootstrap``), thresholds
        from ``alerts.*``, and the Cassandra projection when ``projection.type`` is ``cassandra``.
        """
        from inventory360.engine.alerts import SafetyStock
        from inventory360.errors import ConfigError
        from inventory360.pipeline import LakeLayout

        s, k, f = js.settings, js.kafka, js.flink
        root = lake or s.lake.path
        if root is None:
            raise ConfigError("no lake folder: give --lake or lake.path")
        layout = LakeLayout(Path(root), s.lake.database, s.lake.table, s.lake.bucket)
        safety = SafetyStock.load(s.alerts.safety_stock_file, s.alerts.default_safety_stock, s.alerts.compare)
        cassandra = CassandraTarget.from_settings(s.projection)
        return cls(
            deltas_topic=k.deltas_topic,
            orders_topic=k.orders_topic,
            bootstrap=k.bootstrap,
            reserving_statuses=list(s.engine.reserving_statuses),
            warehouse=layout.warehouse,
            database=layout.database,
            table=layout.table,
            bucket=layout.bucket,
            catalog=f.catalog,
            group_id=f.group_id,
            startup_mode=f.startup_mode,
            bounded=f.bounded,
            parallelism=f.parallelism,
            checkpoint_interval_s=f.checkpoint_interval_s,
            state_backend=f.state_backend,
            state_ttl=f.state_ttl,
            job_name=f.job_name,
            checkpoint_dir=f.checkpoint_dir,
            restart_attempts=f.restart_attempts,
            extra=dict(f.extra),
            publish_bootstrap=s.publish.bootstrap,
            alerts_topic=s.publish.alerts_topic or "inventory_alerts",
            dead_letters_topic=s.publish.dead_letters_topic or "inventory_dlq",
            thresholds=Thresholds(safety.default, dict(safety.per_key), safety.compare),
            cassandra=cassandra,
        )

    # -- configuration ----------------------------------------------------------------
    def config(self) -> dict[str, str]:
        """Flink configuration of the job (applied before any statement)."""
        ms = int(self.checkpoint_interval_s * 1000)
        conf = {
            "execution.runtime-mode": "streaming",
            "pipeline.name": self.job_name,
            "parallelism.default": str(self.parallelism),
            "table.local-time-zone": "UTC",
            "execution.checkpointing.interval": f"{ms} ms",
            "execution.checkpointing.mode": "EXACTLY_ONCE",
            # A bounded job must still commit its last records to Paimon when it finishes.
            "execution.checkpointing.checkpoints-after-tasks-finish": "true",
            # Filesystem checkpoint storage: the default (JobManager memory) caps each
            # operator's state at 5 MiB, and the job then fails and restarts for ever.
            "execution.checkpointing.storage": "filesystem",
            "execution.checkpointing.dir": self.checkpoint_uri,
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": str(self.restart_attempts),
            "restart-strategy.fixed-delay.delay": "2 s",
            "state.backend.type": self.state_backend,
            "table.exec.mini-batch.enabled": "true",
            "table.exec.mini-batch.allow-latency": "1 s",
            "table.exec.mini-batch.size": "5000",
            # The snapshot reaches Paimon through a changelog stream keyed like the table and
            # forwarded without a shuffle, so no upsert materializer is needed to fix its order.
            "table.exec.sink.upsert-materialize": "NONE",
            # Python stages (decoders, alerts, projection) run in worker processes; bundles end
            # at least every second (and before every checkpoint), which drains Cassandra writes.
            "python.execution-mode": "process",
            "python.fn-execution.bundle.time": "1000",
            "python.files": str(SRC),
        }
        if self.state_ttl:
            conf["table.exec.state.ttl"] = self.state_ttl
        conf.update(self.extra)
        return conf

    @property
    def checkpoint_uri(self) -> str:
        """Where checkpoints go: ``checkpoint_dir``, else ``flink-checkpoints`` beside the warehouse."""
        if self.checkpoint_dir:
            return self.checkpoint_dir
        return (self.warehouse.parent / "flink-checkpoints").resolve().as_uri()

    @property
    def pipeline_id(self) -> str:
        """Names this job in alerts, dead-letter keys and the projection's meta rows."""
        return f"flink:{self.job_name}"

    def _source(self, name: str, topic: str, source: str) -> str:
        opts = {
            "connector": "kafka",
            "topic": topic,
            "properties.bootstrap.servers": self.bootstrap,
            "properties.group.id": f"{self.group_id}-{source}",
            "scan.startup.mode": self.startup_mode,
            "format": "raw",
        }
        if self.bounded:
            opts["scan.bounded.mode"] = "latest-offset"
        return f"""CREATE TEMPORARY TABLE {ident(name)} (
  `value` BYTES,
  `topic` STRING METADATA VIRTUAL,
  `partition` INT METADATA VIRTUAL,
  `offset` BIGINT METADATA VIRTUAL
) WITH (
  {_with(opts)}
)"""

    def _sink(self, name: str, topic: str, purpose: str) -> str:
        opts = {
            "connector": "kafka",
            "topic": topic,
            "properties.bootstrap.servers": self.publish_bootstrap or self.bootstrap,
            "key.format": "raw",
            "key.fields": "k",
            "value.format": "raw",
            "value.fields-include": "EXCEPT_KEY",
            "sink.delivery-guarantee": self.delivery,
        }
        if self.delivery == "exactly-once":
            # Stable across restarts of this job (lingering transactions are aborted); the
            # timeout must not exceed the broker's transaction.max.timeout.ms (15 min default).
            opts["sink.transactional-id-prefix"] = f"{self.group_id}-{purpose}"
            opts["properties.transaction.timeout.ms"] = "900000"
        return f"""CREATE TEMPORARY TABLE {ident(name)} (
  `k` BYTES,
  `v` BYTES,
  `headers` MAP<STRING, BYTES> METADATA
) WITH (
  {_with(opts)}
)"""

    @property
    def target(self) -> str:
        """The Paimon table, fully qualified."""
        return f"{ident(self.catalog)}.{ident(self.database)}.{ident(self.table)}"

    # -- statements -------------------------------------------------------------------
    def statements(self) -> list[str]:
        """Catalog, Paimon table, raw Kafka sources and Kafka sinks, in execution order."""
        from inventory360.sinks.paimon import table_options

        cat, db = ident(self.catalog), ident(self.database)
        wh = self.warehouse.resolve().as_uri()
        out = [
            f"CREATE CATALOG {cat} WITH ('type' = 'paimon', 'warehouse' = {quote(wh)})",
            f"CREATE DATABASE IF NOT EXISTS {cat}.{db}",
            f"""CREATE TABLE IF NOT EXISTS {self.target} (
  `sku_id` STRING NOT NULL,
  `warehouse_id` STRING NOT NULL,
  `available_qty` BIGINT,
  `reserved_qty` BIGINT,
  `updated_at` TIMESTAMP(3),
  PRIMARY KEY (`sku_id`, `warehouse_id`) NOT ENFORCED
) WITH (
  {_with(table_options(self.bucket))}
)""",
            self._source("delta_raw", self.deltas_topic, "deltas"),
            self._source("orders_raw", self.orders_topic, "orders"),
        ]
        if self.alerts_topic:
            out.append(self._sink("alerts_out", self.alerts_topic, "alerts"))
        if self.dead_letters_topic:
            out.append(self._sink("dead_letters_out", self.dead_letters_topic, "dlq"))
        return out

    def views(self) -> list[str]:
        """The SQL from the decoded streams (``delta_decoded``, ``order_decoded``) to ``snapshot_rows``.

        Times stay epoch ms (BIGINT) up to the Paimon INSERT, which makes them ``TIMESTAMP(3)``.
        """
        statuses = ", ".join(quote(s) for s in self.reserving_statuses)
        return [
            # The first copy of an event_id wins; deltas without one all count. Times stay epoch ms.
            """CREATE TEMPORARY VIEW `delta_accepted` AS
SELECT sku_id, warehouse_id, available_delta, event_time_ms FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc ASC) AS rn
  FROM `delta_decoded` WHERE event_id IS NOT NULL)
WHERE rn = 1
UNION ALL
SELECT sku_id, warehouse_id, available_delta, event_time_ms FROM `delta_decoded` WHERE event_id IS NULL""",
            # SPEC §1.2: a change older (by binlog position) than the newest applied one is ignored.
            """CREATE TEMPORARY VIEW `order_ranked` AS
SELECT *, MAX(pos_key) OVER (PARTITION BY order_id, line_no ORDER BY proc
  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS max_pos
FROM `order_decoded`""",
            """CREATE TEMPORARY VIEW `order_accepted` AS
SELECT op, order_id, line_no, sku_id, warehouse_id, quantity, status, before_sku_id, before_warehouse_id,
  change_time_ms, proc
FROM `order_ranked` WHERE pos_key IS NULL OR max_pos IS NULL OR pos_key >= max_pos""",
            # The previous live key of the line (NULL after a delete or for a new line).
            """CREATE TEMPORARY VIEW `order_moves` AS
SELECT *,
  LAG(sku_id) OVER (PARTITION BY order_id, line_no ORDER BY proc) AS prev_sku_id,
  LAG(warehouse_id) OVER (PARTITION BY order_id, line_no ORDER BY proc) AS prev_warehouse_id
FROM `order_accepted`""",
            """CREATE TEMPORARY VIEW `order_lines_current` AS
SELECT order_id, line_no, op, sku_id, warehouse_id, quantity, status FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY order_id, line_no ORDER BY proc DESC) AS rn
  FROM `order_accepted`)
WHERE rn = 1""",
            # Keys touched by order changes (deltas carry their own touch in their aggregate).
            """CREATE TEMPORARY VIEW `key_touches` AS
SELECT sku_id, warehouse_id, change_time_ms AS touched_at_ms FROM `order_moves` WHERE op <> 'd'
UNION ALL
SELECT prev_sku_id, prev_warehouse_id, change_time_ms FROM `order_moves`
WHERE prev_sku_id IS NOT NULL AND prev_warehouse_id IS NOT NULL
  AND (op = 'd' OR prev_sku_id <> sku_id OR prev_warehouse_id <> warehouse_id)
UNION ALL
SELECT before_sku_id, before_warehouse_id, change_time_ms FROM `order_moves`
WHERE op = 'd' AND prev_sku_id IS NULL AND before_sku_id IS NOT NULL AND before_warehouse_id IS NOT NULL""",
            f"""CREATE TEMPORARY VIEW `snapshot_rows` AS
SELECT sku_id, warehouse_id, SUM(available_qty) AS available_qty, SUM(reserved_qty) AS reserved_qty,
  MAX(updated_at_ms) AS updated_at_ms
FROM (
  SELECT sku_id, warehouse_id, SUM(available_delta) AS available_qty, CAST(0 AS BIGINT) AS reserved_qty,
    MAX(event_time_ms) AS updated_at_ms
  FROM `delta_accepted` GROUP BY sku_id, warehouse_id
  UNION ALL
  SELECT sku_id, warehouse_id, CAST(0 AS BIGINT),
    SUM(CASE WHEN status IN ({statuses}) THEN quantity ELSE CAST(0 AS BIGINT) END), CAST(NULL AS BIGINT)
  FROM `order_lines_current` WHERE op <> 'd' GROUP BY sku_id, warehouse_id
  UNION ALL
  SELECT sku_id, warehouse_id, CAST(0 AS BIGINT), CAST(0 AS BIGINT), MAX(touched_at_ms)
  FROM `key_touches` GROUP BY sku_id, warehouse_id)
GROUP BY sku_id, warehouse_id""",
        ]

    @property
    def insert(self) -> str:
        """The Paimon INSERT (from the changelog of ``snapshot_rows``, registered as ``snapshot_changes``)."""
        return (
            f"INSERT INTO {self.target}\n"
            "SELECT sku_id, warehouse_id, available_qty, reserved_qty,\n"
            "  CAST(TO_TIMESTAMP_LTZ(updated_at_ms, 3) AS TIMESTAMP(3)) AS updated_at FROM `snapshot_changes`"
        )

    def inserts(self) -> list[str]:
        """Every INSERT of the job's statement set: Paimon, then the Kafka outputs that are configured."""
        out = [self.insert]
        for sink, view, on in (
            ("alerts_out", "alert_messages", self.alerts_topic),
            ("dead_letters_out", "dead_letter_messages", self.dead_letters_topic),
        ):
            if on:
                out.append(f"INSERT INTO {ident(sink)} SELECT k, v, MAP['inv360-dedupe', dedupe] FROM {ident(view)}")
        return out

    def plan(self) -> dict[str, Any]:
        """What :mod:`inventory360.flink._pyflink_main` executes (JSON-serialisable)."""
        return {
            "mode": "streaming",
            "kind": "pipeline",
            "config": self.config(),
            "statements": self.statements(),
            "decode": {
                "deltas": {"table": "delta_raw", "view": "delta_decoded", "columns": DELTA_COLUMNS},
                "orders": {"table": "orders_raw", "view": "order_decoded", "columns": ORDER_COLUMNS},
            },
            "views": self.views(),
            "snapshot": {"view": "snapshot_rows", "changes": "snapshot_changes", "key": ["sku_id", "warehouse_id"]},
            "messages": {
                "columns": MESSAGE_COLUMNS,
                "alerts": "alert_messages",
                "dead_letters": "dead_letter_messages",
            },
            "alerts": None if not self.alerts_topic else {"thresholds": self.thresholds.to_json()},
            "dead_letters": bool(self.dead_letters_topic),
            "projection": None if self.cassandra is None else self.cassandra.to_json(),
            "pipeline_id": self.pipeline_id,
            "inserts": self.inserts(),
            "wait": True,
        }

    def sql(self) -> str:
        """The job as a SQL script (SET lines, DDL, views, INSERTs) with its Python stages as comments."""
        head = [
            "-- inventory360: SPEC §1-§5 pipeline as a PyFlink job (generated by `inv360 flink sql`).",
            "-- Python stages (inventory360.flink._pyflink_main) are marked [py]; the rest runs as written.",
            "-- Deviations from SPEC and the embedded engine:",
            *(f"--   * {d}" for d in DEVIATIONS),
            "",
        ]
        sets = [f"SET {quote(k)} = {quote(v)};" for k, v in self.config().items()]
        decode = (
            "-- [py] delta_raw → inventory360.flink.decode (DeltaDecoder) → "
            f"`delta_decoded`({_columns(DELTA_COLUMNS)}, proc AS PROCTIME()); "
            f"rejected → `dead_letter_messages`({_columns(MESSAGE_COLUMNS)})\n"
            f"-- [py] orders_raw → inventory360.flink.decode (DebeziumOrderDecoder) → `order_decoded`"
            f"({_columns(ORDER_COLUMNS)}, proc AS PROCTIME()); rejected → `dead_letter_messages`"
        )
        changes = (
            "-- [py] `snapshot_rows` → to_changelog_stream → `snapshot_changes` (Paimon) and → crossings "
            "(inventory360.flink.alerting) → `alert_messages`; upserts → Cassandra (inventory360.flink.projection)"
        )
        body = [s + ";" for s in self.statements()]
        views = [v + ";" for v in self.views()]
        inserts = [i + ";" for i in self.inserts()]
        return "\n".join(
            [*head, *sets, "", "\n\n".join(body), "", decode, "", "\n\n".join(views), "", changes, "", *inserts, ""]
        )
