"""Go-live cockpit: backfills and their status (`ratecard backfill list|show`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services.backfills import STATUSES, find_backfills, show_backfill
from ...services.errors import InvalidInput
from ..context import Visit, visitor
from ..render import page

router = APIRouter()
PER_PAGE = 50


@router.get("/golive/backfills")
async def backfills_page(status: str = Query("", max_length=20), page_number: int = Query(1, alias="page", ge=1,
                                                                                            le=100_000),
                         visit: Visit = Depends(visitor)) -> Response:
    if status and status not in STATUSES:
        raise InvalidInput(f"{status!r} is not one of {', '.join(STATUSES)}", field="status")
    found = await run_in_threadpool(lambda: find_backfills(visit.store, visit.environment, status or None,
                                                           limit=PER_PAGE + 1, offset=(page_number - 1) * PER_PAGE))
    return page(visit, "golive/backfills.html", "golive", tab="backfills", backfills=found[:PER_PAGE],
                has_more=len(found) > PER_PAGE, page_number=page_number, status=status, statuses=STATUSES)


@router.get("/golive/backfills/{backfill_id}")
async def backfill_page(backfill_id: str, visit: Visit = Depends(visitor)) -> Response:
    if len(backfill_id) > 100:
        raise InvalidInput("that is not a backfill id", field="backfill")
    backfill = await run_in_threadpool(show_backfill, visit.store, backfill_id, visit.environment)
    return page(visit, "golive/backfill.html", "golive", tab="backfills", backfill=backfill)
