"""What an invoice document says, gathered once for every format (PDF, UBL, CII): the seller and
the buyer as the catalog version of the invoice describes them, the lines with their service dates,
the tax breakdown by rate and the totals, as stored. Formats only lay these out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from zoneinfo import ZoneInfo

from ..catalog import Catalog
from ..catalog.schema import Address, BillingEntity
from ..domain.instants import MICROSECOND
from ..domain.money import minor_units
from ..domain.tiers import TierPart, parts_from_json
from ..store.invoices import InvoiceRecord


class DocumentError(ValueError):
    """The invoice cannot be turned into this document (a sentence for the user)."""


@dataclass(frozen=True)
class Party:
    name: str
    legal_name: str
    address: Address | None
    country: str | None  # the address's, else the one the catalog gives without an address
    tax_id: str | None
    reference: str | None = None  # the customer's reference in the catalog
    email: str | None = None
    peppol_id: str | None = None  # scheme:identifier of a Peppol participant


@dataclass(frozen=True)
class DocumentLine:
    position: int
    code: str
    description: str
    kind: str
    service_start: date  # first day of service, in the invoice's timezone
    service_end: date  # last day of service (inclusive), in the invoice's timezone
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal
    tiers: tuple[TierPart, ...] = ()  # a tiered usage line's parts, exact (none for lines stored before)


@dataclass(frozen=True)
class TaxRow:
    rate: Decimal  # percent
    taxable: Decimal
    tax: Decimal


@dataclass(frozen=True)
class InvoiceView:
    number: str
    is_draft: bool
    is_credit_note: bool
    kind: str  # invoice | credit_note | correction
    status: str
    currency: str
    digits: int  # the currency's minor units
    issue_date: date
    due_date: date | None
    seller: Party
    buyer: Party
    entity: BillingEntity
    lines: tuple[DocumentLine, ...]
    taxes: tuple[TaxRow, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    corrects_number: str | None  # the invoice a credit note or replacement corrects
    corrects_issue_date: date | None
    period_start: date | None
    period_end: date | None


def _local_day(text: str, zone: ZoneInfo, *, exclusive_end: bool = False) -> date:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if exclusive_end:
        moment -= MICROSECOND  # [start, end): the last day of service is the one before the end instant
    return moment.astimezone(zone).date()


def seller_party(entity: BillingEntity) -> Party:
    country = entity.address.country if entity.address else entity.country
    return Party(entity.name, entity.legal_name or entity.name, entity.address, country, entity.tax_id,
                 peppol_id=entity.peppol_id)


def buyer_party(catalog: Catalog, customer: str) -> Party:
    spec = catalog.customers.get(customer)
    if spec is None:  # a customer a later catalog version no longer lists: the reference is all there is
        return Party(customer, customer, None, None, None, reference=customer)
    country = spec.address.country if spec.address else spec.country
    name = spec.name or customer
    return Party(name, name, spec.address, country, spec.tax_id, reference=customer, email=spec.email,
                 peppol_id=spec.peppol_id)


def tax_rows(lines: Sequence[DocumentLine], rate: Decimal, tax: Decimal) -> tuple[TaxRow, ...]:
    """The breakdown by rate: an invoice is taxed at one rate (its customer's), so one row holding
    every line and the invoice's tax as stored (rounded per invoice or per line, as the entity says)."""
    with localcontext() as context:
        context.prec = 100  # an exact sum: amounts reach 40 digits
        taxable = sum((line.amount for line in lines), Decimal(0))
    return (TaxRow(rate, taxable, tax),)


def invoice_view(invoice: InvoiceRecord, catalog: Catalog, corrected: InvoiceRecord | None = None) -> InvoiceView:
    """The document of a stored invoice, its parties from `catalog` (the version it was computed with)."""
    zone = ZoneInfo(invoice.timezone)
    entity = catalog.entity_for(invoice.customer)
    lines = tuple(
        DocumentLine(index + 1, line.code, line.description, line.kind,
                     _local_day(line.service_start, zone), _local_day(line.service_end, zone, exclusive_end=True),
                     line.quantity, line.unit_amount, line.amount, parts_from_json(line.tiers))
        for index, line in enumerate(invoice.lines)
    )
    issue = date.fromisoformat(invoice.issue_date)
    starts = [line.service_start for line in lines]
    ends = [max(line.service_end, line.service_start) for line in lines]
    is_credit = invoice.kind == "credit_note"
    return InvoiceView(
        number=invoice.display_number, is_draft=invoice.status != "final", is_credit_note=is_credit,
        kind=invoice.kind, status=invoice.status, currency=invoice.currency, digits=minor_units(invoice.currency),
        issue_date=issue,
        due_date=None if is_credit else issue + timedelta(days=entity.payment_terms_days),
        seller=seller_party(entity), buyer=buyer_party(catalog, invoice.customer), entity=entity, lines=lines,
        taxes=tax_rows(lines, invoice.tax_rate, invoice.tax), subtotal=invoice.subtotal, tax=invoice.tax,
        total=invoice.total,
        corrects_number=corrected.display_number if corrected is not None else None,
        corrects_issue_date=date.fromisoformat(corrected.issue_date) if corrected is not None else None,
        period_start=min(starts) if starts else None, period_end=max(ends) if ends else None,
    )
