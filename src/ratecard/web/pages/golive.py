"""The Go-live cockpit: what `ratecard golive check`, `reconcile`, `cohort`, `cutover`, `backfill`
and `rollback` show on the command line, read through the same service functions.

This module is the cockpit's router and its first page (readiness); each other sub-page has
its own golive_*.py module.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services.errors import NoCatalog
from ...services.golive import summarize_readiness
from ..context import Visit, visitor
from ..render import page
from . import golive_backfills, golive_cohorts, golive_cutover, golive_reconcile, golive_rollback

router = APIRouter()
for part in (golive_cohorts, golive_reconcile, golive_cutover, golive_backfills, golive_rollback):
    router.include_router(part.router)


@router.get("/golive")
async def readiness_page(days: int = Query(7, ge=1, le=3660), visit: Visit = Depends(visitor)) -> Response:
    """`days`: a charged meter silent this long is a warning (`golive check --days`)."""
    try:
        report = await run_in_threadpool(summarize_readiness, visit.store, visit.now, visit.environment, days,
                                         visit.catalogs)
    except NoCatalog:
        report = None
    return page(visit, "golive/index.html", "golive", tab="readiness", report=report, days=days)
