"""``inv360 bench`` (filled in by the benchmark module)."""

from __future__ import annotations

import click


@click.command()
def bench() -> None:
    """Run the throughput benchmark."""
    from inventory360.benchmark import main

    main()
