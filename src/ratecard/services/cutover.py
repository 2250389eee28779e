"""Full cutover: plan the date ratecard bills everyone from, and record it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from ..golive.cutover import CutoverPlan, CutoverRefused, apply_cutover, plan_cutover
from ..store import Store
from .cached_catalog import CatalogCacheLike, catalog_in_use
from .errors import InvalidInput, Refused

# A cutover is near: dates at the ends of the calendar overflow the planner (it looks 400 days
# past the date), and one decades away is a typo (2062 for 2026).
MAX_CUTOVER_DISTANCE = timedelta(days=3660)


def _check_day(day: date, now: datetime) -> None:
    today = now.date()
    if abs(day - today) > MAX_CUTOVER_DISTANCE:
        raise InvalidInput(f"{day.isoformat()} is more than ten years from today ({today.isoformat()}); a cutover "
                           "date is near", field="date")


def plan(store: Store, day: date, now: datetime, environment: str = "live",
         catalogs: CatalogCacheLike | None = None) -> CutoverPlan:
    """Per subscription: is the day on its boundary, who bills the partial period, what could be billed
    twice or never; and the dates that align the most subscriptions. `catalogs`: a server's catalog
    cache, to use its built catalog instead of building one."""
    _check_day(day, now)
    catalog = catalog_in_use(store, environment, now, catalogs)
    return plan_cutover(store, environment, catalog, day, now)


def apply(store: Store, day: date, now: datetime, environment: str = "live", force: bool = False) -> CutoverPlan:
    """Record the cutover day; Refused while a period would be billed twice (unless forced)."""
    _check_day(day, now)
    catalog = catalog_in_use(store, environment, now)
    try:
        return apply_cutover(store, environment, catalog, day, now, force)
    except CutoverRefused as exc:
        raise Refused(str(exc)) from None
