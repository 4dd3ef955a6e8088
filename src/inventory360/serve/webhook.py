"""The Alertmanager webhook receiver: ``POST /alertmanager`` forwards fired alerts to Kafka.

Alertmanager (``ops/alertmanager/alertmanager.yml``) posts a group of alerts (webhook
payload version 4). Every alert whose ``status`` is ``firing`` (and ``resolved`` when
configured) becomes one message on the alerts topic, keyed by its ``fingerprint``, with
``type = "ops"`` so consumers can tell it from the engine's stock alerts (``type =
"stock"``). The response is 200 only after Kafka acknowledged every message; otherwise
503, and Alertmanager retries the notification — so delivery is at least once and
consumers dedupe by ``dedupe_key`` (``am:<fingerprint>:<startsAt>:<status>``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from inventory360.errors import SinkError
from inventory360.sinks.kafka import KafkaPublisher, Message


class AmAlert(BaseModel):
    """One alert of the webhook payload (unknown fields are ignored)."""

    status: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str | None = None
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None


class AmPayload(BaseModel):
    """The webhook payload (``version`` 4)."""

    version: str | None = None
    status: str | None = None
    receiver: str | None = None
    groupKey: str | None = None
    alerts: list[AmAlert] = Field(default_factory=list)


def messages(payload: AmPayload, forward_resolved: bool = False) -> list[Message]:
    """The Kafka messages of one notification (firing alerts, plus resolved ones when asked)."""
    out: list[Message] = []
    now = time.time()
    for a in payload.alerts:
        if a.status != "firing" and not (forward_resolved and a.status == "resolved"):
            continue
        fp = a.fingerprint or orjson.dumps(sorted(a.labels.items())).hex()[:16]
        dedupe = f"am:{fp}:{a.startsAt}:{a.status}"
        body: dict[str, Any] = {
            "type": "ops",
            "source": "alertmanager",
            "dedupe_key": dedupe,
            "status": a.status,
            "alertname": a.labels.get("alertname"),
            "severity": a.labels.get("severity"),
            "labels": a.labels,
            "annotations": a.annotations,
            "starts_at": a.startsAt,
            "ends_at": a.endsAt,
            "fingerprint": fp,
            "receiver": payload.receiver,
            "received_at": now,
        }
        out.append((fp.encode(), orjson.dumps(body), [("inv360-dedupe", dedupe.encode())]))
    return out


def create_webhook_app(publisher: KafkaPublisher, forward_resolved: bool = False, timeout_s: float = 10.0) -> FastAPI:
    """A small app with ``POST /alertmanager`` (and ``GET /healthz``) over ``publisher``."""
    app = FastAPI(title="inventory360 alertmanager webhook", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.stopping = threading.Event()
    app.state.forwarded = 0

    @app.post("/alertmanager")
    def alertmanager(payload: AmPayload) -> JSONResponse:
        msgs = messages(payload, forward_resolved)
        try:
            publisher.send(msgs, deadline_s=timeout_s)
        except SinkError as exc:
            return JSONResponse({"error": {"status": 503, "message": str(exc)}}, status_code=503)
        app.state.forwarded += len(msgs)
        return JSONResponse({"forwarded": len(msgs)})

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
