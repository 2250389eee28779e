"""One-off invoices the Solvimon way: POST /v1/invoices (type ONE_OFF) writes a draft for a
customer, and its lines are added (`lines`, `add-line`), replaced (PUT `lines/{lineId}`) and
removed (DELETE `lines/{lineId}`, `delete-line`) while it is a draft. Each goes through
services/one_off_invoices.py, as `ratecard invoices create|add-line|edit-line|delete-line` do.

A line (OneOffInvoiceLine): pricing_type FLAT is `volume.number` x `pricing_band.amount`, FIXED is
`pricing_band.fixed_amount` (or `amount`) once; product_item_type DEDUCTION bills it negative.
POST /v1/invoices/charge-on-demand-pricing-items bills amounts for a plan schedule's customer as a
one-off invoice of its own. A line's id is inl_<invoice>_<number>: the number the line was written with, which it keeps when
another line is deleted (a new line takes the number after the highest). See
docs/solvimon-compat.md §13.1.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services import one_off_invoices as one_off
from ...services.errors import InvalidInput
from ...services.invoices import InvoiceRecord, finalize_invoices
from ...services.resources.products import ITEM
from ...services.resources.subscriptions import SUBSCRIPTION
from ..context import Caller, current_caller
from ..errors import ApiError, invalid, missing, not_found
from .common import OBJECT_BODY, aware, json_response, param
from .config import snapshot
from .invoice_actions import invoice_named, object_body, only_fields, shown
from .invoices import line_positions
from .subscriptions import schedules

router = APIRouter(tags=["invoices"])
LINE_FIELDS = ("product_item_id", "product_item_type", "pricing_name", "start_at", "end_at", "pricing_type",
               "pricing_band", "volume", "pricing_plan_subscription_id", "pricing_plan_schedule_id",
               "applicable_for_clauses")
CREATE_FIELDS = ("type", "customer_id", "customer_reference", "billing_currency", "status", "periods")
MAX_CREATE_LINES = one_off.MAX_LINES
DEFAULT_NAME = "One-off charge"



def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(name, f"{name} must be an object")
    return value


def _instant(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise invalid(name, f"{name} must be a date-time")
    try:
        return aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise invalid(name, f"{name} must be a date-time") from None


def _money(value: Any, name: str, currency: str) -> Any:
    """The quantity of an Amount in the invoice's currency."""
    body = _object(value, name)
    if body.get("currency") is not None and str(body["currency"]).upper() != currency:
        raise invalid(f"{name}.currency", f"{name}.currency must be the invoice's currency, {currency}")
    if body.get("quantity") is None:
        raise missing(f"{name}.quantity", f"{name}.quantity is required")
    return body["quantity"]


def _checked(names: dict[str, str], prefix: str = "", **fields: Any) -> one_off.LineInput:
    """one_off.line_input(**fields), a refusal naming the field the request sent (`names`: the
    line's field -> the request's, under `prefix`), not the line's own name for it."""
    try:
        return one_off.line_input(**fields)
    except InvalidInput as exc:
        where = prefix + names.get(exc.field or "", exc.field or "line")
        raise invalid(where, f"{where}: {exc.message}") from None


def _line(caller: Caller, body: dict[str, Any], currency: str) -> one_off.LineInput:
    """A OneOffInvoiceLine request as a line: checked field by field, each refusal naming its field."""
    only_fields(body, LINE_FIELDS, "not a field of a one-off line")
    for name, why in (("pricing_plan_subscription_id", "a one-off invoice bills no subscription; a charge on a "
                                                       "subscription is a one-off charge (`ratecard subscriptions "
                                                       "charge`)"),
                      ("pricing_plan_schedule_id", "a one-off invoice bills no subscription"),
                      ("applicable_for_clauses", "ratecard's one-off lines carry no clauses")):
        if body.get(name):
            raise invalid(name, f"{name}: {why}")
    kind = body.get("pricing_type")
    if kind not in ("FLAT", "FIXED"):
        raise invalid("pricing_type", "pricing_type must be FLAT (quantity x unit amount) or FIXED (an amount "
                                      "once)")
    item_type = body.get("product_item_type")
    item_type = "REVENUE" if item_type is None else item_type  # "" or [] is no type: refused below
    if item_type not in ("REVENUE", "DEDUCTION"):
        raise invalid("product_item_type", "product_item_type must be REVENUE or DEDUCTION")
    band = _object(body.get("pricing_band"), "pricing_band")
    only_fields(band, ("amount", "fixed_amount"), "a one-off line is priced by amount (FLAT) or fixed_amount (FIXED)")
    volume = _object(body.get("volume"), "volume")
    only_fields(volume, ("number",), "a one-off line's volume is a number of units")
    if kind == "FIXED":
        if volume.get("number") is not None:
            raise invalid("volume.number", "volume.number: a FIXED line is billed once; use FLAT for units")
        source = "fixed_amount" if band.get("fixed_amount") is not None else "amount"
        unit, quantity = _money(band.get(source), f"pricing_band.{source}", currency), "1"
    else:
        source = "amount"
        unit = _money(band.get("amount"), "pricing_band.amount", currency)
        quantity = volume.get("number", "1")
    code = body.get("product_item_id")
    name = body.get("pricing_name")
    if name is not None and not isinstance(name, str):
        raise invalid("pricing_name", "pricing_name must be text")
    if code is not None:
        if not isinstance(code, str) or not code:
            raise invalid("product_item_id", "product_item_id must be a product item's id or reference, or the "
                                             "line's code")
        param(code, "product_item_id")
        row = snapshot(caller).view.resources.find(ITEM, code)
        if row is not None:
            code, name = row.reference, name or row.body.get("name")
    start, end = _instant(body.get("start_at"), "start_at"), _instant(body.get("end_at"), "end_at")
    names = {"unit_amount": f"pricing_band.{source}.quantity", "quantity": "volume.number", "code": "product_item_id",
             "description": "pricing_name" if name else "product_item_id"}
    return _checked(names, description=name or code or DEFAULT_NAME, unit_amount=unit, quantity=quantity,
                    code=code or one_off.LINE_KIND, service_start=start, service_end=end,
                    deduction=item_type == "DEDUCTION")


