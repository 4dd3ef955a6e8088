"""``/v1/inventory``: point lookup, per-SKU view, paged listing; ``/v1/status`` headline numbers."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Annotated

import orjson
from fastapi import APIRouter, HTTPException, Query, Response

from inventory360.serve.deps import ID_MAX, ID_PATTERN, Alerts, SkuId, Store, WarehouseId
from inventory360.serve.models import (
    InventoryItem,
    InventoryKey,
    InventoryPage,
    SkuInventory,
    SkuTotal,
    StatusBody,
    WarehouseItem,
    freshness_ms,
)

router = APIRouter(tags=["inventory"])


def encode_cursor(key: tuple[str, str]) -> str:
    """Opaque cursor of a (sku, warehouse) key."""
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """Inverse of :func:`encode_cursor`; 400 on anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise HTTPException(400, "invalid cursor") from None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise HTTPException(400, "invalid cursor")
    return value[0], value[1]


# Point reads are async on purpose: an indexed SQLite lookup (or a dict lookup in memory)
# takes microseconds, less than a hop to the thread pool; listings and aggregates stay
# sync (they run in the pool). The body is the model serialised once: returning a Response
# skips FastAPI's second validation of the response model (the schema still documents it).
@router.get("/inventory/{sku_id}/{warehouse_id}", response_model=InventoryKey)
async def get_key(store: Store, sku_id: SkuId, warehouse_id: WarehouseId) -> Response:
    """Available, reserved and ATP of one key, with the projection's freshness (404 when unknown)."""
    row = store.get(sku_id, warehouse_id)
    if row is None:
        raise HTTPException(404, f"no inventory for sku {sku_id} in warehouse {warehouse_id}")
    body = InventoryKey.of(row, freshness_ms=freshness_ms(store.last_commit_time()))
    return Response(body.model_dump_json(), media_type="application/json")


@router.get("/inventory/{sku_id}", response_model=SkuInventory)
async def get_sku(store: Store, sku_id: SkuId) -> SkuInventory:
    """Every warehouse of one SKU and the network total (404 when the SKU is unknown)."""
    rows = store.list_sku(sku_id)
    if not rows:
        raise HTTPException(404, f"no inventory for sku {sku_id}")
    av = sum(r.available_qty for r in rows)
    rs = sum(r.reserved_qty for r in rows)
    return SkuInventory(
        sku_id=sku_id,
        warehouses=[InventoryItem.of(r) for r in rows],
        total=SkuTotal(available_qty=av, reserved_qty=rs, atp_qty=av - rs),
        freshness_ms=freshness_ms(store.last_commit_time()),
    )


@router.get("/inventory", response_model=InventoryPage)
def list_inventory(
    store: Store,
    warehouse_id: Annotated[str | None, Query(max_length=ID_MAX, pattern=ID_PATTERN)] = None,
    below_safety_stock: bool = False,
    q: Annotated[
        str | None, Query(max_length=ID_MAX, pattern=ID_PATTERN, description="Only SKUs starting with this prefix.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> InventoryPage:
    """Keys sorted by (sku_id, warehouse_id), filtered, ``limit`` per page."""
    after = decode_cursor(cursor) if cursor else None
    page = store.page(
        limit=limit, after=after, warehouse_id=warehouse_id, below_safety_stock=below_safety_stock, sku_prefix=q
    )
    return InventoryPage(
        items=[InventoryItem.of(r) for r in page.rows],
        next_cursor=None if page.next_after is None else encode_cursor(page.next_after),
        freshness_ms=freshness_ms(store.last_commit_time()),
    )


@router.get("/status", response_model=StatusBody, tags=["status"])
def status(store: Store, alerts: Alerts) -> StatusBody:
    """Headline numbers: keys, keys below safety stock, network totals, per-warehouse totals, freshness."""
    st = store.status()
    return StatusBody(
        checkpoint=st.checkpoint,
        committed_at=st.committed_at,
        server_time=time.time(),
        freshness_ms=freshness_ms(st.committed_at),
        keys=st.keys,
        below_safety_stock=st.below_safety_stock,
        available_qty=st.available_qty,
        reserved_qty=st.reserved_qty,
        atp_qty=st.available_qty - st.reserved_qty,
        warehouses=[
            WarehouseItem(
                warehouse_id=w.warehouse_id,
                keys=w.keys,
                below_safety_stock=w.below_safety_stock,
                available_qty=w.available_qty,
                reserved_qty=w.reserved_qty,
                atp_qty=w.available_qty - w.reserved_qty,
            )
            for w in st.warehouses
        ],
        alerts=0 if alerts is None else alerts.last_seq(),
    )
