"""Acting on /v1/invoices the Solvimon way: PATCH (finalize, void, hold), credit and credit_and_copy,
pay / refund and the invoice's payments, the UBL 2.1 and e-invoice downloads, send_by_email,
search and the upcoming-invoice preview. Each goes through the service the CLI uses
(`ratecard invoices finalize|void|hold|release|send`, `ratecard payments ...`); see
docs/solvimon-compat.md §12 for what maps and what does not.

These routes are registered before invoices.py, whose `GET /v1/invoices/{key:path}` would
otherwise read `inv_7/ubl21` as an invoice reference.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...domain.instants import to_micros
from ...services import documents, invoice_delivery
from ...services.errors import Conflict, NotFound
from ...services.invoice_actions import credit_invoice, held_invoice_ids, pay_invoice, refund_invoice
from ...services.invoices import InvoiceRecord, finalize_invoices, find_invoice, find_invoices, hold_invoice, void_invoices
from ...services.payments import PaymentRecord, payment_amount, payment_document, payment_of, payment_statuses
from ...services.preview import preview_invoices
from ..context import Caller, current_caller
from ..errors import ApiError, invalid, not_found
from ..pagination import Page, paginate, solvimon_page
from .common import OBJECT_BODY, aware, json_body, json_response, param, wire_instant
from .config import snapshot
from .invoices import ID_PREFIX, STATUSES, render
from .search import Field
from .search import search as search_items

router = APIRouter(tags=["invoices"])
PATCHABLE = ("status", "on_hold")
# a payment's status in ratecard -> Payment.result in Solvimon's enum
RESULTS = {"pending": "PENDING", "requires_action": "PENDING", "succeeded": "AUTHORIZED", "failed": "REFUSED",
           "uncollectible": "REFUSED", "canceled": "CANCELLED"}
E_INVOICE_FORMATS = ("UBL", "UBL21", "PEPPOL", "FACTUR_X", "FACTURX")
SEARCHABLE = ("invoice_number", "customer_reference", "customer_id", "pricing_plan_subscription_id", "id")
FILTERABLE = ("status", "type", "customer_id", "customer_reference", "billing_currency", "paid", "on_hold")


def invoice_named(caller: Caller, key: str, field: str = "resourceId") -> InvoiceRecord:
    """The invoice a key names (inv_7 or 7), in a path or in the body's `field`; 404 when the
    caller's environment has none."""
    param(key, field)
    try:
        return find_invoice(caller.store, key.removeprefix(ID_PREFIX), caller.environment)
    except NotFound:
        raise not_found("invoice", key) from None


def shown(caller: Caller, invoice: InvoiceRecord, held: set[int] | None = None,
          statuses: dict[int, str] | None = None) -> dict[str, Any]:
    """The invoice in Solvimon's shape with its hold and its type (a credit note is CREDIT)."""
    snap = snapshot(caller)
    if statuses is None:
        statuses = payment_statuses(caller.store, caller.environment, [invoice.id or 0])
    if held is None:
        held = held_invoice_ids(caller.store, caller.environment)
    body = render(snap.view, snap.catalog, invoice, payment_status=statuses.get(invoice.id or 0))
    body["on_hold"] = invoice.id in held
    body["type"] = "CREDIT" if invoice.kind == "credit_note" else "ONE_OFF" if invoice.is_one_off else "STANDARD"
    if invoice.corrects is not None:
        body.setdefault("ratecard", {})["corrects"] = f"{ID_PREFIX}{invoice.corrects}"
    return body


def _reread(caller: Caller, invoice: InvoiceRecord) -> dict[str, Any]:
    return shown(caller, find_invoice(caller.store, str(invoice.id), caller.environment))


async def object_body(request: Request, optional: bool = False) -> dict[str, Any]:
    """The JSON object body; with `optional`, an empty body is {} (the SDK sends none when the
    request model is left out)."""
    if optional and not (await request.body()).strip():
        return {}
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "UNABLE_TO_PROCESS_INSTRUCTIONS", "the body must be a JSON object")
    return body


def _flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise invalid(name, f"{name} must be true or false")
    return value


def only_fields(body: dict[str, Any], allowed: tuple[str, ...], why: str) -> None:
    for name, value in body.items():
        if name not in allowed and value is not None:
            raise invalid(name, f"{name} cannot be set: {why} (allowed: {', '.join(allowed) or 'nothing'})")


# ---------------------------------------------------------------------------------- PATCH


@router.patch("/v1/invoices/{key}", summary="Finalize, void, hold or release a draft (status, on_hold)",
              openapi_extra=OBJECT_BODY)
