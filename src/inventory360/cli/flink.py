"""``inv360 flink sql|run|submit|advise`` and ``inv360 lake maintain``.

``flink sql`` is pure text (no Flink needed). ``run``, ``submit`` and ``lake maintain``
run the job with the Flink virtualenv's Python (``services/flink/setup.sh``; ``--setup``
runs it first). ``advise`` needs only Kafka.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from inventory360.errors import ConfigError


def _job_settings(ctx: click.Context, config: Path | None, **flink: Any) -> Any:
    from inventory360.flink.settings import load_job_settings

    root = ctx.find_root()
    path = config or (root.obj.get("config_path") if root.obj else None)
    kafka: dict[str, Any] = {k: flink.pop(k) for k in ("bootstrap", "deltas_topic", "orders_topic") if k in flink}
    return load_job_settings(path, kafka=kafka, flink=flink)


def _job(ctx: click.Context, config: Path | None, lake: Path | None, default_lake: bool = False, **flink: Any) -> Any:
    from inventory360.flink.job import FlinkJob

    js = _job_settings(ctx, config, **flink)
    if lake is None and js.settings.lake.path is None and default_lake:
        lake = Path("lake")
    return FlinkJob.from_settings(js, lake)


def _common(f: Any) -> Any:
    opts = [
        click.option(
            "--config",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            help="YAML settings (engine sections + kafka: + flink:) [default: inv360 --config].",
        ),
        click.option(
            "--lake", type=click.Path(file_okay=False, path_type=Path), help="Lake folder [default: lake.path]."
        ),
        click.option("--bootstrap", help="Kafka bootstrap servers [default: kafka.bootstrap]."),
        click.option("--deltas-topic", help="Delta topic [default: kafka.deltas_topic]."),
        click.option("--orders-topic", help="Order CDC topic [default: kafka.orders_topic]."),
        click.option("--parallelism", type=click.IntRange(1), help="Job parallelism [default: flink.parallelism]."),
        click.option(
            "--checkpoint-interval",
            "checkpoint_interval_s",
            type=click.FloatRange(min=0.1),
            help="Seconds between checkpoints = Paimon commits [default: 10].",
        ),
        click.option(
            "--bounded/--unbounded", default=None, help="Stop at the offsets latest at start [default: flink.bounded]."
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@click.group()
def flink() -> None:
    """The snapshot pipeline as a PyFlink SQL job (same semantics as the embedded engine)."""


@flink.command("sql")
@_common
@click.option("--plan", "as_plan", is_flag=True, help="Print the JSON plan that _pyflink_main.py runs instead.")
@click.pass_context
def sql(ctx: click.Context, /, config: Path | None, lake: Path | None, as_plan: bool, **flink_opts: Any) -> None:
    """Print the generated Flink SQL (SET lines, DDL, views, INSERT); needs no Flink."""
    job = _job(ctx, config, lake, default_lake=True, **flink_opts)
    click.echo(json.dumps(job.plan(), indent=1) if as_plan else job.sql(), nl=as_plan)


@flink.command("run")
@_common
@click.option("--setup", is_flag=True, help="Run services/flink/setup.sh first (idempotent).")
@click.option("--timeout", type=float, help="Give up after this many seconds.")
@click.pass_context
def run(
    ctx: click.Context,
    /,
    config: Path | None,
    lake: Path | None,
    setup: bool,
    timeout: float | None,
    **flink_opts: Any,
) -> None:
    """Run the job on a local mini-cluster until it ends (bounded) or Ctrl-C."""
    from inventory360.flink.runner import run_plan

    job = _job(ctx, config, lake, **flink_opts)
    res = run_plan(job.plan(), setup=setup, timeout=timeout, echo=True)
    click.echo(json.dumps(res.status))


@flink.command("submit")
@_common
@click.option("--jobmanager", required=True, metavar="HOST:PORT", help="REST address of the JobManager.")
@click.option("--setup", is_flag=True, help="Run services/flink/setup.sh first (idempotent).")
@click.pass_context
def submit(
    ctx: click.Context,
    /,
    config: Path | None,
    lake: Path | None,
    jobmanager: str,
    setup: bool,
    **flink_opts: Any,
) -> None:
    """Submit the job to a running Flink cluster and print its job id (does not wait)."""
    from inventory360.flink.runner import run_plan

    host, _, port = jobmanager.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--jobmanager must be HOST:PORT, not {jobmanager!r}")
    job = _job(ctx, config, lake, **flink_opts)
    plan = job.plan()
    plan["config"] = {**plan["config"], "execution.target": "remote", "rest.address": host, "rest.port": port}
    plan["wait"] = False
    click.echo(json.dumps(run_plan(plan, setup=setup, echo=False).status))


@flink.command("advise")
@click.option("--config", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="YAML settings.")
@click.option("--bootstrap", help="Kafka bootstrap servers [default: kafka.bootstrap].")
@click.option(
    "--parallelism", "current", type=click.IntRange(1), help="Current parallelism [default: flink.parallelism]."
)
@click.option("--seconds", default=30.0, show_default=True, type=click.FloatRange(min=1), help="Observation window.")
@click.option("--samples", default=4, show_default=True, type=click.IntRange(2), help="Lag samples in the window.")
@click.option("--slot-rate", type=click.FloatRange(min=1), help="Msg/s one slot sustains [default: measured 50,000].")
@click.pass_context
def advise_cmd(
    ctx: click.Context,
    config: Path | None,
    bootstrap: str | None,
    current: int | None,
    seconds: float,
    samples: int,
    slot_rate: float | None,
) -> None:
    """Recommend parallelism/slots from the job's Kafka consumer lag and throughput."""
    from inventory360.flink.advise import advise, partition_count, sample_lag

    js = _job_settings(ctx, config, bootstrap=bootstrap)
    k, f = js.kafka, js.flink
    topics = [k.deltas_topic, k.orders_topic]
    groups = [f"{f.group_id}-deltas", f"{f.group_id}-orders"]
    try:
        series = []
        for i in range(samples):
            if i:
                time.sleep(seconds / (samples - 1))
            series.append(sample_lag(k.bootstrap, topics, groups))
        parts = partition_count(k.bootstrap, topics)
    except Exception as exc:
        from inventory360.errors import SourceError

        raise SourceError(f"cannot read lag from Kafka at {k.bootstrap}: {exc}") from exc
    click.echo(
        advise(series, current_parallelism=current or f.parallelism, partitions=parts, slot_rate=slot_rate).text()
    )