def _line_position(invoice: InvoiceRecord, line_id: str) -> int:
    """inl_<invoice id>_<number> -> the line's number (a line of another invoice is not found)."""
    prefix = f"inl_{invoice.id}_"
    tail = line_id[len(prefix):] if line_id.startswith(prefix) else ""
    if not (tail.isascii() and tail.isdigit() and len(tail) <= 6):
        raise not_found("invoice line", line_id)
    return int(tail)


def _answer(caller: Caller, invoice: InvoiceRecord, status: int = 200) -> Response:
    return json_response(shown(caller, invoice), status)


@router.post("/v1/invoices", summary="Write a one-off draft invoice for a customer (type ONE_OFF)",
             openapi_extra=OBJECT_BODY)
async def create(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request)
    only_fields(body, CREATE_FIELDS, "a one-off invoice is written for a customer with its lines; the rest is "
                                     "computed")
    kind = body.get("type")
    if kind != "ONE_OFF":
        raise invalid("type", "type must be ONE_OFF: a STANDARD invoice is cut from a subscription by the invoice "
                              "run, and a credit note (CREDIT, ONE_OFF_CREDIT) is written by credit on the invoice it "
                              "corrects")
    if body.get("status") not in (None, "DRAFT"):
        raise invalid("status", "status: a one-off invoice is written as a DRAFT and finalized with PATCH "
                                "status FINAL once its lines are complete")
    key = body.get("customer_id") or body.get("customer_reference")
    if not isinstance(key, str) or not key.strip():
        raise missing("customer_id", "customer_id or customer_reference is required")
    param(key, "customer_id")
    snap = snapshot(caller)
    customer = snap.view.customer_reference(key)
    currency = body.get("billing_currency")
    if currency is not None and (not isinstance(currency, str) or len(currency) > 3):
        raise invalid("billing_currency", "billing_currency must be a currency code")
    lines = _create_lines(caller, body.get("periods"), currency, customer)
    try:
        invoice = await run_in_threadpool(one_off.create_one_off_invoice, caller.store, customer, lines, caller.now,
                                          caller.environment, currency=currency)
    except InvalidInput as exc:
        if exc.field != "currency":
            raise
        raise invalid("billing_currency", f"billing_currency: {exc.message}") from None
    return _answer(caller, invoice)


