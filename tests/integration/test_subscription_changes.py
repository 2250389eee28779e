"""Subscription changes as use cases, on SQLite and PostgreSQL: each write is a new catalog version,
a dry run stores nothing, an invalid result is refused with its paths."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from ratecard.domain.instants import to_micros
from ratecard.services import subscription_changes as changes
from ratecard.services.errors import AlreadyExists, InvalidInput, NotFound, Refused
from ratecard.store import Store, catalogs
from ratecard.store.catalogs import load_version
from ratecard.store.resources import ConfigChange, Resource, load_resources

from .scenario import CATALOG, workspace

# acme (Europe/Berlin, 19% tax) has acme-pro on plan pro from 2026-01-15, periods from the 1st
FEB_10 = datetime(2026, 2, 10, 12, tzinfo=UTC)
BASIC = """
  - code: basic
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "20.00", timing: advance}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.10"}
customers:"""


@pytest.fixture
def store(db_url: str):
    store, _ = workspace(db_url, CATALOG.replace("\ncustomers:", BASIC, 1))
    yield store
    store.dispose()


def subscription(store: Store, reference: str = "acme-pro"):
    version, document = load_version(store)
    return version, next(s for s in document.subscriptions if s.reference == reference)


def test_a_change_is_a_new_version_and_a_dry_run_stores_nothing(store: Store) -> None:
    preview = changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-03-01", plan="basic",
                                          dry_run=True)
    assert (preview.stored, preview.previous_version, preview.catalog_version) == (False, 1, 2)
    assert preview.after["next_change"] == {"at": "2026-03-01", "plan": "basic", "proration": "prorate"}
    assert subscription(store)[0] == 1 and subscription(store)[1].changes == []

    done = changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-03-01", plan="basic")
    assert (done.stored, done.catalog_version) == (True, 2)
    version, stored = subscription(store)
    assert version == 2
    assert [(c.at, c.plan, c.proration) for c in stored.changes] == [(date(2026, 3, 1), "basic", "prorate")]
    assert "on a period boundary" in done.described[0]

    history = changes.show_subscription(store, FEB_10, "acme-pro")
    assert [(p["at"], p["plan"], p["proration"]) for p in history.phases] == [
        ("2026-01-15", "pro", None), ("2026-03-01", "basic", "prorate")]
    assert [(v["version"], v["what"]) for v in history.versions] == [(1, "created"), (2, "changed")]


def test_an_invalid_result_is_refused_with_its_path_and_nothing_is_stored(store: Store) -> None:
    with pytest.raises(changes.ChangeInvalid) as refused:
        changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-03-01", plan="enterprise")
    assert [p.path for p in refused.value.problems] == ["subscriptions[0].changes[0].plan"]
    with pytest.raises(changes.ChangeInvalid) as before_start:
        changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-01-01", plan="basic")
    assert [p.path for p in before_start.value.problems] == ["subscriptions[0].changes[0].at"]
    with pytest.raises(InvalidInput) as bad_instant:
        changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-03-01T00:00", plan="basic")
    assert bad_instant.value.field == "at"
    with pytest.raises(NotFound):
        changes.change_subscription(store, FEB_10, reference="nope", at="2026-03-01", plan="basic")
    assert subscription(store)[0] == 1


def test_an_earlier_change_than_a_scheduled_one_needs_replace_later(store: Store) -> None:
    changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-04-01", plan="basic")
    with pytest.raises(Refused):
        changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-03-01", plan="basic",
                                    proration="none")
    assert subscription(store)[0] == 2
    changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-03-01", plan="basic",
                                proration="none", replace_later=True)
    version, stored = subscription(store)
    assert version == 3 and [(c.at, c.proration) for c in stored.changes] == [(date(2026, 3, 1), "none")]


def test_cancel_at_period_end_is_the_end_of_the_local_period_holding_now(store: Store) -> None:
    changes.create_subscription(store, FEB_10, reference="acme-2", customer="acme",
                                requires_reference=True, plan="pro", start="2026-01-15",
                                anchor=1)
    changes.cancel_subscription(store, FEB_10, reference="acme-pro", at_period_end=True, proration="none")
    # 23:30 UTC on Feb 28 is already March 1st in Berlin: that period ends April 1st, in summer time
    changes.cancel_subscription(store, datetime(2026, 2, 28, 23, 30, tzinfo=UTC), reference="acme-2",
                                at_period_end=True)
    for reference, end, written, proration in (
            ("acme-pro", datetime(2026, 2, 28, 23, tzinfo=UTC), "2026-03-01T00:00:00+01:00", "none"),
            ("acme-2", datetime(2026, 3, 31, 22, tzinfo=UTC), "2026-04-01T00:00:00+02:00", "prorate")):
        _, stored = subscription(store, reference)
        assert to_micros(stored.end) == to_micros(end) and stored.end_proration == proration
        assert stored.model_dump(mode="json")["end"] == written  # local midnight, as people read it


def test_an_ended_subscription_ends_earlier_never_later(store: Store) -> None:
    changes.cancel_subscription(store, FEB_10, reference="acme-pro", at="2026-02-01")
    with pytest.raises(Refused):
        changes.cancel_subscription(store, FEB_10, reference="acme-pro", at="2026-03-01")
    with pytest.raises(Refused):
        changes.cancel_subscription(store, FEB_10, reference="acme-pro", at_period_end=True)
    backdated = changes.cancel_subscription(store, FEB_10, reference="acme-pro", at="2026-01-25")
    assert backdated.catalog_version == 3 and backdated.after["status"] == "ended"
    again = changes.cancel_subscription(store, FEB_10, reference="acme-pro", at="2026-01-25")
    assert (again.stored, again.catalog_version) == (False, 3)


def test_create_needs_an_existing_customer_and_previews_its_first_invoice(store: Store) -> None:
    with pytest.raises(NotFound) as unknown:
        changes.create_subscription(store, FEB_10, reference="ghost-1", customer="ghost", plan="basic")
    assert unknown.value.field == "customer" and "catalog apply" in unknown.value.message
    with pytest.raises(AlreadyExists):
        changes.create_subscription(store, FEB_10, reference="acme-pro", customer="acme", plan="basic")

    preview = changes.create_subscription(store, FEB_10, reference="acme-basic", customer="acme",
                                requires_reference=True, plan="basic",
                                          start="2026-03-01", overrides={"base": {"amount": "25.00"}}, dry_run=True)
    assert subscription(store)[0] == 1
    first = next(d for d in preview.documents if d["subscription"] == "acme-basic")
    # the invoice at its start bills March in advance: 25.00 + 19% tax
    assert first["issue_date"] == "2026-03-01"
    assert [(line["code"], line["amount"]) for line in first["lines"]] == [("base", "25.00")]
    assert (Decimal(first["tax"]), Decimal(first["total"])) == (Decimal("4.75"), Decimal("29.75"))

    made = changes.create_subscription(store, FEB_10, reference="acme-now", customer="acme",
                                requires_reference=True, plan="basic")
    assert made.catalog_version == 2 and made.after["start"] == "2026-02-10T12:00:00Z"
    listed = {item["reference"]: item for item in changes.list_subscriptions(store, FEB_10, customer="acme")}
    assert {ref: item["status"] for ref, item in listed.items()} == {"acme-pro": "active", "acme-now": "active"}


def test_list_shows_status_plan_now_and_next_change(store: Store) -> None:
    changes.create_subscription(store, FEB_10, reference="later", customer="acme",
                                requires_reference=True, plan="basic", start="2026-05-01")
    changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-02-01", plan="basic")
    changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-06-01T08:00:00+02:00", plan="pro")
    listed = {item["reference"]: item for item in changes.list_subscriptions(store, FEB_10)}
    assert (listed["later"]["status"], listed["later"]["plan_now"]) == ("scheduled", "basic")
    pro = listed["acme-pro"]
    assert (pro["status"], pro["plan_now"]) == ("active", "basic")
    assert pro["next_change"] == {"at": "2026-06-01T08:00:00+02:00", "plan": "pro", "proration": "prorate"}


def test_a_version_stored_meanwhile_is_kept_and_the_change_made_on_top_of_it(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer stores a version between the change's read and its write: the change is
    computed again from that version, so neither is lost."""
    from ratecard.store import catalogs

    real = catalogs.save_version_on
    calls = []

    def racing(store_, document, base, now_us, environment="live", **more):
        if not calls:  # another writer gets in first: a new subscription, stored as version 2
            _, current = load_version(store_)
            other = current.model_dump(mode="json")
            other["subscriptions"].append({"reference": "other", "customer": "acme", "plan": "basic",
                                           "requires_reference": True, "start": "2026-02-01"})
            catalogs.save_version(store_, type(current).model_validate(other), now_us)
        calls.append(base)
        return real(store_, document, base, now_us, environment, **more)

    monkeypatch.setattr(changes, "save_version_on", racing)
    done = changes.change_subscription(store, FEB_10, reference="acme-pro", at="2026-03-01", plan="basic")
    assert calls == [1, 2] and (done.previous_version, done.catalog_version) == (2, 3)
    _, document = load_version(store)
    assert {s.reference for s in document.subscriptions} == {"acme-pro", "other"}
    assert subscription(store)[1].changes[0].plan == "basic"


