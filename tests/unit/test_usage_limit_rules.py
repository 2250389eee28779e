"""The rules of usage limits and entitlement overrides: a limit's percentage and whether it is
reached, and how an override replaces a plan's grant (services.usage_limits, services.entitlements)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from ratecard.catalog.schema import Feature
from ratecard.services.entitlements import Granted, with_overrides
from ratecard.services.usage_limits import LimitStatus, check_number
from ratecard.store.resources import Resource

QUOTA = Feature(code="tokens_quota", type="number", meter="tokens")
SSO = Feature(code="sso", type="switch")
AMOUNTS = st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False, allow_infinity=False)


def status(limit: str, consumed: Decimal) -> LimitStatus:
    row = Resource("ul_1", "usage_limit", "ul_1", {"customer": "acme", "meter": "tokens", "limit": limit,
                                                    "scope": "SELF", "status": "ACTIVE"}, 0, 0)
    return LimitStatus(row, consumed, True, None, None)


def test_hand_computed_percentages() -> None:
    # 1200.5 of 1000 = 120.05 %, reached; of 2500 = 48.02 %, not reached; 0 of 0 is a reached cap
    assert (status("1000", Decimal("1200.5")).percentage, status("1000", Decimal("1200.5")).reached) == \
        (Decimal("120.05"), True)
    assert (status("2500", Decimal("1200.5")).percentage, status("2500", Decimal("1200.5")).reached) == \
        (Decimal("48.02"), False)
    assert status("3", Decimal(1)).percentage == Decimal("33.33")  # 33.333… rounds half up to two places
    assert status("8", Decimal(1)).percentage == Decimal("12.50")
    assert (status("0", Decimal(0)).percentage, status("0", Decimal(0)).reached) == (Decimal(100), True)


@given(limit=AMOUNTS, consumed=AMOUNTS)
def test_reached_exactly_when_consumed_is_at_least_the_limit(limit: Decimal, consumed: Decimal) -> None:
    item = status(check_number(str(limit)), consumed)
    assert item.reached == (consumed >= limit)
    if limit > 0:
        exact = consumed * 100 / limit
        assert abs(item.percentage - exact) <= Decimal("0.005")  # two decimals, half up
        assert item.percentage == exact.quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert (item.percentage >= 100) == item.reached or item.percentage == 100


def test_check_number_keeps_the_value_and_refuses_what_is_not_a_cap() -> None:
    assert [check_number(v) for v in ("5000", "12.50", 7, "1E+3")] == ["5000", "12.50", "7", "1000"]
    for bad in ("-1", "abc", True, None, "NaN", "Infinity"):
        try:
            check_number(bad)
        except Exception as exc:  # noqa: BLE001 - InvalidInput, naming the field
            assert getattr(exc, "field", None) == "limit.number"
        else:
            raise AssertionError(f"{bad!r} was accepted")


@given(plan=AMOUNTS, override=AMOUNTS, usage=AMOUNTS)
def test_an_override_replaces_the_value_and_keeps_the_usage(plan: Decimal, override: Decimal, usage: Decimal) -> None:
    granted = [Granted(QUOTA, plan, usage), Granted(SSO, False)]
    out = with_overrides(granted, {"tokens_quota": override}, {"tokens_quota": QUOTA, "sso": SSO}, {"tokens": usage})
    quota = next(item for item in out if item.feature.code == "tokens_quota")
    assert (quota.value, quota.usage, quota.override) == (override, usage, True)
    assert quota.remaining == max(override - usage, Decimal(0))
    assert next(item for item in out if item.feature.code == "sso") == granted[1]  # untouched
    assert with_overrides(granted, {}, {}, {}) is granted


def test_an_override_of_a_feature_the_plan_does_not_grant_adds_it() -> None:
    out = with_overrides([], {"sso": True, "tokens_quota": Decimal(10)}, {"sso": SSO, "tokens_quota": QUOTA},
                         {"tokens": Decimal(4)})
    assert [(g.feature.code, g.value, g.usage, g.override) for g in out] == \
        [("sso", True, None, True), ("tokens_quota", Decimal(10), Decimal(4), True)]
    # a meter the plan's invoices do not measure: no usage shown, rather than a made-up 0
    [unmeasured] = with_overrides([], {"tokens_quota": Decimal(10)}, {"tokens_quota": QUOTA}, {})
    assert unmeasured.usage is None and unmeasured.remaining is None


def test_a_tiny_limit_and_a_large_usage_still_give_a_percentage() -> None:
    # 10,000,000 used of a 1e-19 limit is 1e28 %: 31 digits with its two decimals, past Python's
    # default 28 (a 500 on the status route before)
    from types import SimpleNamespace

    from ratecard.services.usage_limits import LimitStatus

    status = LimitStatus(SimpleNamespace(body={"limit": "1e-19"}), Decimal("10000000"), True, None, None)  # type: ignore[arg-type]
    assert status.percentage == Decimal("1" + "0" * 28 + ".00")
