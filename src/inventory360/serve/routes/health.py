"""Health (no token): ``/healthz`` (the process answers), ``/readyz`` (projection loaded and fresh), ``/metrics``."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from inventory360.errors import TransientSinkError
from inventory360.serve.deps import Store

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, store: Store) -> JSONResponse:
    """200 when a checkpoint is loaded and the last commit is within ``api.ready_max_staleness_s``; else 503.

    Also 503 (with a ``reason``) while the projection store cannot be read.
    """
    max_age: float = request.app.state.ready_max_staleness_s
    try:
        last = store.last_commit_time()
    except TransientSinkError as exc:
        return JSONResponse(
            {"status": "not ready", "freshness_s": None, "max_staleness_s": max_age, "reason": str(exc)},
            status_code=503,
        )
    age = None if last is None else max(0.0, time.time() - last)
    ok = age is not None and age <= max_age
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "freshness_s": age, "max_staleness_s": max_age},
        status_code=200 if ok else 503,
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's registry."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
