"""``/v1/alerts``: LOW / RECOVERED crossings, oldest first, resumable by sequence number."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from inventory360.serve.deps import Alerts
from inventory360.serve.models import AlertItem, AlertList

router = APIRouter(tags=["alerts"])


def parse_since(since: str | None) -> tuple[int, int | None]:
    """``since`` as (sequence cursor, event-time ms): an integer is a ``seq``, else ISO-8601."""
    if since is None or since == "":
        return 0, None
    if since.isdigit():
        return int(since), None
    try:
        t = datetime.fromisoformat(since)
    except ValueError:
        raise HTTPException(400, "since must be an alert sequence number or an ISO-8601 time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return 0, int(t.timestamp() * 1000)


@router.get("/alerts", response_model=AlertList)
def list_alerts(
    alerts: Alerts,
    since: Annotated[
        str | None,
        Query(max_length=64, description="Sequence number (exclusive) or ISO-8601 event time (inclusive)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    latest: Annotated[bool, Query(description="The newest `limit` alerts instead (ignores since).")] = False,
) -> AlertList:
    """Alerts after ``since``; ``next_since`` is the cursor for the next call."""
    seq, since_ms = parse_since(since)
    if alerts is None:
        return AlertList(alerts=[], next_since=seq)
    found = alerts.latest(limit) if latest else alerts.since(seq, since_ms, limit)
    return AlertList(
        alerts=[AlertItem.model_validate(a.to_json()) for a in found],
        next_since=found[-1].seq if found else seq,
    )
