"""``inv360``: the command group, global options and the one error handler."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from inventory360.errors import Inv360Error


class Inv360Group(click.Group):
    """Turns project errors into one red line and their exit code (traceback with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command with the project's error handling."""
        try:
            return super().invoke(ctx)
        except Inv360Error as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.secho(f"inv360: error: {exc}", fg="red", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("inv360: interrupted", err=True)
            ctx.exit(130)


@click.group(
    cls=Inv360Group,
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "INV360"},
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="INV360_CONFIG",
    help="YAML settings file (env: INV360_CONFIG). INV360_* variables override it.",
)
@click.option("--debug", is_flag=True, envvar="INV360_DEBUG", help="Show tracebacks and debug logs.")
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Log level on stderr.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, debug: bool, log_level: str) -> None:
    """Inventory 360: an exactly-once, real-time view of stock per SKU and warehouse.

    Merges inventory deltas and Debezium order-line changes into the Apache Paimon
    table inventory_snapshot (available, reserved, updated_at per key).

    \b
    Quick start:
      inv360 generate --out data --skus 1000 --warehouses 5 --events 100000
      inv360 replay --lake lake --deltas data/deltas.jsonl --orders data/orders.jsonl
      inv360 snapshot --lake lake | head
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["config_path"] = config_path


def _register() -> None:
    from inventory360.cli import bench, datagen, flink, replay, serve

    cli.add_command(replay.replay)
    cli.add_command(replay.snapshot)
    cli.add_command(datagen.generate)
    cli.add_command(bench.bench)
    cli.add_command(serve.demo)
    cli.add_command(serve.serve)
    cli.add_command(serve.run)
    flink.register(cli)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="inv360")
