"""An invoice run: every cut at a boundary <= until, priced from usage aggregated in SQL.

Cuts whose invoice is final or void are never recomputed; drafts are recomputed and
rewritten only when their content changed, so running twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..catalog import Catalog, MeterSpec, SubscriptionSpec
from ..catalog.model import split_meter
from ..collector import cyclic_gc_paused
from ..domain.aggregation import Usage
from ..domain.dimensions import group_json
from ..domain.early import EarlyPlan, with_early
from ..domain.instants import from_micros, rfc3339, to_micros
from ..domain.invoice import Line
from ..domain.rating import Cut, Pricing, RatingError, invoice_cuts, invoice_totals, rate_cut
from ..domain.terms import INVOICE_NOW, Basis, segments
from ..domain.tiers import parts_json
from ..store import Store
from ..store.invoices import (
    InvoiceRecord,
    LineRecord,
    billed_line_keys,
    delete_drafts,
    draft_reference,
    existing_cuts,
    save_drafts,
)
from ..store.ledger import final_cuts, invoices_by_id
from ..store.modes import BillingModes, load_modes, mode_for
from ..store.usage import Window, aggregate_usage, all_rolled_up
from .early import EarlyPlanner
from .ledger import corrections_to_check, opening_basis

WRITE_BATCH = 2000


@dataclass
class RunReport:
    until: str
    subscriptions: int = 0
    cuts: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_final: int = 0
    removed: int = 0  # drafts today's cuts no longer produce, or left without lines
    dry_run: bool = False
    invoices: list[InvoiceRecord] = field(default_factory=list)
    # each removed draft and why; each correction of what final documents billed
    removals: list[dict] = field(default_factory=list)
    corrections: list[dict] = field(default_factory=list)
    # cuts that could not be priced: skipped (their drafts left as they were), every other one invoiced
    failures: list[RunFailure] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "until": self.until,
            "subscriptions": self.subscriptions,
            "cuts": self.cuts,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped_final": self.skipped_final,
            "removed": self.removed,
            "dry_run": self.dry_run,
            "removals": self.removals,
            "corrections": self.corrections,
            "failures": [failure.as_dict() for failure in self.failures],
        }


@dataclass(frozen=True)
class RunFailure:
    """One subscription's invoice at one boundary that could not be priced, and why."""

    customer: str
    subscription: str
    boundary: str  # RFC 3339
    charge: str  # the line at fault (a charge code, "minimum" or "tax")
    reason: str

    def as_dict(self) -> dict:
        return {"customer": self.customer, "subscription": self.subscription, "boundary": self.boundary,
                "charge": self.charge, "reason": self.reason}


class HorizonError(ValueError):
    """An invoice run reaching too far into the future."""


# Drafts for boundaries beyond this are almost always a typo (2062 for 2026) and would create
# one invoice per period per subscription up to that date.
MAX_AHEAD = timedelta(days=366)


def check_horizon(until: date | datetime, now: datetime) -> None:
    last = until.date() if isinstance(until, datetime) else until
    limit = (now + MAX_AHEAD).date()
    if last > limit:
        raise HorizonError(f"--until {last.isoformat()} is more than a year ahead (latest allowed: "
                           f"{limit.isoformat()}); drafts are cut at boundaries that have come or are near")


def until_instant(until: date | datetime, tz: ZoneInfo) -> datetime:
    """Boundaries on or before DATE: everything before the next local midnight."""
    if isinstance(until, datetime):
        if until.tzinfo is None:
            raise ValueError("--until datetime needs a timezone offset")
        return until.astimezone(tz)
    return datetime.combine(until + timedelta(days=1), time(0), tzinfo=tz) - timedelta(microseconds=1)


def to_line_record(line: Line) -> LineRecord:
    return LineRecord(
        code=line.code,
        description=line.description,
        kind=line.kind,
        service_start=line.service_start.date().isoformat(),
        service_end=line.service_end.date().isoformat(),
        service_start_ts=to_micros(line.service_start),
        service_end_ts=to_micros(line.service_end),
        quantity=line.quantity,
        unit_amount=line.unit_amount,
        amount=line.amount,
        tiers=parts_json(line.tiers),
        filter_code=line.filter,
        group_values=group_json(line.group),
    )


