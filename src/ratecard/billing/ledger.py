"""Corrections the invoice run issues by itself: final documents are never edited, so when what
they billed no longer matches what the subscription's terms and stored usage say (a late event,
a backdated change, an end set after a fee was billed in advance, a calendar that moved) the
difference is billed or credited.

The comparison is a ledger per subscription and service period: for every (charge code, service
start, service end), the sum over the subscription's live final documents (invoices, replacements,
credit notes, earlier corrections) against the sum over what its final cuts compute to today. A
cut's prices are those of the catalog version it was finalized under (a later edit of a plan's
price applies to periods billed after it, like Stripe's and Lago's price changes); its calendar,
terms and usage are today's. Fees billed in advance are settled against what the opening invoice
actually billed (its basis), so prorations and minimums read what was billed.

The difference goes on the subscription's next draft (`corrections: next_invoice`, the default)
or, when the run cuts no draft after its last final invoice, or the billing entity asks for
`credit_note`, on documents of their own, final at once: a credit note for what it credits, a
correction invoice for what it charges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from ..catalog import Catalog, MeterSpec, SubscriptionSpec, build_catalog
from ..catalog.stored import catalog_from_json, subscription_entries
from ..domain.aggregation import Usage
from ..domain.dimensions import group_from_json
from ..domain.instants import from_micros, rfc3339, to_micros
from ..domain.invoice import Line
from ..domain.rating import Cut, RatingError, invoice_totals
from ..domain.terms import Basis, terms_at
from ..store import Store
from ..store.catalogs import load_version_text
from ..store.invoices import InvoiceRecord, LineRecord
from ..store.ledger import FinalCut, billed_lines, invoices_by_id, late_instants, save_standalone
from .early import EarlyPlanner

# (charge code, service start µs, service end µs, filter, group): the lines of a charge priced per
# dimension are told apart by their filter and group (domain.dimensions)
LineKey = tuple[str, int, int, str | None, str | None]


class _Versions:
    """Catalog versions as built catalogs, loaded once per run."""

    def __init__(self, store: Store, environment: str, current: Catalog) -> None:
        self.store, self.environment, self.current = store, environment, current
        self.built: dict[int, Catalog | None] = {}
        self.pricing: dict[int, Catalog] = {}
        self.prints: dict[int, dict[str, object]] = {}

    def fingerprint(self, number: int, reference: str) -> object:
        if number not in self.prints:
            self.prints[number] = fingerprints(self.version(number))
        return self.prints[number].get(reference)

    def version(self, number: int) -> Catalog | None:
        if number not in self.built:
            self.built[number] = _stored_version(self.store, self.environment, number)
        return self.built[number]

    def pricing_catalog(self, number: int) -> Catalog:
        """Today's subscriptions and customers with the plan prices (and their discounts) and the
        coupons' terms of version `number`: like a price, an edited coupon applies from the next
        invoice; a discount or coupon attached to a subscription is a term of it, and reaches back."""
        if number not in self.pricing:
            old = self.version(number)
            catalog = self.current
            if old is not None:
                current = self.current.document
                old_plans = {plan.code: plan for plan in old.document.plans}
                old_meters = {meter.code: meter for meter in old.document.meters}
                plans = [old_plans.get(plan.code, plan) for plan in current.plans]
                old_coupons = {coupon.code: coupon for coupon in old.document.coupons}
                # the old terms, but today's promotion codes: they say who took the coupon (a
                # subscription may name a code added since), not what it takes
                coupons = [old_coupons[coupon.code].model_copy(update={"promotion_codes": coupon.promotion_codes})
                           if coupon.code in old_coupons else coupon for coupon in current.coupons]
                meters = [*current.meters, *[m for code, m in old_meters.items()
                                             if code not in {meter.code for meter in current.meters}]]
                try:
                    catalog = build_catalog(current.model_copy(update={"plans": plans, "meters": meters,
                                                                        "coupons": coupons}))
                except (KeyError, ValueError):
                    catalog = self.current  # the old plans no longer fit today's subscriptions
            self.pricing[number] = catalog
        return self.pricing[number]


def _stored_version(store: Store, environment: str, number: int) -> Catalog | None:
    """Catalog version `number` as applied (read as a stored catalog: no model per customer and
    subscription kept); None when there is no such version."""
    loaded = load_version_text(store, environment, number)
    return catalog_from_json(loaded[1]) if loaded is not None else None


def fingerprints(catalog: Catalog | None) -> dict[str, object]:
    """What decides each subscription's cuts and terms: its entry, and the timezone it is billed in."""
    if catalog is None:
        return {}
    # entry by entry: a catalog read from the store is not validated whole for this (its models
    # would hold as much memory as the rest of the run at 100,000 subscriptions)
    return {entry.reference: (entry.model_dump_json(), catalog.subscriptions[entry.reference].timezone)
            for entry in subscription_entries(catalog.source) if entry.reference in catalog.subscriptions}


