"""Read-only monitoring: alerts and the per-minute ingestion figures of the key's environment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from ...golive.alerts import alert_document
from ...golive.monitor import ingestion_minutes
from ...store.monitoring import list_alerts
from ..context import Caller, current_caller
from ..pagination import Page, paginate, ratecard_page

router = APIRouter(tags=["monitoring"])


@router.get("/v1/alerts", summary="Missing-event alerts (oldest first; order_direction=DESC for newest first)")
def get_alerts(request: Request, status: str | None = Query(None, pattern="^(open|resolved)$"),
               page: Page = Depends(ratecard_page), caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    rows, _ = list_alerts(caller.store, caller.environment, status)
    rows.reverse()  # oldest first
    return paginate(request, rows, page, alert_document,
                    {"id": lambda a: a.id, "opened_at": lambda a: a.opened_at, "customer": lambda a: a.customer,
                     "meter": lambda a: a.meter})


@router.get("/v1/ingestion/metrics", summary="Ingestion figures per minute: accepted, rejected by reason, "
                                             "duplicates, unmatched, late")
def get_ingestion_metrics(minutes: int = Query(60, ge=1, le=525_600),
                          caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    return ingestion_minutes(caller.store, caller.environment, caller.now, minutes)
