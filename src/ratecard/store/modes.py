"""Billing modes: which system bills each customer's service periods.

One rule, used by invoice runs, finalization, cohorts, cutover and rollback: ratecard bills a
line when its service period starts at or after the customer's `live_from`; every earlier line
belongs to the legacy system and is kept on a shadow invoice, computed for comparison and never
finalized. A customer in a cohort that is not promoted has no `live_from` (shadow throughout);
a customer outside any cohort takes the environment's cutover instant; with neither, ratecard
bills everything (a team not migrating from anything).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ..domain.periods import local_midnight
from .db import Store
from .schema import customer_modes, cutovers

ALWAYS = -(2**62)  # live_from for "ratecard bills everything"


@dataclass(frozen=True)
class BillingModes:
    cutover: date | None = None  # None: no cutover recorded
    customers: dict[str, int | None] = field(default_factory=dict)  # customer -> live_from (None: shadow)

    def live_from(self, customer: str, zone: ZoneInfo) -> int | None:
        """µs from which ratecard bills the customer; None while the customer is in shadow.

        The cutover is a date, taken as midnight in the subscription's own timezone: a Berlin
        customer's month starts at 23:00 UTC the day before, and a UTC midnight would hand
        its whole first month to the legacy system."""
        if customer in self.customers:
            return self.customers[customer]
        if self.cutover is None:
            return ALWAYS
        return local_midnight_us(self.cutover, zone)


def local_midnight_us(day: date, zone: ZoneInfo) -> int:
    return int(local_midnight(day, zone).timestamp()) * 1_000_000


def mode_for(service_start_us: int, live_from: int | None) -> str:
    """The one rule: live when the service period starts at or after live_from, else shadow."""
    return "live" if live_from is not None and service_start_us >= live_from else "shadow"


def load_modes(store: Store, environment: str) -> BillingModes:
    with store.engine.connect() as connection:
        cutover = connection.execute(
            select(cutovers.c.date).where(cutovers.c.environment == environment)
        ).scalar()
        rows = connection.execute(
            select(customer_modes.c.customer, customer_modes.c.live_from)
            .where(customer_modes.c.environment == environment)
        )
        return BillingModes(date.fromisoformat(cutover) if cutover else None,
                            {customer: live_from for customer, live_from in rows})
