"""The use cases behind `ratecard subscriptions unschedule|void` (and the Solvimon schedule DELETE
and PATCH, subscription void), on SQLite and PostgreSQL: each is a new catalog version; a change
in force is never taken back. (A subscription with a final invoice is never voided: the API test
finalizes one and tries.)"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ratecard.services import subscription_changes as changes
from ratecard.services.errors import Refused
from ratecard.store import Store
from ratecard.store.catalogs import load_version

from .test_subscription_changes import FEB_10, store, subscription

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
