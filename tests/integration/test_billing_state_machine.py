"""Billing under change as a state machine, on SQLite and PostgreSQL.

Hypothesis edits a small catalog (subscriptions added, changed, ended, removed; a customer's
timezone switched), imports calls (many of them late), runs invoices and finalizes, holds and
releases drafts, in random order. After every step:

1. a final document never changes (lines, totals, number);
2. after an invoice run, every draft sits at a cut today's catalog produces;
3. once everything up to the horizon is cut, what the documents bill for each period equals an
   independent oracle (below) written from docs/changes.md, and each call is billed once.

Each example runs in an environment of its own on one store, so no example sees another's rows.
"""

from __future__ import annotations

import calendar
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import count
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from ratecard.billing.finalize import finalize_due
from ratecard.billing.run import generate_invoices, subscription_cuts, until_instant
from ratecard.domain.instants import from_micros, to_micros
from ratecard.ingest.importer import import_file
from ratecard.services.catalog import current_catalog
from ratecard.store import Store, open_store
from ratecard.store.catalogs import save_version
from ratecard.store.invoice_states import live_drafts, set_hold
from ratecard.store.invoices import InvoiceRecord, change_status, list_invoices

from ..migrated import at_head
from .scenario import catalog_document, write_jsonl

# plan -> (flat fee billed in advance, price of one call)
PLANS = {"basic": (Decimal("30.00"), Decimal("1.00")), "pro": (Decimal("60.00"), Decimal("0.50")),
         "max": (Decimal("93.00"), Decimal("0.25"))}
CUSTOMERS = ("acme", "nyc")
ZONES = ("UTC", "America/New_York", "Europe/Berlin")
PRORATIONS = ("prorate", "none", "invoice_now")
FIRST_UNTIL = date(2026, 2, 1)
HORIZON = date(2026, 7, 1)  # the last day invoices are cut for
LAST_DAY = date(2026, 7, 31)  # changes and ends fall on or before it
BILLED_KINDS = {"usage", "advance", "arrears", "proration", "adjustment", "minimum"}
ADJUSTED_QUANTITY = re.compile(r"\(quantity ([+-][0-9.]+)\)$")
EXAMPLES = count()


# ---------------------------------------------------------------------------------------------
# The model: the catalog as plain data, and the calls imported.


@dataclass
class Change:
    at: date
    plan: str
    proration: str


@dataclass
class Sub:
    reference: str
    customer: str
    plan: str
    start: date
    anchor: int | None  # None: the start's day
    changes: list[Change] = field(default_factory=list)
    end: date | None = None
    end_proration: str = "prorate"

    def phases(self) -> list[Change]:
        return [Change(self.start, self.plan, "none"), *self.changes]

    def last_instant_day(self) -> date:
        """The last day anything (a change) is set on: a new change or end must come after it."""
        return self.changes[-1].at if self.changes else self.start

    def yaml(self) -> str:
        parts = [f"reference: {self.reference}", f"customer: {self.customer}", f"plan: {self.plan}",
                 f"start: {self.start.isoformat()}", f"end_proration: {self.end_proration}"]
        if self.anchor is not None:
            parts.append(f"billing_anchor: {self.anchor}")
        if self.end is not None:
            parts.append(f"end: {self.end.isoformat()}")
        if self.changes:
            changes = ", ".join(f"{{at: {c.at.isoformat()}, plan: {c.plan}, proration: {c.proration}}}"
                                for c in self.changes)
            parts.append(f"changes: [{changes}]")
        return "  - {" + ", ".join(parts) + "}\n"


def catalog_text(corrections: str, zones: dict[str, str], subs: list[Sub]) -> str:
    plans = "".join(
        f"  - {{code: {code}, currency: USD, charges: [{{code: base, model: flat, amount: \"{fee}\", "
        f"timing: advance}}, {{code: calls, meter: api_calls, model: per_unit, unit_amount: \"{unit}\"}}]}}\n"
        for code, (fee, unit) in PLANS.items())
    customers = "".join(f"  - {{reference: {name}, tax_rate: \"0\", timezone: {zone}}}\n"
                        for name, zone in zones.items())
    return (f"billing_entity: {{name: State Co, timezone: UTC, currency: USD, corrections: {corrections}}}\n"
            "meters:\n  - {code: api_calls, aggregation: count}\n"
            f"plans:\n{plans}customers:\n{customers}"
            "subscriptions:" + ("\n" + "".join(sub.yaml() for sub in subs) if subs else " []\n"))


