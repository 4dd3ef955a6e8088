"""Response bodies of the API (their schemas appear in the OpenAPI document at /docs)."""

from __future__ import annotations

import time
from typing import Self

from pydantic import BaseModel, Field

from inventory360.sinks.projection import StockRow
from inventory360.sources.timestamps import iso_ms


class InventoryItem(BaseModel):
    """One (sku, warehouse) key."""

    sku_id: str
    warehouse_id: str
    available_qty: int
    reserved_qty: int
    atp_qty: int = Field(description="available_qty − reserved_qty (may be negative).")
    safety_stock: int
    below_safety_stock: bool
    updated_at: str | None = Field(description="Latest change time of the key (ISO-8601 UTC).")

    @classmethod
    def of(cls, r: StockRow, **extra: int | None) -> Self:
        """From a projection row (``extra``: the fields a subclass adds)."""
        return cls(
            sku_id=r.sku_id,
            warehouse_id=r.warehouse_id,
            available_qty=r.available_qty,
            reserved_qty=r.reserved_qty,
            atp_qty=r.atp_qty,
            safety_stock=r.safety_stock,
            below_safety_stock=r.below_safety_stock,
            updated_at=iso_ms(r.updated_at_ms),
            **extra,
        )


class InventoryKey(InventoryItem):
    """A point lookup, with the freshness of the projection."""

    freshness_ms: int | None = Field(description="Now − time of the last committed batch (None: never).")


class SkuTotal(BaseModel):
    """Network total of one SKU over all warehouses."""

    available_qty: int
    reserved_qty: int
    atp_qty: int


class SkuInventory(BaseModel):
    """Every warehouse of one SKU and the network total."""

    sku_id: str
    warehouses: list[InventoryItem]
    total: SkuTotal
    freshness_ms: int | None


class InventoryPage(BaseModel):
    """One page of a listing; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[InventoryItem]
    next_cursor: str | None
    freshness_ms: int | None


class AlertItem(BaseModel):
    """One LOW / RECOVERED crossing."""

    seq: int
    kind: str
    sku_id: str
    warehouse_id: str
    available_qty: int
    reserved_qty: int
    atp_qty: int
    safety_stock: int
    compare: str
    event_time: str | None
    checkpoint: int
    emitted_at: str | None


class AlertList(BaseModel):
    """Alerts oldest first; ``next_since`` continues after the last one."""

    alerts: list[AlertItem]
    next_since: int


class WarehouseItem(BaseModel):
    """Aggregates of one warehouse."""

    warehouse_id: str
    keys: int
    below_safety_stock: int
    available_qty: int
    reserved_qty: int
    atp_qty: int


class StatusBody(BaseModel):
    """Headline numbers for the dashboard."""

    checkpoint: int
    committed_at: float | None = Field(description="Epoch seconds of the last commit or idle check.")
    server_time: float
    freshness_ms: int | None
    keys: int
    below_safety_stock: int
    available_qty: int
    reserved_qty: int
    atp_qty: int
    warehouses: list[WarehouseItem]
    alerts: int


class Problem(BaseModel):
    """Every error response: ``{"error": {"status", "message", "details"}}``."""

    error: dict[str, object]


def freshness_ms(last: float | None) -> int | None:
    """Milliseconds since ``last`` (epoch seconds), None when never."""
    return None if last is None else max(0, int((time.time() - last) * 1000))
