"""The upcoming invoice of one customer (docs/billing.md, "Upcoming invoice"): computed from the
usage so far with the invoice run's pricing, never written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..billing.preview import SubscriptionPreview, preview_customer
from ..billing.run import MAX_AHEAD, HorizonError, check_horizon
from ..catalog import Catalog
from ..domain.instants import EPOCH, rfc3339, to_micros
from ..store import Store
from .catalog import current_catalog
from .errors import InvalidInput, NoCatalog, NotFound
from .keys import check_environment

__all__ = ["UnknownCustomer", "UpcomingInvoices", "check_preview_at", "preview_invoices"]


class UnknownCustomer(NotFound):
    """The customer is not in the catalog of the environment asked about."""


@dataclass
class UpcomingInvoices:
    customer: str
    at: datetime
    catalog_version: int
    subscriptions: list[SubscriptionPreview]

    @property
    def failed(self) -> bool:
        """Some subscription's invoice could not be priced (its usage is still shown)."""
        return any(preview.failure is not None for preview in self.subscriptions)

    def as_dict(self) -> dict[str, Any]:
        return {"customer": self.customer, "at": rfc3339(to_micros(self.at)),
                "subscriptions": [preview.as_dict() for preview in self.subscriptions]}


def check_preview_at(at: datetime, now: datetime, field: str = "at") -> None:
    """`at` may reach as far ahead as an invoice run may (a year after now), no further."""
    if at.tzinfo is None:
        raise InvalidInput(f"{at.isoformat()} has no timezone offset", field=field)
    if at < EPOCH:  # instants are counted from it; nothing is billed before
        raise InvalidInput(f"{at.isoformat()} is before {EPOCH.date()}", field=field)
    try:
        check_horizon(at, now)
    except HorizonError:
        latest = (now + MAX_AHEAD).date()
        raise InvalidInput(f"{at.date()} is more than a year ahead (latest allowed: {latest}); an upcoming invoice is "
                           "previewed for a period that has come or is near", field=field) from None


def preview_invoices(store: Store, customer: str, at: datetime | None, now: datetime, environment: str = "live", *,
                     catalog: Catalog | None = None, catalog_version: int | None = None) -> UpcomingInvoices:
    """The documents each of the customer's subscriptions active at `at` (default: now) would get at
    the end of its current period, priced with the usage in [period start, at). Nothing is written.

    `catalog` (with its `catalog_version`) replaces the environment's applied catalog: an unsaved,
    modified catalog previews what a change would bill."""
    check_environment(environment, "env")
    moment = now if at is None else at
    check_preview_at(moment, now)
    if catalog is None:
        try:
            catalog_version, catalog = current_catalog(store, environment)
        except NoCatalog:
            if environment == "live":
                raise
            raise NoCatalog(f"no catalog has been applied in the {environment} environment (its API keys apply one "
                            "with POST /v1/catalog)") from None
    elif catalog_version is None:
        raise ValueError("a catalog given to preview_invoices needs its catalog_version")
    if customer not in catalog.customers:
        raise UnknownCustomer(f"customer {customer[:200]!r} is not in the {environment} catalog (version {catalog_version})")
    previews = preview_customer(store, catalog, catalog_version, customer, moment, environment)
    return UpcomingInvoices(customer, moment, catalog_version, previews)
