"""Subscription edits on hand-written catalog documents: add one, new terms from an instant, an end."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.catalog import build_catalog, check_document
from ratecard.catalog.edits import (
    EditError,
    add_change,
    add_subscription,
    laid_over,
    parse_override,
    set_end,
    terms_before,
)

NOW = datetime(2026, 2, 10, 12, tzinfo=UTC)


def document() -> dict:
    return {
        "billing_entity": {"timezone": "UTC", "currency": "EUR"},
        "meters": [{"code": "tokens", "aggregation": "sum", "field": "tokens"}],
        "plans": [
            {"code": "basic", "currency": "EUR", "charges": [{"code": "base", "model": "flat", "amount": "20.00"}]},
            {"code": "pro", "currency": "EUR", "charges": [
                {"code": "base", "model": "flat", "amount": "49.00"},
                {"code": "tokens", "model": "per_unit", "meter": "tokens", "unit_amount": "0.002"}]},
        ],
        "customers": [{"reference": "acme", "timezone": "Europe/Berlin"}, {"reference": "globex"}],
        "subscriptions": [{"reference": "acme-1", "customer": "acme", "plan": "basic", "start": "2026-01-01"}],
    }


def valid(raw: dict) -> None:
    checked, problems = check_document(raw)
    assert problems == [] and checked is not None


def test_add_subscription_appends_it_and_leaves_the_input_alone() -> None:
    before = document()
    kept = copy.deepcopy(before)
    edited = add_subscription(before, {"reference": "globex-1", "customer": "globex", "plan": "pro",
                                       "start": "2026-02-01"})
    assert before == kept
    assert [s["reference"] for s in edited["subscriptions"]] == ["acme-1", "globex-1"]
    valid(edited)


def test_add_subscription_refuses_a_taken_reference_and_an_unknown_customer() -> None:
    with pytest.raises(EditError) as taken:
        add_subscription(document(), {"reference": "acme-1", "customer": "acme", "plan": "pro", "start": "2026-02-01"})
    assert taken.value.kind == "exists"
    with pytest.raises(EditError) as unknown:
        add_subscription(document(), {"reference": "x", "customer": "ghost", "plan": "pro", "start": "2026-02-01"})
    assert unknown.value.kind == "unknown_customer" and unknown.value.field == "customer"


def test_a_change_is_written_with_its_plan_and_proration() -> None:
    edited = add_change(document(), "acme-1", date(2026, 3, 1), plan="pro", proration="invoice_now")
    assert edited["subscriptions"][0]["changes"] == [{"at": "2026-03-01", "plan": "pro", "proration": "invoice_now"}]
    valid(edited)
    phases = build_catalog(check_document(edited)[0]).subscriptions["acme-1"].phases()
    assert [(phase.plan_code, phase.proration) for phase in phases] == [("basic", "none"), ("pro", "invoice_now")]


def test_overrides_are_laid_over_those_in_force_when_the_plan_stays() -> None:
    raw = document()
    raw["subscriptions"][0]["overrides"] = {"base": {"amount": "18.00", "description": "Base"}}
    edited = add_change(raw, "acme-1", datetime(2026, 3, 1, 9, tzinfo=UTC), overrides={"base": {"amount": "15.00"}})
    change = edited["subscriptions"][0]["changes"][0]
    assert change == {"at": "2026-03-01T09:00:00Z", "plan": "basic", "proration": "prorate",
                      "overrides": {"base": {"amount": "15.00", "description": "Base"}}}
    valid(edited)


def test_a_new_plan_starts_from_no_overrides() -> None:
    raw = document()
    raw["subscriptions"][0]["overrides"] = {"base": {"amount": "18.00"}}
    edited = add_change(raw, "acme-1", date(2026, 3, 1), plan="pro")
    assert "overrides" not in edited["subscriptions"][0]["changes"][0]
    assert terms_before(edited, edited["subscriptions"][0], datetime(2026, 4, 1, tzinfo=UTC)) == ("pro", {})


def test_the_same_terms_again_is_no_change() -> None:
    with pytest.raises(EditError) as same:
        add_change(document(), "acme-1", date(2026, 3, 1), plan="basic")
    assert same.value.kind == "no_change"


def test_a_change_before_a_later_one_is_refused_unless_it_replaces_them() -> None:
    raw = add_change(document(), "acme-1", date(2026, 4, 1), plan="pro")
    with pytest.raises(EditError) as refused:
        add_change(raw, "acme-1", date(2026, 3, 1), plan="pro")
    assert refused.value.kind == "later_changes" and "2026-04-01" in str(refused.value)
    with pytest.raises(EditError):  # the same instant is "at or after" too
        add_change(raw, "acme-1", date(2026, 4, 1), overrides={"base": {"amount": "40.00"}})
    replaced = add_change(raw, "acme-1", date(2026, 3, 1), plan="pro", replace_later=True)
    assert [c["at"] for c in replaced["subscriptions"][0]["changes"]] == ["2026-03-01"]


def test_instants_are_compared_in_the_subscriptions_timezone() -> None:
    # acme is in Berlin: the date 2026-04-01 is 2026-03-31T22:00Z, before 23:30Z the same evening
    raw = add_change(document(), "acme-1", datetime(2026, 3, 31, 23, 30, tzinfo=UTC), plan="pro")
    with pytest.raises(EditError):
        add_change(raw, "acme-1", date(2026, 4, 1), plan="basic")
    after = add_change(raw, "acme-1", date(2026, 4, 2), plan="basic")
    valid(after)


def test_unknown_subscription() -> None:
    with pytest.raises(EditError) as unknown:
        add_change(document(), "nope", date(2026, 3, 1), plan="pro")
    assert unknown.value.kind == "unknown_subscription"


def test_set_end_writes_end_and_end_proration() -> None:
    edited = set_end(document(), "acme-1", datetime(2026, 3, 1, tzinfo=UTC), NOW, proration="none")
    subscription = edited["subscriptions"][0]
    assert (subscription["end"], subscription["end_proration"]) == ("2026-03-01T00:00:00Z", "none")
    valid(edited)


def test_an_ended_subscription_may_end_earlier_never_later() -> None:
    raw = set_end(document(), "acme-1", date(2026, 2, 1), NOW)
    with pytest.raises(EditError) as later:
        set_end(raw, "acme-1", date(2026, 3, 1), NOW)
    assert later.value.kind == "ended"
    earlier = set_end(raw, "acme-1", date(2026, 1, 20), NOW)
    assert earlier["subscriptions"][0]["end"] == "2026-01-20"
    # an end still ahead can move later: the subscription has not ended
    ahead = set_end(document(), "acme-1", date(2026, 5, 1), NOW)
    assert set_end(ahead, "acme-1", date(2026, 6, 1), NOW)["subscriptions"][0]["end"] == "2026-06-01"


def test_an_end_before_scheduled_changes_needs_replace_later() -> None:
    raw = add_change(document(), "acme-1", date(2026, 4, 1), plan="pro")
    with pytest.raises(EditError) as refused:
        set_end(raw, "acme-1", date(2026, 3, 1), NOW)
    assert refused.value.kind == "later_changes"
    dropped = set_end(raw, "acme-1", date(2026, 3, 1), NOW, replace_later=True)
    assert dropped["subscriptions"][0]["changes"] == []
    valid(dropped)


def test_parse_override() -> None:
    assert parse_override("base.amount=39.00") == ("base", "amount", "39.00")
    charge, field, tiers = parse_override('tokens.tiers=[{"up_to": 1000, "unit_amount": 0.5}, {"up_to": null}]')
    assert (charge, field) == ("tokens", "tiers") and str(tiers[0]["unit_amount"]) == "0.5"
    for bad in ("base=1", "amount", ".amount=1", "base.=1", "tokens.tiers=[1,"):
        with pytest.raises(EditError):
            parse_override(bad)


def test_laid_over_merges_field_by_field() -> None:
    assert laid_over({"base": {"amount": "1", "description": "d"}}, {"base": {"amount": "2"}, "x": {"rate": "3"}}) == {
        "base": {"amount": "2", "description": "d"}, "x": {"rate": "3"}}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=8))
def test_replacing_later_changes_keeps_them_in_time_order_and_valid(days: list[int]) -> None:
    """Whatever order changes arrive in, with replace-later the document stays valid, its changes
    strictly after one another, and the last is the one just made."""
    raw = document()
    plans = ("pro", "basic")
    for index, day in enumerate(days):
        at = date(2026, 1, 1) + timedelta(days=day)
        current = terms_before(raw, raw["subscriptions"][0], datetime(2030, 1, 1, tzinfo=UTC))[0]
        plan = plans[index % 2] if plans[index % 2] != current else plans[(index + 1) % 2]
        try:
            raw = add_change(raw, "acme-1", at, plan=plan, replace_later=True)
        except EditError as exc:
            assert exc.kind == "no_change"  # the plan in force just before `at` is already that plan
            continue
        changes = raw["subscriptions"][0]["changes"]
        assert changes[-1]["at"] == at.isoformat()
        assert [c["at"] for c in changes] == sorted({c["at"] for c in changes})
        valid(raw)


def test_the_validator_reads_a_date_as_local_midnight_of_the_subscription() -> None:
    """acme-1 starts 2026-01-01 in Berlin (2025-12-31T23:00Z): a change at 23:30Z that evening is
    after the start, and an end at 2026-03-01 (Berlin) is before a change at 23:30Z on Feb 28."""
    raw = document()
    raw["subscriptions"][0]["changes"] = [{"at": "2025-12-31T23:30:00Z", "plan": "pro"}]
    valid(raw)
    raw["subscriptions"][0]["changes"] = [{"at": "2026-02-28T23:30:00Z", "plan": "pro"}]
    raw["subscriptions"][0]["end"] = "2026-03-01"
    checked, problems = check_document(raw)
    assert [problem.path for problem in problems] == ["subscriptions[0].changes[0].at"]