def generate_invoices(
    store: Store,
    catalog: Catalog,
    catalog_version: int,
    until: date | datetime,
    now: datetime,
    *,
    environment: str = "live",
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    dry_run: bool = False,
    owned: Collection[str] | None = None,
    pause_gc: bool = False,
    then: Callable[[Any, list[InvoiceRecord]], None] | None = None,
) -> RunReport:
    """Create or refresh every draft due at boundaries <= until, remove the drafts today's cuts no
    longer produce and correct final invoices that no longer match. `dry_run`: the same report,
    nothing written (what a catalog change would do to invoices). `owned`: the subscriptions this
    call bills, a share of a run split between workers (billing.claims); the invoices of every
    other subscription are left to their owner, so none is taken for a draft to remove.
    `pause_gc`: for a process that does nothing else meanwhile (`ratecard invoices generate`), see
    cyclic_gc_paused. `then`: what each batch's new drafts write in the batch's transaction (their
    webhook deliveries)."""
    if pause_gc:
        with cyclic_gc_paused():
            return generate_invoices(store, catalog, catalog_version, until, now, environment=environment,
                                     on_progress=on_progress, on_total=on_total, dry_run=dry_run, owned=owned,
                                     then=then)
    check_horizon(until, now)
    report = RunReport(until=until.isoformat(), dry_run=dry_run)
    existing = existing_cuts(store, environment)
    if owned is not None:
        existing = {key: found for key, found in existing.items() if key[0] in owned}
    modes = load_modes(store, environment)
    finals = final_cuts(store, environment)
    early = EarlyPlanner(store, catalog, until, environment, existing, finals)
    early.plan_open()
    pending, produced = _pending_cuts(catalog, until, existing, modes, report, early)
    stale = _stale_drafts(catalog, existing, produced, report, until, early)
    if on_total is not None:
        on_total(len(pending))
    billed_live = _billed_live(store, environment, existing, pending)
    checks = corrections_to_check(store, catalog, environment, finals, until, pending, existing, early)
    basis = opening_basis(store, environment, finals, [*pending, *checks.cuts])
    usage = _usage(store, catalog, [*pending, *checks.cuts], environment, checks.split_meters())
    adjustments = checks.adjustments(usage, basis, len(pending), report.failures)
    for index, lines in sorted(adjustments.items()):
        subscription, cut = pending[index]
        report.corrections.append({"subscription": subscription.reference, "customer": subscription.customer,
                                   "document": "draft", "boundary": rfc3339(to_micros(cut.boundary)),
                                   "kind": "adjustment", "total": f"{sum(line.amount for line in lines):f}",
                                   "lines": len(lines)})
    priced = _price_pending(catalog, catalog_version, pending, modes, billed_live, usage, basis, adjustments,
                            report.failures)
    _write_drafts(store, environment, pending, priced, existing, to_micros(now), report, on_progress, stale, then)
    checks.issue_standalone(store, catalog, catalog_version, now, report, dry_run)
    return report


def _usage(store: Store, catalog: Catalog, placed: Sequence[tuple[SubscriptionSpec, Cut]],
           environment: str, extra: Sequence[MeterSpec] = ()) -> dict[tuple[int, str], Usage]:
    """The roll-up of every segment of every closing period among the cuts, in one pass. `extra`:
    meters of other catalog versions (a final cut is checked at its version's prices and dimensions)."""
    meters = charged_meters(catalog, (subscription for subscription, _ in placed))
    known = {meter.code for meter in meters}
    meters += [meter for meter in extra if meter.code not in known]
    windows = usage_windows(placed)
    if len(windows) <= USAGE_CHUNK or not all_rolled_up(store, meters, environment):
        return aggregate_usage(store, windows, meters, environment)
    usage: dict[tuple[int, str], Usage] = {}
    for chunk in by_customers(windows, USAGE_CHUNK):
        usage.update(aggregate_usage(store, chunk, meters, environment))
    return usage


