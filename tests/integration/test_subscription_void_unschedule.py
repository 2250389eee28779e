"""The use cases behind `ratecard subscriptions unschedule|void` (and the Solvimon schedule DELETE
and PATCH, subscription void), on SQLite and PostgreSQL: each is a new catalog version; a change
in force is never taken back. (A subscription with a final invoice is never voided: the API test
finalizes one and tries.)"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratecard.catalog import check_document
from ratecard.catalog.edits import add_change
from ratecard.services import subscription_changes as changes
from ratecard.services.errors import Refused
from ratecard.services.resources import pricing_plans, schedule_edits
from ratecard.services.resources.subscriptions import instant_text
from ratecard.store import Store
from ratecard.store.catalogs import load_version

from .scenario import CATALOG, workspace
from .test_subscription_changes import BASIC, FEB_10, store, subscription

__all__ = ["store"]


def test_unschedule_takes_back_a_change_to_come_and_refuses_one_in_force(store: Store) -> None:
    changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-03-01", plan="basic")
    preview = changes.unschedule_change(store, FEB_10, reference="acme-pro", at="2026-03-01", dry_run=True)
    assert (preview.stored, subscription(store)[0]) == (False, 2)
    done = changes.unschedule_change(store, FEB_10, reference="acme-pro", at="2026-03-01")
    assert (done.action, done.stored, done.catalog_version) == ("unscheduled", True, 3)
    assert subscription(store)[1].changes == []
    changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-02-01", plan="basic")
    with pytest.raises(Refused):
        changes.unschedule_change(store, FEB_10, reference="acme-pro", at="2026-02-01")
    assert [c.at for c in subscription(store)[1].changes] == [date(2026, 2, 1)]


def test_reschedule_and_restart(store: Store) -> None:
    changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-03-01", plan="basic")
    changes.reschedule_change(store, FEB_10, reference="acme-pro", at="2026-03-01", new_at="2026-04-01")
    assert [(c.at, c.plan) for c in subscription(store)[1].changes] == [(date(2026, 4, 1), "basic")]
    with pytest.raises(Refused):  # acme-pro started on January 15: its first terms are history
        changes.restart_subscription(store, FEB_10, reference="acme-pro", plan="basic")
    early = datetime(2026, 1, 2, tzinfo=UTC)  # before the start: the first terms may be replaced
    changes.restart_subscription(store, early, reference="acme-pro", start="2026-01-20", quantity=2)
    entry = subscription(store)[1]
    assert (entry.start, entry.quantity) == (date(2026, 1, 20), 2)


def test_void_leaves_the_catalog_as_a_new_version(store: Store) -> None:
    done = changes.void_subscription(store, FEB_10, reference="acme-pro")
    assert (done.action, done.after["status"], done.stored) == ("voided", "void", True)
    assert all(s.reference != "acme-pro" for s in load_version(store)[1].subscriptions)
    assert done.previous_version == done.catalog_version - 1
    assert any(s.reference == "acme-pro" for s in load_version(store, version=done.previous_version)[1].subscriptions)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hours=st.integers(min_value=1, max_value=300 * 24))
def test_a_migration_is_the_change_of_plan_at_its_start(db_url: str, hours: int) -> None:
    """Migrating the schedule to another plan's ACTIVE version from any instant after its start
    stores exactly the catalog a prorated change of plan at that instant makes: the same
    document, so the same invoices (the change-of-plan rules, docs/billing.md)."""
    store, _ = workspace(db_url, CATALOG.replace("\ncustomers:", BASIC, 1))
    try:
        raw = load_version(store)[1].model_dump(mode="json")
        moment = datetime(2026, 1, 15, tzinfo=UTC) + timedelta(hours=hours)
        schedule_edits.migrate(store, "live", FEB_10, "acme-pro", 0, {
            "pricing_plan_version_id": pricing_plans.catalog_version_id("live", "basic"),
            "start_at": instant_text(moment)})
        expected = add_change(raw, "acme-pro", moment, plan="basic", proration="prorate")
        stored = load_version(store)[1].model_dump(mode="json")
        assert stored["subscriptions"] == load_checked(expected)["subscriptions"]
    finally:
        store.dispose()


def load_checked(raw: dict) -> dict:
    checked, problems = check_document(raw)
    assert problems == [] and checked is not None
    return checked.model_dump(mode="json")
