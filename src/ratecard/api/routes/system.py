"""/healthz and /metrics: no key needed (bind the server to a private interface in production)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy import text
from starlette.responses import PlainTextResponse, Response

from ...store import Store
from ..context import get_store
from ..errors import ApiError

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz(store: Store = Depends(get_store)) -> dict:
    try:
        with store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
        raise ApiError(503, "DATABASE_UNAVAILABLE", f"database unreachable: {type(exc).__name__}",
                       kind="API_ERROR") from None
    return {"status": "ok", "database": store.dialect}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> Response:
    return PlainTextResponse(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")