async def update(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request)
    only_fields(body, PATCHABLE, "an invoice's content is computed from the catalog and the usage")
    status = body.get("status")
    if status is not None and (not isinstance(status, str) or status.upper() not in STATUSES):
        raise invalid("status", f"status must be one of {', '.join(STATUSES)}")
    hold = _flag(body, "on_hold")
    target = status.upper() if isinstance(status, str) else None
    if hold is True and target in ("FINAL", "VOID"):
        raise ApiError(400, "INVALID_OPERATION", f"on_hold: a draft put on hold is not moved to {target} at once")
    invoice = invoice_named(caller, key)
    reference = str(invoice.id)
    if hold is not None and (hold or invoice.status == "draft"):
        hold_invoice(caller.store, reference, hold, caller.environment)
    if target is not None and target != invoice.status.upper():
        if target not in ("FINAL", "VOID"):
            raise ApiError(400, "INVALID_OPERATION", f"invoice {key} is {invoice.status}: it never goes back to a draft")
        try:
            if target == "FINAL":
                await run_in_threadpool(finalize_invoices, caller.store, [reference], caller.now, caller.environment)
            else:
                void_invoices(caller.store, [reference], caller.now, caller.environment)
        except Conflict:
            # an identical PATCH moved it between this one's read and its write: the invoice is
            # as asked, which a PATCH repeated later answers with the invoice too
            if find_invoice(caller.store, reference, caller.environment).status.upper() != target:
                raise
    return json_response(_reread(caller, invoice))


# --------------------------------------------------------------------------------- credits


@router.post("/v1/invoices/{key}/credit", summary="Credit a final invoice in full by a credit note",
             openapi_extra=OBJECT_BODY)
async def credit(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request, optional=True)
    _check_credit_source(body)
    for name in ("groups", "periods"):
        if body.get(name):
            raise invalid(name, f"{name}: ratecard credits a whole invoice (each line in full); credit part of it "
                                "by a correction of its usage (a backfill) instead")
    if body.get("note") is not None:
        raise invalid("note", "note: ratecard's credit notes carry no free text")
    if body.get("delivery_date") is not None:
        raise invalid("delivery_date", "delivery_date: a credit note is dated the day it is written")
    if _flag(body, "force_init_on_hold"):
        raise invalid("force_init_on_hold", "force_init_on_hold: a credit note is final (and numbered) at once")
    only_fields(body, ("note", "groups", "periods", "force_init_on_hold", "delivery_date", "credit_details_source"),
          "not a field of a credit")
    invoice = invoice_named(caller, key)
    done = await run_in_threadpool(credit_invoice, caller.store, str(invoice.id), caller.now, caller.environment)
    return json_response(shown(caller, done.credit_note))


def _check_credit_source(body: dict[str, Any]) -> None:
    source = body.get("credit_details_source")
    if source is not None and source != "ORIGINAL":
        raise invalid("credit_details_source", "credit_details_source: a credit note shows the parties of the "
                                               "invoice it credits (ORIGINAL); CURRENT is not supported")


@router.post("/v1/invoices/{key}/credit_and_copy", summary="Credit a final invoice and write a copy that replaces it",
             openapi_extra=OBJECT_BODY)
async def credit_and_copy(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request, optional=True)
    only_fields(body, ("update_new_invoice_to_final", "update_credit_invoice_to_final", "credit_details_source"),
          "not a field of credit_and_copy")
    _check_credit_source(body)
    for name in ("update_new_invoice_to_final", "update_credit_invoice_to_final"):
        if _flag(body, name) is False:
            raise invalid(name, f"{name}: ratecard's credit notes and their copies are final (and numbered) at once; "
                                "leave it out or send true")
    invoice = invoice_named(caller, key)
    done = await run_in_threadpool(credit_invoice, caller.store, str(invoice.id), caller.now, caller.environment,
                                   copy=True)
    assert done.copy is not None
    return json_response({"original_invoice_id": f"{ID_PREFIX}{done.original.id}",
                          "credit_invoice_id": f"{ID_PREFIX}{done.credit_note.id}",
                          "new_invoice_id": f"{ID_PREFIX}{done.copy.id}"})


# -------------------------------------------------------------------------------- payments


def payment_body(payment: PaymentRecord, invoice_id: int | None = None) -> dict[str, Any]:
    """A ratecard payment (a charge, or a credit note's refund) as Solvimon's Payment; ratecard's own
    fields in `ratecard`."""
    amount = payment_amount(payment)
    return {key: value for key, value in {
        "object_type": "PAYMENT",
        "id": f"pay_{payment.id}",
        "created_at": wire_instant(payment.created_at),
        "updated_at": wire_instant(payment.updated_at),
        "customer_id": payment.customer,
        "invoice_id": f"{ID_PREFIX}{invoice_id or payment.invoice_id}",
        "external_reference": payment.intent_id,
        "reference": payment.reference,
        "amount": {"quantity": format(amount if payment.kind == "charge" else Decimal(0) - amount, "f"),
                   "currency": payment.currency.upper()},
        "result": "REFUNDED" if payment.kind == "refund" and payment.status == "succeeded"
        else RESULTS.get(payment.status, "PENDING"),
        "ratecard": payment_document(payment),
    }.items() if value is not None}