# From roll-ups, the usage of at most about this many windows is read at once: the read's working
# memory (rows, partial aggregates per window and dimension) grows with its windows, about 2.4 KB
# each (at 100,000 subscriptions one read peaked 240 MiB above the run). Raw events are read in
# one go: on SQLite each read scans the period's events (five chunks cost 2.6x the CPU of one read
# at 100,000 subscriptions, for no less memory).
USAGE_CHUNK = 10_000


def by_customers(windows: list[Window], size: int) -> list[list[Window]]:
    """The windows in chunks of about `size` (more when a customer's windows cross it), all of a
    customer's windows in one chunk, as a shared run's batches are (billing.claims): each chunk is
    read as a run of those customers alone would read it."""
    chunks: list[list[Window]] = []
    chunk_of: dict[str, list[Window]] = {}
    for window in windows:
        chunk = chunk_of.get(window.customer)
        if chunk is None:
            if not chunks or len(chunks[-1]) >= size:
                chunks.append([])
            chunk = chunk_of[window.customer] = chunks[-1]
        chunk.append(window)
    return chunks


def subscription_cuts(subscription: SubscriptionSpec, until: datetime,
                      calendars: dict[tuple, list[Cut]] | None = None,
                      early: dict[int, EarlyPlan] | None = None) -> list[Cut]:
    """The subscription's cuts up to `until`; subscriptions on the same calendar share them.
    `early`: its early cuts' plans by period start (see billing.early), merged in."""
    if early is not None:
        return with_early(subscription_cuts(subscription, until, calendars), early)
    schedule = subscription.schedule()
    terms = subscription.terms()
    # equal aware datetimes in one zone may differ in fold (a repeated hour): keep it in the key;
    # a change invoiced at once adds a cut of its own
    calendar = (schedule, schedule.start.fold, schedule.end.fold if schedule.end is not None else 0,
                tuple(item.start for item in terms if item.proration == INVOICE_NOW), until)
    cuts = calendars.get(calendar) if calendars is not None else None
    if cuts is None:
        cuts = invoice_cuts(schedule, until, terms)
        if calendars is not None:
            calendars[calendar] = cuts
    return cuts


def _pending_cuts(catalog: Catalog, until: date | datetime, existing: dict, modes: BillingModes,
                  report: RunReport, early: EarlyPlanner | None = None
                  ) -> tuple[list[tuple[SubscriptionSpec, Cut]], set[tuple[str, int]]]:
    """Every cut up to `until` that still has a draft to compute or refresh (counted in the report),
    and every (subscription, boundary) today's cuts produce."""
    pending: list[tuple[SubscriptionSpec, Cut]] = []
    produced: set[tuple[str, int]] = set()
    calendars: dict[tuple, list[Cut]] = {}
    for subscription in catalog.subscriptions.values():
        report.subscriptions += 1
        zone = ZoneInfo(subscription.timezone)
        plans = early.for_subscription(subscription) if early is not None else None
        for cut in subscription_cuts(subscription, until_instant(until, zone), calendars, plans):
            report.cuts += 1
            boundary = to_micros(cut.boundary)
            produced.add((subscription.reference, boundary))
            parts = cut_modes(cut, modes.live_from(subscription.customer, zone))
            stale = any(_draft(existing.get((subscription.reference, boundary, mode)))
                        for mode in MODES - parts)  # a draft the customer's mode no longer produces
            if not stale and all(_settled(existing.get((subscription.reference, boundary, mode))) for mode in parts):
                report.skipped_final += 1
                continue
            pending.append((subscription, cut))
    return pending, produced