def _create_lines(caller: Caller, periods: Any, currency: str | None, customer: str) -> list[one_off.LineInput]:
    """periods[].groups[].lines[]: each line `description` and `amount_excluding_tax` (billed once);
    lines priced per unit are added afterwards (POST /v1/invoices/{id}/lines, pricing_type FLAT)."""
    if periods is None:
        return []
    if not isinstance(periods, list) or len(periods) > MAX_CREATE_LINES:
        raise invalid("periods", f"periods must be a list of at most {MAX_CREATE_LINES}")
    snap = snapshot(caller)
    found = snap.catalog.customers.get(customer) if snap.catalog is not None else None
    code = (currency or (found.currency if found is not None else None) or "").upper()
    lines: list[one_off.LineInput] = []
    for p, period in enumerate(periods):
        groups = _object(period, f"periods.{p}").get("groups")
        groups = [] if groups is None else groups  # "" or 0 is not "no groups": refused below
        if not isinstance(groups, list):
            raise invalid(f"periods.{p}.groups", f"periods.{p}.groups must be a list")
        for g, group in enumerate(groups):
            items = _object(group, f"periods.{p}.groups.{g}").get("lines")
            items = [] if items is None else items
            if not isinstance(items, list):
                raise invalid(f"periods.{p}.groups.{g}.lines", f"periods.{p}.groups.{g}.lines must be a list")
            for index, item in enumerate(items):
                where = f"periods.{p}.groups.{g}.lines.{index}"
                line = _object(item, where)
                only_fields(line, ("description", "amount_excluding_tax", "type"),
                            "a line written with the invoice is a description and an amount; lines priced per "
                            "unit are added with POST /v1/invoices/{id}/lines")
                if line.get("type") not in (None, "REVENUE", "DEDUCTION"):
                    raise invalid(f"{where}.type", f"{where}.type must be REVENUE or DEDUCTION")
                unit = _money(line.get("amount_excluding_tax"), f"{where}.amount_excluding_tax", code)
                # the SDK's InvoiceLine never sends a description: a line without one is named generically
                lines.append(_checked({"unit_amount": "amount_excluding_tax.quantity"}, f"{where}.",
                                      description=line.get("description") or DEFAULT_NAME, unit_amount=unit,
                                      deduction=line.get("type") == "DEDUCTION"))
                if len(lines) > MAX_CREATE_LINES:
                    raise invalid("periods", f"a one-off invoice holds at most {MAX_CREATE_LINES} lines")
    return lines


async def _add(key: str, request: Request, caller: Caller) -> Response:
    body = await object_body(request)
    invoice = invoice_named(caller, key)
    line = _line(caller, body, invoice.currency.upper())
    done = await run_in_threadpool(one_off.add_line, caller.store, str(invoice.id), line, caller.now,
                                   caller.environment)
    return _answer(caller, done)


