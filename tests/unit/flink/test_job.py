"""The generated Flink SQL: shared settings flow into it, and its contract-bearing parts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from inventory360.cli.main import cli
from inventory360.errors import ConfigError
from inventory360.flink.job import DEVIATIONS, FlinkJob, quote, time_expr, trim_ws
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
    assert "upsert-materialize" not in sql
    assert sql.count("UNION ALL") >= 5
    assert "PARTITION BY event_id ORDER BY proc ASC" in sql  # keep-first dedup
    assert "pos_key >= max_pos" in sql  # binlog-position acceptance
    assert "LAG(sku_id)" in sql  # the key a line moves away from is touched
    assert sql.rstrip().endswith("FROM `snapshot_rows`;")
    for d in DEVIATIONS:
        assert d[:40] in sql


def test_plan_is_json_and_has_one_insert(tmp_path: Path) -> None:
    plan = json.loads(json.dumps(job(tmp_path).plan()))
    assert plan["insert"].startswith("INSERT INTO `inv360_lake`")
    assert not any(s.upper().startswith("INSERT") for s in plan["statements"])


def test_literals_are_escaped() -> None:
    assert quote("it's") == "'it''s'"
    assert "\\p{IsWhite_Space}" in trim_ws("x")


def test_time_expression_covers_the_grammar() -> None:
    e = time_expr("t")
    assert "TO_TIMESTAMP_LTZ" in e and "TRY_CAST" in e and "TIMESTAMPADD(MINUTE" in e
    assert "100000000000000000" in e and "100000000000000 " in e  # ns and µs by magnitude
    iso = re.search(r"WHEN REGEXP\(t, '([^']+)'\) THEN TIMESTAMPADD", e)
    assert iso is not None
    pattern = re.compile(iso.group(1))
    for ok in ("2026-11-01", "2026-11-01T10", "2026-11-01 10:20:30.123456789+02:00", "2026-11-01T00:00:00Z"):
        assert pattern.fullmatch(ok), ok
    for bad in ("yesterday", "2026-11-01T", "2026-11-01T00:00:00ZZ"):
        assert not pattern.fullmatch(bad), bad


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
    assert json.loads(plan.output)["mode"] == "streaming"


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
