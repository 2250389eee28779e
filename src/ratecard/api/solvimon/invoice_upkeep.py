"""Looking after one invoice over /v1/invoices/{id}/...: archive, refresh, cancel-dunning-actions,
export_to_erp and the e-invoice operations (refresh-e-invoices, resubmit-e-invoice,
update-e-invoice-status). Each goes through services/invoice_upkeep.py; the decisions (which
states may be archived, what an e-invoice status is without a Peppol access point) are written
there and in docs/solvimon-compat.md §13.1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services import invoice_upkeep as upkeep
from ...services.invoices import InvoiceRecord, find_invoice
from ..context import Caller, current_caller
from ..errors import invalid, not_found
from .common import OBJECT_BODY, json_response, wire_instant
from .invoice_actions import invoice_named, object_body, only_fields, shown

router = APIRouter(tags=["invoices"])
REFRESH_TYPES = ("FULL", "CUSTOMER", "CUSTOM_FIELD", "BILLING_ENTITY", "PAYMENT_ACCEPTOR", "PO_NUMBER", "TAX_RATES")
MANDATES = ("PEPPOL", "FACTUR_X")
FORMATS = [{"type": "UBL", "description": "UBL 2.1, Peppol BIS Billing 3.0"},
           {"type": "FACTUR_X", "description": "Factur-X (PDF/A-3 with the EN 16931 XML)"}]



def e_invoice_body(e_invoice: upkeep.EInvoice) -> dict[str, Any]:
    """An EInvoice: ratecard is its processor; the statuses as recorded, oldest first."""
    def status(item: Any) -> dict[str, Any]:
        return {key: value for key, value in {"status": item.status, "timestamp": wire_instant(item.created_at),
                                              "message": item.message}.items() if value is not None}

    body: dict[str, Any] = {"external_reference": e_invoice.external_reference, "processor": "RATECARD",
                            "status_history": [status(item) for item in e_invoice.history],
                            "supported_file_formats": FORMATS}
    if e_invoice.status is not None:
        body["status"] = status(e_invoice.status)
    return body


def answer(caller: Caller, invoice: InvoiceRecord) -> Response:
    """The invoice as read now, with its e-invoice when it is final."""
    fresh = find_invoice(caller.store, str(invoice.id), caller.environment)
    body = shown(caller, fresh)
    if fresh.status == "final":
        body["e_invoices"] = [e_invoice_body(upkeep.e_invoice_of(caller.store, fresh, caller.environment))]
    return json_response(body)


async def _upkeep(caller: Caller, invoice: InvoiceRecord, action: Callable[..., InvoiceRecord],
                  *extra: Any) -> Response:
    """Run one service action on the invoice (store, id, now, environment, then `extra`) off the
    event loop, and answer with the invoice as it now stands."""
    done = await run_in_threadpool(action, caller.store, str(invoice.id), caller.now, caller.environment, *extra)
    return answer(caller, done)


@router.post("/v1/invoices/{key}/archive", summary="Archive a void invoice: left out of the lists, found by id")
async def archive(key: str, caller: Caller = Depends(current_caller)) -> Response:
    invoice = invoice_named(caller, key)
    return await _upkeep(caller, invoice, upkeep.archive_invoice)


@router.post("/v1/invoices/{key}/refresh",
             summary="Recompute a draft from the applied catalog and usage (a one-off draft: its tax)",
             openapi_extra=OBJECT_BODY)
async def refresh(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request, optional=True)
    only_fields(body, ("type", "types"), "a refresh recomputes the whole draft")
    field = "type" if body.get("type") is not None else "types"
    wanted = [body["type"]] if field == "type" else body.get("types") or []
    if not isinstance(wanted, list) or len(wanted) > len(REFRESH_TYPES) or any(t not in REFRESH_TYPES for t in wanted):
        among = "one" if field == "type" else "some"
        raise invalid(field, f"{field} must be {among} of {', '.join(REFRESH_TYPES)}")
    invoice = invoice_named(caller, key)
    # every type is served by the same recomputation: the customer, its entity and tax rate are read
    # from the applied catalog each time, and ratecard keeps no custom fields or PO numbers on drafts
    return await _upkeep(caller, invoice, upkeep.refresh_draft)


@router.post("/v1/invoices/{key}/cancel-dunning-actions",
             summary="Call off the scheduled retries of the invoice's failed card payment")
async def cancel_dunning_actions(key: str, caller: Caller = Depends(current_caller)) -> Response:
    invoice = invoice_named(caller, key)
    return await _upkeep(caller, invoice, upkeep.cancel_dunning)


@router.post("/v1/invoices/{key}/export_to_erp",
             summary="A final invoice with its export document (ratecard.export), for an ERP",
             openapi_extra=OBJECT_BODY)
async def export_to_erp(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request, optional=True)
    only_fields(body, (), "ratecard hands the invoice over in its export format; there is no ERP integration to "
                          "configure")
    invoice = invoice_named(caller, key)
    found, document = await run_in_threadpool(upkeep.erp_document, caller.store, str(invoice.id), caller.environment)
    shown_body = shown(caller, found)
    shown_body.setdefault("ratecard", {})["export"] = document
    return json_response(shown_body)


@router.post("/v1/invoices/{key}/refresh-e-invoices",
             summary="Build a final invoice's UBL and Factur-X again (checked) and record GENERATED")
async def refresh_e_invoices(key: str, caller: Caller = Depends(current_caller)) -> Response:
    invoice = invoice_named(caller, key)
    return await _upkeep(caller, invoice, upkeep.regenerate_e_invoice)


@router.post("/v1/invoices/{key}/resubmit-e-invoice",
             summary="Build the e-invoice again for the caller's access point (ratecard runs none)",
             openapi_extra=OBJECT_BODY)
async def resubmit_e_invoice(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request, optional=True)
    only_fields(body, ("external_reference", "mandate"), "not a field of resubmit-e-invoice")
    mandate = body.get("mandate")
    if mandate is not None and mandate not in MANDATES:
        raise invalid("mandate", f"mandate must be {' or '.join(MANDATES)} (the documents ratecard builds)")
    reference = body.get("external_reference")
    if reference is not None and not isinstance(reference, str):
        raise invalid("external_reference", "external_reference must be a string")
    invoice = invoice_named(caller, key)
    if reference is not None and reference != upkeep.external_reference(invoice):
        raise not_found("e-invoice", reference)
    return await _upkeep(caller, invoice, upkeep.regenerate_e_invoice,
                         f"resubmitted{f' ({mandate})' if mandate else ''}: built again, ready for your access point")


@router.patch("/v1/invoices/{key}/update-e-invoice-status",
              summary="Record the status the caller's access point reports for the invoice's e-invoice",
              openapi_extra=OBJECT_BODY)
async def update_e_invoice_status(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request)
    only_fields(body, ("external_reference", "status", "message"), "not a field of an e-invoice status")
    for name in ("external_reference", "status", "message"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise invalid(name, f"{name} must be a string")
    if body.get("status") is None:
        raise invalid("status", f"status is required: one of {', '.join(upkeep.E_INVOICE_STATUSES)}")
    invoice = invoice_named(caller, key)
    e_invoice = await run_in_threadpool(
        lambda: upkeep.set_e_invoice_status(caller.store, str(invoice.id), body["status"], caller.now,
                                            caller.environment, reference_given=body.get("external_reference"),
                                            message=body.get("message")))
    return json_response(e_invoice_body(e_invoice))

