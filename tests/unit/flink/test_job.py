"""The generated Flink SQL: shared settings flow into it, and its contract-bearing parts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from inventory360.cli.main import cli
from inventory360.errors import ConfigError
from inventory360.flink.job import DEVIATIONS, FlinkJob, quote
from inventory360.flink.settings import load_job_settings


def job(tmp_path: Path, **kw: object) -> FlinkJob:
    cfg = tmp_path / "s.yaml"
    cfg.write_text(
        "engine:\n  reserving_statuses: [created, ' Picking ']\n"
        f"lake:\n  path: {tmp_path / 'lake'}\n  bucket: 4\n  table: snap\n"
        "kafka:\n  bootstrap: k:9\n  deltas_topic: d1\n  orders_topic: o1\n"
        "flink:\n  parallelism: 3\n  checkpoint_interval_s: 2.5\n"
    )
    return FlinkJob.from_settings(load_job_settings(cfg, flink=dict(kw)))  # type: ignore[arg-type]


def test_settings_shared_with_the_engine_reach_the_sql(tmp_path: Path) -> None:
    j = job(tmp_path)
    sql = j.sql()
    assert "IN ('CREATED', 'PICKING')" in sql  # the engine's validator normalised them
    assert f"'warehouse' = '{(tmp_path / 'lake' / 'warehouse').resolve().as_uri()}'" in sql
    assert "`inv360_lake`.`inventory360`.`snap`" in sql
    assert "'bucket' = '4'" in sql and "'sequence.field' = 'updated_at'" in sql
    assert "'topic' = 'd1'" in sql and "'topic' = 'o1'" in sql and "'properties.bootstrap.servers' = 'k:9'" in sql
    assert "SET 'parallelism.default' = '3';" in sql
    assert "SET 'execution.checkpointing.interval' = '2500 ms';" in sql
    assert "scan.bounded.mode" not in sql
    assert "'scan.bounded.mode' = 'latest-offset'" in job(tmp_path, bounded=True).sql()


def test_default_checkpointing_is_on_every_10_s(tmp_path: Path) -> None:
    j = FlinkJob("d", "o", "b:1", ["CREATED"], tmp_path / "w")
    conf = j.config()
    assert conf["execution.checkpointing.interval"] == "10000 ms"
    assert conf["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    assert conf["table.local-time-zone"] == "UTC"
    # Memory checkpoint storage caps state at 5 MiB per operator: checkpoints go to files.
    assert conf["execution.checkpointing.storage"] == "filesystem"
    assert conf["execution.checkpointing.dir"] == (tmp_path / "flink-checkpoints").resolve().as_uri()
    assert conf["restart-strategy.fixed-delay.attempts"] == "3"


def test_shape_follows_spec_section_6(tmp_path: Path) -> None:
    sql = job(tmp_path).sql()
    # No join, no OVER on event time, no watermark: aggregates per key combined by UNION ALL.
    assert "JOIN" not in sql.upper()
    assert "WATERMARK" not in sql.upper()
    assert "REGEXP" not in sql.upper()  # Flink 2.2 compiles the pattern of REGEXP_* on every call
    assert sql.count("UNION ALL") >= 5
    assert "PARTITION BY event_id ORDER BY proc ASC" in sql  # keep-first dedup
    assert "pos_key >= max_pos" in sql  # binlog-position acceptance
    assert "LAG(sku_id)" in sql  # the key a line moves away from is touched
    assert "FROM `snapshot_changes`;" in sql
    for d in DEVIATIONS:
        assert d[:40] in sql


def test_raw_sources_and_exactly_once_kafka_outputs(tmp_path: Path) -> None:
    j = job(tmp_path)
    ddl = "\n".join(j.statements())
    assert ddl.count("'format' = 'raw'") == 2 and "`offset` BIGINT METADATA VIRTUAL" in ddl
    assert "'properties.group.id' = 'inv360-flink-deltas'" in ddl  # what `flink advise` reads
    assert "'topic' = 'inventory_alerts'" in ddl and "'topic' = 'inventory_dlq'" in ddl
    assert ddl.count("'sink.delivery-guarantee' = 'exactly-once'") == 2
    assert "'sink.transactional-id-prefix' = 'inv360-flink-alerts'" in ddl
    assert "'properties.transaction.timeout.ms' = '900000'" in ddl
    assert len(j.inserts()) == 3 and "MAP['inv360-dedupe', dedupe]" in j.inserts()[1]
    quiet = FlinkJob("d", "o", "b:1", ["CREATED"], tmp_path / "w", alerts_topic=None, dead_letters_topic=None)
    assert quiet.inserts() == [quiet.insert] and "alerts_out" not in "".join(quiet.statements())
    loose = FlinkJob("d", "o", "b:1", ["CREATED"], tmp_path / "w", delivery="at-least-once", publish_bootstrap="p:2")
    assert "transactional" not in "".join(loose.statements()) and "'p:2'" in "".join(loose.statements())


def test_outputs_follow_the_engines_settings(tmp_path: Path) -> None:
    csv = tmp_path / "safety.csv"
    csv.write_text("sku_id,warehouse_id,safety_stock\nA,W,3\n")
    cfg = tmp_path / "s.yaml"
    cfg.write_text(
        f"lake:\n  path: {tmp_path}\n"
        f"alerts:\n  safety_stock_file: {csv}\n  default_safety_stock: 7\n  compare: atp\n"
        "publish:\n  bootstrap: pub:9\n  alerts_topic: al\n  dead_letters_topic: dl\n"
        "projection:\n  type: cassandra\n  hosts: [c1]\n  table: proj\n  consistency: ONE\n"
    )
    j = FlinkJob.from_settings(load_job_settings(cfg))
    assert (j.alerts_topic, j.dead_letters_topic, j.publish_bootstrap) == ("al", "dl", "pub:9")
    assert j.thresholds.default == 7 and j.thresholds.compare == "atp" and j.thresholds.per_key == {("A", "W"): 3}
    assert j.cassandra is not None and j.cassandra.hosts == ("c1",) and j.cassandra.table == "proj"
    plan = json.loads(json.dumps(j.plan()))
    assert plan["projection"]["consistency"] == "ONE"
    assert plan["alerts"]["thresholds"]["per_key"] == [["A", "W", 3]]
    assert plan["pipeline_id"] == "flink:inventory360-snapshot"
    default = FlinkJob.from_settings(load_job_settings(None, lake__path=str(tmp_path)))
    assert default.cassandra is None and default.alerts_topic == "inventory_alerts"


def test_plan_is_json_with_the_python_stages(tmp_path: Path) -> None:
    plan = json.loads(json.dumps(job(tmp_path).plan()))
    assert plan["kind"] == "pipeline"
    assert plan["inserts"][0].startswith("INSERT INTO `inv360_lake`")
    assert not any(s.upper().startswith("INSERT") for s in plan["statements"] + plan["views"])
    assert plan["config"]["python.execution-mode"] == "process"
    assert Path(plan["config"]["python.files"], "inventory360", "flink", "decode.py").exists()
    assert [c[0] for c in plan["decode"]["orders"]["columns"]][-1] == "pos_key"


def test_literals_are_escaped() -> None:
    assert quote("it's") == "'it''s'"


def test_missing_lake_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        FlinkJob.from_settings(load_job_settings(None))


def test_invalid_flink_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"flink\.parallelism"):
        load_job_settings(None, flink={"parallelism": 0})


def test_cli_prints_sql_without_flink(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["flink", "sql", "--lake", str(tmp_path), "--orders-topic", "oo", "--bounded"])
    assert out.exit_code == 0, out.output
    assert "'topic' = 'oo'" in out.output and "scan.bounded.mode" in out.output
    plan = CliRunner().invoke(cli, ["flink", "sql", "--plan", "--lake", str(tmp_path)])
    assert json.loads(plan.output)["mode"] == "streaming" and json.loads(plan.output)["kind"] == "pipeline"


def test_cli_reads_kafka_and_flink_sections_from_the_global_config(tmp_path: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text(f"lake:\n  path: {tmp_path}\nkafka:\n  deltas_topic: dd\nflink:\n  parallelism: 2\n")
    out = CliRunner().invoke(cli, ["--config", str(cfg), "flink", "sql"])
    assert out.exit_code == 0, out.output
    assert "'topic' = 'dd'" in out.output and "'parallelism.default' = '2'" in out.output


def test_submit_rejects_a_bad_address(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["flink", "submit", "--lake", str(tmp_path), "--jobmanager", "nohost"])
    assert out.exit_code == 2
    assert "HOST:PORT" in out.output


def test_maintenance_plan() -> None:
    from inventory360.flink.maintain import maintenance_plan

    plan = maintenance_plan(Path("/x/warehouse"), "db", "t", retain_max=3, tag="daily")
    assert plan["mode"] == "batch" and plan["insert"] is None
    assert plan["queries"] == [
        "CALL sys.compact(`table` => 'db.t')",
        "CALL sys.expire_snapshots(`table` => 'db.t', retain_min => 1, retain_max => 3)",
        "CALL sys.create_tag(`table` => 'db.t', tag => 'daily')",
    ]
