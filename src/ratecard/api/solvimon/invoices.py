"""/v1/invoices: ratecard's invoices in Solvimon's shape.

Solvimon has no top-level lines: they sit in periods[].groups[].lines[]. Each ratecard service
period is one period with one group (the subscription); each line carries its quantity as
meter_value.number and ratecard's own fields (code, quantity, unit_amount, service dates) in an
extension object `ratecard`. Status is DRAFT, FINAL or VOID. A single GET always includes the
periods and lines; the list only when include_periods / include_lines ask for them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...catalog import Catalog
from ...domain.dimensions import group_from_json
from ...services.invoice_upkeep import e_invoice_of
from ...services.invoice_views import held_invoice_ids
from ...services.invoices import InvoiceRecord, find_invoices, invoice_or_none
from ...services.payments import payment_statuses
from ...services.resources.checks import check_choice
from ...services.resources.model import View
from ..context import Caller, current_caller
from ..errors import invalid, not_found
from ..pagination import Page, paginate, solvimon_page
from .common import amount, decimal_text, json_response, multi, param, wire_instant
from .config import snapshot

router = APIRouter(tags=["invoices"])
STATUSES = ("DRAFT", "FINAL", "VOID")
PERIODS = {"month": {"type": "MONTH", "value": 1}, "quarter": {"type": "MONTH", "value": 3},
           "year": {"type": "YEAR", "value": 1}}
LINE_TYPES = {"usage": "USAGE_BASED", "advance": "RECURRING", "arrears": "RECURRING",
              "threshold": "USAGE_BASED", "usage_advance": "USAGE_BASED"}
ID_PREFIX = "inv_"


def render(view: View, catalog: Catalog | None, invoice: InvoiceRecord, periods: bool = True,
           lines: bool = True, payment_status: str | None = None, on_hold: bool = False) -> dict[str, Any]:
    """`paid` is true once the invoice's payment succeeded (through Stripe, or marked paid);
    `on_hold` once it was put on hold (`ratecard invoices hold`, the console);
    `ratecard.payment_status` is that payment's status (null: nothing to collect yet, a draft)."""
    currency = invoice.currency.upper()
    subscription = catalog.subscriptions.get(invoice.subscription) if catalog is not None else None
    billing_period = PERIODS.get(subscription.plan.interval) if subscription is not None else None
    customer = view.find_customer(invoice.customer)
    out: dict[str, Any] = {
        "object_type": "INVOICE",
        "id": f"{ID_PREFIX}{invoice.id}",
        "invoice_number": invoice.display_number,
        "customer_id": view.customer_id(invoice.customer) if customer is not None else None,
        "customer_reference": invoice.customer,
        "status": invoice.status.upper(),
        "type": "ONE_OFF" if invoice.is_one_off else "CREDIT" if invoice.total < 0 else "STANDARD",
        "invoice_date": wire_instant(invoice.boundary_ts),
        "created_at": wire_instant(invoice.created_at) if invoice.created_at else None,
        "updated_at": wire_instant(invoice.updated_at) if invoice.updated_at else None,
        "updated_to_final_at": wire_instant(invoice.finalized_at),
        "billing_currency": currency,
        "timezone": invoice.timezone,
        "billing_period": billing_period,
        "pricing_amount_type": "EXCLUDING_TAX",
        "pricing_plan_subscription_ids": [] if invoice.is_one_off else [invoice.subscription],
        "invoice_amount_including_tax": amount(invoice.total, currency),
        "tax_summary": {"base_amount": amount(invoice.subtotal, currency), "tax_amount": amount(invoice.tax, currency),
                        "total_amount": amount(invoice.total, currency)},
        "paid": payment_status == "succeeded",
        "on_hold": on_hold,
        "has_usage_based_pricing": any(line.kind in ("usage", "threshold", "usage_advance") for line in invoice.lines),
        "ratecard": {"number": invoice.number, "subscription": None if invoice.is_one_off else invoice.subscription,
                     "one_off": invoice.is_one_off, "archived": invoice.archived_at is not None,
                     "issue_date": invoice.issue_date,
                     "status": invoice.status, "subtotal": decimal_text(invoice.subtotal),
                     "tax": decimal_text(invoice.tax), "total": decimal_text(invoice.total),
                     "tax_rate": decimal_text(invoice.tax_rate), "catalog_version": invoice.catalog_version,
                     "payment_status": payment_status},
    }
    if periods or lines:
        out["periods"] = _periods(invoice, currency, billing_period, lines)
    return {key: value for key, value in out.items() if value is not None}


