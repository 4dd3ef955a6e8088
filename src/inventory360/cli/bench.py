"""``inv360 bench``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--work",
    default=Path(".cache/bench"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for cached data and the benchmark lake.",
)
@click.option("--skus", default=50_000, show_default=True, type=click.IntRange(1))
@click.option("--warehouses", default=20, show_default=True, type=click.IntRange(1))
@click.option(
    "--events",
    default=2_000_000,
    show_default=True,
    type=click.IntRange(1),
    help="Measured events (after a warm-up that loads every key).",
)
@click.option(
    "--batch-mb",
    default=64.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="MiB per source per micro-batch.",
)
@click.option(
    "--checkpoint-interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between checkpoints (lake commits) while input is backlogged, as in "
    "`run.checkpoint_interval_s`; 0 commits every micro-batch.",
)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option(
    "--kafka", metavar="BOOTSTRAP", help="Read the measured phase from Kafka (topics are created and filled once)."
)
@click.option(
    "--engines",
    metavar="LIST",
    help="Compare engines on the same Kafka input instead (comma-separated: embedded,flink): events/s, peak RSS "
    "and end-to-end latency side by side, Flink at parallelism 1 and 2; defaults then 200,000 events, "
    "5,000 SKUs × 10 warehouses, Kafka at 127.0.0.1:9092.",
)
@click.pass_context
def bench(
    ctx: click.Context,
    work: Path,
    skus: int,
    warehouses: int,
    events: int,
    batch_mb: float,
    checkpoint_interval: float,
    seed: int,
    kafka: str | None,
    engines: str | None,
) -> None:
    """Measure events per CPU-second from JSON Lines to committed lake snapshot.

    Prints events/CPU-s, events/s, p50/p99 checkpoint latency (from the start of a
    checkpoint's first micro-batch to its lake commit), the checkpoint and micro-batch
    counts, and peak RSS.
    """
    if engines is not None:
        from click.core import ParameterSource

        from inventory360.flink.bench import main as compare

        def given(name: str) -> bool:
            return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)

        compare(
            engines=[e.strip() for e in engines.split(",") if e.strip()],
            events=events if given("events") else 200_000,
            skus=skus if given("skus") else 5000,
            warehouses=warehouses if given("warehouses") else 10,
            seed=seed if given("seed") else 7,
            bootstrap=kafka or "127.0.0.1:9092",
            work=work / "engines" if given("work") else None,
            say=click.echo,
        )
        return
    from inventory360.benchmark import main

    main(work, skus, warehouses, events, batch_mb, seed, kafka, checkpoint_interval)
