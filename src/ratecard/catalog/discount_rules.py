"""The cross-checks of discounts and coupons: what they name exists, amounts are in the plan's
currency, and each coupon is redeemed within its limits. Each problem comes with its path."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ..domain.numbers import number_problem
from .schema import Coupon, Discount, Plan, PromotionCode, Subscription

Found = tuple[str, str]  # (path, message)

# A coupon or promotion code is typed and read by people: a new one is 1 to 191 ASCII letters,
# digits, '-' and '_' (starting with a letter or digit), and two codes that differ only in case are
# the same code (Stripe's promotion codes: letters, digits and dashes, unique regardless of case).
SAFE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,190}")
CODE_RULE = ("a coupon or promotion code is 1 to 191 ASCII letters, digits, '-' or '_' (starting with a letter or "
             "digit; no spaces, invisible or look-alike characters), compared ignoring case")


def code_key(code: str) -> str:
    """What a person reads of a code: its NFKC form (fullwidth letters are letters), without
    whitespace or invisible (format) characters such as U+200B, ignoring case."""
    text = unicodedata.normalize("NFKC", code)
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) != "Cf").casefold()


def _codes(coupons: Sequence[Coupon]) -> list[tuple[str, str]]:
    """(path, code) of every coupon's code and promotion code, in catalog order."""
    return [named for index, coupon in enumerate(coupons) for named in _coupon_codes(index, coupon)]


def _coupon_codes(index: int, coupon: Coupon) -> list[tuple[str, str]]:
    """(path, code) of the coupon's code and its promotion codes (the coupon at `index`)."""
    return [(f"coupons[{index}].code", coupon.code),
            *((f"coupons[{index}].promotion_codes[{p_index}].code", promotion.code)
              for p_index, promotion in enumerate(coupon.promotion_codes))]


def new_code_problems(before: Sequence[Coupon], after: Sequence[Coupon]) -> list[Found]:
    """The codes `after` adds to `before` (the catalog stored so far): each follows SAFE_CODE and
    reads as no other code of `after` (code_key). Codes stored before the rule are left as they
    are: they are still redeemed exactly as written."""
    old = {code for _, code in _codes(before)}
    found: list[Found] = []
    readers: dict[str, list[str]] = {}
    for _, code in _codes(after):
        readers.setdefault(code_key(code), []).append(code)
    for path, code in _codes(after):
        if code in old:
            continue
        if not SAFE_CODE.fullmatch(code):
            found.append((path, f"{code[:200]!r}: {CODE_RULE}"))
            continue
        same = [other for other in readers[code_key(code)] if other != code]
        if same:
            found.append((path, f"{code!r} reads the same as code {same[0][:200]!r} (codes are compared ignoring "
                                "case)"))
    return found


def named_as_stored(document: Any) -> Any:
    """A raw catalog whose subscriptions name each coupon as it is stored: a name that is no code
    but a safe one matching exactly one code ignoring case (save10 for SAVE10) is replaced by that
    code. Anything else is left for the checks to report. The input is not modified."""
    if not isinstance(document, dict) or not isinstance(document.get("subscriptions"), list) \
            or not isinstance(document.get("coupons"), list):
        return document
    exact: set[str] = set()
    folded: dict[str, set[str]] = {}
    for coupon in document["coupons"]:
        if not isinstance(coupon, dict):
            continue
        promotions = coupon.get("promotion_codes")
        for item in [coupon, *(promotions if isinstance(promotions, list) else [])]:
            code = item.get("code") if isinstance(item, dict) else None
            if isinstance(code, str):
                exact.add(code)
                folded.setdefault(code.casefold(), set()).add(code)
    subscriptions = []
    changed = False
    for subscription in document["subscriptions"]:
        names = subscription.get("coupons") if isinstance(subscription, dict) else None
        if isinstance(names, list):
            stored = [_as_stored(name, exact, folded) for name in names]
            if stored != names:
                subscription, changed = {**subscription, "coupons": stored}, True
        subscriptions.append(subscription)
    return {**document, "subscriptions": subscriptions} if changed else document


def _as_stored(name: Any, exact: set[str], folded: dict[str, set[str]]) -> Any:
    if not isinstance(name, str) or name in exact or not SAFE_CODE.fullmatch(name):
        return name
    matches = folded.get(name.casefold(), set())
    return next(iter(matches)) if len(matches) == 1 else name


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
        found += _bound(discount.percent_off, f"{where}.percent_off")
        if discount.charge is not None and plans and discount.charge not in charges:
            names = ", ".join(repr(plan.code) for plan in plans)
            found.append((f"{where}.charge", f"no charge {discount.charge!r} in plan {names}"))
    return found


