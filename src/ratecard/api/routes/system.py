"""/healthz (no key: load balancers probe it) and /metrics (an environment's key, as X-API-KEY or
`Authorization: Bearer`, the way Prometheus scrapers send a token; the figures are that
environment's only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import PlainTextResponse, Response

from ...store.health import ping
from ..context import Caller, current_caller
from ..errors import ApiError

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz(request: Request) -> dict:
    store = request.app.state.store
    try:
        ping(store)
    except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
        raise ApiError(503, "DATABASE_UNAVAILABLE", f"database unreachable: {type(exc).__name__}",
                       kind="API_ERROR") from None
    return {"status": "ok", "database": store.dialect}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(caller: Caller = Depends(current_caller)) -> Response:
    return PlainTextResponse(caller.metrics.render(caller.environment), media_type="text/plain; version=0.0.4")
