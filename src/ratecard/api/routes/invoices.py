"""ratecard's own invoice resources: runs and exports (Solvimon-shaped invoices live elsewhere)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services import documents, invoices
from ..context import Caller, current_caller
from ..errors import ApiError

router = APIRouter(tags=["invoices"])
EARLIEST_UNTIL, LATEST_UNTIL = date(1970, 1, 1), date(9998, 12, 31)


class InvoiceRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    until: date | datetime


@router.post("/v1/invoice-runs", summary="Create or refresh every invoice due at boundaries <= until")
async def run_invoices(run: InvoiceRun, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    if isinstance(run.until, datetime) and run.until.tzinfo is None:
        raise ApiError(400, "INVALID_FIELD", "until: a datetime needs a timezone offset", "until")
    day = run.until.date() if isinstance(run.until, datetime) else run.until
    if not EARLIEST_UNTIL <= day <= LATEST_UNTIL:  # the period arithmetic would leave the calendar
        raise ApiError(400, "INVALID_FIELD", f"until: must be between {EARLIEST_UNTIL} and {LATEST_UNTIL}", "until")
    invoices.check_run_until(run.until, caller.now)
    report = await run_in_threadpool(invoices.generate, caller.store, run.until, caller.now, caller.environment)
    return report.as_dict()


@router.get("/v1/exports/invoices", summary="Every invoice with its lines, in the export shape (JSON or CSV)")
def export(status: str | None = Query(None, pattern="^(draft|final|void)$"),
                    format: str = Query("json", pattern="^(json|csv)$"),
                    caller: Caller = Depends(current_caller)) -> Any:
    export = invoices.export_invoices(caller.store, format, caller.environment, status)
    return Response(export.text, media_type="text/csv" if format == "csv" else "application/json")


def _document_response(document: documents.Document, disposition: str = "attachment") -> Response:
    return Response(document.content, media_type=document.media_type,
                    headers={"Content-Disposition": f'{disposition}; filename="{document.file_name}"'})


def _reference(key: str) -> str:
    """The number, draft reference or id, as `ratecard invoices show` takes it (inv_<id> too)."""
    return key.removeprefix("inv_")


@router.get("/v1/invoices/{key}/pdf", summary="The invoice or credit note as a PDF (a draft is watermarked DRAFT)",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def invoice_pdf(key: str, caller: Caller = Depends(current_caller)) -> Response:
    document = await run_in_threadpool(documents.invoice_pdf, caller.store, _reference(key), caller.environment)
    return _document_response(document, "inline")


@router.get("/v1/invoices/{key}/ubl", summary="A final invoice as Peppol BIS Billing 3.0 UBL (Invoice or CreditNote)",
            response_class=Response, responses={200: {"content": {"application/xml": {}}}})
async def invoice_ubl(key: str, caller: Caller = Depends(current_caller)) -> Response:
    document = await run_in_threadpool(documents.invoice_ubl, caller.store, _reference(key), caller.environment)
    return _document_response(document)


@router.get("/v1/invoices/{key}/facturx", summary="A final invoice as Factur-X (PDF/A-3 with its EN 16931 CII XML)",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def invoice_facturx(key: str, caller: Caller = Depends(current_caller)) -> Response:
    document = await run_in_threadpool(documents.invoice_facturx, caller.store, _reference(key), caller.environment)
    return _document_response(document)
