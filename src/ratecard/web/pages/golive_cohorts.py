"""Go-live cockpit: cohorts, every cycle's verdict, the promotion gate; promote and roll back."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ...services.cohort_gates import (
    CLEAN_CYCLES_TO_PROMOTE,
    cohort_gate,
    cohort_gates,
    cohort_members,
    issued_while_live,
)
from ...services.cohorts import promote_cohort, rollback_cohort
from ..context import Visit, acting, visitor
from ..render import page

router = APIRouter()
BASE = "/golive/cohorts"
NOTICES = ("promoted", "rolled-back")


@router.get(BASE)
async def cohorts_page(visit: Visit = Depends(visitor)) -> Response:
    gates = await run_in_threadpool(cohort_gates, visit.store, visit.environment)
    return page(visit, "golive/cohorts.html", "golive", tab="cohorts", gates=gates, needed=CLEAN_CYCLES_TO_PROMOTE)


@router.get(BASE + "/{name:path}/corrections")
async def corrections_page(name: str, page_number: int = Query(1, alias="page", ge=1, le=100_000),
                           visit: Visit = Depends(visitor)) -> Response:
    """Every final invoice issued while the cohort was live, a page at a time."""
    gate = await run_in_threadpool(cohort_gate, visit.store, name, visit.environment)
    issued, has_more = await run_in_threadpool(issued_while_live, visit.store, gate, visit.environment, page_number)
    return page(visit, "golive/cohort_corrections.html", "golive", tab="cohorts", gate=gate, issued=issued,
                has_more=has_more, page_number=page_number)


@router.get(BASE + "/{name:path}")
async def cohort_page(name: str, done: str = Query("", max_length=20),
                      page_number: int = Query(1, alias="page", ge=1, le=100_000),
                      visit: Visit = Depends(visitor)) -> Response:
    gate = await run_in_threadpool(cohort_gate, visit.store, name, visit.environment)
    members, more_members = await run_in_threadpool(cohort_members, visit.store, name, visit.environment,
                                                    page_number)
    issued, more_issued = await run_in_threadpool(issued_while_live, visit.store, gate, visit.environment)
    return page(visit, "golive/cohort.html", "golive", tab="cohorts", gate=gate, needed=CLEAN_CYCLES_TO_PROMOTE,
                done=done if done in NOTICES else "", members=members, more_members=more_members,
                page_number=page_number, issued=issued, more_issued=more_issued)


def _back(name: str, notice: str) -> Response:
    from urllib.parse import quote

    return RedirectResponse(f"/console{BASE}/{quote(name, safe='')}?done={notice}", status_code=303)


@router.post(BASE + "/{name:path}/promote")
async def promote(name: str, visit: Visit = Depends(acting("operator"))) -> Response:
    await run_in_threadpool(promote_cohort, visit.store, name, visit.now, visit.environment)
    return _back(name, "promoted")


@router.post(BASE + "/{name:path}/rollback")
async def roll_back(name: str, visit: Visit = Depends(acting("operator"))) -> Response:
    await run_in_threadpool(rollback_cohort, visit.store, name, visit.now, visit.environment)
    return _back(name, "rolled-back")
