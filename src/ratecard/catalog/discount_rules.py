"""The cross-checks of discounts and coupons: what they name exists, amounts are in the plan's
currency, and each coupon is redeemed within its limits. Each problem comes with its path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal

from ..domain.numbers import number_problem
from .schema import Coupon, Discount, Plan, Subscription

Found = tuple[str, str]  # (path, message)


def _bound(value: Decimal | None, path: str) -> list[Found]:
    problem = number_problem(value) if value is not None else None
    return [(path, problem)] if problem is not None else []


def discount_problems(discounts: Sequence[tuple[int, Discount]], path: str, plans: Sequence[Plan]) -> list[Found]:
    """Discounts (by index) of a plan, or of a subscription over every plan its terms go through."""
    found: list[Found] = []
    charges = {charge.code for plan in plans for charge in plan.charges}
    for index, discount in discounts:
        where = f"{path}[{index}]"
        found += _bound(discount.amount_off, f"{where}.amount_off")
        if discount.charge is not None and plans and discount.charge not in charges:
            names = ", ".join(repr(plan.code) for plan in plans)
            found.append((f"{where}.charge", f"no charge {discount.charge!r} in plan {names}"))
    return found


def coupon_problems(coupons: Sequence[Coupon]) -> list[Found]:
    found: list[Found] = []
    seen: dict[str, int] = {}
    for index, coupon in enumerate(coupons):
        found += _bound(coupon.amount_off, f"coupons[{index}].amount_off")
        if coupon.code in seen:
            found.append((f"coupons[{index}].code",
                          f"{coupon.code!r} is already used by coupons[{seen[coupon.code]}]"))
        seen.setdefault(coupon.code, index)
    return found


def redemption_problems(subscriptions: Sequence[tuple[int, Subscription]], coupons: Sequence[Coupon],
                        coupon_codes: set[str], plans: dict[str, Plan],
                        as_instant: Callable[[Subscription, date | datetime], datetime],
                        currency_of: Callable[[Subscription], str | None] | None = None) -> list[Found]:
    """Each subscription's coupons: known, in the currency it is billed in (`currency_of`, else its
    plan's), redeemed by `redeem_by` (checked against the subscription's start) and at most
    `max_redemptions` times over all subscriptions, counted in catalog order. Discount codes of a
    subscription are distinct: each is a line code."""
    by_code = {coupon.code: coupon for coupon in coupons}
    redeemed: dict[str, list[str]] = {}
    found: list[Found] = []
    for index, subscription in subscriptions:
        path = f"subscriptions[{index}]"
        plan = plans.get(subscription.plan)
        codes = {discount.code: "a discount of its plan" for discount in (plan.discounts if plan else ())}
        for d_index, discount in enumerate(subscription.discounts):
            if discount.code in codes:
                found.append((f"{path}.discounts[{d_index}].code",
                              f"{discount.code!r} is already {codes[discount.code]}"))
            codes.setdefault(discount.code, "one of its discounts")
        for c_index, code in enumerate(subscription.coupons):
            where = f"{path}.coupons[{c_index}]"
            coupon = by_code.get(code)
            if coupon is None and code in coupon_codes:
                continue  # the coupon itself is broken: reported at its own path
            if coupon is None:
                known = ", ".join(sorted(by_code)[:20]) or "none"
                found.append((where, f"unknown coupon {code!r} (known: {known})"))
                continue
            if code in codes:
                found.append((where, f"{code!r} is already {codes[code]}"))
                continue
            codes[code] = "one of its coupons"
            billed_in = currency_of(subscription) if currency_of is not None else (plan.currency if plan else None)
            if coupon.currency is not None and plan is not None and billed_in and coupon.currency != billed_in:
                found.append((where, f"coupon {code!r} takes {coupon.amount_off} {coupon.currency} off but "
                                     + (f"plan {plan.code!r} bills in {plan.currency}" if billed_in == plan.currency
                                        else f"subscription {subscription.reference!r} is billed in {billed_in}")))
            if coupon.redeem_by is not None and \
                    as_instant(subscription, subscription.start) > as_instant(subscription, coupon.redeem_by):
                found.append((where, f"coupon {code!r} could be redeemed until {coupon.redeem_by}; the subscription "
                                     f"starts {subscription.start}"))
                continue
            users = redeemed.setdefault(code, [])
            if coupon.max_redemptions is not None and len(users) >= coupon.max_redemptions:
                shown = ", ".join(repr(user) for user in users[:5])
                found.append((where, f"coupon {code!r} can be redeemed {coupon.max_redemptions} time(s), already "
                                     f"by {shown}"))
                continue
            users.append(subscription.reference)
    return found