def test_steps_stored_together_are_computed_again_on_a_version_stored_meanwhile(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_together: a change and an end in one version with a row, while another writer stores
    a version between the computing and the storing: all of it is computed again on that version
    and stored once, the other writer's version kept."""
    real_text, real_save = changes.version_text, ConfigChange.save_catalog_on
    bases: list[int] = []

    def racing(document):  # computed, about to be stored
        if not bases:  # another writer gets in first: a new subscription, stored as version 2
            _, current = load_version(store)
            other = current.model_dump(mode="json")
            other["subscriptions"].append({"reference": "other", "customer": "acme", "plan": "basic",
                                           "requires_reference": True, "start": "2026-02-01"})
            catalogs.save_version(store, type(current).model_validate(other), 0)
        return real_text(document)

    def saving(change, document, base, text=None):
        bases.append(base)
        return real_save(change, document, base, text)

    def row(change, document):
        change.put(Resource("row-1", "note", "acme-pro", {"subscriptions": len(document.subscriptions)}, 0, 0))

    monkeypatch.setattr(changes, "version_text", racing)
    monkeypatch.setattr(ConfigChange, "save_catalog_on", saving)
    done = changes.write_together(store, FEB_10, "live", [
        changes.change_step(FEB_10, reference="acme-pro", at="2026-03-01", plan="basic"),
        changes.cancel_step(FEB_10, reference="acme-pro", at="2026-06-01")], row)
    assert bases == [1, 2]
    assert [(d.action, d.previous_version, d.catalog_version) for d in done] == [("changed", 2, 3), ("cancelled", 2, 3)]
    version, ours = subscription(store)
    assert version == 3 and ours.changes[0].plan == "basic" and ours.end is not None
    assert {s.reference for s in load_version(store)[1].subscriptions} == {"acme-pro", "other"}
    _, rows = load_resources(store, "live")
    assert [(r.reference, r.body) for r in rows.of_kind("note")] == [("acme-pro", {"subscriptions": 2})]


def test_steps_stored_together_store_nothing_when_one_is_refused_or_the_rows_fail(store: Store) -> None:
    before = load_version(store)[0]

    def failing(change, document):
        change.put(Resource("row-1", "note", "acme-pro", {}, 0, 0))
        raise RuntimeError("the row could not be written")

    with pytest.raises(RuntimeError):
        changes.write_together(store, FEB_10, "live", [
            changes.change_step(FEB_10, reference="acme-pro", at="2026-03-01", plan="basic")], failing)
    with pytest.raises(Refused):  # the change is accepted, the end (before it) is not: neither is stored
        changes.write_together(store, FEB_10, "live", [
            changes.change_step(FEB_10, reference="acme-pro", at="2026-05-01", plan="basic"),
            changes.cancel_step(FEB_10, reference="acme-pro", at="2026-04-01")])
    version, ours = subscription(store)
    assert version == before and not ours.changes and ours.end is None
    assert load_resources(store, "live")[1].of_kind("note") == []
