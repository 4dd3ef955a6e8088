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
@click.option("--seed", default=1, show_default=True, type=int)
@click.option(
    "--kafka", metavar="BOOTSTRAP", help="Read the measured phase from Kafka (topics are created and filled once)."
)
def bench(work: Path, skus: int, warehouses: int, events: int, batch_mb: float, seed: int, kafka: str | None) -> None:
    """Measure events per CPU-second from JSON Lines to committed lake snapshot.

    Prints events/CPU-s, events/s, p50/p99 micro-batch latency and peak RSS.
    """
    from inventory360.benchmark import main

    main(work, skus, warehouses, events, batch_mb, seed, kafka)
