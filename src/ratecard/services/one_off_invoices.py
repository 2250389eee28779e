"""One-off invoices: a draft written by hand for a customer (professional services, a set-up fee
outside any subscription), its lines added, edited and deleted while it is a draft.

Money: each line is quantity x unit amount rounded once (the billing entity's rounding); the tax
is the customer's rate on the rounded lines, rounded as the entity says (once per invoice or per
line), like any invoice's. A one-off draft is finalized by hand (`ratecard invoices finalize`,
PATCH status FINAL) and then takes the next gapless number of its entity's sequence; from then on
its lines never change and it is corrected by a credit note.

Lines are edited on one-off drafts only: a subscription's draft is recomputed from usage and the
catalog by every invoice run, which would drop a line written by hand; an extra charge on a
subscription is a one-off charge (`ratecard subscriptions charge`), kept in the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal
from zoneinfo import ZoneInfo

from ..catalog import Catalog
from ..domain.instants import from_micros, to_micros
from ..domain.money import MoneyError, is_currency, to_decimal
from ..domain.one_off import line_amount, line_amount_problem, one_off_totals
from ..store import Store
from ..store.invoices import ONE_OFF, InvoiceRecord, LineRecord
from ..store.one_off_invoices import DraftContent, insert_one_off, rewrite_draft
from . import webhook_events
from .catalog import current_catalog
from .errors import Conflict, InvalidInput, NotFound
from .invoices import find_invoice

__all__ = ["MAX_LINES", "LineInput", "add_line", "create_one_off_invoice", "delete_line", "edit_line",
           "line_input", "retotal_one_off", "service_period"]

MAX_LINES = 500  # lines on one one-off invoice
MAX_TEXT = 500  # characters of a description
MAX_CODE = 100
LIMIT = Decimal(10) ** 12  # a quantity or unit amount beyond a trillion is a typo, not a bill
MAX_DECIMALS = 12
SCALE = Decimal(1).scaleb(-MAX_DECIMALS)
EXACT = Context(prec=40)
LINE_KIND = "one_off"  # the kind of a line written by hand (as a subscription's one-off charge)


@dataclass(frozen=True)
class LineInput:
    """One line as asked for: `unit_amount` x `quantity`; a deduction is billed negative. Its
    service period defaults to the invoice's date."""

    description: str
    unit_amount: Decimal
    quantity: Decimal = Decimal(1)
    code: str = LINE_KIND
    service_start: datetime | None = None
    service_end: datetime | None = None
    deduction: bool = False


def _number(value: object, name: str, *, positive: bool = False) -> Decimal:
    """An exact decimal from a string, an int or a Decimal (a float is refused: it is not exact).
    Zeros written past the allowed scale are dropped when the value is exact at that scale
    ("10.0000000000000" is 10.000000000000); a digit past it is refused."""
    try:
        number = to_decimal(value)
    except MoneyError as exc:
        raise InvalidInput(str(exc), field=name) from None
    if abs(number) >= LIMIT:
        raise InvalidInput(f"{_shown(value)} is out of range (below 10^12)", field=name)
    if -int(number.as_tuple().exponent) > MAX_DECIMALS:
        scaled = number.quantize(SCALE, context=EXACT)  # below 10^12: at most 24 digits, never fails
        if scaled != number:
            raise InvalidInput(f"{_shown(value)} has a digit past the {MAX_DECIMALS} decimals allowed", field=name)
        number = scaled
    if number < 0 or (positive and number == 0):
        raise InvalidInput(f"{value!r} must be {'above' if positive else 'at least'} 0 (a deduction line is "
                           "billed negative)", field=name)
    return number


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: object, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
        raise InvalidInput(f"must be printable text of 1 to {limit} characters", field=name)
    return value.strip()


_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def line_input(*, description: object, unit_amount: object, quantity: object = "1", code: object = LINE_KIND,
               service_start: datetime | None = None, service_end: datetime | None = None,
               deduction: bool = False) -> LineInput:
    """A line checked: printable description and code, a unit amount >= 0 and a quantity > 0
    (exact decimals, bounded, and so is their product, the line's amount: refused on quantity), a
    service period that does not end before it starts."""
    for instant, field in ((service_start, "start_at"), (service_end, "end_at")):
        # a day away from datetime's own ends, so the date in any time zone exists
        if instant is not None and not _EARLIEST <= instant <= _LATEST:
            raise InvalidInput(f"{field} must be between year 1 and year 9999", field=field)
    if service_start is not None and service_end is not None:
        service_period(service_start, service_end, service_start)  # refused here already, before the invoice is read
    text = _text(description, "description", MAX_TEXT)
    amount, units = _number(unit_amount, "unit_amount"), _number(quantity, "quantity", positive=True)
    if (problem := line_amount_problem(units, amount)) is not None:
        raise InvalidInput(problem, field="quantity")
    return LineInput(text, amount, units, _text(code, "code", MAX_CODE), service_start, service_end, deduction)