def _stale_drafts(catalog: Catalog, existing: dict, produced: set[tuple[str, int]], report: RunReport,
                  until: date | datetime | None = None, early: EarlyPlanner | None = None) -> list[int]:
    """Drafts today's cuts no longer produce (the subscription left the catalog, or its calendar
    or terms moved the boundary): removed by the run, each reported. A draft past this run's
    horizon is kept while its subscription's calendar still has that boundary; an early draft
    (threshold, usage in advance) past it is kept as it is, until a run reaching it decides."""
    later: dict[str, int] = {}
    for (reference, boundary, _mode), (_id, status, _number) in existing.items():
        if status == "draft" and (reference, boundary) not in produced and reference in catalog.subscriptions:
            subscription = catalog.subscriptions[reference]
            if early is not None and until is not None and subscription.bills_early and \
                    boundary > to_micros(until_instant(until, ZoneInfo(subscription.timezone))):
                produced.add((reference, boundary))
                continue
            later[reference] = max(later.get(reference, boundary), boundary)
    beyond: set[tuple[str, int]] = set()
    for reference, last in later.items():
        subscription = catalog.subscriptions[reference]
        horizon = from_micros(last).astimezone(ZoneInfo(subscription.timezone))
        beyond.update((reference, to_micros(cut.boundary)) for cut in subscription_cuts(subscription, horizon))
    stale = []
    for (reference, boundary, mode), (invoice_id, status, number) in sorted(existing.items()):
        if status != "draft" or (reference, boundary) in produced or (reference, boundary) in beyond:
            continue
        why = ("its subscription is no longer in the catalog" if reference not in catalog.subscriptions
               else "the subscription's calendar, terms or usage so far no longer cut an invoice at this boundary"
               if catalog.subscriptions[reference].bills_early
               else "the subscription's calendar or terms no longer cut an invoice at this boundary")
        stale.append(invoice_id)
        report.removals.append({"invoice": draft_reference(number), "id": invoice_id, "subscription": reference,
                                "boundary": rfc3339(boundary), "mode": mode, "reason": why})
    return stale


# a window's key: the cut's index in the run times this, plus the segment's index in its period
SEGMENTS = 1024


def usage_windows(placed: Sequence[tuple[SubscriptionSpec, Cut]]) -> list[Window]:
    """The usage windows of each cut that closes a period, one per segment of its terms, keyed
    by the cut's index in `placed` (see SEGMENTS)."""
    windows = []
    for index, (subscription, cut) in enumerate(placed):
        if cut.closing is None:
            continue
        parts = segments(subscription.terms(), cut.closing)[:SEGMENTS]
        # each event is billed by one subscription: the one it names, else the one taking unnamed events
        windows += [Window(index * SEGMENTS + number, subscription.customer, to_micros(part.start),
                           to_micros(part.end), subscription.reference, not subscription.requires_reference)
                    for number, part in enumerate(parts)]
    return windows


def measured_usage(usage: dict[tuple[int, str], Usage], index: int, subscription: SubscriptionSpec, cut: Cut,
                   meters: Iterable[str]) -> list[dict[str, Usage]]:
    """The usage of each segment of a cut's closing period, from the run's roll-up."""
    if cut.closing is None:
        return []
    count = len(segments(subscription.terms(), cut.closing))
    return [{code: usage.get((index * SEGMENTS + number, code), Usage.zero()) for code in meters}
            for number in range(count)]


def charged_meters(catalog: Catalog, subscriptions: Iterable[SubscriptionSpec]) -> list[MeterSpec]:
    """The meters the subscriptions' plans charge for, in code order; a charge priced per dimension
    adds a meter of its own (see split_meter), measured per (filter, group)."""
    used: dict[str, MeterSpec] = {}
    for subscription in subscriptions:
        for phase in subscription.phases():
            for charge in phase.plan.charges:
                if not charge.meter or charge.usage_key in used:
                    continue
                meter = catalog.meters[charge.meter]
                used[charge.usage_key] = split_meter(meter, charge) if charge.is_split else meter
    return [used[code] for code in sorted(used)]


