"""The Invoices pages: the list (filtered and paged in the database), one invoice, and its actions
(finalize, void, hold, release), which call the same services as `ratecard invoices …`."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ...services.cached_catalog import cached_catalog
from ...services.documents import invoice_pdf
from ...services.errors import Conflict
from ...services.invoice_views import InvoiceList, InvoiceView, invoice_view, list_invoice_page
from ...services.invoices import finalize_invoices, hold_invoice, void_invoices
from ..context import Visit, acting, visitor
from ..render import page

router = APIRouter()
MAX_PAGE = 100_000
NOTICES = ("finalized", "voided", "held", "released")


def _listing(visit: Visit, status: str, on_hold: str, customer: str, number: int) -> InvoiceList:
    return list_invoice_page(visit.store, visit.environment, status=status, on_hold=on_hold, customer=customer,
                             page=number)


@router.get("/invoices")
async def invoices_page(visit: Visit = Depends(visitor), status: str = Query("", max_length=16),
                        on_hold: str = Query("", max_length=8), customer: str = Query("", max_length=256),
                        page_number: int = Query(1, ge=1, le=MAX_PAGE, alias="page")) -> Response:
    listing = await run_in_threadpool(_listing, visit, status, on_hold, customer, page_number)
    return page(visit, "invoices/index.html", "invoices", listing=listing,
                filters={"status": status, "on_hold": on_hold, "customer": customer})


def _view(visit: Visit, reference: str) -> InvoiceView:
    _, catalog = cached_catalog(visit.store, visit.environment, visit.catalogs, visit.now)
    return invoice_view(visit.store, visit.environment, reference, catalog.invoice_prefix if catalog else None)


def _invoice_page(visit: Visit, view: InvoiceView, done: str | None = None, refusal: str | None = None,
                  status_code: int = 200) -> Response:
    return page(visit, "invoices/detail.html", "invoices", status_code=status_code, view=view, done=done,
                refusal=refusal)


@router.get("/invoices/{reference}")
async def invoice_page(reference: str, visit: Visit = Depends(visitor),
                       done: str | None = Query(None, pattern=f"^({'|'.join(NOTICES)})$")) -> Response:
    view = await run_in_threadpool(_view, visit, reference)
    return _invoice_page(visit, view, done)


@router.get("/invoices/{reference}/pdf")
async def invoice_pdf_file(reference: str, visit: Visit = Depends(visitor)) -> Response:
    """The PDF `ratecard invoices pdf` writes (a draft watermarked DRAFT), saved as NUMBER.pdf; or the
    invoice page with the service's sentence when it cannot be laid out."""
    try:
        document = await run_in_threadpool(invoice_pdf, visit.store, reference, visit.environment)
    except Conflict as refused:
        view = await run_in_threadpool(_view, visit, reference)
        return _invoice_page(visit, view, refusal=refused.message, status_code=409)
    return Response(document.content, media_type=document.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{document.file_name}"'})


async def _act(visit: Visit, reference: str, action: Callable[[], str], done: str) -> Response:
    """Run the action; back to the invoice (by the reference the action returns) with a fixed notice,
    or the invoice page again with the service's refusal."""
    try:
        shown = await run_in_threadpool(action)
    except Conflict as refused:
        view = await run_in_threadpool(_view, visit, reference)
        return _invoice_page(visit, view, refusal=refused.message, status_code=400)
    return RedirectResponse(f"/console/invoices/{quote(shown, safe='')}?done={done}", status_code=303)


@router.post("/invoices/{reference}/finalize")
async def finalize(reference: str, visit: Visit = Depends(acting("operator"))) -> Response:
    def action() -> str:
        done = finalize_invoices(visit.store, [reference], visit.now, visit.environment)
        return done.finalized[0].display_number

    return await _act(visit, reference, action, "finalized")


@router.post("/invoices/{reference}/void")
async def void(reference: str, visit: Visit = Depends(acting("operator"))) -> Response:
    def action() -> str:
        return void_invoices(visit.store, [reference], visit.now, visit.environment)[0].display_number

    return await _act(visit, reference, action, "voided")


@router.post("/invoices/{reference}/hold")
async def hold(reference: str, visit: Visit = Depends(acting("operator"))) -> Response:
    def action() -> str:
        return hold_invoice(visit.store, reference, True, visit.environment).display_number

    return await _act(visit, reference, action, "held")


@router.post("/invoices/{reference}/release")
async def release(reference: str, visit: Visit = Depends(acting("operator"))) -> Response:
    def action() -> str:
        return hold_invoice(visit.store, reference, False, visit.environment).display_number

    return await _act(visit, reference, action, "released")