@dataclass
class Checks:
    """The final cuts the run recomputes, and where each subscription's corrections go."""

    store: Store
    environment: str
    catalog: Catalog
    cuts: list[tuple[SubscriptionSpec, Cut]] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)  # each checked cut's catalog version
    final_ids: list[int | None] = field(default_factory=list)  # each checked cut's final invoice
    final_lines: dict[int, list[LineRecord]] = field(default_factory=dict)
    final_numbers: dict[int, str | None] = field(default_factory=dict)
    carriers: dict[str, int] = field(default_factory=dict)  # subscription -> index of its next live draft
    standalone: dict[str, list[Line]] = field(default_factory=dict)
    latest_final: dict[str, int] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)  # subscriptions no invoice will follow (ended by `until`)
    history: _Versions | None = None

    def split_meters(self) -> list[MeterSpec]:
        """The meters per dimension the checked cuts' own versions charge (their filters or groups may
        differ from today's): each cut is priced with its version's charges, so measured with them."""
        from .run import charged_meters

        found: dict[str, MeterSpec] = {}
        for (subscription, _), version in zip(self.cuts, self.versions, strict=True):
            assert self.history is not None
            pricing = self.history.pricing_catalog(version)
            spec = pricing.subscriptions.get(subscription.reference, subscription)
            for meter in charged_meters(pricing, [spec]):
                if meter.split is not None:
                    found.setdefault(meter.code, meter)
        return list(found.values())

    def adjustments(self, usage: dict[tuple[int, str], Usage], basis: dict[int, dict[str, Basis]], offset: int,
                    failures: list) -> dict[int, list[Line]]:
        """Correction lines per pending cut (by index); the rest kept for documents of their own."""
        from .run import RunFailure, charged_meters, measured_usage, price_cut

        targets: dict[str, dict[LineKey, list]] = defaultdict(dict)
        zones: dict[str, ZoneInfo] = {}
        broken: set[str] = set()
        for number, ((subscription, cut), version) in enumerate(zip(self.cuts, self.versions, strict=True)):
            index = offset + number
            assert self.history is not None
            pricing = self.history.pricing_catalog(version)
            spec = pricing.subscriptions.get(subscription.reference, subscription)
            zones[spec.reference] = ZoneInfo(spec.timezone)
            codes = [meter.code for meter in charged_meters(pricing, [spec])]
            try:
                records = price_cut(pricing, version, spec, cut, measured_usage(usage, index, spec, cut, codes),
                                    basis=basis.get(index))
            except RatingError as exc:
                broken.add(spec.reference)
                failures.append(RunFailure(spec.customer, spec.reference, rfc3339(to_micros(cut.boundary)),
                                           exc.charge, str(exc)))
                continue
            final_id = self.final_ids[number]
            final_number = self.final_numbers.get(final_id) if final_id is not None else None
            # fees billed in advance stand as billed while the cut still opens their period; an
            # end moved onto its boundary leaves the period unrun, and its fee is credited in full
            billed_advance = [line for line in self.final_lines.get(final_id, []) if line.kind == "advance"] \
                if final_id is not None and cut.opening is not None else []
            _add(targets[spec.reference], [(final_number, line) for line in billed_advance])
            for record in records:
                if record.mode == "live":
                    _add(targets[spec.reference], [(final_number, line) for line in record.lines
                                                   if line.kind != "advance"])
        owners = {subscription.reference for subscription, _ in self.cuts} - broken
        billed = billed_lines(self.store, self.environment, owners)
        result: dict[int, list[Line]] = defaultdict(list)
        for reference in sorted(owners):
            was: dict[LineKey, list] = {}
            _add(was, billed.get(reference, []))
            lines = _differences(targets.get(reference, {}), was, zones[reference])
            if not lines:
                continue
            carrier = self.carriers.get(reference)
            # no draft of the subscription after its last final invoice in this run: a document of
            # its own now, rather than a correction left unbilled until some later run
            customer = self.catalog.subscriptions[reference].customer if reference in self.catalog.subscriptions else ""
            if self.catalog.entity_for(customer).corrections == "credit_note" or carrier is None:
                self.standalone[reference] = lines
            else:
                result[carrier] += lines
        return result

    def issue_standalone(self, store: Store, catalog: Catalog, catalog_version: int, now: datetime,
                         report, dry_run: bool = False) -> None:
        """The corrections no draft carries, each as a final document of its own."""
        from .run import to_line_record

        now_us = to_micros(now)
        for reference, lines in sorted(self.standalone.items()):
            subscription = catalog.subscriptions.get(reference)
            if subscription is None:
                continue
            # a credit note only credits and an invoice only charges: the credits and the charges
            # of one correction go on one document each
            for credit, part in ((True, [line for line in lines if line.amount < 0]),
                                 (False, [line for line in lines if line.amount > 0])):
                if not part:
                    continue
                pricing = catalog.pricing_for(subscription)
                totals = invoice_totals(part, pricing)
                record = InvoiceRecord(
                    id=None, number=None, customer=subscription.customer, subscription=reference, status="final",
                    currency=pricing.currency, timezone=subscription.timezone, boundary_ts=now_us,
                    issue_date=now.astimezone(ZoneInfo(subscription.timezone)).date().isoformat(),
                    subtotal=totals.subtotal, tax=totals.tax, total=totals.total, tax_rate=pricing.tax_rate,
                    catalog_version=catalog_version, lines=[to_line_record(line) for line in part],
                    # "correction": an invoice that bills a correction on its own; it stands for no cut
                    kind="credit_note" if credit else "correction", corrects=self.latest_final.get(reference),
                )
                number = None
                if not dry_run:
                    number = save_standalone(store, self.environment, record, now_us,
                                             catalog.credit_note_prefix_for(subscription.customer) if credit
                                             else catalog.invoice_prefix_for(subscription.customer)).number
                report.corrections.append({"subscription": reference, "customer": subscription.customer,
                                           "document": number, "kind": record.kind,
                                           "total": f"{record.total:f}", "lines": len(part)})