def _price_pending(catalog: Catalog, catalog_version: int, pending: list[tuple[SubscriptionSpec, Cut]],
                   modes: BillingModes, billed_live: dict[int, frozenset[tuple[str, int]]],
                   usage: dict[tuple[int, str], Usage], basis: dict[int, dict[str, Basis]],
                   adjustments: dict[int, list[Line]], failures: list[RunFailure]
                   ) -> Iterator[list[InvoiceRecord] | None]:
    """The invoices of each pending cut, in order; None for a cut that could not be priced (added
    to `failures`): one subscription's data never stops the run for the others."""
    codes = [meter.code for meter in charged_meters(catalog, (subscription for subscription, _ in pending))]
    cache = PriceCache()
    for index, (subscription, cut) in enumerate(pending):
        try:
            yield price_cut(catalog, catalog_version, subscription, cut,
                            measured_usage(usage, index, subscription, cut, codes), modes, billed_live.get(index),
                            basis=basis.get(index), extra=adjustments.get(index, ()), cache=cache)
        except RatingError as exc:
            failures.append(RunFailure(subscription.customer, subscription.reference,
                                       rfc3339(to_micros(cut.boundary)), exc.charge, str(exc)))
            yield None


def _write_drafts(store: Store, environment: str, pending: list[tuple[SubscriptionSpec, Cut]],
                  priced: Iterable[list[InvoiceRecord] | None], existing: dict, now_us: int, report: RunReport,
                  on_progress: Callable[[int], None] | None, stale: list[int],
                  then: Callable[[Any, list[InvoiceRecord]], None] | None = None) -> None:
    """Write the drafts in batches of WRITE_BATCH, then remove the drafts left without lines.
    A cut that could not be priced (None) keeps its drafts as they were.

    PostgreSQL: a batch is written on a second thread while the next one is priced (the server
    stores the rows while Python prices; the driver waits without the GIL). One batch at a time,
    in order: the next is handed over only once the previous one is committed, so the invoices get
    the same ids and draft numbers as when written in line, and a failed write stops the run."""
    batch: list[InvoiceRecord] = []
    emptied: list[int] = list(stale)
    done = 0  # cuts priced since the last progress report
    writer = _Writer(store, environment, now_us, report, on_progress, then)
    try:
        for (subscription, cut), records in zip(pending, priced, strict=True):
            if records is not None:
                _sort_out(subscription, cut, records, existing, batch, emptied)
            done += 1
            if len(batch) >= WRITE_BATCH:
                writer.write(batch, done)
                batch = []
                done = 0
        writer.write(batch, 0)
        writer.wait()
    finally:
        writer.close()
    if emptied:
        report.removed = len(emptied) if report.dry_run else delete_drafts(store, environment, emptied)
    if on_progress is not None and done:
        on_progress(done)


def _sort_out(subscription: SubscriptionSpec, cut: Cut, records: list[InvoiceRecord], existing: dict,
              batch: list[InvoiceRecord], emptied: list[int]) -> None:
    """One cut's invoices to (re)write as drafts go to `batch`; its drafts no mode produces any
    more go to `emptied`. A final or void invoice is never recomputed."""
    produced = set()
    for record in records:
        produced.add(record.mode)
        found = existing.get((subscription.reference, record.boundary_ts, record.mode))
        if _settled(found):
            continue  # this part's invoice is final or void: never recomputed
        record.id = found[0] if found else None
        batch.append(record)
    for mode in MODES - produced:
        found = existing.get((subscription.reference, to_micros(cut.boundary), mode))
        if _draft(found):
            # e.g. a cutover moved these lines to the legacy system: the draft has nothing left
            emptied.append(found[0])


MODES = frozenset(("live", "shadow"))


def _billed_live(store: Store, environment: str, existing: dict, pending: list[tuple[SubscriptionSpec, Cut]]
                 ) -> dict[int, frozenset[tuple[str, int]]]:
    """For pending cuts whose live invoice is final: the (code, service start) it billed.

    A period ratecard has billed on a final invoice stays ratecard's whatever the customer's mode
    says now (after a rollback, say): it is never computed again on a shadow invoice, where it
    would be counted twice in a parallel run."""
    finals = {}
    for index, (subscription, cut) in enumerate(pending):
        found = existing.get((subscription.reference, to_micros(cut.boundary), "live"))
        if found is not None and found[1] == "final":
            finals[index] = found[0]
    if not finals:
        return {}
    keys = billed_line_keys(store, list(finals.values()))
    return {index: keys.get(invoice_id, frozenset()) for index, invoice_id in finals.items()}


def _settled(found: tuple[int, str] | None) -> bool:
    return found is not None and found[1] != "draft"


