"""``inv360 generate``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from inventory360.datagen import GeneratorSpec
from inventory360.datagen import generate as write_traffic


@click.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for deltas.jsonl and orders.jsonl.",
)
@click.option("--skus", default=1000, show_default=True, type=click.IntRange(1), help="Number of SKUs.")
@click.option(
    "--warehouses",
    default=5,
    show_default=True,
    type=click.IntRange(1),
    help="Number of warehouses.",
)
@click.option(
    "--events",
    default=100_000,
    show_default=True,
    type=click.IntRange(0),
    help="Messages to write (both files together).",
)
@click.option("--seed", default=42, show_default=True, type=int, help="Random seed (same seed, same files).")
@click.option(
    "--duplicate-rate",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of messages delivered twice.",
)
@click.option(
    "--late-rate",
    default=0.005,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of deltas held back ~a minute (late).",
)
@click.option(
    "--invalid-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of invalid records mixed in (dead-letter tests).",
)
def generate(
    out: Path,
    skus: int,
    warehouses: int,
    events: int,
    seed: int,
    duplicate_rate: float,
    late_rate: float,
    invalid_rate: float,
) -> None:
    """Write realistic delta and order-CDC JSON Lines into OUT.

    Order lines go CREATED → ALLOCATED → SHIPPED/CANCELLED (shipments also become
    negative deltas), with duplicates, reordering, late deltas and optional junk.
    """
    spec = GeneratorSpec(
        skus=skus,
        warehouses=warehouses,
        events=events,
        seed=seed,
        duplicate_rate=duplicate_rate,
        late_rate=late_rate,
        invalid_rate=invalid_rate,
    )
    t0 = time.monotonic()
    counts = write_traffic(out, spec)
    click.echo(
        f"wrote {counts['deltas']} deltas to {out / 'deltas.jsonl'} and {counts['orders']} order changes "
        f"to {out / 'orders.jsonl'} in {time.monotonic() - t0:.1f}s",
        err=True,
    )