def _periods(invoice: InvoiceRecord, currency: str, billing_period: dict | None, with_lines: bool) -> list[dict]:
    grouped: dict[tuple[int, int], list[tuple[int, Any]]] = defaultdict(list)
    for index, line in enumerate(invoice.lines):
        grouped[(line.service_start_ts, line.service_end_ts)].append((invoice.line_number(index), line))
    periods = []
    for order, ((start, end), items) in enumerate(sorted(grouped.items())):
        subtotal = sum((line.amount for _, line in items), Decimal(0))
        subscription = None if invoice.is_one_off else invoice.subscription
        group: dict[str, Any] = {"group_order": 0, "description": subscription or "one-off",
                                 "pricing_plan_subscription_id": subscription, "start_at": wire_instant(start),
                                 "end_at": wire_instant(end), "amount_excluding_tax": amount(subtotal, currency)}
        if with_lines:
            group["lines"] = [_line(invoice, position, order_in_group, line, currency)
                              for order_in_group, (position, line) in enumerate(items)]
        period = {"period_order": order, "start_at": wire_instant(start), "end_at": wire_instant(end),
                  "amount_excluding_tax": amount(subtotal, currency), "groups": [group]}
        if billing_period is not None:
            period["billing_period"] = billing_period
        periods.append(period)
    return periods


def line_positions(invoice: InvoiceRecord) -> dict[tuple[int, int], int]:
    """(period_order, line_order) -> the line's number on the invoice (InvoiceRecord.line_number),
    as _periods orders them (one group per period, so group_order is always 0)."""
    grouped: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, line in enumerate(invoice.lines):
        grouped[(line.service_start_ts, line.service_end_ts)].append(invoice.line_number(index))
    return {(order, line_order): position for order, (_, positions) in enumerate(sorted(grouped.items()))
            for line_order, position in enumerate(positions)}


def _line(invoice: InvoiceRecord, number: int, order: int, line: Any, currency: str) -> dict[str, Any]:
    return {
        "id": f"inl_{invoice.id}_{number}",  # the line's stored number: kept when another line is deleted
        "line_order": order,
        "description": line.description,
        "type": "MINIMUM" if line.code == "minimum" and line.kind != "usage" else LINE_TYPES.get(line.kind, "REVENUE"),
        "amount_excluding_tax": amount(line.amount, currency),
        "meter_value": {"reference": line.code, "type": "NUMBER", "number": decimal_text(line.quantity)},
        "ratecard": {"code": line.code, "kind": line.kind, "quantity": decimal_text(line.quantity),
                     "unit_amount": decimal_text(line.unit_amount), "amount": decimal_text(line.amount),
                     "service_start": line.service_start, "service_end": line.service_end,
                     # a charge priced per dimension: the filter (null: the default price) and the group
                     "filter": line.filter_code, "group": group_from_json(line.group_values)},
    }


def _date_filter(text: str) -> tuple[date | None, date | None]:
    """`2026-02-01` (that day) or `[2026-01-01,2026-04-01]` (a range, end exclusive; either side may
    be empty); datetimes are read as their date."""
    def parse(part: str) -> date | None:
        part = part.strip()
        if not part:
            return None
        try:
            return datetime.fromisoformat(part).date() if "T" in part else date.fromisoformat(part)
        except ValueError:
            raise invalid("invoice_date", f"invoice_date: {part!r} is not a date") from None

    text = text.strip()
    if text.startswith("[") and text.endswith("]") and "," in text:
        start, end = text[1:-1].split(",", 1)
        return parse(start), parse(end)
    day = parse(text)
    return day, None if day is None else date.fromordinal(day.toordinal() + 1)


