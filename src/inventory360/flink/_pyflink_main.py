"""Executes a plan of :mod:`inventory360.flink.job` (or :mod:`.maintain`) inside the Flink virtualenv.

Run as a script by :mod:`inventory360.flink.runner` with the Flink venv's Python::

    python _pyflink_main.py PLAN.json

Two kinds of plan:

* ``"kind": "pipeline"`` (:meth:`FlinkJob.plan`): the streaming job. DDL first; each raw
  Kafka table → a vectorised Python function running the engine's decoders
  (:func:`_decode_function`) → through a DataStream (so it runs once) → the decoded view and
  the dead-letter view; the SQL views; ``snapshot_rows`` → changelog stream, which feeds the
  Paimon INSERT (``snapshot_changes``) and, forwarded without a shuffle,
  ``SnapshotChanges`` (alerts and Cassandra upserts); alert and dead-letter messages →
  Kafka INSERTs. Everything is one job: the statement set is attached to the DataStream
  graph and executed together.
* otherwise (maintenance): ``{"mode": "streaming"|"batch", "config", "statements",
  "insert": str|None, "queries": [...], "wait": bool}`` — statements in order, the INSERT
  submitted (and waited for when ``wait``), then ``queries`` whose rows are printed as JSON lines.

Progress lines on stdout: ``{"submitted": job_id}`` once running, and last
``{"job_id": …, "status": …, "seconds": …}``. The Python workers import ``inventory360``
from ``python.files`` (the source root). Excluded from mypy: pyflink exists only here.
"""

from __future__ import annotations

import json
import sys
import time


def _configuration(plan):
    from pyflink.common import Configuration

    conf = Configuration()
    for key, value in plan.get("config", {}).items():
        conf.set_string(key, str(value))
    jars = plan.get("jars") or []
    if jars:
        conf.set_string("pipeline.jars", ";".join("file://" + j for j in jars))
    # Unless the plan says otherwise, the workers run this very interpreter (the Flink
    # virtualenv), not whatever `python` is on PATH.
    for key in ("python.executable", "python.client.executable"):
        if key not in plan.get("config", {}):
            conf.set_string(key, sys.executable)
    return conf


def _row_type(columns):
    from pyflink.common import Types

    kinds = {
        "STRING": Types.STRING(),
        "BIGINT": Types.LONG(),
        "INT": Types.INT(),
        "BYTES": Types.PRIMITIVE_ARRAY(Types.BYTE()),
    }
    return Types.ROW_NAMED([n for n, _ in columns], [kinds[t] for _, t in columns])


def _functions():
    """The Python stages (defined lazily: pyflink must be importable first)."""
    from pyflink.common import Row
    from pyflink.common.types import RowKind
    from pyflink.datastream.functions import ProcessFunction

    class SnapshotChanges(ProcessFunction):
        """The snapshot changelog → LOW/RECOVERED messages, and Cassandra upserts of every new row."""

        def __init__(self, thresholds, projection, pipeline_id):
            self.thresholds = thresholds
            self.projection = projection
            self.pipeline_id = pipeline_id

        def open(self, runtime_context):
            from inventory360.flink.alerting import CrossingDetector, Thresholds
            from inventory360.flink.projection import ProjectionWriter
            from inventory360.sinks.cassandra_target import CassandraTarget

            self.detector = None
            if self.thresholds is not None:
                self.detector = CrossingDetector(Thresholds.from_json(self.thresholds), self.pipeline_id)
            self.writer = None
            metrics = runtime_context.get_metrics_group()
            if self.projection is not None:
                subtask = runtime_context.get_index_of_this_subtask()
                self.writer = ProjectionWriter(
                    CassandraTarget.from_json(self.projection), f"{self.pipeline_id}#{subtask}"
                )
                # Gauges are read when a bundle finishes, and Flink finishes the bundle before
                # every checkpoint barrier: draining here makes each checkpoint cover its upserts.
                metrics.gauge("inv360_projection_drained", self._drain)
            self.alerts = metrics.counter("inv360_alerts")

        def _drain(self):
            return self.writer.drain() if self.writer is not None else 0

        def process_element(self, value, ctx):
            from inventory360.flink.alerting import Level

            ms = value[4]
            level = Level(value[0], value[1], value[2] or 0, value[3] or 0, ms)
            kind = value.get_row_kind()
            if kind in (RowKind.UPDATE_BEFORE, RowKind.DELETE):
                if self.detector is not None:
                    self.detector.retract(level)
                return
            if self.writer is not None:
                self.writer.write(level.sku_id, level.warehouse_id, level.available_qty, level.reserved_qty, ms)
            if self.detector is not None:
                msg = self.detector.upsert(level)
                if msg is not None:
                    self.alerts.inc()
                    yield Row(*msg)

        def close(self):
            if self.writer is not None:
                self.writer.close()

    return SnapshotChanges


