"""An invoice run split between worker processes: what each share is, how one is billed, and how
the shares' reports add up to the report of the run.

A share (an item) is one customer's subscriptions: everything the run does is decided per
subscription (its cuts, drafts, corrections of its final invoices) and a customer's events are
split between its subscriptions by the subscription they name, so billing customers separately
gives the same invoices as billing them together. One more item holds the subscriptions that left
the catalog but still have drafts: the run removes those drafts.

Draft numbers are taken when a batch of drafts is written, under the environment's counter lock,
in the same transaction as the drafts: a worker killed mid-write takes no number with it, so
numbers stay gapless and unique whatever the number of workers. Final numbers are given at
finalization, as in a run of one process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from ..catalog import Catalog
from ..store import Store
from ..store.invoices import InvoiceRecord
from .run import RunReport, generate_invoices

ORPHANS = None  # the customer of the item holding the drafts of subscriptions gone from the catalog
COUNTS = ("subscriptions", "cuts", "created", "updated", "unchanged", "skipped_final", "removed")


def plan_items(catalog: Catalog, existing: Mapping[tuple[str, int, str], tuple]) -> list[tuple[str | None,
                                                                                             list[str]]]:
    """The run's items in billing order: each customer with its subscriptions (catalog order), then
    the subscriptions no longer in the catalog whose drafts the run removes (one item, if any)."""
    by_customer: dict[str, list[str]] = {}
    for reference, subscription in catalog.subscriptions.items():
        by_customer.setdefault(subscription.customer, []).append(reference)
    items: list[tuple[str | None, list[str]]] = list(by_customer.items())
    gone = sorted({reference for (reference, _boundary, _mode), found in existing.items()
                   if found[1] == "draft" and reference not in catalog.subscriptions})
    if gone:
        items.append((ORPHANS, gone))
    return items


def parse_until(text: str) -> date | datetime:
    """A run's `until` as stored: an ISO date, or an instant with its offset."""
    return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)


def bill_share(store: Store, catalog: Catalog, catalog_version: int, until: date | datetime, now: datetime,
               environment: str, references: Iterable[str], *, on_total: Callable[[int], None] | None = None,
               on_progress: Callable[[int], None] | None = None,
               then: Callable[[Any, list[InvoiceRecord]], None] | None = None) -> RunReport:
    """Run the invoice run for these subscriptions only (those still in the catalog billed, the
    drafts of those gone removed); every other subscription's invoices are left alone.
    `on_total`, `on_progress`: the cuts to price, the cuts priced (as generate_invoices reports them);
    `then`: what new drafts write in their transaction (as generate_invoices)."""
    owned = set(references)
    share = dataclasses.replace(catalog, subscriptions={reference: spec for reference, spec
                                                        in catalog.subscriptions.items() if reference in owned})
    return generate_invoices(store, share, catalog_version, until, now, environment=environment, owned=owned,
                             on_total=on_total, on_progress=on_progress, then=then)


def merge_reports(until: str, reports: Sequence[dict], failed: Sequence[tuple[str | None, Sequence[str], str]] = ()
                  ) -> dict:
    """The report of the whole run from the reports of its batches, in the shape of a run of one
    process (RunReport.as_dict); lists sorted so the order workers finished in does not show.
    `failed`: items no worker could bill (customer, subscriptions, error), reported as failures."""
    merged = RunReport(until=until).as_dict()
    for report in reports:
        for name in COUNTS:
            merged[name] += report[name]
        for name in ("removals", "corrections", "failures"):
            merged[name] += report[name]
    for customer, references, error in failed:
        merged["failures"] += [{"customer": customer or "", "subscription": reference, "boundary": None,
                                "charge": None, "reason": f"not billed: {error}"} for reference in references]
    merged["removals"].sort(key=lambda item: (item["subscription"], item["boundary"], item["mode"]))
    merged["corrections"].sort(key=lambda item: (item["subscription"], item.get("boundary") or "", item["kind"],
                                                 item["total"]))
    merged["failures"].sort(key=lambda item: (item["customer"], item["subscription"], item["boundary"] or "",
                                              item["charge"] or ""))
    return merged
