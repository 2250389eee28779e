"""A DRAFT subscription (created without a schedule, as the Solvimon SDK's create request must)
gets its plan from a schedule (services.resources.subscriptions.attach_schedule, for the pricing
plan schedules resource), on SQLite and PostgreSQL; a second schedule is a change of plan; a
cancellation is undone (resume)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ratecard.services import subscription_changes as changes
from ratecard.services.errors import Conflict
from ratecard.services.resources import subscriptions as solvimon
from ratecard.store.catalogs import load_version

from .scenario import CATALOG, workspace
from .test_subscription_changes import BASIC

FEB_10 = datetime(2026, 2, 10, 12, tzinfo=UTC)


@pytest.fixture
def store(db_url: str):
    store, _ = workspace(db_url, CATALOG.replace("\ncustomers:", BASIC, 1))
    yield store
    store.dispose()


def entry(store, reference: str):
    return next((s for s in load_version(store)[1].subscriptions if s.reference == reference), None)


def test_a_draft_gets_its_plan_from_a_schedule_then_changes_plan(store) -> None:
    # acme-pro bills acme's events already: the second subscription bills only the events naming it
    draft = solvimon.create(store, "live", FEB_10, {"reference": "acme-2", "customer_reference": "acme",
                                                    "name": "Second", "requires_reference": True})
    assert draft.terms["status"] == "draft" and entry(store, "acme-2") is None  # bills nothing yet
    attached = solvimon.attach_schedule(store, "live", FEB_10, "acme-2", {
        "pricing_plan_id": "basic", "start_at": "2026-03-01T00:00:00Z", "seats_values": [{"number": "2"}]})
    assert attached.terms["status"] == "scheduled" and attached.row is not None
    assert "draft" not in attached.row.body and attached.row.body["name"] == "Second"
    stored = entry(store, "acme-2")
    assert (stored.plan, stored.quantity, stored.customer, stored.requires_reference) == ("basic", 2, "acme", True)
    changed = solvimon.attach_schedule(store, "live", FEB_10, "acme-2", {
        "pricing_plan_id": "pro", "start_at": "2026-03-15T00:00:00Z"})
    assert [(p["plan"], p["proration"]) for p in changed.terms["phases"]] == [("basic", None), ("pro", "prorate")]


def test_a_cancellation_is_undone_until_the_end_has_come(store) -> None:
    changes.cancel_subscription(store, FEB_10, reference="acme-pro", at="2026-04-01")
    assert entry(store, "acme-pro").end == date(2026, 4, 1)
    resumed = changes.resume_subscription(store, FEB_10, reference="acme-pro")
    assert resumed.stored and entry(store, "acme-pro").end is None
    changes.cancel_subscription(store, FEB_10, reference="acme-pro", at="2026-02-01")
    with pytest.raises(Conflict):  # ended already: start a new subscription instead
        changes.resume_subscription(store, FEB_10, reference="acme-pro")
