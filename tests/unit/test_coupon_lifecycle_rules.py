"""A coupon's or promotion code's lifecycle in the catalog check: only an active one can be taken;
the subscriptions in its kept_by keep it; a promotion code takes its coupon (its discount on the
invoice) within its own limits and the coupon's."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.catalog import build_catalog, check_document
from ratecard.catalog.schema import Coupon


def _catalog(coupon: dict, *subscriptions: dict) -> dict:
    return {
        "plans": [{"code": "pro", "currency": "EUR", "charges": [
            {"code": "base", "model": "flat", "amount": "100.00", "timing": "arrears"}]}],
        "customers": [{"reference": "acme"}, {"reference": "beta"}],
        "coupons": [{"code": "SPRING", "percent_off": "10", "duration": "forever", **coupon}],
        "subscriptions": [{"plan": "pro", "start": "2026-01-01", **s} for s in subscriptions],
    }


def _problems(document: dict) -> list[str]:
    found, problems = check_document(document)
    assert (found is None) == bool(problems)
    return [f"{p.path}: {p.message}" for p in problems]


def test_only_an_active_coupon_is_taken_and_kept_by_keeps_it() -> None:
    acme = {"reference": "acme-pro", "customer": "acme", "coupons": ["SPRING"]}
    beta = {"reference": "beta-pro", "customer": "beta", "coupons": ["SPRING"]}
    assert _problems(_catalog({}, acme, beta)) == []
    for status in ("draft", "inactive", "deprecated", "archived"):
        assert _problems(_catalog({"status": status, "kept_by": ["acme-pro"]}, acme, beta)) == [
            f"subscriptions[1].coupons[0]: coupon 'SPRING' is {status}: it cannot be redeemed"]


def test_a_promotion_code_takes_its_coupon_within_its_own_limits() -> None:
    code = {"promotion_codes": [{"code": "FRIENDS", "max_redemptions": 1}]}
    acme = {"reference": "acme-pro", "customer": "acme", "coupons": ["FRIENDS"]}
    beta = {"reference": "beta-pro", "customer": "beta", "coupons": ["FRIENDS"]}
    document, problems = check_document(_catalog(code, acme))
    assert problems == [] and document is not None
    # the code names the coupon: its 10 % off applies to the subscription
    [discount] = build_catalog(document).subscriptions["acme-pro"].plan.discounts
    assert discount.code == "SPRING" and str(discount.percent_off) == "10"
    assert _problems(_catalog(code, acme, beta)) == [
        "subscriptions[1].coupons[0]: promotion code 'FRIENDS' can be redeemed 1 time(s), already by 'acme-pro'"]
    closed = {"promotion_codes": [{"code": "FRIENDS", "status": "inactive"}]}
    assert _problems(_catalog(closed, acme)) == [
        "subscriptions[0].coupons[0]: promotion code 'FRIENDS' is inactive: it cannot be redeemed"]
    # a coupon is taken once, by its code or a promotion code
    both = {"reference": "acme-pro", "customer": "acme", "coupons": ["SPRING", "FRIENDS"]}
    assert _problems(_catalog({"promotion_codes": [{"code": "FRIENDS"}]}, both)) == [
        "subscriptions[0].coupons[1]: 'FRIENDS' is already one of its coupons"]


def test_codes_are_unique_among_coupons_and_promotion_codes() -> None:
    document = _catalog({"promotion_codes": [{"code": "SPRING"}]})
    assert _problems(document) == ["coupons[0].promotion_codes[0].code: 'SPRING' is already used by coupons[0]"]


def test_a_coupon_without_a_lifecycle_keeps_its_stored_form() -> None:
    """A catalog written before lifecycles existed keeps its digest: defaults are not stored."""
    coupon = Coupon.model_validate({"code": "A", "percent_off": "10", "duration": "once"})
    assert set(coupon.model_dump(mode="json")) == {"percent_off", "amount_off", "code", "description", "currency",
                                                   "duration", "periods", "max_redemptions", "redeem_by"}


@settings(max_examples=60, deadline=None)
@given(off=st.one_of(st.builds(lambda p: {"percent_off": str(p)}, st.integers(1, 100)),
                     st.builds(lambda a: {"amount_off": f"{a}.50", "currency": "EUR"}, st.integers(0, 500))),
       duration=st.sampled_from([{"duration": "once"}, {"duration": "forever"},
                                 {"duration": "repeating", "periods": 3}]))
def test_naming_a_promotion_code_bills_exactly_as_naming_its_coupon(off: dict, duration: dict) -> None:
    coupon = {**off, **duration, "promotion_codes": [{"code": "FRIENDS"}]}

    def discounts(code: str) -> tuple:
        document = _catalog(coupon, {"reference": "acme-pro", "customer": "acme", "coupons": [code]})
        if "amount_off" in off:  # _catalog's coupon is 10 % off: an amount replaces it
            del document["coupons"][0]["percent_off"]
        checked, problems = check_document(document)
        assert problems == []
        return build_catalog(checked).subscriptions["acme-pro"].plan.discounts

    assert discounts("FRIENDS") == discounts("SPRING")