def _payments_of(caller: Caller, key: str) -> list[PaymentRecord]:
    invoice = invoice_named(caller, key)
    try:
        return [payment_of(caller.store, str(invoice.id), caller.environment)]
    except NotFound:  # a draft, or an invoice nothing is collected for: no payment listed
        return []


@router.get("/v1/invoices/{key}/payments", summary="The invoice's payment (a credit note: its refund)")
def invoice_payments(key: str, request: Request, page: Page = Depends(solvimon_page),
                     caller: Caller = Depends(current_caller)) -> Response:
    return json_response(paginate(request, _payments_of(caller, key), page, payment_body))


@router.get("/v1/invoices/{key}/payment-attempts",
            summary="The invoice's payment with its attempt count (ratecard keeps one row per payment)")
def payment_attempts(key: str, request: Request, page: Page = Depends(solvimon_page),
                     caller: Caller = Depends(current_caller)) -> Response:
    return json_response(paginate(request, _payments_of(caller, key), page, payment_body))


@router.post("/v1/invoices/{key}/pay", summary="Collect a final invoice through Stripe now (first attempt or retry)")
async def pay(key: str, caller: Caller = Depends(current_caller)) -> Response:
    invoice = invoice_named(caller, key)
    await run_in_threadpool(pay_invoice, caller.store, str(invoice.id), caller.now, caller.environment)
    return json_response(_reread(caller, invoice))


@router.post("/v1/invoices/{key}/refund", summary="Credit a paid invoice and send its refund through Stripe")
async def refund(key: str, caller: Caller = Depends(current_caller)) -> Response:
    invoice = invoice_named(caller, key)
    await run_in_threadpool(refund_invoice, caller.store, str(invoice.id), caller.now, caller.environment)
    return json_response(_reread(caller, invoice))


# ------------------------------------------------------------------------------- documents


