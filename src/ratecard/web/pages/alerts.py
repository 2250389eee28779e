"""Alerts and webhooks (/console/alerts): rules, alerts, endpoints, the delivery log, and sending
a failed delivery again (operator)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ...services import monitoring
from ..context import Visit, acting, visitor
from ..render import page

router = APIRouter()
BASE = "/console/alerts"
PAGE_SIZE = 50
MAX_PAGE = 2_000
RECENTLY_RESOLVED = 10
ALERT_STATUSES = ("open", "resolved")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


def _offset(page_number: int) -> int:
    return (page_number - 1) * PAGE_SIZE


@router.get("/alerts")
async def alerts_page(visit: Visit = Depends(visitor)) -> Response:
    def read() -> dict:
        store, environment = visit.store, visit.environment
        open_alerts, open_count = monitoring.alert_page(store, environment, "open", PAGE_SIZE)
        resolved, _ = monitoring.alert_page(store, environment, "resolved", RECENTLY_RESOLVED)
        rules = monitoring.rules(store, environment)
        return {"open_alerts": open_alerts, "open_count": open_count, "resolved": resolved,
                "rules": [(rule, monitoring.rule_summary(rule)) for rule in rules],
                "endpoints": monitoring.webhooks(store, environment),
                "deliveries": monitoring.deliveries(store, environment, limit=PAGE_SIZE + 1)}

    values = await run_in_threadpool(read)
    return page(visit, "alerts/index.html", "alerts", page_size=PAGE_SIZE, **values)


@router.get("/alerts/list")
async def alert_list(visit: Visit = Depends(visitor), status: str = Query("open", max_length=16),
                     page_number: int = Query(1, alias="page", ge=1, le=MAX_PAGE)) -> Response:
    found, total = await run_in_threadpool(monitoring.alert_page, visit.store, visit.environment, status,
                                           PAGE_SIZE + 1, _offset(page_number))
    return page(visit, "alerts/list.html", "alerts", alerts=found[:PAGE_SIZE], total=total, status=status,
                page_number=page_number, has_more=len(found) > PAGE_SIZE, statuses=ALERT_STATUSES)


@router.get("/alerts/deliveries")
async def delivery_log(visit: Visit = Depends(visitor), status: str = Query("", max_length=16),
                       page_number: int = Query(1, alias="page", ge=1, le=MAX_PAGE),
                       done: str = Query("", max_length=16)) -> Response:
    found = await run_in_threadpool(monitoring.deliveries, visit.store, visit.environment, status or None, None,
                                    PAGE_SIZE + 1, _offset(page_number))
    return page(visit, "alerts/deliveries.html", "alerts", deliveries=found[:PAGE_SIZE], status=status,
                page_number=page_number, has_more=len(found) > PAGE_SIZE, statuses=DELIVERY_STATUSES,
                notice="retried" if done == "retried" else "")


@router.post("/alerts/deliveries/{delivery_id}/retry")
async def retry_delivery(delivery_id: int, visit: Visit = Depends(acting("operator"))) -> Response:
    """The same use case as `ratecard webhooks retry`."""
    await run_in_threadpool(monitoring.retry_delivery, visit.store, delivery_id, visit.now, visit.environment)
    return RedirectResponse(f"{BASE}/deliveries?done=retried", status_code=303)
