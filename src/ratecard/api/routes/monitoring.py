"""Read-only monitoring: alerts and the per-minute ingestion figures of the key's environment."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from ...services import monitoring
from ..context import Caller, current_caller
from ..pagination import Page, paginate, ratecard_page

router = APIRouter(tags=["monitoring"])


# ratecard's own alert documents; /v1/alerts is Solvimon's shape (api/solvimon/alerts.py)
@router.get("/v1/ingestion/alerts",
            summary="Missing-event alerts in ratecard's shape (oldest first; order_direction=DESC for newest first)")
def get_alerts(request: Request, status: str | None = Query(None, pattern="^(open|resolved)$"),
               page: Page = Depends(ratecard_page), caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    alerts = monitoring.alerts(caller.store, caller.environment, status, limit=None)
    alerts.reverse()  # oldest first
    return paginate(request, alerts, page, lambda alert: alert,
                    {key: itemgetter(key) for key in ("id", "opened_at", "customer", "meter")})


@router.get("/v1/ingestion/metrics", summary="Ingestion figures per minute: accepted, rejected by reason, "
                                             "duplicates, unmatched, late")
def get_ingestion_metrics(minutes: int = Query(60, ge=1, le=525_600),
                          caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    return monitoring.ingestion(caller.store, caller.now, minutes, caller.environment)
