"""The catalog edits behind deleting, moving and rewriting a schedule and voiding a subscription.

The money rules they carry: a change taken back before it takes effect bills as if it had never
been scheduled (the document is the one before it, and invoices are a function of the document
and the events); a voided subscription leaves the catalog and nothing else in it changes (every
other subscription bills as before)."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.catalog import check_document
from ratecard.catalog.edits import (
    EditError,
    add_change,
    add_subscription,
    drop_change,
    remove_subscription,
    set_first_terms,
)

from .test_catalog_edits import document, valid


def with_changes(days: list[int]) -> dict:
    """acme-1 (basic from 2026-01-01) with a change of plan at each of `days` after the start, the
    plans alternating."""
    raw = document()
    plan = "basic"
    for day in sorted(set(days)):
        plan = "pro" if plan == "basic" else "basic"
        raw = add_change(raw, "acme-1", date(2026, 1, 1) + timedelta(days=day), plan=plan)
    return raw


def test_drop_change_takes_back_exactly_that_change() -> None:
    raw = with_changes([31, 59, 90])
    before = copy.deepcopy(raw)
    edited = drop_change(raw, "acme-1", date(2026, 3, 1))
    assert raw == before  # the input is left alone
    assert [c["at"] for c in edited["subscriptions"][0]["changes"]] == ["2026-02-01", "2026-04-01"]
    valid(edited)
    with pytest.raises(EditError) as none:
        drop_change(raw, "acme-1", date(2026, 3, 2))
    assert none.value.field == "at"


def test_remove_subscription_and_unknown_references() -> None:
    raw = add_subscription(document(), {"reference": "globex-1", "customer": "globex", "plan": "pro",
                                        "start": "2026-02-01"})
    edited = remove_subscription(raw, "acme-1")
    assert [s["reference"] for s in edited["subscriptions"]] == ["globex-1"]
    assert edited["customers"] == raw["customers"]  # the customer stays
    valid(edited)
    for edit in (lambda: remove_subscription(raw, "nope"), lambda: drop_change(raw, "nope", date(2026, 3, 1))):
        with pytest.raises(EditError) as unknown:
            edit()
        assert unknown.value.kind == "unknown_subscription"


def test_set_first_terms_replaces_start_plan_and_seats_and_drops_the_old_plans_overrides() -> None:
    raw = document()
    raw["subscriptions"][0]["overrides"] = {"base": {"amount": "15.00"}}
    edited = set_first_terms(raw, "acme-1", start=date(2026, 3, 1), plan="pro", quantity=3)
    entry = edited["subscriptions"][0]
    assert (entry["start"], entry["plan"], entry["quantity"], "overrides" in entry) == ("2026-03-01", "pro", 3, False)
    valid(edited)
    # the same plan keeps its overrides
    assert set_first_terms(raw, "acme-1", start=date(2026, 3, 1))["subscriptions"][0]["overrides"] == {
        "base": {"amount": "15.00"}}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=300), max_size=5), st.integers(min_value=301, max_value=700),
       st.sampled_from(["basic", "pro"]), st.integers(min_value=1, max_value=40))
def test_a_change_scheduled_then_taken_back_leaves_the_catalog_as_before(days: list[int], later: int, plan: str,
                                                                        seats: int) -> None:
    """Whatever terms and seats a change after all the others schedules, taking it back gives the
    very document it was made on: the same catalog, so the same invoices."""
    raw = with_changes(days)
    at = datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(days=later)
    try:
        scheduled = add_change(raw, "acme-1", at, plan=plan, quantity=seats)
    except EditError as exc:
        assert exc.kind == "no_change"  # those are the terms in force already: nothing to take back
        return
    assert drop_change(scheduled, "acme-1", at) == raw


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["acme", "globex"]), min_size=1, max_size=6), st.data())
def test_voiding_one_subscription_changes_no_other(customers: list[str], data: st.DataObject) -> None:
    """Voiding any one subscription leaves every other entry as it was (so each bills as before)
    and the document valid; putting the entry back gives the same subscriptions again."""
    raw = document()
    raw["subscriptions"] = []
    for index, customer in enumerate(customers):
        raw = add_subscription(raw, {"reference": f"s{index}", "customer": customer, "requires_reference": True,
                                     "plan": ["basic", "pro"][index % 2], "start": f"2026-0{1 + index % 6}-01"})
    victim = data.draw(st.sampled_from([s["reference"] for s in raw["subscriptions"]]))
    voided = remove_subscription(raw, victim)
    assert [s for s in raw["subscriptions"] if s["reference"] != victim] == voided["subscriptions"]
    checked, problems = check_document(voided)
    assert problems == [] and checked is not None
    restored = add_subscription(voided, next(s for s in raw["subscriptions"] if s["reference"] == victim))
    assert sorted(restored["subscriptions"], key=lambda s: s["reference"]) == sorted(
        raw["subscriptions"], key=lambda s: s["reference"])
