r"""The snapshot pipeline (SPEC §1-§2) as Flink SQL, generated from the shared settings.

Shape (``inv360 flink sql`` prints it)::

    inventory_delta (json) → normalise → first per event_id ─┬ SUM, MAX by key ─────────┐
                                                             └ keys touched ─┐          │
    orders_cdc (json) → normalise → accept by binlog position ┬ keys touched ┴ MAX ─────┤ UNION ALL
                                                              └ last per line → SUM     ┤ → GROUP BY key
                                                                (reserving) by key ─────┘ → Paimon

How each SPEC rule is met, and where Flink SQL differs (see :data:`DEVIATIONS`):

* ``available_qty`` — SUM of accepted deltas by key. No event-time window or watermark
  anywhere, so late deltas are always summed (SPEC §6.3).
* ``event_id`` — ``ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proctime) = 1``, Flink's
  keep-first-row deduplication (append-only, one state entry per id, never expired unless
  ``flink.state_ttl`` is set). Deltas with a blank ``event_id`` bypass it.
* Order lines — the topic is read as plain ``json`` (append-only), not ``debezium-json``,
  so the binlog position stays visible: a change is accepted when its
  (file number, pos, row) is ≥ the running maximum of its line
  (``MAX … OVER (PARTITION BY line ORDER BY proctime)``), i.e. SPEC's "older than the last
  applied change is ignored"; a change without a position is always accepted (arrival
  order). The current state of a line is its last accepted change
  (``ROW_NUMBER … ORDER BY proctime DESC = 1``, a retracting changelog); ``op = d`` makes it
  dead. ``debezium-json`` with a primary key and ``table.exec.source.cdc-events-duplicate``
  would also give a correct changelog, but in arrival order only and without the key a
  line moves away from, which ``updated_at`` needs.
* ``reserved_qty`` — ``SUM(CASE WHEN status IN (reserving) THEN quantity ELSE 0 END)`` over
  the live lines' current state grouped by (sku, warehouse_selection): a line that moves
  retracts from its old key.
* ``updated_at`` — MAX of the change time over an append-only stream of *touches*: every
  accepted delta touches its key, every accepted order change its after key and, through
  ``LAG`` over the line's accepted changes, the key of the previous live state when the
  line moves or is deleted (a delete of a dead/unknown line touches its before image's
  key). Being append-only it never moves backwards (SPEC §6.4).
* The three per-key aggregates are combined by ``UNION ALL`` + ``GROUP BY`` (one row per
  key, bounded state, no join amplification: SPEC §6.2) and upserted into the Paimon
  table with the same options as the embedded engine's (bucket, ``sequence.field``).
* Exactly-once: Kafka offsets are in Flink's checkpoints, Paimon commits on checkpoint
  completion; checkpointing is on with ``flink.checkpoint_interval_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inventory360.flink.settings import JobSettings

#: Where this SQL cannot do what SPEC (and the embedded engine) does. Printed by ``inv360 flink sql``.
DEVIATIONS = (
    "Bad records are filtered out, not dead-lettered (SPEC §5): a value that does not parse, or lacks a "
    "required field, or has a non-integer quantity/delta, is dropped without a record of it.",
    "Type checks are looser than the decoders': Flink's JSON reader truncates 1.5 to 1 and reads a string "
    '"5" as 5, and a numeric string event_time as epoch ms; the embedded engine rejects all three.',
    "An order line that mixes changes with and without a binlog position compares new positions with the "
    "highest position seen, not with the last applied change's (the engine resets on a bare change).",
    "A negative integer time in µs/ns is divided towards zero (the engine floors).",
    "Ordering ties: 'first' delta of an event_id and 'previous' change of a line are by processing time "
    "at the operator, which equals Kafka order only when a key's messages share a partition "
    "(inventory360.sinks.kafka keys them so).",
)

_WS = r"\p{IsWhite_Space}"
_ISO = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?)?)?"
    r"(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?$"
)


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def trim_ws(expr: str) -> str:
    """``expr`` without leading/trailing Unicode White_Space (the decoders' trim)."""
    return f"REGEXP_REPLACE({expr}, '^{_WS}+|{_WS}+$', '')"


def time_expr(expr: str) -> str:
    """TIMESTAMP(3) (UTC) of a JSON time read as STRING; NULL when it is not a valid time.

    Integers are epoch ms, µs (|v| ≥ 10¹⁴) or ns (|v| ≥ 10¹⁷); strings follow the ISO
    grammar of :mod:`inventory360.sources.timestamps` (naive = UTC, fraction floored to ms).
    """
    g = [f"REGEXP_EXTRACT({expr}, '{_ISO}', {i})" for i in range(7)]
    frac = f"RPAD(SUBSTRING(COALESCE({g[5]}, '') FROM 1 FOR 3), 3, '0')"
    local = (
        f"TRY_CAST({g[1]} || ' ' || COALESCE({g[2]}, '00') || ':' || COALESCE({g[3]}, '00') || ':' "
        f"|| COALESCE({g[4]}, '00') || '.' || {frac} AS TIMESTAMP(3))"
    )
    zone = g[6]
    zone_digits = f"REPLACE(SUBSTRING({zone} FROM 2), ':', '')"
    offset_min = (
        f"(CASE WHEN {zone} IS NULL OR {zone} = 'Z' THEN 0 ELSE "
        f"(CASE WHEN SUBSTRING({zone} FROM 1 FOR 1) = '-' THEN -1 ELSE 1 END) * "
        f"(CAST(SUBSTRING({zone_digits} FROM 1 FOR 2) AS INT) * 60 + "
        f"COALESCE(TRY_CAST(NULLIF(SUBSTRING({zone_digits} FROM 3 FOR 2), '') AS INT), 0)) END)"
    )
    num = f"TRY_CAST({expr} AS BIGINT)"
    ms = (
        f"(CASE WHEN ABS({num}) >= 100000000000000000 THEN {num} / 1000000 "
        f"WHEN ABS({num}) >= 100000000000000 THEN {num} / 1000 ELSE {num} END)"
    )
    return (
        f"(CASE WHEN REGEXP({expr}, '^-?[0-9]{{1,19}}$') THEN CAST(TO_TIMESTAMP_LTZ({ms}, 3) AS TIMESTAMP(3)) "
        f"WHEN REGEXP({expr}, '{_ISO}') THEN TIMESTAMPADD(MINUTE, -{offset_min}, {local}) END)"
    )


def _image_type() -> str:
    return (
        "ROW<`order_id` STRING, `line_no` STRING, `sku_id` STRING, `warehouse_selection` STRING, "
        "`quantity` BIGINT, `status` STRING, `updated_at` STRING>"
    )


def _envelope_fields() -> list[str]:
    img = _image_type()
    return [
        f"`before` {img}",
        f"`after` {img}",
        "`op` STRING",
        "`ts_ms` STRING",
        "`source` ROW<`file` STRING, `pos` BIGINT, `row` BIGINT>",
    ]


@dataclass(slots=True)
class FlinkJob:
    """The generated job: session configuration, DDL/views and the one ``INSERT``.

    Contract: :meth:`statements` + :attr:`insert` executed in order in a
    ``TableEnvironment`` configured with :meth:`config` compute SPEC §2's snapshot into
    ``catalog.database.table`` (created when missing, with the embedded engine's options).
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

    @classmethod
    def from_settings(cls, js: JobSettings, lake: Path | None = None) -> FlinkJob:
        """The job for ``js``; the lake folder is ``lake`` or ``settings.lake.path``."""
        from inventory360.errors import ConfigError
        from inventory360.pipeline import LakeLayout

        s, k, f = js.settings, js.kafka, js.flink
        root = lake or s.lake.path
        if root is None:
            raise ConfigError("no lake folder: give --lake or lake.path")
        layout = LakeLayout(Path(root), s.lake.database, s.lake.table, s.lake.bucket)
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

    def _kafka_with(self, topic: str, source: str) -> str:
        opts = {
            "connector": "kafka",
            "topic": topic,
            "properties.bootstrap.servers": self.bootstrap,
            "properties.group.id": f"{self.group_id}-{source}",
            "scan.startup.mode": self.startup_mode,
            "format": "json",
            "json.ignore-parse-errors": "true",
            "json.fail-on-missing-field": "false",
        }
        if self.bounded:
            opts["scan.bounded.mode"] = "latest-offset"
        return ",\n  ".join(f"{quote(k)} = {quote(v)}" for k, v in opts.items())

    @property
    def target(self) -> str:
        """The sink table, fully qualified."""
        return f"{ident(self.catalog)}.{ident(self.database)}.{ident(self.table)}"

    # -- statements -------------------------------------------------------------------
    def statements(self) -> list[str]:
        """Catalog, source tables and views, in execution order (without the INSERT)."""
        from inventory360.sinks.paimon import table_options

        cat, db = ident(self.catalog), ident(self.database)
        wh = self.warehouse.resolve().as_uri()
        options = ",\n  ".join(f"{quote(k)} = {quote(v)}" for k, v in table_options(self.bucket).items())
        statuses = ", ".join(quote(s) for s in self.reserving_statuses)
        t = trim_ws
        envelope = ",\n  ".join(_envelope_fields())
        payload = ", ".join(_envelope_fields())
        pos_key = (
            "CASE WHEN src_file IS NOT NULL AND src_file <> '' AND src_pos IS NOT NULL THEN "
            "LPAD(CAST(COALESCE(TRY_CAST(NULLIF(REGEXP_EXTRACT(src_file, '([0-9]+)$', 1), '') AS BIGINT), 0) "
            "AS STRING), 19, '0') || LPAD(CAST(src_pos AS STRING), 19, '0') || "
            "LPAD(CAST(COALESCE(src_row, 0) AS STRING), 19, '0') END"
        )
        return [
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
  {options}
)""",
            f"""CREATE TEMPORARY TABLE `delta_raw` (
  `sku_id` STRING,
  `warehouse_id` STRING,
  `available_delta` BIGINT,
  `event_time` STRING,
  `event_id` STRING,
  `proc` AS PROCTIME()
) WITH (
  {self._kafka_with(self.deltas_topic, "deltas")}
)""",
            f"""CREATE TEMPORARY TABLE `orders_raw` (
  `payload` ROW<{payload}>,
  {envelope},
  `proc` AS PROCTIME()
) WITH (
  {self._kafka_with(self.orders_topic, "orders")}
)""",
            # Deltas: trimmed ids, parsed time; rows failing SPEC §1.1 are dropped (no DLQ here).
            f"""CREATE TEMPORARY VIEW `delta_events` AS
SELECT sku_id, warehouse_id, available_delta, event_time, event_id, proc FROM (
  SELECT {t("`sku_id`")} AS sku_id, {t("`warehouse_id`")} AS warehouse_id, `available_delta` AS available_delta,
    {time_expr("`event_time`")} AS event_time,
    CASE WHEN {t("`event_id`")} <> '' THEN `event_id` END AS event_id, proc
  FROM `delta_raw`)
WHERE sku_id <> '' AND warehouse_id <> '' AND available_delta IS NOT NULL AND event_time IS NOT NULL""",
            # The first copy of an event_id wins; deltas without one all count.
            """CREATE TEMPORARY VIEW `delta_accepted` AS
SELECT sku_id, warehouse_id, available_delta, event_time FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc ASC) AS rn
  FROM `delta_events` WHERE event_id IS NOT NULL)
WHERE rn = 1
UNION ALL
SELECT sku_id, warehouse_id, available_delta, event_time FROM `delta_events` WHERE event_id IS NULL""",
            # Order changes, wrapped ({"payload": …}) or bare; identity from the after image
            # (before image for deletes), line_no defaults to "0".
            """CREATE TEMPORARY VIEW `order_envelopes` AS
SELECT
  COALESCE(`payload`.`op`, `op`) AS op,
  CASE WHEN `payload` IS NOT NULL THEN `payload`.`before` ELSE `before` END AS b,
  CASE WHEN `payload` IS NOT NULL THEN `payload`.`after` ELSE `after` END AS a,
  COALESCE(`payload`.`ts_ms`, `ts_ms`) AS ts,
  COALESCE(`payload`.`source`.`file`, `source`.`file`) AS src_file,
  COALESCE(`payload`.`source`.`pos`, `source`.`pos`) AS src_pos,
  COALESCE(`payload`.`source`.`row`, `source`.`row`) AS src_row,
  proc
FROM `orders_raw`""",
            f"""CREATE TEMPORARY VIEW `order_changes` AS
SELECT * FROM (
  SELECT
    op,
    {t("CASE WHEN op = 'd' THEN b.order_id ELSE a.order_id END")} AS order_id,
    COALESCE(NULLIF({t("CASE WHEN op = 'd' THEN b.line_no ELSE a.line_no END")}, ''), '0') AS line_no,
    CASE WHEN op <> 'd' THEN {t("a.sku_id")} END AS sku_id,
    CASE WHEN op <> 'd' THEN {t("a.warehouse_selection")} END AS warehouse_id,
    CASE WHEN op <> 'd' THEN a.quantity END AS quantity,
    CASE WHEN op <> 'd' THEN UPPER({t("a.status")}) END AS status,
    NULLIF({t("b.sku_id")}, '') AS before_sku_id,
    NULLIF({t("b.warehouse_selection")}, '') AS before_warehouse_id,
    CASE WHEN op <> 'd' AND a.updated_at IS NOT NULL THEN {time_expr("a.updated_at")}
         ELSE {time_expr("ts")} END AS change_time,
    {pos_key} AS pos_key,
    proc
  FROM `order_envelopes`
  WHERE op IN ('c', 'r', 'u', 'd'))
WHERE order_id <> '' AND change_time IS NOT NULL
  AND (op = 'd' OR (sku_id <> '' AND warehouse_id <> '' AND quantity >= 0 AND status <> ''))""",
            # SPEC §1.2: a change older (by binlog position) than the newest applied one is ignored.
            """CREATE TEMPORARY VIEW `order_ranked` AS
SELECT *, MAX(pos_key) OVER (PARTITION BY order_id, line_no ORDER BY proc
  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS max_pos
FROM `order_changes`""",
            """CREATE TEMPORARY VIEW `order_accepted` AS
SELECT op, order_id, line_no, sku_id, warehouse_id, quantity, status, before_sku_id, before_warehouse_id,
  change_time, proc
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
            """CREATE TEMPORARY VIEW `key_touches` AS
SELECT sku_id, warehouse_id, event_time AS touched_at FROM `delta_accepted`
UNION ALL
SELECT sku_id, warehouse_id, change_time FROM `order_moves` WHERE op <> 'd'
UNION ALL
SELECT prev_sku_id, prev_warehouse_id, change_time FROM `order_moves`
WHERE prev_sku_id IS NOT NULL AND prev_warehouse_id IS NOT NULL
  AND (op = 'd' OR prev_sku_id <> sku_id OR prev_warehouse_id <> warehouse_id)
UNION ALL
SELECT before_sku_id, before_warehouse_id, change_time FROM `order_moves`
WHERE op = 'd' AND prev_sku_id IS NULL AND before_sku_id IS NOT NULL AND before_warehouse_id IS NOT NULL""",
            f"""CREATE TEMPORARY VIEW `snapshot_rows` AS
SELECT sku_id, warehouse_id, SUM(available_qty) AS available_qty, SUM(reserved_qty) AS reserved_qty,
  MAX(updated_at) AS updated_at
FROM (
  SELECT sku_id, warehouse_id, SUM(available_delta) AS available_qty, CAST(0 AS BIGINT) AS reserved_qty,
    CAST(NULL AS TIMESTAMP(3)) AS updated_at
  FROM `delta_accepted` GROUP BY sku_id, warehouse_id
  UNION ALL
  SELECT sku_id, warehouse_id, CAST(0 AS BIGINT),
    SUM(CASE WHEN status IN ({statuses}) THEN quantity ELSE CAST(0 AS BIGINT) END), CAST(NULL AS TIMESTAMP(3))
  FROM `order_lines_current` WHERE op <> 'd' GROUP BY sku_id, warehouse_id
  UNION ALL
  SELECT sku_id, warehouse_id, CAST(0 AS BIGINT), CAST(0 AS BIGINT), MAX(touched_at)
  FROM `key_touches` GROUP BY sku_id, warehouse_id)
GROUP BY sku_id, warehouse_id""",
        ]

    @property
    def insert(self) -> str:
        """The job's one INSERT."""
        return (
            f"INSERT INTO {self.target}\n"
            "SELECT sku_id, warehouse_id, available_qty, reserved_qty, updated_at FROM `snapshot_rows`"
        )

    def plan(self) -> dict[str, Any]:
        """What :mod:`inventory360.flink._pyflink_main` executes (JSON-serialisable)."""
        return {"mode": "streaming", "config": self.config(), "statements": self.statements(), "insert": self.insert}

    def sql(self) -> str:
        """The whole job as a SQL script (SET lines, statements, INSERT), e.g. for sql-client."""
        head = [
            "-- inventory360: SPEC §1-§2 snapshot as Flink SQL (generated by `inv360 flink sql`).",
            "-- Deviations from SPEC that Flink SQL cannot avoid:",
            *(f"--   * {d}" for d in DEVIATIONS),
            "",
        ]
        sets = [f"SET {quote(k)} = {quote(v)};" for k, v in self.config().items()]
        body = [s + ";" for s in self.statements()]
        return "\n".join([*head, *sets, "", "\n\n".join(body), "", self.insert + ";", ""])