def _data_type(sql_type):
    from pyflink.table import DataTypes

    return {"STRING": DataTypes.STRING(), "BIGINT": DataTypes.BIGINT(), "BYTES": DataTypes.BYTES()}[sql_type]


def _decode_function(kind, pipeline_id, columns):
    """A vectorized (pandas) SQL function: raw value, topic, partition, offset → ROW(columns…, dead, dedupe).

    Decoding runs per message in :class:`inventory360.flink.decode.MessageDecoder`; the
    vectorized form moves whole Arrow batches between the JVM and the worker, which costs far
    less per message than a DataStream function. A valid message fills the columns; a rejected
    one only ``dead`` (the dead-letter JSON) and ``dedupe``; a skipped one nothing.
    """
    from pyflink.table import DataTypes
    from pyflink.table.udf import ScalarFunction, udf

    class DecodeBatch(ScalarFunction):
        def open(self, function_context):
            from inventory360.flink.decode import MessageDecoder

            self.decoder = MessageDecoder(kind, pipeline_id)
            metrics = function_context.get_metric_group()
            self.rejected = metrics.counter("inv360_dead_letters")
            self.skipped = metrics.counter("inv360_skipped")

        def eval(self, values, topics, partitions, offsets):
            import pandas as pd

            decode = self.decoder.decode
            width = len(columns)
            nothing = (None,) * width
            out = [[] for _ in range(width + 2)]
            rejected = skipped = 0
            for value, topic, partition, offset in zip(values, topics, partitions, offsets, strict=True):
                row, dead = decode(value, topic, int(partition), int(offset))
                if row is None:
                    row = nothing
                    if dead is None:
                        skipped += 1
                    else:
                        rejected += 1
                for i in range(width):
                    out[i].append(row[i])
                out[width].append(None if dead is None else dead[1])
                out[width + 1].append(None if dead is None else dead[0])
            if rejected:
                self.rejected.inc(rejected)
            if skipped:
                self.skipped.inc(skipped)
            names = [n for n, _ in columns] + ["dead", "dedupe"]
            return pd.DataFrame({n: pd.Series(c, dtype=object) for n, c in zip(names, out, strict=True)})

    fields = [DataTypes.FIELD(n, _data_type(t)) for n, t in columns]
    fields += [DataTypes.FIELD("dead", DataTypes.BYTES()), DataTypes.FIELD("dedupe", DataTypes.BYTES())]
    return udf(DecodeBatch(), result_type=DataTypes.ROW(fields), func_type="pandas")


