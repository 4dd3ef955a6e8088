"""Shared pieces of the CLI commands: settings and input wiring."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from inventory360.config import Settings, load_settings
from inventory360.pipeline import Input
from inventory360.sources.files import JsonLinesFileSource


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    """Settings from --config, INV360_* variables and command-line overrides."""
    root = ctx.find_root()
    path = root.obj.get("config_path") if root.obj else None
    return load_settings(path, **overrides)


def decoders() -> tuple[Any, Any]:
    """The fastest available decoders (native when built, else the Python reference)."""
    try:
        from inventory360.sources import native

        return native.delta_decoder(), native.order_decoder()
    except ImportError:
        from inventory360.sources.debezium import DebeziumOrderDecoder
        from inventory360.sources.deltas import DeltaDecoder

        return DeltaDecoder(), DebeziumOrderDecoder()


def build_inputs(deltas: Iterable[Path], orders: Iterable[Path]) -> list[Input]:
    """One input per file, each with its own decoder instance."""
    inputs = []
    for path in deltas:
        d, _ = decoders()
        inputs.append(Input("deltas", JsonLinesFileSource("deltas", path), d))
    for path in orders:
        _, o = decoders()
        inputs.append(Input("orders", JsonLinesFileSource("orders", path), o))
    return inputs