# ---------------------------------------------------------------------------------------------
# The oracle.


@dataclass(frozen=True)
class OraclePeriod:
    """A billing period [start, end) in local dates, inside its full period [full_start, full_end)."""

    start: date
    end: date
    full_start: date
    full_end: date


def _anchored(year: int, month: int, anchor: int) -> date:
    return date(year, month, min(anchor, calendar.monthrange(year, month)[1]))


def oracle_periods(sub: Sub) -> list[OraclePeriod]:
    """Monthly periods from the anchor day (clamped to short months), the first one short when the
    subscription starts off its anchor, the last one cut short by the end; up to 2027."""
    anchor = sub.anchor or sub.start.day
    months = [(2025 + (m // 12), m % 12 + 1) for m in range(11, 26)]  # Dec 2025 .. Feb 2027
    bounds = [_anchored(year, month, anchor) for year, month in months]
    periods = []
    for full_start, full_end in zip(bounds, bounds[1:], strict=False):
        if full_end <= sub.start or (sub.end is not None and full_start >= sub.end):
            continue
        end = full_end if sub.end is None else min(full_end, sub.end)
        periods.append(OraclePeriod(max(full_start, sub.start), end, full_start, full_end))
    return periods


def _midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))


def oracle_amount(sub: Sub, period: OraclePeriod, zone: str, calls: list[datetime],
                  billed_fee: Decimal | None = None) -> Fraction:
    """What a period is billed, from docs/changes.md, in exact fractions (lines are rounded to cents).

    - The period is split into segments at every change strictly inside it. Each segment's calls
      are priced at the unit price of the plan in force at the segment's start.
    - The flat fee (billed in advance) is settled by days: Σ fee × segment days / full period days,
      where a segment's fee is that of the terms in force, except that a change made with
      `proration: none` inside the period leaves the fee it found (the new fee starts with the next
      period). `prorate` and `invoice_now` settle the same amounts (only the invoice differs).
      A whole period with no change is billed the fee; a short first period its days' share.
    - An end inside the period: with `end_proration: prorate` only the days up to the end are
      billed (the sum above stops there); with `none` the fee is kept as billed: the rest of the
      period, up to its full end, stays billed at the fee the period's opening invoice billed
      (`billed_fee`, when that invoice is final: a change made after it settles the days up to the
      end only), else at the fee in force at the period's start.
    """
    phases = sub.phases()

    def in_force(day: date) -> int:
        return max(index for index, phase in enumerate(phases) if phase.at <= day)

    full_days = (period.full_end - period.full_start).days
    bounds = [period.start, *[c.at for c in sub.changes if period.start < c.at < period.end], period.end]
    total = Fraction(0)
    for start, end in zip(bounds, bounds[1:], strict=False):
        index = in_force(start)
        since, until = _midnight(start, zone), _midnight(end, zone)
        used = sum(1 for moment in calls if since <= moment < until)
        total += used * Fraction(PLANS[phases[index].plan][1])
        fee_index = index
        while fee_index > 0 and phases[fee_index].at > period.start and phases[fee_index].proration == "none":
            fee_index -= 1
        total += Fraction(PLANS[phases[fee_index].plan][0]) * (end - start).days / full_days
    if sub.end == period.end and period.end < period.full_end and sub.end_proration == "none":
        opening_fee = Fraction(billed_fee if billed_fee is not None else PLANS[phases[in_force(period.start)].plan][0])
        total += opening_fee * (period.full_end - period.end).days / full_days
    return total


def oracle_calls(period: OraclePeriod, zone: str, calls: list[datetime]) -> int:
    since, until = _midnight(period.start, zone), _midnight(period.end, zone)
    return sum(1 for moment in calls if since <= moment < until)


# ---------------------------------------------------------------------------------------------
# What the documents bill, per period.


@dataclass
class Billed:
    amount: Decimal = Decimal(0)
    lines: int = 0
    calls: Decimal = Decimal(0)
    shown: list[tuple] = field(default_factory=list)
    corrected: set[tuple] = field(default_factory=set)  # (service start, end) of the calls corrected
    recorrected: bool = False  # calls of one service period corrected more than once


def billed_per_period(documents: list[InvoiceRecord], sub: Sub, zone: str
                      ) -> tuple[dict[OraclePeriod, Billed], Billed]:
    """The subscription's lines on live documents that are not void, each given to the period whose
    full span holds its service start; those that fall in none (a calendar that moved, an end that
    came earlier) go to the second result, which must net to nothing."""
    periods = oracle_periods(sub)
    spans = [(to_micros(_midnight(p.full_start, zone)), to_micros(_midnight(p.full_end, zone)), p) for p in periods]
    first, last = periods[0], periods[-1]
    inside = (to_micros(_midnight(first.start, zone)), to_micros(_midnight(last.end, zone)))
    result: dict[OraclePeriod, Billed] = defaultdict(Billed)
    outside = Billed()
    for document in documents:
        if document.subscription != sub.reference or document.status == "void" or document.mode != "live":
            continue
        for line in document.lines:
            if line.kind not in BILLED_KINDS:
                continue
            found = next((p for low, high, p in spans if low <= line.service_start_ts < high), None)
            if found is not None and not inside[0] <= line.service_start_ts <= inside[1]:
                found = None
            bucket = outside if found is None else result[found]
            bucket.amount += line.amount
            bucket.lines += 1
            bucket.shown.append((document.display_number, document.status, line.kind, line.code,
                                 from_micros(line.service_start_ts).isoformat(), f"{line.amount:f}", line.description))
            if line.code == "calls":
                if line.kind == "usage":
                    bucket.calls += line.quantity
                elif line.kind == "adjustment":
                    key = (line.service_start_ts, line.service_end_ts)
                    bucket.recorrected |= key in bucket.corrected
                    bucket.corrected.add(key)
                    match = ADJUSTED_QUANTITY.search(line.description)
                    bucket.calls += Decimal(match.group(1)) if match else 0
    return result, outside


def billed_fee(documents: list[InvoiceRecord], sub: Sub, period: OraclePeriod, zone: str) -> Decimal | None:
    """The full-period fee a final invoice billed in advance for the period, if one did."""
    start = to_micros(_midnight(period.start, zone))
    return next((line.unit_amount for document in documents if document.subscription == sub.reference
                 and document.status == "final" for line in document.lines
                 if line.kind == "advance" and line.service_start_ts == start), None)


def content(document: InvoiceRecord) -> tuple:
    lines = tuple((line.code, line.kind, line.description, line.service_start_ts, line.service_end_ts,
                   line.quantity, line.unit_amount, line.amount) for line in document.lines)
    return (document.number, document.kind, document.status, document.subtotal, document.tax, document.total,
            document.boundary_ts, lines)


# ---------------------------------------------------------------------------------------------
# The machine.

DAYS = st.integers(min_value=0, max_value=119)  # a start: 2026-01-01 + this many days (to Apr 30)
OFFSET = st.integers(min_value=1, max_value=75)
PICK = st.integers(min_value=0, max_value=10_000)
CALLS = st.lists(st.tuples(PICK, st.integers(min_value=0, max_value=999), st.sampled_from(["midnight", "before", "any"]),
                           st.integers(min_value=0, max_value=86_399)), min_size=1, max_size=8)


class BillingUnderChange(RuleBasedStateMachine):
    def __init__(self, store: Store, folder: Path) -> None:
        super().__init__()
        self.store = store
        self.folder = folder
        self.environment = f"sm{next(EXAMPLES)}"
        self.zones = {"acme": "UTC", "nyc": "America/New_York"}
        self.subs: list[Sub] = []
        self.corrections = "next_invoice"
        self.calls: dict[str, list[datetime]] = defaultdict(list)
        self.events = 0
        self.now = datetime(2026, 2, 1, 12, 7, tzinfo=UTC)
        self.until = FIRST_UNTIL
        self.fresh = False  # drafts were cut by a run since the catalog last changed
        self.unrun_calls = False  # calls imported since the last run
        self.finals: dict[int, tuple] = {}
        self.references = count(1)

    # --- helpers --------------------------------------------------------------------------

    def _save(self) -> None:
        text = catalog_text(self.corrections, self.zones, self.subs)
        save_version(self.store, catalog_document(text), to_micros(self.now), self.environment)
        self.fresh = False

    def _run(self, until: date):
        # every run at an instant of its own, never a boundary (see test_two_corrections_at_one_instant…)
        self.now += timedelta(seconds=1)
        version, catalog = current_catalog(self.store, self.environment)
        report = generate_invoices(self.store, catalog, version, until, self.now, environment=self.environment)
        assert report.failures == []
        self.fresh = True
        self.unrun_calls = False
        return report

    def _refresh(self) -> None:
        """Finalizing follows a run (`invoices generate` then `invoices finalize`): calls imported
        after a draft was cut and before it is finalized are otherwise never billed (see
        test_a_call_imported_between_the_run_and_finalizing_is_billed)."""
        if self.unrun_calls:
            self._run(self.until)

    def _documents(self) -> list[InvoiceRecord]:
        return list_invoices(self.store, self.environment)

    def _owned(self, customer: str) -> list[Sub]:
        return sorted((sub for sub in self.subs if sub.customer == customer), key=lambda sub: sub.start)

    def _next_of(self, sub: Sub) -> Sub | None:
        later = [other for other in self._owned(sub.customer) if other.start > sub.start]
        return later[0] if later else None

    def _billed_to(self, sub: Sub, end: date) -> bool:
        """A final document billed a fee in advance up to this end (prorated to it)."""
        return any(doc.subscription == sub.reference and doc.status == "final" and line.kind == "advance"
                   and line.service_end == end.isoformat() for doc in self._documents() for line in doc.lines)

    def _has_finals(self, sub: Sub) -> bool:
        return any(doc.subscription == sub.reference and doc.status == "final" for doc in self._documents())

    # --- catalog edits --------------------------------------------------------------------

    @initialize(customer=st.sampled_from(CUSTOMERS), day=DAYS, plan=st.sampled_from(sorted(PLANS)),
                anchor_first=st.booleans(), corrections=st.sampled_from(["next_invoice", "credit_note"]),
                until=st.integers(min_value=0, max_value=120), picks=CALLS, finalize=st.booleans())
    def history(self, customer, day, plan, anchor_first, corrections, until, picks, finalize) -> None:
        """A first subscription, its calls so far, invoiced up to now and (often) finalized: the past
        that later edits reach into."""
        self.corrections = corrections
        self.until = FIRST_UNTIL + timedelta(days=until)
        self.now = datetime.combine(self.until, time(0, 7), tzinfo=UTC)
        self._add(customer, date(2026, 1, 1) + timedelta(days=day), plan, anchor_first)
        self.import_calls(picks)
        self._run(self.until)
        if finalize:
            finalize_due(self.store, self.now + timedelta(days=1), "RC", environment=self.environment)

    def _add(self, customer: str, start: date, plan: str, anchor_first: bool) -> None:
        self.subs.append(Sub(f"s{next(self.references)}", customer, plan, start, 1 if anchor_first else None))
        self._save()

    @rule(customer=st.sampled_from(CUSTOMERS), gap=st.integers(min_value=0, max_value=40),
          plan=st.sampled_from(sorted(PLANS)), anchor_first=st.booleans())
    def add_subscription(self, customer, gap, plan, anchor_first) -> None:
        owned = self._owned(customer)
        if owned and owned[-1].end is None:
            return  # one subscription per customer at a time
        earliest = owned[-1].end if owned else date(2026, 1, 1)
        start = min(earliest + timedelta(days=gap), date(2026, 4, 30))
        if start < earliest:
            return
        self._add(customer, start, plan, anchor_first)

    @precondition(lambda self: self.subs)
    @rule(pick=PICK, offset=OFFSET, plan=st.sampled_from(sorted(PLANS)), proration=st.sampled_from(PRORATIONS),
          on_anchor=st.booleans())
    def add_change(self, pick, offset, plan, proration, on_anchor) -> None:
        sub = self.subs[pick % len(self.subs)]
        at = _maybe_on_anchor(sub, sub.last_instant_day() + timedelta(days=offset), on_anchor)
        limit = sub.end if sub.end is not None else LAST_DAY + timedelta(days=1)
        if not sub.last_instant_day() < at < limit:
            return
        sub.changes.append(Change(at, plan, proration))
        self._save()

    @precondition(lambda self: self.subs)
    @rule(pick=PICK, offset=OFFSET, proration=st.sampled_from(["prorate", "none"]), on_anchor=st.booleans(),
          open_ended=st.integers(min_value=0, max_value=5))
    def set_end(self, pick, offset, proration, on_anchor, open_ended) -> None:
        sub = self.subs[pick % len(self.subs)]
        following = self._next_of(sub)
        if sub.end is not None and self._billed_to(sub, sub.end):
            # a final invoice billed the end's period up to it: moving the end later or prorating a fee
            # billed whole are known bugs (test_an_end_moved_later_bills_the_days_added,
            # test_prorating_an_end_credits_a_fee_billed_whole); keeping a fee billed prorated "as
            # billed" (none) is the rules' own choice, outside this oracle
            return
        if open_ended == 0 and following is None:
            end = None  # the end is removed
        else:
            end = _maybe_on_anchor(sub, sub.last_instant_day() + timedelta(days=offset), on_anchor)
            if end <= sub.last_instant_day() or end > LAST_DAY or (following and end > following.start):
                return
        sub.end, sub.end_proration = end, proration
        self._save()

    @rule(customer=st.sampled_from(CUSTOMERS), zone=st.sampled_from(ZONES))
    def switch_timezone(self, customer, zone) -> None:
        self.zones[customer] = zone
        self._save()

    @precondition(lambda self: len(self.subs) > 1)
    @rule(pick=PICK)
    def remove_subscription(self, pick) -> None:
        sub = self.subs[pick % len(self.subs)]
        if self._has_finals(sub):
            return  # its final documents would stand: outside this oracle
        self.subs.remove(sub)
        self._save()

    # --- usage ------------------------------------------------------------------------------

    @precondition(lambda self: self.subs)
    @rule(picks=CALLS)
    def import_calls(self, picks) -> None:
        """Calls inside a subscription's lifetime up to now: at a local midnight (a boundary, often),
        a second before one, or anywhere in a day."""
        events = []
        for pick, share, where, second in picks:
            sub = self.subs[pick % len(self.subs)]
            zone = self.zones[sub.customer]
            since = _midnight(sub.start, zone)
            until = min(_midnight(sub.end, zone), self.now) if sub.end else self.now
            if until <= since:
                continue
            day = sub.start + timedelta(days=share * ((until - since).days + 1) // 1000)
            base = _midnight(day, zone)
            moment = {"midnight": base, "before": base - timedelta(seconds=1),
                      "any": base + timedelta(seconds=second)}[where]
            if not since <= moment < until:
                continue
            self.events += 1
            stamp = moment.astimezone(UTC)
            events.append({"id": f"{self.environment}-{self.events}", "customer": sub.customer,
                           "meter": "api_calls", "timestamp": stamp.isoformat().replace("+00:00", "Z")})
            self.calls[sub.customer].append(stamp)
        if not events:
            return
        version, catalog = current_catalog(self.store, self.environment)
        path = write_jsonl(self.folder / f"{self.environment}-{self.events}.jsonl", events)
        report = import_file(self.store, catalog, path, self.now, environment=self.environment)
        assert report.stored == len(events), report
        self.unrun_calls = True

    # --- invoices ---------------------------------------------------------------------------

    @precondition(lambda self: self.subs)
    @rule(days=st.integers(min_value=0, max_value=45), hours=st.integers(min_value=0, max_value=30))
    def generate(self, days, hours) -> None:
        self.until = min(self.until + timedelta(days=days), HORIZON)
        moment = datetime.combine(self.until, time(0, 7), tzinfo=UTC) + timedelta(hours=hours)
        self.now = max(self.now, moment)
        self._run(self.until)

    @rule(picks=st.lists(PICK, min_size=1, max_size=3))
    def finalize_some(self, picks) -> None:
        """Finalize a few drafts by hand, in any order (holds are for `finalize --due`)."""
        self._refresh()
        # drafts the last run refreshed (one past its horizon may be older than the calls)
        cut_until = to_micros(datetime.combine(self.until, time(0), tzinfo=UTC))
        for pick in picks:
            due = [draft for draft in live_drafts(self.store, self.environment) if draft.boundary_ts <= cut_until]
            if due:
                change_status(self.store, due[pick % len(due)].id, "final", to_micros(self.now), "RC",
                              self.environment)

    @rule(pick=PICK)
    def hold_or_release(self, pick) -> None:
        drafts = live_drafts(self.store, self.environment)
        if drafts:
            chosen = drafts[pick % len(drafts)]
            assert set_hold(self.store, chosen.id, not chosen.on_hold, self.environment)

    @rule()
    def finalize_what_is_due(self) -> None:
        if self.subs:  # what a daily job does: cut up to today, then finalize what is due
            self.until = max(self.until, min(self.now.date(), HORIZON))
            self._run(self.until)
        held = {draft.id for draft in live_drafts(self.store, self.environment) if draft.on_hold}
        report = finalize_due(self.store, self.now, "RC", environment=self.environment)
        assert not held & {invoice.id for invoice in report.finalized}

    @precondition(lambda self: self.subs)
    @rule()
    def settle(self) -> None:
        self._settle()

    def _settle(self) -> None:
        """Cut everything up to the horizon, then check each period against the oracle. A second
        run right after issues and changes nothing."""
        self._run(HORIZON)
        again = self._run(HORIZON)
        # nothing new: no draft written or removed, no document issued (corrections already on a
        # draft are listed again, unchanged)
        issued = [item for item in again.corrections if item["document"] != "draft"]
        assert (again.created, again.updated, again.removed, issued) == (0, 0, 0, []), again.as_dict()
        documents = self._documents()
        self._check_finals(documents)
        for sub in self.subs:
            zone = self.zones[sub.customer]
            billed, outside = billed_per_period(documents, sub, zone)
            assert abs(outside.amount) <= Decimal("0.01") * outside.lines, (sub, outside.shown)
            for period in oracle_periods(sub):
                if period.end > HORIZON:
                    continue
                found = billed[period]
                expected = oracle_amount(sub, period, zone, self.calls[sub.customer],
                                         billed_fee(documents, sub, period, zone))
                tolerance = Fraction(1, 100) * max(found.lines, 1)
                assert abs(Fraction(found.amount) - expected) <= tolerance, (
                    sub, period, float(expected), found.amount, found.shown)
                if found.corrected:
                    # adjustment lines bill amounts (quantity 1): a corrected period's calls are
                    # checked through its amount above, which counts each call at its price once
                    continue
                assert found.calls == oracle_calls(period, zone, self.calls[sub.customer]), (
                    sub, period, found.calls, found.shown)

    def teardown(self) -> None:
        if self.subs:
            self._settle()

    # --- invariants -------------------------------------------------------------------------

    def _check_finals(self, documents: list[InvoiceRecord]) -> None:
        seen = {document.id: document for document in documents}
        for invoice_id, snapshot in self.finals.items():
            assert invoice_id in seen, f"final document {invoice_id} disappeared"
            assert content(seen[invoice_id]) == snapshot, f"final document {invoice_id} changed"
        for document in documents:
            if document.status == "final" and document.id not in self.finals:
                self.finals[document.id] = content(document)

    @invariant()
    def finals_never_change(self) -> None:
        self._check_finals(self._documents())

    @invariant()
    def drafts_sit_at_todays_cuts(self) -> None:
        if not self.fresh:
            return
        _, catalog = current_catalog(self.store, self.environment)
        for draft in live_drafts(self.store, self.environment):
            document = next(doc for doc in self._documents() if doc.id == draft.id)
            subscription = catalog.subscriptions.get(document.subscription)
            assert subscription is not None, f"draft {draft.id} of {document.subscription}, gone from the catalog"
            zone = ZoneInfo(subscription.timezone)
            horizon = until_instant(from_micros(draft.boundary_ts).astimezone(zone), zone)
            cuts = {to_micros(cut.boundary) for cut in subscription_cuts(subscription, horizon)}
            assert draft.boundary_ts in cuts, f"draft {draft.id} at {from_micros(draft.boundary_ts)} is no cut"


def _maybe_on_anchor(sub: Sub, day: date, on_anchor: bool) -> date:
    """Half the time, move the day to the next period boundary: changes and ends on a boundary are
    edge cases of their own."""
    if not on_anchor:
        return day
    for period in oracle_periods(sub):
        if period.full_start >= day:
            return period.full_start
    return day


# derandomize: CI runs the same 25 sequences every time (a pass means the same thing on every run);
# explore with a random seed by hand: RATECARD_STATE_EXPLORE=1 (see the closing notes for what it found)
SETTINGS = settings(max_examples=25, stateful_step_count=12, deadline=None,
                    derandomize=os.environ.get("RATECARD_STATE_EXPLORE") != "1",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.fixture
def store(db_url: str):
    opened = open_store(at_head(db_url))
    yield opened
    opened.dispose()


@pytest.mark.slow
def test_billing_under_random_change_keeps_finals_drafts_and_the_ledger_right(store, tmp_path: Path) -> None:
    run_state_machine_as_test(lambda: BillingUnderChange(store, tmp_path), settings=SETTINGS)


# ---------------------------------------------------------------------------------------------
# What the machine found, each shrunk to a hand-computed example (basic: 30.00 a month in advance
# and 1.00 a call; pro: 60.00 and 0.50; acme bills in UTC).

NOW = datetime(2026, 12, 1, 0, 7, tzinfo=UTC)


def _apply(store: Store, *subs: Sub, corrections: str = "next_invoice") -> None:
    save_version(store, catalog_document(catalog_text(corrections, {"acme": "UTC"}, list(subs))), 0)


def _run_until(store: Store, until: date, now: datetime = NOW):
    version, catalog = current_catalog(store)
    return generate_invoices(store, catalog, version, until, now)


def _finalize_all(store: Store) -> None:
    for invoice in sorted(list_invoices(store, status="draft"), key=lambda i: i.boundary_ts):
        change_status(store, invoice.id, "final", 1, "RC")


def _billed(store: Store, code: str, service_start: str) -> Decimal:
    """What the live documents (not void) bill for a charge code over service starting that day."""
    return sum((line.amount for doc in list_invoices(store) if doc.status != "void"
                for line in doc.lines if line.code == code and line.service_start == service_start), Decimal(0))


def _import(store: Store, folder: Path, *stamps: str) -> None:
    _, catalog = current_catalog(store)
    events = [{"id": f"c-{stamp}", "customer": "acme", "meter": "api_calls", "timestamp": stamp} for stamp in stamps]
    import_file(store, catalog, write_jsonl(folder / f"calls-{stamps[0][:13]}.jsonl", events), NOW)


def test_a_call_imported_between_the_run_and_finalizing_is_billed(store, tmp_path: Path) -> None:
    _apply(store, Sub("s", "acme", "basic", date(2026, 2, 1), None))
    _run_until(store, date(2026, 3, 1))  # drafts: Feb 1 (February's 30.00), Mar 1 (February's calls: none)
    # an hour after the run: February's invoice is still a draft, so the call is not late yet
    _, catalog = current_catalog(store)
    call = [{"id": "c-late", "customer": "acme", "meter": "api_calls", "timestamp": "2026-02-10T00:00:00Z"}]
    import_file(store, catalog, write_jsonl(tmp_path / "after-run.jsonl", call), NOW + timedelta(hours=1))
    _finalize_all(store)  # finalized as the run cut it, without the call
    _run_until(store, date(2026, 4, 1))
    assert _billed(store, "calls", "2026-02-01") == Decimal("1.00")  # 1 call × 1.00, once


def test_an_end_on_a_boundary_credits_the_next_period_billed_in_advance(store) -> None:
    _apply(store, Sub("s", "acme", "basic", date(2026, 2, 1), None))
    _run_until(store, date(2026, 3, 1))
    _finalize_all(store)  # the Mar 1 invoice billed March's 30.00 in advance
    _apply(store, Sub("s", "acme", "basic", date(2026, 2, 1), None, end=date(2026, 3, 1)))
    _run_until(store, date(2026, 4, 1))
    assert _billed(store, "base", "2026-02-01") == Decimal("30.00")  # February, as billed
    assert _billed(store, "base", "2026-03-01") == Decimal("0.00")  # March never runs: credited in full


def test_an_end_moved_later_bills_the_days_added(store) -> None:
    _apply(store, Sub("s", "acme", "basic", date(2026, 2, 1), None, end=date(2026, 3, 15)))
    _run_until(store, date(2026, 3, 1))
    _finalize_all(store)  # March billed in advance for 14 of 31 days: 30 × 14/31 = 13.55
    assert _billed(store, "base", "2026-03-01") == Decimal("13.55")
    _apply(store, Sub("s", "acme", "basic", date(2026, 2, 1), None, end=date(2026, 3, 22)))
    _run_until(store, date(2026, 4, 1))
    # 21 days of 31 in all: 13.55 billed, then 30 × 7/31 = 6.77 for the days added (one line each, rounded once)
    assert sum(_billed(store, "base", f"2026-03-{day:02d}") for day in range(1, 32)) == Decimal("20.32")


def test_prorating_an_end_credits_a_fee_billed_whole(store) -> None:
    ending = Sub("s", "acme", "basic", date(2026, 2, 1), None, end=date(2026, 3, 15), end_proration="none")
    _apply(store, ending)
    _run_until(store, date(2026, 3, 1))
    _finalize_all(store)  # March billed whole (end_proration none): 30.00
    assert _billed(store, "base", "2026-03-01") == Decimal("30.00")
    ending.end_proration = "prorate"
    _apply(store, ending)
    _run_until(store, date(2026, 4, 1))
    # 14 days of 31: 30 × 14/31 = 13.55, so 30 × 17/31 = 16.45 is credited
    assert sum(_billed(store, "base", f"2026-03-{day:02d}") for day in range(1, 32)) == Decimal("13.55")


def test_a_second_correction_shows_only_the_calls_it_adds(store, tmp_path: Path) -> None:
    _apply(store, Sub("s", "acme", "basic", date(2026, 2, 1), None))
    _import(store, tmp_path, "2026-02-10T00:00:00Z")
    _run_until(store, date(2026, 3, 1))
    _finalize_all(store)  # February: 1 call, 1.00
    _import(store, tmp_path, "2026-02-11T00:00:00Z")  # late
    _run_until(store, date(2026, 4, 1))
    _finalize_all(store)  # Correction: calls (quantity +1), 1.00
    _import(store, tmp_path, "2026-02-12T00:00:00Z")  # late again
    _run_until(store, date(2026, 5, 1))
    may = next(doc for doc in list_invoices(store) if doc.issue_date == "2026-05-01")
    [correction] = [line for line in may.lines if line.kind == "adjustment"]
    # one more call, 1.00, naming the invoice it corrects (no quantity claimed that earlier
    # corrections would make wrong)
    assert correction.amount == Decimal("1.00") and correction.description.startswith("Correction of RC-")
    assert "quantity" not in correction.description


def test_two_corrections_at_one_instant_are_two_credit_notes(store) -> None:
    # pro (60.00) for February, final; a downgrade to basic (30.00) backdated to Feb 15 credits
    # 60 × 14/28 − 30 × 14/28 = 15.00; moved back to Feb 8 it credits 21 days: 22.50, 7.50 more
    pro = Sub("s", "acme", "pro", date(2026, 2, 1), None, end=date(2026, 3, 1))
    _apply(store, pro)
    _run_until(store, date(2026, 3, 1))
    _finalize_all(store)
    pro.changes = [Change(date(2026, 2, 15), "basic", "prorate")]
    _apply(store, pro)
    _run_until(store, date(2026, 3, 1))
    pro.changes = [Change(date(2026, 2, 8), "basic", "prorate")]
    _apply(store, pro)
    _run_until(store, date(2026, 3, 1))
    # the second correction credits Feb 8 – Mar 1 (−22.50) and gives back the first one's Feb 15 –
    # Mar 1 credit (+15.00, on an invoice of its own): 7.50 more credited, nothing collides
    documents = sorted((doc.kind, doc.total) for doc in list_invoices(store) if doc.kind != "invoice")
    assert documents == [("correction", Decimal("15.00")), ("credit_note", Decimal("-22.50")),
                         ("credit_note", Decimal("-15.00"))]


def test_a_correction_issued_at_a_boundary_does_not_stand_for_its_invoice(store) -> None:
    basic = Sub("s", "acme", "basic", date(2026, 2, 1), None)
    _apply(store, basic, corrections="credit_note")
    _run_until(store, date(2026, 3, 1))
    _finalize_all(store)
    basic.changes = [Change(date(2026, 2, 15), "pro", "prorate")]  # backdated: +30 × 14/28 = 15.00
    _apply(store, basic, corrections="credit_note")
    midnight = datetime(2026, 4, 1, tzinfo=UTC)  # "now" pinned to a boundary of the subscription
    _run_until(store, date(2026, 3, 1), midnight)
    _run_until(store, date(2026, 4, 1), midnight)
    assert _billed(store, "base", "2026-04-01") == Decimal("60.00")  # April's invoice, on pro


def test_an_end_moved_a_day_past_a_backdated_change_without_proration_bills_the_whole_fee(store) -> None:
    # basic from Mar 1, ending May 1: May 1's invoice (April's calls) is final and bills no May fee
    ending = Sub("s", "acme", "basic", date(2026, 3, 1), None, end=date(2026, 5, 1))
    _apply(store, ending)
    _run_until(store, date(2026, 5, 1))
    _finalize_all(store)
    # then a change to pro backdated to Apr 1, and the end moved to May 2 without proration: the
    # day of May is billed pro's whole fee (an end without proration keeps the period's fee)
    ending.changes = [Change(date(2026, 4, 1), "pro", "prorate")]
    ending.end, ending.end_proration = date(2026, 5, 2), "none"
    _apply(store, ending)
    _run_until(store, date(2026, 6, 1))
    assert _billed(store, "base", "2026-04-01") == Decimal("60.00")  # April: basic's 30.00, then pro's 30.00 more
    # the day up to the end (60 × 1/31 = 1.94) and the rest of May (60 × 30/31 = 58.06)
    assert sum(_billed(store, "base", f"2026-05-{day:02d}") for day in range(1, 32)) == Decimal("60.00")