def _draft(found: tuple[int, str] | None) -> bool:
    return found is not None and found[1] == "draft"


def cut_modes(cut: Cut, live_from: int | None) -> set[str]:
    """The modes a cut's lines can fall in, from the start of the periods it bills."""
    starts = [to_micros(period.start) for period in (cut.closing, cut.opening, cut.settles, cut.early_period)
              if period is not None]
    return {mode_for(start, live_from) for start in starts}


class PriceCache:
    """What one invoice run prices once and shares between cuts, for one catalog (its objects are
    the keys, by identity: the cache must not outlive the run).

    `lines`: rate_cut's lines that depend only on the terms, a period and the pricing (see its
    `cache`). `records`: each line as stored, per line object (the shared lines are converted
    once). `invoices`: the invoices of a cut that closes no period (no usage: the first invoice of
    every subscription on a calendar, billed in advance), per (cut, terms, pricing and every other
    input of price_cut); another subscription with the same inputs gets copies of its header with
    its own customer and reference, and the same line records."""

    __slots__ = ("invoices", "lines", "records")

    def __init__(self) -> None:
        self.lines: dict = {}
        self.records: dict[int, tuple[Line, LineRecord]] = {}
        self.invoices: dict[tuple, tuple[Cut, list[InvoiceRecord]]] = {}

    def record(self, line: Line) -> LineRecord:
        if line.kind not in SHARED_KINDS:  # a usage line, a minimum, a one-off...: the cut's own
            return to_line_record(line)
        found = self.records.get(id(line))
        if found is None:  # the line is kept with its record: its id is not reused while the cache lives
            if len(self.records) >= CACHE_LIMIT:
                self.records.clear()
            found = self.records[id(line)] = (line, to_line_record(line))
        return found[1]


# the kinds of the lines rate_cut shares between cuts (fees and their prorations, the opening's
# discounts); each of PriceCache's maps is emptied when it reaches CACHE_LIMIT entries, so a catalog
# whose subscriptions share nothing (a plan of their own each) keeps the run's memory flat
SHARED_KINDS = frozenset(("advance", "arrears", "proration", "discount"))
CACHE_LIMIT = 20_000


def _invoice_key(catalog_version: int, subscription: SubscriptionSpec, cut: Cut, pricing: Pricing,
                 live_from: int | None) -> tuple:
    return (id(cut), catalog_version, tuple((item.start, id(item.plan), item.proration) for item in subscription.terms()),
            pricing, subscription.end_prorated, subscription.one_off_charges(), subscription.billed_from(),
            subscription.timezone, live_from)


