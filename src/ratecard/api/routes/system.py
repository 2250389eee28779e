"""/healthz and /metrics: no key needed (bind the server to a private interface in production)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from ...store.health import ping
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
def metrics(request: Request) -> Response:
    return PlainTextResponse(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")