def coupon_problems(coupons: Sequence[Coupon]) -> list[Found]:
    """Amounts in bounds; every code (a coupon's, its promotion codes') names one thing only."""
    found: list[Found] = []
    seen: dict[str, str] = {}
    for index, coupon in enumerate(coupons):
        found += _bound(coupon.amount_off, f"coupons[{index}].amount_off")
        found += _bound(coupon.percent_off, f"coupons[{index}].percent_off")
        for path, code in _coupon_codes(index, coupon):
            if code in seen:
                found.append((path, f"{code!r} is already used by {seen[code]}"))
            seen.setdefault(code, path.removesuffix(".code"))
    return found


Redeemable = Coupon | PromotionCode


def _closed(item: Redeemable | None, subscription: Subscription) -> str | None:
    """Why the subscription cannot take the coupon or code (None: it can). One that is not active
    can be taken by no subscription but those that carried it when it left active (`kept_by`)."""
    if item is None or item.status == "active" or subscription.reference in item.kept_by:
        return None
    return f"is {item.status}: it cannot be redeemed"


def resolve_codes(coupons: Sequence[Coupon]) -> dict[str, tuple[Coupon, PromotionCode | None]]:
    """Each code a subscription can name -> (its coupon, the promotion code when it is one)."""
    found: dict[str, tuple[Coupon, PromotionCode | None]] = {}
    for coupon in coupons:
        found.setdefault(coupon.code, (coupon, None))
        for promotion in coupon.promotion_codes:
            found.setdefault(promotion.code, (coupon, promotion))
    return found


def redemption_problems(subscriptions: Sequence[tuple[int, Subscription]], coupons: Sequence[Coupon],
                        coupon_codes: set[str], plans: dict[str, Plan],
                        as_instant: Callable[[Subscription, date | datetime], datetime],
                        currency_of: Callable[[Subscription], str | None] | None = None) -> list[Found]:
    """Each subscription's coupons: known, in the currency it is billed in (`currency_of`, else its
    plan's), redeemed by `redeem_by` (checked against the subscription's start) and at most
    `max_redemptions` times over all subscriptions, counted in catalog order; active, or kept by
    the subscription. A code may be one of a coupon's promotion codes: its own status and limits
    apply first, then the coupon's (whose maximum counts every code). Discount codes of a
    subscription are distinct: each is a line code."""
    by_code = resolve_codes(coupons)
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
            resolved = by_code.get(code)
            if resolved is None and code in coupon_codes:
                continue  # the coupon itself is broken: reported at its own path
            if resolved is None:
                known = ", ".join(sorted(by_code)[:20]) or "none"
                same = sorted(other for other in by_code if other.casefold() == code.casefold())
                why = f"; it names {' and '.join(repr(o) for o in same)} ignoring case: name one as written" \
                    if len(same) > 1 else "" if SAFE_CODE.fullmatch(code) else f"; {CODE_RULE}"
                found.append((where, f"unknown coupon {code[:200]!r} (known: {known}){why}"))
                continue
            coupon, promotion = resolved
            if coupon.code in codes:  # a coupon is taken once, by its code or any of its promotion codes
                found.append((where, f"{code!r} is already {codes[coupon.code]}"))
                continue
            codes[coupon.code] = "one of its coupons"
            start = as_instant(subscription, subscription.start)
            refusals = [f"{label} {item.code!r} {why}" for item, label in ((promotion, "promotion code"),
                                                                          (coupon, "coupon"))
                        if (why := _closed(item, subscription)) is not None and item is not None]
            if refusals:
                found.append((where, refusals[0]))
                continue
            if promotion is not None:
                if promotion.redeem_by is not None and start > as_instant(subscription, promotion.redeem_by):
                    found.append((where, f"promotion code {code!r} could be redeemed until {promotion.redeem_by}; "
                                         f"the subscription starts {subscription.start}"))
                    continue
                users = redeemed.setdefault(f"promotion:{promotion.code}", [])
                if promotion.max_redemptions is not None and len(users) >= promotion.max_redemptions:
                    found.append((where, f"promotion code {code!r} can be redeemed {promotion.max_redemptions} "
                                         f"time(s), already by {', '.join(repr(u) for u in users[:5])}"))
                    continue
                users.append(subscription.reference)
            code = coupon.code
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
