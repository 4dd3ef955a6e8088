"""``inv360 replay`` and ``inv360 snapshot``."""

from __future__ import annotations

import csv
import sys
import time
from datetime import UTC
from pathlib import Path

import click
import orjson

from inventory360.cli.options import build_inputs, settings_from
from inventory360.config import Settings
from inventory360.engine.engine import EngineOptions
from inventory360.errors import ConfigError
from inventory360.pipeline import LakeLayout, Pipeline, StepStats


@click.command()
@click.option(
    "--lake",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the Paimon warehouse, checkpoints and dead letters.",
)
@click.option(
    "--deltas",
    "deltas",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON Lines file of inventory deltas (repeatable).",
)
@click.option(
    "--orders",
    "orders",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON Lines file of Debezium order-line changes (repeatable).",
)
@click.option(
    "--dlq",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Dead-letter JSON Lines file [default: LAKE/dead_letters.jsonl].",
)
@click.option(
    "--batch-mb",
    type=click.FloatRange(min=0.001),
    help="MiB read per source per micro-batch [default: 64].",
)
@click.option(
    "--checkpoint-interval",
    type=click.FloatRange(min=0),
    help="Seconds between checkpoints while the files still hold unread lines; the last "
    "checkpoint comes when they are read to the end. 0: one per micro-batch [default: 1].",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress [default: when stderr is a terminal].",
)
@click.pass_context
def replay(
    ctx: click.Context,
    lake: Path,
    deltas: tuple[Path, ...],
    orders: tuple[Path, ...],
    dlq: Path | None,
    batch_mb: float | None,
    checkpoint_interval: float | None,
    progress: bool | None,
) -> None:
    """Process JSON Lines files into the lake under LAKE, exactly once.

    Interrupted runs (even kill -9) continue from the last checkpoint when run again;
    a file already processed adds nothing; new files add to the same state.
    """
    if not deltas and not orders:
        raise ConfigError("nothing to replay: give --deltas and/or --orders")
    overrides: dict[str, float] = {}
    if batch_mb is not None:
        overrides["run__batch_mb"] = batch_mb
    if checkpoint_interval is not None:
        overrides["run__checkpoint_interval_s"] = checkpoint_interval
    settings = settings_from(ctx, **overrides)
    pipe = Pipeline(
        LakeLayout(lake, settings.lake.database, settings.lake.table, settings.lake.bucket),
        build_inputs(deltas, orders),
        options=settings_to_options(settings),
        dead_letters=dlq,
        batch_bytes=int(settings.run.batch_mb * (1 << 20)),
        checkpoint_interval=settings.run.checkpoint_interval_s,
    )
    show = sys.stderr.isatty() if progress is None else progress
    meter = _Progress(pipe.backlog()) if show else None
    if meter is not None:
        pipe.on_commit.append(meter)
    pipe.open()
    started = time.monotonic()
    try:
        total = pipe.run(until_idle=True)
    finally:
        pipe.close()
    if meter is not None:
        meter.done()
    c = pipe.counters
    dead = {k.split(":", 1)[1]: v for k, v in c.items() if k.startswith("dead_letters:")}
    click.echo(
        f"replayed {total} lines in {time.monotonic() - started:.1f}s: "
        f"{c['deltas_accepted']} deltas accepted ({c['deltas_duplicate']} duplicates, {c['deltas_late']} late), "
        f"{c['orders_applied']} order changes applied ({c['orders_ignored_older']} older ignored), "
        f"{sum(dead.values())} dead letters; {len(pipe.engine.keys)} keys; checkpoint {pipe.manifest.checkpoint}",
        err=True,
    )
    for reason, n in sorted(dead.items()):
        click.echo(f"  dead letters: {n} × {reason}", err=True)


def settings_to_options(settings: Settings) -> EngineOptions:
    """Engine options from settings (kept here so the engine does not import config)."""
    s = settings.engine
    return EngineOptions(frozenset(s.reserving_statuses), s.late_after_ms)


class _Progress:
    """One updating line on stderr: lines/s, checkpoint, backlog."""

    def __init__(self, backlog: int) -> None:
        self.t0 = time.monotonic()
        self.lines = 0
        self.backlog = backlog

    def __call__(self, s: StepStats) -> None:
        self.lines += s.lines
        rate = self.lines / max(time.monotonic() - self.t0, 1e-6)
        sys.stderr.write(
            f"\r  checkpoint {s.checkpoint}: {self.lines:,} lines, {rate:,.0f} lines/s, "
            f"{s.seconds * 1000:.0f} ms over {s.batches} batches, {s.changed_keys:,} keys changed   "
        )
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")


@click.command()
@click.option(
    "--lake",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder given to replay.",
)
@click.option(
    "--format",
    "fmt",
    default="csv",
    show_default=True,
    type=click.Choice(["csv", "jsonl"]),
    help="Output format.",
)
@click.pass_context
def snapshot(ctx: click.Context, lake: Path, fmt: str) -> None:
    """Print the snapshot read back from the Paimon table, sorted by key."""
    from inventory360.sinks.paimon import read_snapshot

    settings = settings_from(ctx)
    layout = LakeLayout(lake, settings.lake.database, settings.lake.table, settings.lake.bucket)
    if not layout.warehouse.exists():
        raise ConfigError(f"{lake} holds no lake (no {layout.warehouse})")
    table = read_snapshot(layout.warehouse, layout.database, layout.table)
    out = sys.stdout
    cols = ["sku_id", "warehouse_id", "available_qty", "reserved_qty", "updated_at"]
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(cols)
    for row in table.to_pylist():
        ts = row["updated_at"]
        row["updated_at"] = (
            None if ts is None else ts.replace(tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
        if writer is not None:
            writer.writerow([row[c] for c in cols])
        else:
            out.write(orjson.dumps({c: row[c] for c in cols}).decode() + "\n")