@dataclass(frozen=True)
class _Terms:
    """How the customer's one-off invoice is priced: currency, rounding and tax."""

    currency: str
    rounding: str
    tax_rate: Decimal
    tax_rounding: str
    timezone: str


def _terms(catalog: Catalog, customer: str, currency: str | None) -> _Terms:
    spec = catalog.customers.get(customer)
    if spec is None:
        raise NotFound(f"customer {customer!r} is not in the applied catalog", field="customer")
    entity = catalog.entity_for(customer)
    code = (currency or spec.currency or "").upper()
    if not code:
        raise InvalidInput(f"customer {customer!r} has no currency: give the invoice's currency", field="currency")
    if not is_currency(code):
        raise InvalidInput(f"{code!r} is not a currency an invoice can be in", field="currency")
    return _Terms(code, entity.rounding, spec.tax_rate if spec.tax_rate is not None else Decimal(0),
                  entity.tax_rounding, spec.timezone or catalog.timezone)


def service_period(start: datetime | None, end: datetime | None, at: datetime) -> tuple[datetime, datetime]:
    """A line's service period on an invoice dated `at`, where a period given without its start
    starts: both given, start <= end; start alone ends at the later of start and `at`; end alone
    must not precede `at` (InvalidInput on end_at); neither is `at` itself."""
    if start is not None and end is not None and end < start:
        raise InvalidInput("the service period ends before it starts", field="end_at")
    if start is None and end is not None and end < at:
        raise InvalidInput(f"end_at {end.isoformat()} is before the invoice's date {at.isoformat()}, where a "
                           "service period without start_at starts: give start_at as well, or an end_at on or after "
                           "the invoice's date", field="end_at")
    begins = start if start is not None else at
    return begins, end if end is not None else max(begins, at)


def _record_line(line: LineInput, terms: _Terms, at: datetime) -> LineRecord:
    start, end = service_period(line.service_start, line.service_end, at)
    unit = -line.unit_amount if line.deduction else line.unit_amount
    zone = ZoneInfo(terms.timezone)
    return LineRecord(code=line.code, description=line.description, kind="discount" if line.deduction else LINE_KIND,
                      service_start=start.astimezone(zone).date().isoformat(),
                      service_end=end.astimezone(zone).date().isoformat(),
                      service_start_ts=to_micros(start), service_end_ts=to_micros(end), quantity=line.quantity,
                      unit_amount=unit, amount=line_amount(line.quantity, unit, terms.currency, terms.rounding))


def _content(lines: Sequence[LineRecord], terms: _Terms, numbers: Sequence[int] | None = None) -> DraftContent:
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"a one-off invoice holds at most {MAX_LINES} lines", field="lines")
    totals = one_off_totals([line.amount for line in lines], terms.tax_rate, terms.currency, terms.rounding,
                            terms.tax_rounding)
    if totals.subtotal < 0:
        raise InvalidInput("the deductions exceed the charges: an invoice is never below zero (what is owed back "
                           "is a credit note on the invoice it corrects)", field="lines")
    return DraftContent(list(lines), totals.subtotal, totals.tax, totals.total, terms.tax_rate,
                        None if numbers is None else list(numbers))


def create_one_off_invoice(store: Store, customer: str, lines: Sequence[LineInput], now: datetime,
                           environment: str = "live", *, currency: str | None = None) -> InvoiceRecord:
    """A one-off draft for a customer of the applied catalog, in `currency` (default: the
    customer's), dated now, with the lines given (none is fine: add them later)."""
    version, catalog = current_catalog(store, environment)
    terms = _terms(catalog, customer, currency)
    content = _content([_record_line(line, terms, now) for line in lines], terms)
    record = InvoiceRecord(
        id=None, number=None, customer=customer, subscription=ONE_OFF, status="draft", currency=terms.currency,
        timezone=terms.timezone, boundary_ts=to_micros(now),
        issue_date=now.astimezone(ZoneInfo(terms.timezone)).date().isoformat(), subtotal=content.subtotal,
        tax=content.tax, total=content.total, tax_rate=content.tax_rate, catalog_version=version,
        lines=content.lines)
    # its invoice.created webhook is queued in the transaction that writes it
    return insert_one_off(store, environment, record, to_micros(now),
                          webhook_events.invoice_step(store, environment, "invoice.created", now))


def _editable(store: Store, reference: str, environment: str) -> InvoiceRecord:
    invoice = find_invoice(store, reference, environment)
    if invoice.status != "draft":
        raise Conflict(f"invoice {invoice.display_number} is {invoice.status}: its lines never change"
                       + ("; correct it by a credit note (credit, or credit_and_copy for a corrected copy)"
                          if invoice.status == "final" else ""))
    if not invoice.is_one_off:
        raise Conflict(f"invoice {invoice.display_number} is a subscription's draft, recomputed from usage and the "
                       "catalog by every invoice run: add a one-off charge to the subscription instead "
                       "(`ratecard subscriptions charge`)")
    return invoice


