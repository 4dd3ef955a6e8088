"""``inv360 demo``, ``inv360 serve`` and ``inv360 run``: the long-running commands.

All three bind ``api.host`` (127.0.0.1 unless configured) and stop cleanly on Ctrl-C or
SIGTERM: the current micro-batch finishes, sinks and files are closed, exit code 0.
"""

from __future__ import annotations

import secrets
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from inventory360.cli.options import settings_from
from inventory360.errors import ConfigError


def _token(settings: Any, given: str | None) -> tuple[str, bool]:
    """The configured token, else a fresh random one (second value: generated)."""
    if given:
        return given, False
    if settings.api.token is not None and settings.api.token.get_secret_value():
        return str(settings.api.token.get_secret_value()), False
    return secrets.token_urlsafe(24), True


def _wait(alive: Callable[[], bool]) -> None:
    """Block until SIGINT/SIGTERM or until ``alive()`` turns false."""
    stop = threading.Event()
    handler = lambda *_: stop.set()  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.25) and alive():
            pass
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


def _announce(url: str, token: str, generated: bool) -> None:
    click.echo(f"inv360: dashboard {url}/dashboard/#token={token}")
    click.echo(f"inv360: API {url}/v1 (OpenAPI {url}/docs), token {token}" + (" (generated)" if generated else ""))
    click.echo("inv360: press Ctrl-C to stop")


_port = click.option("--port", type=click.IntRange(0, 65535), help="Port [default: api.port, 8360; 0 = any free].")
_token_opt = click.option(
    "--token", envvar="INV360_API__TOKEN", help="Bearer token for /v1 [default: api.token, else a random one]."
)


@click.command()
@click.option(
    "--work",
    default=Path("out/live-demo"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the generated files and the lake; a second run continues it.",
)
@click.option("--rate", default=2000.0, show_default=True, type=click.FloatRange(min=1), help="Generated events/s.")
@click.option("--skus", default=2000, show_default=True, type=click.IntRange(min=1), help="Distinct SKUs.")
@click.option("--warehouses", default=8, show_default=True, type=click.IntRange(min=1), help="Distinct warehouses.")
@_port
@_token_opt
@click.pass_context
def demo(
    ctx: click.Context, work: Path, rate: float, skus: int, warehouses: int, port: int | None, token: str | None
) -> None:
    """Generate live traffic, ingest it exactly once, and serve the API and dashboard: one process, no servers.

    A thread appends realistic inventory deltas and Debezium order changes to JSON Lines
    files under WORK; the pipeline tails them in small batches (a commit every 100-500 ms)
    into the lake, the projection and the alerts; the API and dashboard show the result.
    """
    from inventory360.serve.runtime import DemoFeed, Service, tailing_inputs

    settings = settings_from(ctx)
    secret, generated = _token(settings, token)
    feed = DemoFeed(work / "data", rate, skus, warehouses)
    service = Service(
        settings,
        work / "lake",
        tailing_inputs([feed.deltas], [feed.orders]),
        secret,
        host=settings.api.host,
        port=settings.api.port if port is None else port,
        batch_bytes=1 << 20,
    )
    service.start()
    feed.start()
    _announce(service.server.url, secret, generated)
    try:
        _wait(lambda: service.runner.is_alive())
    finally:
        feed.stop()
        service.stop()
    click.echo(f"inv360: stopped at checkpoint {service.pipeline.manifest.checkpoint}", err=True)


@click.command()
@click.option(
    "--lake",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder written by `inv360 run` or `inv360 demo` (its projection.sqlite).",
)
@_port
@_token_opt
@click.pass_context
def serve(ctx: click.Context, lake: Path, port: int | None, token: str | None) -> None:
    """Serve the API and dashboard over an existing projection (read-only; another process ingests).

    The projection is LAKE/projection.sqlite, or the Cassandra table when projection.type is cassandra.
    """
    from inventory360.serve.app import create_app
    from inventory360.serve.runtime import ApiServer, alerts_path, cassandra_target, projection_path
    from inventory360.sinks.alerts import AlertStore
    from inventory360.sinks.projection import ProjectionStore, SqliteProjection

    settings = settings_from(ctx)
    store: ProjectionStore
    target = cassandra_target(settings)
    if target is not None:
        from inventory360.engine.alerts import SafetyStock
        from inventory360.sinks.cassandra import CassandraProjection

        a = settings.alerts
        store = CassandraProjection(target, SafetyStock.load(a.safety_stock_file, a.default_safety_stock, a.compare))
    elif not projection_path(lake).exists():
        raise ConfigError(f"{lake} holds no projection (no {projection_path(lake).name}); run `inv360 run` first")
    else:
        store = SqliteProjection(projection_path(lake))
    secret, generated = _token(settings, token)
    alerts = AlertStore(alerts_path(lake)) if alerts_path(lake).exists() else None
    server = ApiServer(
        create_app(settings, store, alerts, token=secret),
        settings.api.host,
        settings.api.port if port is None else port,
    )
    server.start()
    _announce(server.url, secret, generated)
    try:
        _wait(lambda: True)
    finally:
        server.stop()
        store.close()
        if alerts is not None:
            alerts.close()


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML settings (sources.*, projection.*, lake.path, api.*, alerts.*, publish.*); INV360_* override it.",
)
@click.option(
    "--lake",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of lake, state, projection and alerts [default: lake.path].",
)
@_port
@_token_opt
@click.pass_context
def run(ctx: click.Context, config_path: Path | None, lake: Path | None, port: int | None, token: str | None) -> None:
    """Ingest the configured sources continuously and serve the API (a real deployment).

    Sources (sources.type): files (JSON Lines, tailed), kafka (topics; offsets only in the
    checkpoint) or binlog (MariaDB/MySQL row binlog). Projection (projection.type): sqlite
    (LAKE/projection.sqlite) or cassandra. Optional Kafka copies of alerts and dead letters
    (publish.*) and the Alertmanager webhook (alertmanager.*). Restarts continue exactly
    once from the last checkpoint. See configs/local-services.yaml.
    """
    from inventory360.serve.runtime import Service, settings_inputs

    if config_path is not None:
        ctx.find_root().obj["config_path"] = config_path
    settings = settings_from(ctx)
    lake = lake or settings.lake.path
    if lake is None:
        raise ConfigError("no lake folder: give --lake or set lake.path")
    inputs = settings_inputs(settings)
    secret, generated = _token(settings, token)
    service = Service(
        settings,
        lake,
        inputs,
        secret,
        host=settings.api.host,
        port=settings.api.port if port is None else port,
        batch_bytes=int(settings.run.batch_mb * (1 << 20)),
    )
    service.start()
    _announce(service.server.url, secret, generated)
    if service.webhook is not None:
        click.echo(f"inv360: Alertmanager webhook {service.webhook.url}/alertmanager")
    try:
        _wait(lambda: service.runner.is_alive())
    finally:
        service.stop()
