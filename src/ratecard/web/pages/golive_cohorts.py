"""Go-live cockpit: cohorts, every cycle's verdict, the promotion gate; promote and roll back."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ...services.cohort_gates import CLEAN_CYCLES_TO_PROMOTE, cohort_gate, cohort_gates
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


@router.get(BASE + "/{name:path}")
async def cohort_page(name: str, done: str = Query("", max_length=20), visit: Visit = Depends(visitor)) -> Response:
    gate = await run_in_threadpool(cohort_gate, visit.store, name, visit.environment)
    return page(visit, "golive/cohort.html", "golive", tab="cohorts", gate=gate, needed=CLEAN_CYCLES_TO_PROMOTE,
                done=done if done in NOTICES else "")


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
