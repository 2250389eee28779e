"""Go-live cockpit: the cutover plan for a date, as `ratecard cutover plan --date` shows it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services import cutover
from ...services.errors import NoCatalog
from ...services.parsing import parse_day
from ..context import Visit, visitor
from ..render import page

router = APIRouter()
PER_PAGE = 50


@router.get("/golive/cutover")
async def cutover_page(date: str = Query("", max_length=40), page_number: int = Query(1, alias="page", ge=1, le=10_000),
                       visit: Visit = Depends(visitor)) -> Response:
    plan, no_catalog = None, False
    if date:
        day = parse_day("date", date)  # a bad date: InvalidInput, a 400 page
        try:
            plan = await run_in_threadpool(cutover.plan, visit.store, day, visit.now, visit.environment, visit.catalogs)
        except NoCatalog:
            no_catalog = True
    shown = plan.subscriptions[(page_number - 1) * PER_PAGE:page_number * PER_PAGE] if plan else []
    has_more = bool(plan) and len(plan.subscriptions) > page_number * PER_PAGE
    return page(visit, "golive/cutover.html", "golive", tab="cutover", plan=plan, date=date if plan else "",
                no_catalog=no_catalog, shown=shown, page_number=page_number, has_more=has_more)