@router.post("/v1/invoices/{key}/lines", summary="Add a line to a one-off draft", openapi_extra=OBJECT_BODY)
async def add_line(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    return await _add(key, request, caller)


@router.post("/v1/invoices/{key}/add-line", summary="Add a line to a one-off draft (as POST .../lines)",
             openapi_extra=OBJECT_BODY)
async def add_line_action(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    return await _add(key, request, caller)


@router.put("/v1/invoices/{key}/lines/{line_id}", summary="Replace a line of a one-off draft",
            openapi_extra=OBJECT_BODY)
async def edit_line(key: str, line_id: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request)
    invoice = invoice_named(caller, key)
    position = _line_position(invoice, line_id)
    line = _line(caller, body, invoice.currency.upper())
    done = await run_in_threadpool(one_off.edit_line, caller.store, str(invoice.id), position, line, caller.now,
                                   caller.environment)
    return _answer(caller, done)


@router.delete("/v1/invoices/{key}/lines/{line_id}", summary="Remove a line from a one-off draft")
async def delete_line(key: str, line_id: str, caller: Caller = Depends(current_caller)) -> Response:
    invoice = invoice_named(caller, key)
    position = _line_position(invoice, line_id)
    done = await run_in_threadpool(one_off.delete_line, caller.store, str(invoice.id), position, caller.now,
                                   caller.environment)
    return _answer(caller, done)


def _order(value: Any, field: str) -> int:
    """A position in delete-line: a whole number (JSON true is no position; taken as 1 it
    removed the second line)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, f"{field} must be a whole number (a position, from 0)")
    return value


@router.post("/v1/invoices/{key}/delete-line",
             summary="Remove one line from a one-off draft, named by period_order, group_order and line_order",
             openapi_extra=OBJECT_BODY)
async def delete_line_action(key: str, request: Request, caller: Caller = Depends(current_caller)) -> Response:
    body = await object_body(request)
    only_fields(body, ("periods",), "a line is named by periods[].groups[].lines[].line_order")
    invoice = invoice_named(caller, key)
    positions = line_positions(invoice)
    named: list[int] = []
    periods = body.get("periods")
    if not isinstance(periods, list) or not periods or len(periods) > 100:
        raise missing("periods", "periods (with groups[].lines[].line_order) is required")
    for p, period in enumerate(periods):
        period = _object(period, f"periods.{p}")
        order = _order(period.get("period_order", 0), f"periods.{p}.period_order")
        for g, group in enumerate(period.get("groups") or []):
            group = _object(group, f"periods.{p}.groups.{g}")
            group_order = _order(group.get("group_order", 0), f"periods.{p}.groups.{g}.group_order")
            for index, line in enumerate(group.get("lines") or []):
                where = f"periods.{p}.groups.{g}.lines.{index}"
                line_order = _order(_object(line, where).get("line_order"), f"{where}.line_order")
                if group_order != 0 or (order, line_order) not in positions:
                    raise not_found("invoice line", f"period {order}, group {group_order}, line "
                                                    f"{line_order}")
                named.append(positions[(order, line_order)])
    if len(named) != 1:
        raise ApiError(400, "INVALID_OPERATION", "delete-line removes one line: name exactly one "
                                                 "(periods[].groups[].lines[].line_order)")
    done = await run_in_threadpool(one_off.delete_line, caller.store, str(invoice.id), named[0], caller.now,
                                   caller.environment)
    return _answer(caller, done)



@router.post("/v1/invoices/charge-on-demand-pricing-items", status_code=201,
             summary="Bill amounts on demand for a subscription's customer now, as a one-off invoice",
             openapi_extra=OBJECT_BODY)
async def charge_on_demand(request: Request, caller: Caller = Depends(current_caller)) -> Response:
    """Each pricing item with its `flexible_amount` becomes a line of a one-off invoice for the
    schedule's customer, in the schedule's currency; `finalize_immediately` finalizes it (numbered,
    its payment collected like any final invoice's). Items priced per unit are billed by the
    invoice run from the plan, so `units` without an amount is refused."""
    body = await object_body(request)
    only_fields(body, ("pricing_plan_schedule_id", "pricing_items", "start_at", "finalize_immediately",
                       "payment_method_id", "preview"), "not a field of charge-on-demand-pricing-items")
    if body.get("payment_method_id") is not None:
        raise invalid("payment_method_id", "payment_method_id: a final invoice is collected from the customer's "
                                           "default Stripe payment method")
    if body.get("preview"):
        raise invalid("preview", "preview: the one-off invoice is written as a draft unless finalize_immediately; "
                                 "look at it, then finalize or void it")
    for name in ("finalize_immediately", "preview"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise invalid(name, f"{name} must be true or false")
    key = body.get("pricing_plan_schedule_id")
    if not isinstance(key, str) or not key.strip():
        raise missing("pricing_plan_schedule_id", "pricing_plan_schedule_id is required")
    param(key, "pricing_plan_schedule_id")
    customer, currency = _schedule_customer(caller, key)
    items = body.get("pricing_items")
    if not isinstance(items, list) or not items or len(items) > MAX_CREATE_LINES:
        raise missing("pricing_items", f"pricing_items must list 1 to {MAX_CREATE_LINES} items")
    start = _instant(body.get("start_at"), "start_at")
    lines = []
    for index, item in enumerate(items):
        where = f"pricing_items.{index}"
        item = _object(item, where)
        only_fields(item, ("pricing_item_id", "flexible_amount", "units"), "not a field of a pricing item")
        if item.get("flexible_amount") is None:
            raise invalid(f"{where}.flexible_amount", f"{where}.flexible_amount is required: ratecard bills an "
                          "on-demand item at the amount given; a plan's per-unit prices are billed by the invoice run")
        code = item.get("pricing_item_id")
        code = one_off.LINE_KIND if code is None else code
        if not isinstance(code, str) or not code:
            raise invalid(f"{where}.pricing_item_id", f"{where}.pricing_item_id must be a string")
        given = _object(item.get("units"), f"{where}.units")
        for name, value in given.items():  # a misspelt `number`, or a `count`, billed one unit
            if name != "number" and value is not None:
                raise invalid(f"{where}.units.{str(name)[:60]}", f"{where}.units.{str(name)[:60]}: ratecard bills "
                                                                 "units.number units of an item")
        units = given.get("number", "1")
        lines.append(_checked({"unit_amount": "flexible_amount.quantity", "quantity": "units.number",
                               "code": "pricing_item_id", "description": "pricing_item_id"}, f"{where}.",
                              description=code if code != one_off.LINE_KIND else DEFAULT_NAME, code=code,
                              quantity=units, service_start=start,
                              unit_amount=_money(item["flexible_amount"], f"{where}.flexible_amount", currency)))
    invoice = await run_in_threadpool(one_off.create_one_off_invoice, caller.store, customer, lines, caller.now,
                                      caller.environment, currency=currency)
    if body.get("finalize_immediately"):
        invoice = (await run_in_threadpool(finalize_invoices, caller.store, [str(invoice.id)], caller.now,
                                           caller.environment)).finalized[0]
    return _answer(caller, invoice, 201)


def _schedule_customer(caller: Caller, key: str) -> tuple[str, str]:
    """(customer, currency) of the plan schedule `key` (a schedule id, or the subscription's reference)."""
    snap = snapshot(caller)
    catalog = snap.catalog
    if catalog is not None:
        for spec in catalog.subscriptions.values():
            row = snap.view.resources.by_reference.get((SUBSCRIPTION, spec.reference))
            for schedule in schedules(caller.environment, spec, row, caller.now):
                if key in (schedule["id"], spec.reference):
                    return spec.customer, schedule["pricing_currency"].upper()
    raise not_found("pricing plan schedule", key)
