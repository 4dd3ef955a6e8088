"""``create_app``: the FastAPI application over a projection (and optionally an alert store).

Routes: ``/v1/inventory…``, ``/v1/status``, ``/v1/alerts``, ``/v1/stream`` (bearer token
required), ``/healthz``, ``/readyz``, ``/metrics`` (no token), ``/dashboard/`` (static page;
it asks for the token and sends it as a bearer header), OpenAPI at ``/docs``. Every error
is a JSON body ``{"error": {"status", "message", "details"?}}``; invalid parameters are 4xx;
a store that is unavailable for now (:class:`TransientSinkError`, e.g. Cassandra down) is
503 with ``Retry-After``, while ``/metrics`` keeps answering with the last values it read.
Handlers read only through :class:`ProjectionStore` and :class:`AlertStore`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inventory360.errors import ConfigError, TransientSinkError
from inventory360.ops.metrics import ApiMetrics, new_registry
from inventory360.serve.deps import require_token
from inventory360.serve.routes import alerts, health, inventory, stream
from inventory360.sinks.alerts import AlertStore
from inventory360.sinks.projection import ProjectionStore

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from inventory360.config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _problem(status: int, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "message": message}
    if details:
        body["details"] = details
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _problem(exc.status_code, str(exc.detail))


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": [str(p) for p in e.get("loc", ())], "message": str(e.get("msg", "invalid"))} for e in exc.errors()
    ]
    where = ", ".join(".".join(d["loc"]) for d in details)
    return _problem(422, f"invalid parameter: {where}" if where else "invalid request", details)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.info("%s: %s", request.url.path, exc)
    response = _problem(503, f"the projection store is unavailable, retry later ({exc})")
    response.headers["Retry-After"] = "1"
    return response


def _last_known(read: Callable[[], T], initial: T) -> Callable[[], T]:
    """``read()``, or the last value it returned while the store is unavailable (so ``/metrics`` never fails)."""
    last = [initial]

    def get() -> T:
        with contextlib.suppress(TransientSinkError):
            last[0] = read()
        return last[0]

    return get


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s", request.url.path)
    return _problem(500, "internal error")


class _Observe:
    """Pure ASGI middleware: request metrics per route and security headers."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]
        path: str = scope.get("path", "")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                if path.startswith("/dashboard"):
                    headers.append((b"content-security-policy", _CSP))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            endpoint = scope.get("endpoint")
            route = getattr(endpoint, "__name__", "other") if endpoint is not None else "unmatched"
            if route != "stream":
                self.metrics.latency.labels(route).observe(time.perf_counter() - t0)
            self.metrics.requests.labels(route, f"{status[0] // 100}xx").inc()


def create_app(
    settings: Settings,
    store: ProjectionStore,
    alert_store: AlertStore | None = None,
    *,
    registry: CollectorRegistry | None = None,
    token: str | None = None,
) -> FastAPI:
    """The API over ``store``; ``token`` overrides ``settings.api.token`` (one of them is required).

    ``registry`` receives the API metrics (pass the pipeline's registry to expose both on
    ``/metrics``). The caller owns ``store`` and ``alert_store`` and closes them.
    """
    secret = token or (settings.api.token.get_secret_value() if settings.api.token is not None else None)
    if not secret:
        raise ConfigError("the API needs a token: set INV360_API__TOKEN (or api.token in the config file)")
    registry = registry if registry is not None else new_registry()
    metrics = ApiMetrics(
        registry,
        _last_known(store.last_commit_time, None),
        _last_known(lambda: store.status().below_safety_stock, 0),
    )
    app = FastAPI(
        title="inventory360",
        version="1",
        summary="Available, reserved and available-to-promise stock per SKU and warehouse.",
        exception_handlers={
            StarletteHTTPException: _http_error,
            RequestValidationError: _invalid,
            TransientSinkError: _unavailable,
            Exception: _unexpected,
        },
    )
    app.state.store = store
    app.state.alerts = alert_store
    app.state.token = secret
    app.state.registry = registry
    app.state.stopping = threading.Event()
    app.state.ready_max_staleness_s = settings.api.ready_max_staleness_s
    auth = [Depends(require_token)]
    for r in (inventory.router, alerts.router, stream.router):
        app.include_router(r, prefix="/v1", dependencies=auth)
    app.include_router(health.router)
    app.mount("/dashboard", StaticFiles(packages=[("inventory360.serve", "dashboard")], html=True), name="dashboard")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    app.add_middleware(_Observe, metrics=metrics)
    return app
