"""``/v1/stream``: server-sent events of snapshot changes and alerts.

Events: ``snapshot`` (``{checkpoint, committed_at, rows, truncated}`` after each commit;
``truncated`` means more keys changed than were sent: reload), ``alert`` (one alert),
``status`` (headline numbers, about once a second; also a keep-alive). The stream polls
the projection's checkpoint id (cheap), so it works in the process that runs the pipeline
and in a separate ``inv360 serve`` alike.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from inventory360.serve.deps import Alerts, Store
from inventory360.serve.models import InventoryItem
from inventory360.serve.routes.inventory import status as status_body
from inventory360.sinks.alerts import AlertStore
from inventory360.sinks.projection import ProjectionStore

router = APIRouter(tags=["stream"])

MAX_ROWS = 2000


def _sse(event: str, data: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def events(
    store: ProjectionStore,
    alerts: AlertStore | None,
    stopping: threading.Event | None = None,
    poll: float = 0.1,
    status_every: float = 1.0,
    max_events: int | None = None,
) -> AsyncIterator[bytes]:
    """The event stream, starting with a ``status`` event; ends when ``stopping`` is set."""
    sent = 0
    body = await run_in_threadpool(status_body, store, alerts)
    cp = body.checkpoint
    seq = body.alerts
    yield _sse("status", body.model_dump())
    last_status = time.monotonic()
    sent += 1
    while max_events is None or sent < max_events:
        if stopping is not None and stopping.is_set():
            return
        rows, new_cp = await run_in_threadpool(store.changes_since, cp, MAX_ROWS + 1)
        if new_cp > cp:
            cp = new_cp
            yield _sse(
                "snapshot",
                {
                    "checkpoint": cp,
                    "committed_at": store.last_commit_time(),
                    "rows": [InventoryItem.of(r).model_dump() for r in rows[:MAX_ROWS]],
                    "truncated": len(rows) > MAX_ROWS,
                },
            )
            sent += 1
        if alerts is not None:
            for a in await run_in_threadpool(alerts.since, seq, None, 500):
                seq = a.seq
                yield _sse("alert", a.to_json())
                sent += 1
        if time.monotonic() - last_status >= status_every:
            last_status = time.monotonic()
            body = await run_in_threadpool(status_body, store, alerts)
            yield _sse("status", body.model_dump())
            sent += 1
        await asyncio.sleep(poll)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}},
)
async def stream(
    request: Request,
    store: Store,
    alerts: Alerts,
    max_events: Annotated[int | None, Query(ge=1, le=1_000_000, description="Close after this many events.")] = None,
) -> StreamingResponse:
    """Snapshot changes, alerts and status as ``text/event-stream`` (503 while the projection cannot be read)."""
    await run_in_threadpool(store.last_commit_time)  # fails here, before the 200 is sent, when the store is down
    return StreamingResponse(
        events(store, alerts, request.app.state.stopping, max_events=max_events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
