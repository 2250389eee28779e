"""`ratecard golive check`: is this workspace ready to bill real customers?

Every finding is ranked: a blocker stops go-live (exit 1), a warning deserves a look.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..billing.finalize import DEFAULT_GRACE
from ..billing.run import charged_meters
from ..catalog import Catalog
from ..domain.instants import to_micros
from ..store import Store
from ..store.events import meters_seen_since, unbilled_counts, unpriced_examples
from ..store.invoice_states import count_unheld_live_drafts_cut_before, unheld_live_drafts_cut_before
from ..store.invoices import draft_reference

GRACE_PERIOD = DEFAULT_GRACE
STALE_DRAFT = "draft_past_grace_period"


@dataclass(frozen=True)
class Finding:
    severity: str  # blocker | warning
    kind: str
    subject: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "kind": self.kind, "subject": self.subject, "message": self.message}


def readiness(store: Store, catalog: Catalog, now: datetime, quiet_days: int = 7,
              environment: str = "live") -> list[Finding]:
    findings = findings_but_stale_drafts(store, catalog, now, quiet_days, environment)
    findings += _stale_drafts(store, now, environment)
    return sorted(findings, key=lambda f: (f.severity != "blocker", f.kind, f.subject))


def findings_but_stale_drafts(store: Store, catalog: Catalog, now: datetime, quiet_days: int = 7,
                              environment: str = "live") -> list[Finding]:
    """Every finding except the drafts past their grace period (one per draft: thousands, in a
    workspace that has not finalized for a while; `stale_drafts_counted` counts them instead)."""
    findings: list[Finding] = []
    findings += _customers(catalog)
    findings += _plans(catalog)
    findings += _quiet_meters(store, catalog, now, quiet_days, environment)
    findings += _unmatched(store, environment)
    findings += _unpriced(store, environment)
    return findings


def _customers(catalog: Catalog) -> list[Finding]:
    found = []
    subscribed = {s.customer for s in catalog.subscriptions.values()}
    for customer in catalog.customers.values():
        if customer.reference not in subscribed:
            continue
        if customer.tax_rate is None:
            found.append(Finding("blocker", "customer_without_tax_rate", customer.reference,
                                 "no tax_rate: invoices would carry no tax; set tax_rate (\"0\" if exempt)"))
        if customer.currency is None:
            found.append(Finding("warning", "customer_without_currency", customer.reference,
                                 "no currency: invoices use the plan's currency"))
        if customer.country is None:
            found.append(Finding("warning", "customer_without_country", customer.reference,
                                 "no country: needed on invoices and for tax decisions"))
    for subscription in catalog.subscriptions.values():
        customer = catalog.customers[subscription.customer]
        if customer.currency and customer.currency != subscription.plan.currency:
            found.append(Finding("blocker", "currency_mismatch", subscription.reference,
                                 f"plan bills in {subscription.plan.currency}, customer in {customer.currency}"))
    return found


def _plans(catalog: Catalog) -> list[Finding]:
    used = {s.plan_code for s in catalog.subscriptions.values()}
    return [Finding("warning", "plan_without_subscriptions", code, "no subscription is on this plan")
            for code in sorted(set(catalog.plans) - used)]


def _quiet_meters(store: Store, catalog: Catalog, now: datetime, days: int, environment: str) -> list[Finding]:
    since = to_micros(now - timedelta(days=days))
    recent = meters_seen_since(store, environment, since)
    found = []
    meters = {meter.meter_code: meter for meter in charged_meters(catalog, catalog.subscriptions.values())}
    for code, meter in sorted(meters.items()):
        if code not in recent and meter.stream not in recent:
            found.append(Finding("warning", "meter_without_recent_events", code,
                                 f"charged in a plan but no events in the last {days} days (stream {meter.stream!r})"))
    return found


def _unmatched(store: Store, environment: str) -> list[Finding]:
    by_pair = defaultdict(list)
    for status, customer, meter, count in unbilled_counts(store, environment):
        if status == "unpriced":  # matched, yet billed at nothing: a finding of its own (_unpriced)
            continue
        by_pair[(customer, meter)].append(f"{count} {status}")
    return [Finding("warning", "unmatched_events", f"{customer} / {meter}",
                    f"{', '.join(counts)} event(s) not billed; fix the catalog, then `ratecard events reprocess`")
            for (customer, meter), counts in sorted(by_pair.items())]


def _unpriced(store: Store, environment: str) -> list[Finding]:
    examples = unpriced_examples(store, environment)
    counts = {(customer, meter): count for status, customer, meter, count in unbilled_counts(store, environment)
              if status == "unpriced"}
    return [Finding("warning", "unpriced_events", f"{customer} / {meter}",
                    f"{count} event(s) taken by a subscription but counted by no charge of its plan, so billed "
                    f"at nothing (e.g. {', '.join(examples.get((customer, meter), ()))}); charge their meter or "
                    "widen its filters, then `ratecard events reprocess`")
            for (customer, meter), count in sorted(counts.items())]


def _stale_drafts(store: Store, now: datetime, environment: str, limit: int | None = None) -> list[Finding]:
    # shadow and held drafts wait by design
    return [Finding("blocker", STALE_DRAFT, draft_reference(draft.draft_number),
                    f"{draft.customer}'s invoice of {draft.issue_date} is still draft more than "
                    f"{GRACE_PERIOD.seconds // 3600} h after its billing date: review and finalize it, or void it")
            for draft in unheld_live_drafts_cut_before(store, environment, to_micros(now - GRACE_PERIOD), limit)]


def stale_drafts_counted(store: Store, now: datetime, environment: str, examples: int) -> tuple[int, list[Finding]]:
    """How many drafts are past their grace period, and the findings of the first few by draft number."""
    count = count_unheld_live_drafts_cut_before(store, environment, to_micros(now - GRACE_PERIOD))
    return count, (_stale_drafts(store, now, environment, examples) if count else [])