advise_cmd.name = "advise"


@click.group()
def lake() -> None:
    """Maintenance of the Paimon lake (through Flink batch procedures)."""


@lake.command("maintain")
@click.option(
    "--lake", "lake_dir", type=click.Path(file_okay=False, path_type=Path), help="Lake folder [default: lake.path]."
)
@click.option("--compact/--no-compact", default=True, show_default=True, help="Full compaction (sys.compact).")
@click.option(
    "--retain", default=10, show_default=True, type=click.IntRange(1), help="Snapshots kept (sys.expire_snapshots)."
)
@click.option("--tag", help="Create this tag on the latest snapshot (sys.create_tag).")
@click.option("--setup", is_flag=True, help="Run services/flink/setup.sh first (idempotent).")
@click.pass_context
def maintain(
    ctx: click.Context, lake_dir: Path | None, compact: bool, retain: int, tag: str | None, setup: bool
) -> None:
    """Compact inventory_snapshot, expire old snapshots and optionally tag the latest."""
    from inventory360.cli.options import settings_from
    from inventory360.flink.maintain import maintenance_plan
    from inventory360.flink.runner import run_plan
    from inventory360.pipeline import LakeLayout

    s = settings_from(ctx)
    root = lake_dir or s.lake.path
    if root is None:
        raise ConfigError("no lake folder: give --lake or lake.path")
    layout = LakeLayout(root, s.lake.database, s.lake.table, s.lake.bucket)
    if not layout.warehouse.exists():
        raise ConfigError(f"no Paimon warehouse under {root}")
    plan = maintenance_plan(
        layout.warehouse, layout.database, layout.table, compact=compact, retain_max=retain, tag=tag
    )
    res = run_plan(plan, setup=setup)
    for row in res.rows:
        click.echo(" ".join(row))


def register(cli: click.Group) -> None:
    """Add the ``flink`` and ``lake`` groups to ``cli``."""
    cli.add_command(flink)
    cli.add_command(lake)
