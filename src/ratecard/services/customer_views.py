"""The console's customer pages: the customer list (searched and paged in the database) and one
customer's subscriptions, usage this period, upcoming invoice and invoices.

Each part reuses the use case the CLI and the API answer with: subscriptions_of for the terms
(with their `changes`), show_subscription for the catalog versions that changed one,
preview_invoices for the upcoming invoice (and the period and usage per meter it measures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ..catalog import Catalog, CustomerSpec, SubscriptionSpec
from ..domain.instants import to_micros
from ..domain.periods import to_local
from ..store import Store
from ..store.customer_views import InvoiceFigures, daily_events, invoice_figures, page_customers
from ..store.invoice_views import InvoiceSummary, page_invoices
from .errors import NotFound, ServiceError
from .preview import UpcomingInvoices, preview_invoices
from .subscription_changes import History, show_subscription, subscriptions_of

PAGE_SIZE = 50
MAX_SEARCH = 200


@dataclass
class CustomerListRow:
    reference: str
    name: str | None
    currency: str  # the customer's own, else its plans' ('' when neither is known)
    plans: list[str]
    figures: InvoiceFigures


@dataclass
class CustomerList:
    rows: list[CustomerListRow]
    page: int
    has_more: bool
    search: str


def list_customers(store: Store, environment: str, catalog: Catalog | None, now: datetime, *, search: str = "",
                   page: int = 1) -> CustomerList:
    """A page of the current catalog's customers whose reference or name holds `search`, each with
    the plans in force now, its open drafts and its last final invoice's total."""
    search = search.strip()[:MAX_SEARCH]
    found = page_customers(store, environment, search, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE)
    shown = found[:PAGE_SIZE]
    references = [row.reference for row in shown]
    plans: dict[str, list[str]] = {reference: [] for reference in references}
    currencies: dict[str, str] = {}
    if catalog is not None:
        # the page's customers' subscriptions, from the catalog the process keeps built (a lookup
        # per subscription, no parse of the document)
        for spec in catalog.subscriptions.values():
            if spec.customer not in plans or _ended(spec, now):
                continue
            code = plan_in_force(spec, now)
            if code not in plans[spec.customer]:
                plans[spec.customer].append(code)
            currencies.setdefault(spec.customer, spec.plan.currency)
    figures = invoice_figures(store, environment, references)
    rows = [CustomerListRow(row.reference, row.name, row.currency or currencies.get(row.reference, ""),
                            plans[row.reference], figures[row.reference]) for row in shown]
    return CustomerList(rows, page, len(found) > PAGE_SIZE, search)


def plan_in_force(spec: SubscriptionSpec, now: datetime) -> str:
    """The plan of the subscription's latest phase begun by `now` (its first before it starts)."""
    zone = ZoneInfo(spec.timezone)
    code = spec.plan_code
    for phase in spec.changes:
        if to_local(phase.at, zone) <= now:
            code = phase.plan_code
    return code


def _ended(spec: SubscriptionSpec, now: datetime) -> bool:
    return spec.end is not None and to_local(spec.end, ZoneInfo(spec.timezone)) <= now


# ---------------------------------------------------------------- one customer


@dataclass
class UsageChart:
    """Matched events per day and event meter over [start, end): `series[i][j]` is meter i on day j."""

    start: datetime
    end: datetime
    labels: list[str]
    meters: list[str]
    series: list[list[int]]


@dataclass
class CustomerDetail:
    customer: CustomerSpec
    catalog_version: int
    subscriptions: list[dict[str, Any]]  # subscriptions_of's terms: plan, start, end, changes, status, plan_now
    upcoming: UpcomingInvoices | None
    upcoming_reason: str | None  # why there is no upcoming invoice
    chart: UsageChart | None
    invoices: list[InvoiceSummary]
    page: int
    has_more: bool
    history: History | None = None  # the catalog versions of the subscription asked about
    # (subscription, meter, quantity, events) over each subscription's current period so far
    usage: list[tuple[str, str, Decimal, int]] = field(default_factory=list)


def customer_detail(store: Store, environment: str, version: int | None, catalog: Catalog | None, reference: str,
                    now: datetime, *, page: int = 1, history_of: str | None = None) -> CustomerDetail:
    """One customer of the environment's current catalog; NotFound when it has none or no such customer."""
    if catalog is None or version is None or reference not in catalog.customers:
        raise NotFound(f"there is no customer {reference[:200]!r} in the {environment} catalog")
    subscriptions = subscriptions_of(catalog, now, reference)
    upcoming: UpcomingInvoices | None = None
    reason: str | None = None
    try:
        upcoming = preview_invoices(store, reference, None, now, environment, catalog=catalog,
                                    catalog_version=version)
    except ServiceError as exc:
        reason = exc.message
    if upcoming is not None and not upcoming.subscriptions:
        reason = "nothing to preview: none of the customer's subscriptions is in a billing period now"
        upcoming = None
    usage: list[tuple[str, str, Decimal, int]] = []
    chart = None
    if upcoming is not None:
        for preview in upcoming.subscriptions:
            usage += [(preview.subscription, meter.meter, meter.quantity, meter.events) for meter in preview.usage]
        start = min(preview.period.start for preview in upcoming.subscriptions)
        end = min(now, max(preview.period.end for preview in upcoming.subscriptions))
        chart = usage_chart(store, environment, reference, start, end)
    history = None
    if history_of is not None:
        if not any(terms["reference"] == history_of for terms in subscriptions):
            raise NotFound(f"customer {reference[:200]!r} has no subscription {history_of[:200]!r}")
        history = show_subscription(store, now, history_of, environment)
    invoices = page_invoices(store, environment, customer=reference, limit=PAGE_SIZE + 1,
                             offset=(page - 1) * PAGE_SIZE)
    return CustomerDetail(catalog.customers[reference], version, subscriptions, upcoming, reason, chart,
                          invoices[:PAGE_SIZE], page, len(invoices) > PAGE_SIZE, history, usage)


def usage_chart(store: Store, environment: str, customer: str, start: datetime, end: datetime) -> UsageChart:
    """The customer's matched events per day (days counted from `start`, labelled in its timezone)
    and event meter, from one grouped query."""
    days = max(1, -(-(to_micros(end) - to_micros(start)) // 86_400_000_000)) if end > start else 0
    rows = daily_events(store, environment, customer, to_micros(start), to_micros(end)) if days else []
    meters = sorted({meter for _, meter, _ in rows})
    series = [[0] * days for _ in meters]
    index = {meter: position for position, meter in enumerate(meters)}
    for day, meter, count in rows:
        if 0 <= day < days:
            series[index[meter]][day] = count
    labels = [(start + timedelta(days=day)).date().isoformat() for day in range(days)]
    return UsageChart(start, end, labels, meters, series)