def _add(ledger: dict[LineKey, list], lines: Sequence[tuple[str | None, LineRecord]]) -> None:
    """Sum lines per (code, service period): [quantity, amount, description, a document's number]."""
    for number, line in lines:
        key = (line.code, line.service_start_ts, line.service_end_ts, line.filter_code, line.group_values)
        entry = ledger.setdefault(key, [Decimal(0), Decimal(0), line.description, number])
        entry[0] += line.quantity if line.kind in ("usage",) else 0
        entry[1] += line.amount


def _differences(target: dict[LineKey, list], billed: dict[LineKey, list], zone: ZoneInfo) -> list[Line]:
    """One adjustment line per (code, service period) whose billed amount differs from today's."""
    lines = []
    for key in sorted(set(target) | set(billed), key=lambda k: (k[1], k[2], k[0], k[3] or "", k[4] or "")):
        amount = target.get(key, [0, 0])[1] - billed.get(key, [0, 0])[1]
        if amount == 0:
            continue  # amounts are what is owed: a quantity change that costs nothing needs no document
        code, start, end, filter_code, group = key
        entry = billed.get(key) or target.get(key)
        described, number = entry[2], entry[3] or (target.get(key) or entry)[3]
        if described.startswith("Correction"):
            described = (target.get(key) or entry)[2]
        # quantity 1 at the amount: a difference of amounts, whatever the quantities were (a
        # quantity here could not account for earlier corrections, which bill amounts)
        change = ""
        reference = f" of {number}" if number else ""
        lines.append(Line(code=code, description=f"Correction{reference}: {described}{change}",
                          service_start=from_micros(start).astimezone(zone),
                          service_end=from_micros(end).astimezone(zone),
                          quantity=Decimal(1), unit_amount=amount, amount=amount, kind="adjustment",
                          filter=filter_code, group=tuple(group_from_json(group).items()) if group else None))
    return lines