def price_cut(catalog: Catalog, catalog_version: int, subscription: SubscriptionSpec, cut: Cut,
              usage: dict[str, Usage] | Sequence[dict[str, Usage]], modes: BillingModes | None = None,
              billed_live: frozenset[tuple[str, int]] | None = None, *, basis: dict[str, Basis] | None = None,
              extra: Sequence[Line] = (), cache: PriceCache | None = None) -> list[InvoiceRecord]:
    """The invoices at one cut: a live one for the lines ratecard bills and a shadow one for the
    lines the legacy system bills (either may be absent; a cut without lines has none).
    `usage`: per segment of the closing period (see measured_usage), or one mapping when its
    terms do not change. `billed_live`: (code, service start µs) already on the cut's final live
    invoice, left out. `basis`: what the closing period's final opening invoice billed in advance.
    `extra`: corrections of final documents, carried by the live invoice. `cache`: see PriceCache
    (an invoice run's; the invoices are the same with or without it)."""
    pricing = catalog.pricing_for(subscription)
    live_from = (modes or BillingModes()).live_from(subscription.customer, ZoneInfo(subscription.timezone))
    key = None
    if cache is not None and cut.closing is None and not billed_live and basis is None and not extra:
        key = _invoice_key(catalog_version, subscription, cut, pricing, live_from)
        found = cache.invoices.get(key)
        if found is not None:
            return [replace(record, customer=subscription.customer, subscription=subscription.reference,
                            lines=list(record.lines)) for record in found[1]]
    lines = rate_cut(subscription.terms(), cut, usage if cut.closing is not None else {}, pricing, basis=basis,
                     end_prorated=subscription.end_prorated, one_offs=subscription.one_off_charges(),
                     cache=cache.lines if cache is not None else None)
    if billed_live:
        lines = [line for line in lines if (line.code, to_micros(line.service_start)) not in billed_live]
    billed_from = subscription.billed_from()
    if billed_from is not None:  # periods before it were billed by the previous system
        lines = [line for line in lines if line.service_start >= billed_from]
    parts: dict[str, list[Line]] = {}
    for line in lines:
        parts.setdefault(mode_for(to_micros(line.service_start), live_from), []).append(line)
    if extra:
        parts.setdefault("live", []).extend(extra)
    records = []
    for mode, part in parts.items():
        totals = invoice_totals(part, pricing)
        records.append(InvoiceRecord(
            id=None,
            number=None,
            customer=subscription.customer,
            subscription=subscription.reference,
            status="draft",
            currency=pricing.currency,
            timezone=subscription.timezone,
            boundary_ts=to_micros(cut.boundary),
            issue_date=cut.boundary.date().isoformat(),
            subtotal=totals.subtotal,
            tax=totals.tax,
            total=totals.total,
            tax_rate=pricing.tax_rate,
            catalog_version=catalog_version,
            lines=[cache.record(line) if cache is not None else to_line_record(line) for line in part],
            mode=mode,
        ))
    if key is not None:  # kept with the cut: its id is not reused while the cache lives
        if len(cache.invoices) >= CACHE_LIMIT:
            cache.invoices.clear()
        cache.invoices[key] = (cut, [replace(record, lines=list(record.lines)) for record in records])
    return records


def _would_save(store: Store, batch: list[InvoiceRecord]) -> tuple[int, int]:
    """(created, updated) a write of the batch would report, nothing written."""
    stored = invoices_by_id(store, [record.id for record in batch if record.id is not None])
    created = sum(1 for record in batch if record.id is None)
    updated = sum(1 for record in batch if record.id is not None and record.id in stored
                  and not stored[record.id].same_content(record))
    return created, updated


class _Writer:
    """Writes the run's batches in order: on a thread of its own on PostgreSQL (at most one batch in
    flight), in line on SQLite (its driver takes the GIL back at every step, and one connection
    writes at a time anyway)."""

    def __init__(self, store: Store, environment: str, now_us: int, report: RunReport,
                 on_progress: Callable[[int], None] | None,
                 then: Callable[[Any, list[InvoiceRecord]], None] | None = None) -> None:
        self.store, self.environment, self.now_us, self.report = store, environment, now_us, report
        self.on_progress, self.then = on_progress, then
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="invoice-writer") if store.is_postgres else None
        self.flight: tuple[Future, int] | None = None

    def write(self, batch: list[InvoiceRecord], done: int) -> None:
        """Hand the batch over (the caller keeps no reference to it); `done`: cuts priced for it."""
        self.wait()
        if self.pool is None:
            _flush(self.store, self.environment, batch, self.now_us, self.report, self.then)
            self._progress(done)
            return
        self.flight = (self.pool.submit(_flush, self.store, self.environment, batch, self.now_us, self.report,
                                        self.then), done)

    def wait(self) -> None:
        if self.flight is not None:
            future, done = self.flight
            self.flight = None
            future.result()  # a failed write raises here, in the run
            self._progress(done)

    def _progress(self, done: int) -> None:
        if self.on_progress is not None and done:
            self.on_progress(done)

    def close(self) -> None:
        """After wait() (every batch written), or on a failure of the run: the write in flight ends
        (committed or rolled back) before the run's error goes on."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def _flush(store: Store, environment: str, batch: list[InvoiceRecord], now_us: int, report: RunReport,
           then: Callable[[Any, list[InvoiceRecord]], None] | None = None) -> None:
    if not batch:
        return
    created, updated = (_would_save(store, batch) if report.dry_run else
                        save_drafts(store, environment, batch, now_us, then))
    report.created += created
    report.updated += updated
    report.unchanged += len(batch) - created - updated
    batch.clear()
