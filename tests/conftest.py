"""Shared helpers: JSON builders for both inputs and a tiny in-process runner."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tier marker from the folder: tests/unit → unit, tests/e2e → e2e, …"""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in ("unit", "integration", "e2e"):
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


T0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z


def delta(sku: str, wh: str, qty: int, t: int = 0, eid: str | None = None, **extra: Any) -> bytes:
    """One delta message; ``t`` is seconds after T0."""
    rec: dict[str, Any] = {
        "sku_id": sku,
        "warehouse_id": wh,
        "available_delta": qty,
        "event_time": T0 + t * 1000,
    }
    if eid is not None:
        rec["event_id"] = eid
    rec.update(extra)
    return orjson.dumps(rec)


def line(order: int, sku: str, wh: str, qty: int, status: str, line_no: int = 1, t: int = 0) -> dict[str, Any]:
    """An order_lines row image."""
    return {
        "order_id": order,
        "line_no": line_no,
        "sku_id": sku,
        "warehouse_selection": wh,
        "quantity": qty,
        "status": status,
        "updated_at": T0 + t * 1000,
    }


def cdc(
    op: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    pos: int | None = None,
    t: int = 0,
    wrap: bool = False,
) -> bytes:
    """One Debezium envelope; ``pos`` is the binlog position (None: no source block)."""
    env: dict[str, Any] = {"before": before, "after": after, "op": op, "ts_ms": T0 + t * 1000}
    if pos is not None:
        env["source"] = {"file": "mysql-bin.000001", "pos": pos, "row": 0}
    if wrap:
        env = {
            "schema": {"type": "struct", "optional": False, "name": "shop.order_lines.Envelope"},
            "payload": env,
        }
    return orjson.dumps(env)


def run_engine(
    batches: Sequence[tuple[Iterable[bytes], Iterable[bytes]]],
    reserving: Iterable[str] = ("CREATED", "ALLOCATED"),
) -> tuple[list[tuple[Any, ...]], Any]:
    """Decode and apply batches of (delta messages, order messages); returns rows and engine."""
    from inventory360.engine.engine import Engine, EngineOptions
    from inventory360.sources.debezium import DebeziumOrderDecoder
    from inventory360.sources.deltas import DeltaDecoder

    engine = Engine(EngineOptions(frozenset(reserving)))
    dd, od = DeltaDecoder(), DebeziumOrderDecoder()
    for deltas, orders in batches:
        d = dd.decode(b"".join(m + b"\n" for m in deltas))
        o = od.decode(b"".join(m + b"\n" for m in orders))
        engine.process(d.table, o.table)
    return rows_of(engine.keys.all_rows()), engine


def rows_of(table: Any) -> list[tuple[Any, ...]]:
    """(sku, wh, available, reserved, updated_at seconds after T0) tuples."""
    out = []
    for r in table.to_pylist():
        ts = r["updated_at"]
        secs = (
            None if ts is None else (int(ts.replace(tzinfo=__import__("datetime").UTC).timestamp() * 1000) - T0) / 1000
        )
        out.append((r["sku_id"], r["warehouse_id"], r["available_qty"], r["reserved_qty"], secs))
    return out


def write_lines(path: Path, messages: Iterable[bytes]) -> Path:
    """Write messages as JSON Lines."""
    path.write_bytes(b"".join(m + b"\n" for m in messages))
    return path