def _rewrite(store: Store, environment: str, invoice: InvoiceRecord, lines: list[LineRecord], numbers: list[int],
             now: datetime, terms: _Terms) -> InvoiceRecord:
    saved = rewrite_draft(store, environment, invoice.id or 0, invoice.updated_at, _content(lines, terms, numbers),
                          to_micros(now))
    if saved is None:
        raise Conflict(f"invoice {invoice.display_number} changed meanwhile (finalized, voided or edited): nothing "
                       "was written; read it again")
    return saved


def _invoice_terms(store: Store, invoice: InvoiceRecord, environment: str) -> _Terms:
    """The terms the draft is priced at now: its currency, the customer's current tax rate and the
    entity's rounding (a customer the catalog no longer lists keeps the draft's rate)."""
    _, catalog = current_catalog(store, environment)
    if invoice.customer not in catalog.customers:
        entity = catalog.entity_for(invoice.customer)
        return _Terms(invoice.currency, entity.rounding, invoice.tax_rate, entity.tax_rounding, invoice.timezone)
    terms = _terms(catalog, invoice.customer, invoice.currency)
    return _Terms(terms.currency, terms.rounding, terms.tax_rate, terms.tax_rounding, invoice.timezone)


def _at(invoice: InvoiceRecord) -> datetime:
    return from_micros(invoice.boundary_ts)


def _numbers(invoice: InvoiceRecord) -> list[int]:
    return [invoice.line_number(index) for index in range(len(invoice.lines))]


def _index(invoice: InvoiceRecord, number: int) -> int:
    """Where the line numbered `number` is on the draft (NotFound: no line has that number, e.g. it
    was deleted)."""
    numbers = _numbers(invoice)
    if number not in numbers:
        raise NotFound(f"invoice {invoice.display_number} has no such line (deleted, or never written): read the "
                       "invoice again for its lines")
    return numbers.index(number)


def add_line(store: Store, reference: str, line: LineInput, now: datetime, environment: str = "live") -> InvoiceRecord:
    """Add `line` after the others; it takes the number after the highest one on the draft."""
    invoice = _editable(store, reference, environment)
    terms = _invoice_terms(store, invoice, environment)
    numbers = _numbers(invoice)
    return _rewrite(store, environment, invoice, [*invoice.lines, _record_line(line, terms, _at(invoice))],
                    [*numbers, max(numbers, default=-1) + 1], now, terms)


def edit_line(store: Store, reference: str, number: int, line: LineInput, now: datetime,
              environment: str = "live") -> InvoiceRecord:
    """Replace the line numbered `number` (InvoiceRecord.line_number: kept when other lines are
    deleted) by `line`, which keeps that number."""
    invoice = _editable(store, reference, environment)
    index = _index(invoice, number)
    terms = _invoice_terms(store, invoice, environment)
    lines = list(invoice.lines)
    lines[index] = _record_line(line, terms, _at(invoice))
    return _rewrite(store, environment, invoice, lines, _numbers(invoice), now, terms)


def delete_line(store: Store, reference: str, number: int, now: datetime, environment: str = "live") -> InvoiceRecord:
    """Remove the line numbered `number`; the other lines keep theirs."""
    invoice = _editable(store, reference, environment)
    index = _index(invoice, number)
    terms = _invoice_terms(store, invoice, environment)
    return _rewrite(store, environment, invoice, [line for i, line in enumerate(invoice.lines) if i != index],
                    [n for i, n in enumerate(_numbers(invoice)) if i != index], now, terms)


def retotal_one_off(store: Store, reference: str, now: datetime, environment: str = "live") -> InvoiceRecord:
    """A one-off draft priced again at the customer's current tax rate and the entity's rounding
    (its lines' quantities and unit amounts as written)."""
    invoice = _editable(store, reference, environment)
    terms = _invoice_terms(store, invoice, environment)
    lines = [_repriced(line, terms) for line in invoice.lines]
    content = _content(lines, terms, _numbers(invoice))
    if (content.subtotal, content.tax, content.tax_rate) == (invoice.subtotal, invoice.tax, invoice.tax_rate) and \
            all(a.same_as(b) for a, b in zip(lines, invoice.lines, strict=True)):
        return invoice
    return _rewrite(store, environment, invoice, lines, _numbers(invoice), now, terms)


def _repriced(line: LineRecord, terms: _Terms) -> LineRecord:
    amount = line_amount(line.quantity, line.unit_amount, terms.currency, terms.rounding)
    return line if amount == line.amount else LineRecord(**{**line.__dict__, "amount": amount})

