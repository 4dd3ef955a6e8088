"""Paimon maintenance of ``inventory_snapshot`` through Flink batch procedures.

pypaimon can neither compact nor expire snapshots (shared/notes/paimon.md): every
engine commit adds files per bucket, and reads slow down until a Java engine compacts.
:func:`maintenance_plan` builds a batch plan for :func:`inventory360.flink.runner.run_plan`
that runs, in order, ``sys.compact`` (full compaction of every bucket),
``sys.expire_snapshots`` (keep the newest ``retain_max``) and optionally ``sys.create_tag``.
Safe while the embedded engine writes: Paimon retries conflicting commits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inventory360.flink.job import ident, quote


def maintenance_plan(
    warehouse: Path,
    database: str,
    table: str,
    *,
    compact: bool = True,
    retain_max: int | None = 10,
    tag: str | None = None,
    catalog: str = "inv360_lake",
) -> dict[str, Any]:
    """A batch plan whose queries are the chosen ``CALL sys.…`` procedures."""
    full = quote(f"{database}.{table}")
    queries: list[str] = []
    if compact:
        queries.append(f"CALL sys.compact(`table` => {full})")
    if retain_max is not None:
        queries.append(
            f"CALL sys.expire_snapshots(`table` => {full}, retain_min => 1, retain_max => {int(retain_max)})"
        )
    if tag:
        queries.append(f"CALL sys.create_tag(`table` => {full}, tag => {quote(tag)})")
    uri = quote(warehouse.resolve().as_uri())
    return {
        "mode": "batch",
        "config": {"execution.runtime-mode": "batch", "table.local-time-zone": "UTC", "parallelism.default": "1"},
        "statements": [
            f"CREATE CATALOG {ident(catalog)} WITH ('type' = 'paimon', 'warehouse' = {uri})",
            f"USE CATALOG {ident(catalog)}",
        ],
        "insert": None,
        "queries": queries,
    }
