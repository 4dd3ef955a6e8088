"""Dependencies shared by the routers: the stores, the token check, id validation."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from inventory360.sinks.alerts import AlertStore
from inventory360.sinks.projection import ProjectionStore

#: Ids accepted by the API: 1-128 characters of letters, digits and ``_.:@+-``.
ID_PATTERN = r"^[A-Za-z0-9_.:@+\-]{1,128}$"
ID_MAX = 128

_bearer = HTTPBearer(auto_error=False, description="The API token (INV360_API__TOKEN).")


# The dependencies are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in its
# thread pool, two thread hops per request for nothing (none of them blocks).


async def get_store(request: Request) -> ProjectionStore:
    """The projection the app was created with."""
    store: ProjectionStore = request.app.state.store
    return store


async def get_alerts(request: Request) -> AlertStore | None:
    """The alert store, when alerts are configured."""
    alerts: AlertStore | None = request.app.state.alerts
    return alerts


async def require_token(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """401 unless the request carries ``Authorization: Bearer <configured token>``."""
    token: str = request.app.state.token
    given = "" if creds is None or creds.scheme.lower() != "bearer" else creds.credentials
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})


Store = Annotated[ProjectionStore, Depends(get_store)]
Alerts = Annotated[AlertStore | None, Depends(get_alerts)]
SkuId = Annotated[str, Path(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN, description="SKU id.")]
WarehouseId = Annotated[str, Path(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN, description="Warehouse id.")]
