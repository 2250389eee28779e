"""What a catalog change does to invoices: the next invoice run, computed and not written.

`catalog apply` and the subscription commands show it so that nobody learns from a finalized
invoice that a draft moved or a final invoice gets a correction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..billing.run import HorizonError, generate_invoices
from ..catalog import Catalog
from ..domain.instants import from_micros, rfc3339
from ..store import Store
from ..store.invoice_states import latest_boundary


def invoice_impact(store: Store, catalog: Catalog, version: int, now: datetime, environment: str = "live",
                   subscriptions: set[str] | None = None) -> dict[str, Any] | None:
    """The drafts the next run up to the latest boundary already invoiced would create, refresh and
    remove under `catalog`, and the final invoices it would correct (optionally only for some
    subscriptions). None when nothing is invoiced yet."""
    last = latest_boundary(store, environment)
    if last is None:
        return None
    try:
        report = generate_invoices(store, catalog, version, from_micros(last), now, environment=environment,
                                   dry_run=True)
    except HorizonError:
        return None
    removals = [item for item in report.removals if subscriptions is None or item["subscription"] in subscriptions]
    corrections = [item for item in report.corrections
                   if subscriptions is None or item["subscription"] in subscriptions]
    return {"until": rfc3339(last), "drafts_created": report.created, "drafts_refreshed": report.updated,
            "drafts_removed": len(removals), "removals": removals, "corrections": corrections}


def impact_sentence(impact: dict[str, Any] | None) -> str | None:
    """One line for people: what the next invoice run will change."""
    if impact is None:
        return None
    return (f"next invoice run (up to {impact['until']}): {impact['drafts_created']} draft(s) to create, "
            f"{impact['drafts_refreshed']} to refresh, {impact['drafts_removed']} to remove; "
            f"{len(impact['corrections'])} correction(s) of final invoices")
