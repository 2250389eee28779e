"""Go-live cockpit: upload the legacy system's export, reconcile it as `ratecard reconcile` does,
and read the latest result by cause, then one cause's lines."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ...services.reconciliation_results import (
    CAUSE_ORDERS,
    EXPLANATIONS,
    LINE_ORDERS,
    UPLOAD_MAPPINGS,
    cause_rows,
    latest,
    lines_of_cause,
    reconcile_upload,
)
from ..context import Visit, acting, visitor
from ..render import page

router = APIRouter()
BASE = "/golive/reconcile"
PER_PAGE = 50
NOTICES = ("reconciled",)


@router.get(BASE)
async def reconcile_page(sort: str = Query("cause", max_length=20), done: str = Query("", max_length=20),
                         visit: Visit = Depends(visitor)) -> Response:
    found = await run_in_threadpool(latest, visit.store, visit.environment)
    rows = cause_rows(found, sort)  # a sort not in CAUSE_ORDERS: InvalidInput, a 400 page
    return page(visit, "golive/reconcile.html", "golive", tab="reconcile", reconciliation=found, rows=rows, sort=sort,
                orders=CAUSE_ORDERS, mappings=UPLOAD_MAPPINGS, done=done if done in NOTICES else "")


@router.post(BASE + "/upload")
async def upload(file: UploadFile = File(...), mapping: str = Form("", max_length=40),
                 visit: Visit = Depends(acting("operator"))) -> Response:
    content = await file.read()
    await run_in_threadpool(reconcile_upload, visit.store, content, file.filename or "", visit.now,
                            visit.session.email, visit.environment, mapping or None)
    return RedirectResponse(f"/console{BASE}?done=reconciled", status_code=303)


@router.get(BASE + "/causes/{cause}")
async def cause_page(cause: str, sort: str = Query("position", max_length=20),
                     page_number: int = Query(1, alias="page", ge=1, le=100_000),
                     visit: Visit = Depends(visitor)) -> Response:
    found = await run_in_threadpool(latest, visit.store, visit.environment)
    # an unknown cause or sort: InvalidInput, a 400 page
    lines, has_more = await run_in_threadpool(lines_of_cause, visit.store, found, cause, sort, page_number, PER_PAGE)
    return page(visit, "golive/reconcile_cause.html", "golive", tab="reconcile", reconciliation=found, cause=cause,
                explanation=EXPLANATIONS.get(cause, ""), lines=lines, has_more=has_more, page_number=page_number,
                sort=sort, orders=LINE_ORDERS)