def run_pipeline(plan):
    """Build and run the streaming job of ``plan`` (see the module docstring)."""
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import Schema, StreamTableEnvironment

    env = StreamExecutionEnvironment.get_execution_environment(_configuration(plan))
    tenv = StreamTableEnvironment.create(env)
    for stmt in plan["statements"]:
        tenv.execute_sql(stmt)
    SnapshotChanges = _functions()
    pipeline_id = plan["pipeline_id"]
    messages = plan["messages"]
    message_type = _row_type(messages["columns"])
    dead_views = []
    for kind in ("deltas", "orders"):
        spec = plan["decode"][kind]
        columns = spec["columns"]
        fn = f"inv360_decode_{kind}"
        tenv.create_temporary_function(fn, _decode_function(kind, pipeline_id, columns))
        names = [n for n, _ in columns] + ["dead", "dedupe"]
        decoded = tenv.sql_query(
            f"SELECT {', '.join(f'd.`{n}`' for n in names)} "
            f"FROM (SELECT {fn}(`value`, `topic`, `partition`, `offset`) AS d FROM `{spec['table']}`)"
        )
        # Through a DataStream (Java only) so the Kafka read and the decoding run once, shared by
        # the snapshot and the dead letters (separately planned queries would each repeat them).
        stream = tenv.to_data_stream(decoded)
        schema = Schema.new_builder()
        for name, sql_type in [*columns, ("dead", "BYTES"), ("dedupe", "BYTES")]:
            schema = schema.column(name, sql_type)
        schema = schema.column_by_expression("proc", "PROCTIME()").build()
        tenv.create_temporary_view(f"{spec['view']}_all", tenv.from_data_stream(stream, schema))
        first = columns[0][0]
        tenv.execute_sql(
            f"CREATE TEMPORARY VIEW `{spec['view']}` AS SELECT {', '.join(f'`{n}`' for n, _ in columns)}, proc "
            f"FROM `{spec['view']}_all` WHERE dead IS NULL AND `{first}` IS NOT NULL"
        )
        dead_views.append(f"SELECT dedupe AS k, dead AS v, dedupe FROM `{spec['view']}_all` WHERE dead IS NOT NULL")
    for view in plan["views"]:
        tenv.execute_sql(view)

    snap = plan["snapshot"]
    changes = tenv.to_changelog_stream(tenv.from_path(snap["view"]))
    key = snap["key"]
    changes_schema = (
        Schema.new_builder()
        .column("sku_id", "STRING NOT NULL")
        .column("warehouse_id", "STRING NOT NULL")
        .column("available_qty", "BIGINT")
        .column("reserved_qty", "BIGINT")
        .column("updated_at_ms", "BIGINT")
        .primary_key(*key)
        .build()
    )
    tenv.create_temporary_view(snap["changes"], tenv.from_changelog_stream(changes, changes_schema))
    if plan.get("alerts") is not None or plan.get("projection") is not None:
        thresholds = plan["alerts"]["thresholds"] if plan.get("alerts") else None
        alerts = (
            changes.forward()
            .process(SnapshotChanges(thresholds, plan.get("projection"), pipeline_id), output_type=message_type)
            .name("alerts and projection")
        )
        if thresholds is not None:
            tenv.create_temporary_view(messages["alerts"], tenv.from_data_stream(alerts))
    if plan.get("dead_letters"):
        tenv.execute_sql(f"CREATE TEMPORARY VIEW `{messages['dead_letters']}` AS " + " UNION ALL ".join(dead_views))

    statements = tenv.create_statement_set()
    for insert in plan["inserts"]:
        statements.add_insert_sql(insert)
    statements.attach_as_datastream()
    started = time.monotonic()
    client = env.execute_async(plan["config"].get("pipeline.name", "inventory360"))
    job_id = str(client.get_job_id())
    print(json.dumps({"submitted": job_id}), flush=True)
    if not plan.get("wait", True):
        return {"job_id": job_id, "status": "SUBMITTED"}
    client.get_job_execution_result().result()
    return {"job_id": job_id, "status": "FINISHED", "seconds": round(time.monotonic() - started, 3)}


def run_statements(plan):
    """A plan of statements, an optional INSERT and queries (maintenance)."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    builder = EnvironmentSettings.new_instance().with_configuration(_configuration(plan))
    builder = builder.in_batch_mode() if plan.get("mode") == "batch" else builder.in_streaming_mode()
    tenv = TableEnvironment.create(builder.build())
    for stmt in plan.get("statements", []):
        tenv.execute_sql(stmt)
    status = {"job_id": None, "status": "NO_JOB"}
    if plan.get("insert"):
        started = time.monotonic()
        result = tenv.execute_sql(plan["insert"])
        client = result.get_job_client()
        job_id = str(client.get_job_id()) if client is not None else None
        print(json.dumps({"submitted": job_id}), flush=True)
        status = {"job_id": job_id, "status": "SUBMITTED"}
        if plan.get("wait", True):
            result.wait()
            status = {"job_id": job_id, "status": "FINISHED", "seconds": round(time.monotonic() - started, 3)}
    for query in plan.get("queries", []):
        with tenv.execute_sql(query).collect() as rows:
            for row in rows:
                print(json.dumps({"query": query, "row": [str(x) for x in row]}), flush=True)
    return status


def main(path: str) -> int:
    """Run the plan at ``path``; exit code 0 on success."""
    with open(path) as f:
        plan = json.load(f)
    status = run_pipeline(plan) if plan.get("kind") == "pipeline" else run_statements(plan)
    print(json.dumps(status), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