@router.get("/v1/invoices", summary="List invoices (periods and lines on request)")
def list_all(request: Request, page: Page = Depends(solvimon_page), customer_id: str | None = Query(None),
             statuses: list[str] | None = Query(None, alias="statuses[]"), invoice_date: str | None = Query(None),
             paid: str | None = Query(None), on_hold: str | None = Query(None),
             pricing_plan_subscription_id: str | None = Query(None), include_periods: bool = Query(False),
             include_lines: bool = Query(False), caller: Caller = Depends(current_caller)) -> Response:
    snap = snapshot(caller)
    wanted = {check_choice(s.upper(), "statuses[]", STATUSES) for s in multi(request, "statuses")}
    for name, value in (("paid", paid), ("on_hold", on_hold)):
        if value is not None and value.lower() not in ("true", "false"):
            raise invalid(name, f"{name} must be true or false")
    param(pricing_plan_subscription_id, "pricing_plan_subscription_id")
    invoices = find_invoices(caller.store, caller.environment)  # archived ones left out, as in the CLI's list
    if customer_id is not None:
        customer = snap.view.customer_reference(customer_id)
        invoices = [i for i in invoices if i.customer == customer]
    if wanted:
        invoices = [i for i in invoices if i.status.upper() in wanted]
    if pricing_plan_subscription_id is not None:
        invoices = [i for i in invoices if i.subscription == pricing_plan_subscription_id]
    if invoice_date is not None:
        start, end = _date_filter(invoice_date)
        invoices = [i for i in invoices if (start is None or date.fromisoformat(i.issue_date) >= start)
                    and (end is None or date.fromisoformat(i.issue_date) < end)]
    statuses = payment_statuses(caller.store, caller.environment, [i.id for i in invoices if i.id is not None])
    if paid is not None:
        invoices = [i for i in invoices if (statuses.get(i.id or 0) == "succeeded") == (paid.lower() == "true")]
    held = held_invoice_ids(caller.store, caller.environment)  # `ratecard invoices hold`, the console
    if on_hold is not None:
        invoices = [i for i in invoices if (i.id in held) == (on_hold.lower() == "true")]
    sort_keys = {"invoice_date": lambda i: (i.boundary_ts, i.id), "created_at": lambda i: (i.created_at, i.id),
                 "updated_at": lambda i: (i.updated_at, i.id), "id": lambda i: i.id,
                 "invoice_number": lambda i: (i.number or "", i.id), "total": lambda i: (i.total, i.id),
                 "customer_reference": lambda i: (i.customer, i.id)}
    return json_response(paginate(
        request, invoices, page,
        lambda i: render(snap.view, snap.catalog, i, include_periods or include_lines, include_lines,
                         statuses.get(i.id or 0), i.id in held),
        sort_keys, default_key="invoice_date"))


@router.get("/v1/invoices/{key:path}", summary="Get an invoice with its periods and lines (inv_<id>, number, DRAFT-<n>)")
def get_one(key: str, request: Request, processing_only_customer_id: str | None = Query(None),
            caller: Caller = Depends(current_caller)) -> Response:
    param(key, "resourceId")
    reference = key[len(ID_PREFIX):] if key.startswith(ID_PREFIX) else key
    invoice = invoice_or_none(caller.store, reference, caller.environment)
    if invoice is None:
        raise not_found("invoice", key)
    snap = snapshot(caller)
    status = payment_statuses(caller.store, caller.environment, [invoice.id]).get(invoice.id or 0)
    body = render(snap.view, snap.catalog, invoice, payment_status=status,
                  on_hold=invoice.id in held_invoice_ids(caller.store, caller.environment))
    if invoice.status == "final":
        from .invoice_upkeep import e_invoice_body  # imported here: invoice_upkeep builds on this module

        body["e_invoices"] = [e_invoice_body(e_invoice_of(caller.store, invoice, caller.environment))]
    return json_response(body)