def corrections_to_check(store: Store, catalog: Catalog, environment: str, finals: dict[tuple[str, int], FinalCut],
                         until: date | datetime, pending: Sequence[tuple[SubscriptionSpec, Cut]],
                         existing: dict, early: EarlyPlanner | None = None) -> Checks:
    """The final cuts of every subscription whose terms changed since they were finalized or that
    received late events, and where their corrections can go."""
    from .run import subscription_cuts, until_instant

    checks = Checks(store, environment, catalog, history=_Versions(store, environment, catalog))
    if not finals:
        return checks
    by_subscription: dict[str, list[tuple[int, FinalCut]]] = defaultdict(list)
    for (reference, boundary), final in finals.items():
        by_subscription[reference].append((boundary, final))
    late = late_instants(store, environment)
    history = checks.history
    assert history is not None
    current = fingerprints(catalog)
    checked: list[tuple[str, list[tuple[int, FinalCut]], SubscriptionSpec]] = []
    for reference, owned in sorted(by_subscription.items()):
        subscription = catalog.subscriptions.get(reference)
        if subscription is None:
            continue  # left the catalog: its final invoices stand as they are
        now_print = current.get(reference)
        changed = any(history.fingerprint(version, reference) != now_print
                      for version in {final.catalog_version for _, final in owned})
        last = max(boundary for boundary, _ in owned)
        start = to_micros(subscription.schedule().start)
        touched = any(start <= ts < last for ts in late.get(subscription.customer, ()))
        if changed or touched:
            checked.append((reference, owned, subscription))
    if early is not None:
        # their final periods too, in one roll-up: the early cuts of a period decide its closing
        early.plan_all([subscription for _, _, subscription in checked])
    for reference, owned, subscription in checked:
        checks.latest_final[reference] = max(owned, key=lambda item: item[0])[1].invoice_id
        zone = ZoneInfo(subscription.timezone)
        horizon = until_instant(until, zone)
        if subscription.schedule().end is not None and subscription.schedule().end <= horizon:
            checks.finished.add(reference)
        plans = early.for_subscription(subscription) if early is not None else None
        for cut in subscription_cuts(subscription, horizon, early=plans):
            final = finals.get((reference, to_micros(cut.boundary)))
            if final is not None:
                checks.cuts.append((subscription, cut))
                checks.versions.append(final.catalog_version)
                checks.final_ids.append(final.invoice_id)
        if not any(s.reference == reference for s, _ in checks.cuts):
            # every cut it had moved: what was billed is credited, nothing is recomputed
            checks.cuts.append((subscription, _no_cut(subscription)))
            checks.versions.append(owned[0][1].catalog_version)
            checks.final_ids.append(None)
    ids = [invoice_id for invoice_id in checks.final_ids if invoice_id is not None]
    records = invoices_by_id(store, ids)
    checks.final_lines = {invoice_id: record.lines for invoice_id, record in records.items()}
    checks.final_numbers = {invoice_id: record.number for invoice_id, record in records.items()}
    # the carrier: the first draft after the subscription's last final invoice (the next one sent)
    wanted = {subscription.reference for subscription, _ in checks.cuts}
    last_final = {reference: max(boundary for boundary, _ in owned) for reference, owned in by_subscription.items()}
    for index, (subscription, cut) in enumerate(pending):
        reference = subscription.reference
        boundary = to_micros(cut.boundary)
        found = existing.get((reference, boundary, "live"))
        if reference in wanted and reference not in checks.carriers and boundary > last_final[reference] \
                and (found is None or found[1] == "draft"):
            checks.carriers[reference] = index
    return checks


def _no_cut(subscription: SubscriptionSpec) -> Cut:
    """A cut that bills nothing (for a subscription whose final cuts all moved)."""
    moment = subscription.schedule().start
    return Cut(moment, None, None)


def opening_basis(store: Store, environment: str, finals: dict[tuple[str, int], FinalCut],
                  placed: Sequence[tuple[SubscriptionSpec, Cut]], history: _Versions | None = None
                  ) -> dict[int, dict[str, Basis]]:
    """For closing cuts whose period's opening invoice is final, what it billed in advance — only
    where it matters: a period whose terms change, that ends early, or that has a minimum."""
    wanted: dict[int, tuple[SubscriptionSpec, Cut, FinalCut]] = {}
    for index, (subscription, cut) in enumerate(placed):
        period = cut.closing or cut.settles
        if period is None:
            continue
        final = finals.get((subscription.reference, to_micros(period.start)))
        if final is None or not _needs_basis(subscription, period):
            continue
        wanted[index] = (subscription, cut, final)
    records = invoices_by_id(store, sorted({final.invoice_id for _, _, final in wanted.values()}))
    result: dict[int, dict[str, Basis]] = {}
    built: dict[int, Catalog | None] = {}
    for index, (subscription, cut, final) in wanted.items():
        period = cut.closing or cut.settles
        assert period is not None
        record = records.get(final.invoice_id)
        if record is None:
            continue
        if final.catalog_version not in built:
            built[final.catalog_version] = _stored_version(store, environment, final.catalog_version)
        old = built[final.catalog_version]
        plan_code = None
        if old is not None and subscription.reference in old.subscriptions:
            terms = old.subscriptions[subscription.reference].terms()
            plan_code = terms[terms_at(terms, period.start)].plan.code
        zone = ZoneInfo(subscription.timezone)
        start = to_micros(period.start)
        # a fee's full-period amount: its unit amount times the seats it was billed for
        result[index] = {line.code: Basis(line.unit_amount * line.quantity, line.amount,
                                          from_micros(line.service_end_ts).astimezone(zone), plan_code)
                         for line in record.lines if line.kind == "advance" and line.service_start_ts == start}
    return result


def _needs_basis(subscription: SubscriptionSpec, period) -> bool:
    if len(subscription.terms()) > 1 or period.end < period.full_end:  # a change, or a trial's end
        return True
    return any(phase.plan.minimum for phase in subscription.phases())