def _attachment(document: documents.Document) -> Response:
    return Response(document.content, media_type=document.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{document.file_name}"'})


@router.get("/v1/invoices/{key}/ubl21", summary="A final invoice as UBL 2.1 (Peppol BIS Billing 3.0), checked",
            response_class=Response, responses={200: {"content": {"application/xml": {}}}})
async def ubl21(key: str, include_invoice_pdf: str | None = Query(None),
                caller: Caller = Depends(current_caller)) -> Response:
    if include_invoice_pdf is not None and include_invoice_pdf.lower() not in ("true", "false"):
        raise invalid("include_invoice_pdf", "include_invoice_pdf must be true or false")
    if (include_invoice_pdf or "").lower() == "true":
        raise invalid("include_invoice_pdf", "include_invoice_pdf: ratecard's UBL carries no embedded PDF; the PDF "
                                             "is GET /v1/invoices/{id}/pdf (Factur-X embeds the XML in a PDF)")
    invoice = invoice_named(caller, key)
    return _attachment(await run_in_threadpool(documents.invoice_ubl, caller.store, str(invoice.id), caller.environment))


@router.get("/v1/invoices/{key}/download-e-invoice", summary="A final invoice's e-invoice: UBL or FACTUR_X",
            response_class=Response)
async def download_e_invoice(key: str, file_format: str = Query(...), external_reference: str | None = Query(None),
                             caller: Caller = Depends(current_caller)) -> Response:
    param(external_reference, "external_reference")
    wanted = file_format.strip().upper().replace("-", "_")
    if wanted not in E_INVOICE_FORMATS:
        raise invalid("file_format", "file_format must be UBL (Peppol BIS Billing 3.0) or FACTUR_X")
    invoice = invoice_named(caller, key)
    render_document = documents.invoice_ubl if wanted.startswith(("UBL", "PEPPOL")) else documents.invoice_facturx
    return _attachment(await run_in_threadpool(render_document, caller.store, str(invoice.id), caller.environment))


@router.post("/v1/invoices/{key}/send_by_email", summary="Email a final invoice now (to its customer, or `to`)",
             openapi_extra=OBJECT_BODY)
async def send_by_email(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request, optional=True)
    only_fields(body, ("to", "email"), "ratecard sends the invoice from its billing entity's sender")
    to = body.get("to", body.get("email"))
    if to is not None and (not isinstance(to, str) or len(to) > 254):
        raise invalid("to", "to must be one email address (at most 254 characters)")
    invoice = invoice_named(caller, key)
    delivery = await run_in_threadpool(invoice_delivery.send_invoice, caller.store, str(invoice.id), caller.now,
                                       caller.environment, to)
    if delivery.status != "sent":
        # the try is logged (GET /v1/invoices/{id}/deliveries); a code the SDK's ApiError knows
        raise ApiError(409, "INVALID_OPERATION", f"invoice {key} was not sent: the mail server failed "
                                                 f"({delivery.detail}); the try is logged")
    return json_response(_reread(caller, invoice))


# ------------------------------------------------------------------------------ search, preview


@router.post("/v1/invoices/search", summary="Search invoices (search_fields, filter_fields); paged like the list",
             openapi_extra=OBJECT_BODY)
async def search(request: Request, page: Page = Depends(solvimon_page), include_periods: bool = Query(False),
                 include_lines: bool = Query(False), caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request, optional=True)
    only_fields(body, ("search_fields", "filter_fields"), "ratecard searches by search_fields and filter_fields")
    snap = snapshot(caller)
    invoices = find_invoices(caller.store, caller.environment)  # archived ones left out, as in the CLI's list
    statuses = payment_statuses(caller.store, caller.environment, [i.id for i in invoices if i.id is not None])
    held = held_invoice_ids(caller.store, caller.environment)
    readers: dict[str, Field] = {
        "invoice_number": Field(lambda i: i.number or ""),
        "customer_reference": Field(lambda i: i.customer),
        "customer_id": Field(lambda i: snap.view.customer_id(i.customer) if snap.view.find_customer(i.customer)
                             else i.customer),
        "pricing_plan_subscription_id": Field(lambda i: i.subscription),
        "id": Field(lambda i: f"{ID_PREFIX}{i.id}"),
        "status": Field(lambda i: i.status.upper(), enum=True),
        "type": Field(lambda i: "CREDIT" if i.kind == "credit_note" else "ONE_OFF" if i.is_one_off else "STANDARD",
                      enum=True),
        "billing_currency": Field(lambda i: i.currency.upper(), enum=True),
        # true/false compared case-insensitively, as the enums are
        "paid": Field(lambda i: str(statuses.get(i.id or 0) == "succeeded").lower(), enum=True),
        "on_hold": Field(lambda i: str(i.id in held).lower(), enum=True),
    }
    invoices = search_items(invoices, body, {name: readers[name] for name in SEARCHABLE},
                            {name: readers[name] for name in FILTERABLE})
    return json_response(paginate(
        request, invoices, page,
        lambda i: shown(caller, i, held, statuses) if include_periods or include_lines
        else {key: value for key, value in shown(caller, i, held, statuses).items() if key != "periods"},
        {"invoice_date": lambda i: (i.boundary_ts, i.id), "id": lambda i: i.id,
         "invoice_number": lambda i: (i.number or "", i.id)}, default_key="invoice_date"))


@router.post("/v1/invoices/preview", summary="The upcoming invoice of a subscription (usage so far; never written)",
             openapi_extra=OBJECT_BODY)
async def preview(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request)
    only_fields(body, ("pricing_plan_subscription_id", "start_at"),
          "ratecard previews a subscription of the applied catalog")
    subscription_id = body.get("pricing_plan_subscription_id")
    if not isinstance(subscription_id, str) or not subscription_id.strip() or len(subscription_id) > 256:
        raise ApiError(400, "MISSING_FIELD", "pricing_plan_subscription_id is required", "pricing_plan_subscription_id")
    param(subscription_id, "pricing_plan_subscription_id")
    at = None
    if body.get("start_at") is not None:
        try:
            at = aware(datetime.fromisoformat(str(body["start_at"]).replace("Z", "+00:00")))
        except ValueError:
            raise invalid("start_at", "start_at must be a date-time") from None
    snap = snapshot(caller)
    subscription = snap.catalog.subscriptions.get(subscription_id) if snap.catalog is not None else None
    if subscription is None:
        raise not_found("pricing plan subscription", subscription_id)
    upcoming = await run_in_threadpool(preview_invoices, caller.store, subscription.customer, at, caller.now,
                                       caller.environment)
    previews = [p for p in upcoming.subscriptions if p.subscription == subscription_id]
    if not previews or not previews[0].invoices:
        failure = previews[0].failure.as_dict() if previews and previews[0].failure is not None else None
        raise ApiError(400, "INVALID_OPERATION", f"subscription {subscription_id} has no upcoming invoice at "
                       f"{to_micros(upcoming.at)}" + (f": {failure}" if failure else ""))
    invoices = [_preview_body(snap, invoice) for invoice in previews[0].invoices]
    return json_response({"invoice": invoices[0], "first_invoice": invoices[0],
                          "invoice_infos": [{"pricing_plan_schedule_id": subscription_id, "invoices": invoices}]})


def _preview_body(snap: Any, invoice: InvoiceRecord) -> dict[str, Any]:
    body = render(snap.view, snap.catalog, invoice)
    body.pop("id", None)
    body.pop("invoice_number", None)
    body["status"] = "DRAFT"
    body["ratecard"]["status"] = "preview"
    return body
