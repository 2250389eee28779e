"""Features and what plans grant (Solvimon's features and entitlements): the catalog's `features`
and each plan's `features` map, checked with a path per problem, and a plan's values read back as
typed values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from ..domain.money import MoneyError, to_decimal
from ..domain.numbers import number_problem, whole_number_problem
from .schema import Feature, Plan

NUMBER, SWITCH, ENUM = "number", "switch", "enum"


def feature_problems(features: Iterable[tuple[int, Feature]], plans: Iterable[tuple[int, Plan]],
                     feature_codes: set[str], meter_codes: set[str]) -> list[tuple[str, str]]:
    """(path, message) for every problem: duplicate codes, a field that does not fit the type, an
    unknown meter; a plan granting an unknown feature or a value of the wrong type.

    `feature_codes` holds every feature's code, valid or not (a plan naming a broken feature is not
    told the feature is unknown)."""
    problems: list[tuple[str, str]] = []
    features = list(features)
    by_code: dict[str, Feature] = {}
    for index, feature in features:
        path = f"features[{index}]"
        if feature.code in by_code:
            problems.append((f"{path}.code", f"duplicate feature code {feature.code!r}"))
        by_code.setdefault(feature.code, feature)
        if feature.type == ENUM:
            if not feature.values:
                problems.append((f"{path}.values", "an enum feature lists its allowed values (at least one)"))
            repeated = sorted(value for value, n in Counter(feature.values).items() if n > 1)
            if repeated:
                problems.append((f"{path}.values", f"lists {repeated[0]!r} more than once"))
        elif feature.values:
            problems.append((f"{path}.values", f"only an enum feature has values (this one is {feature.type})"))
        if feature.meter is not None:
            if feature.type != NUMBER:
                problems.append((f"{path}.meter", f"only a number feature counts a meter's usage (this one is "
                                                  f"{feature.type})"))
            elif feature.meter not in meter_codes:
                problems.append((f"{path}.meter", f"unknown meter {feature.meter!r}"))
    for index, plan in plans:
        for code, value in plan.features.items():
            path = f"plans[{index}].features.{code}"
            feature = by_code.get(code)
            if feature is None:
                if code not in feature_codes:
                    known = ", ".join(sorted(feature_codes)) or "none"
                    problems.append((path, f"unknown feature {code!r} (features: {known[:300]})"))
                continue
            problem = value_problem(feature, value)
            if problem is not None:
                problems.append((path, problem))
            elif feature.meter is not None and not any(charge.meter == feature.meter for charge in plan.charges):
                problems.append((path, f"the feature is a usage limit on meter {feature.meter!r}, which no charge "
                                       "of this plan reads (usage is measured as the plan's invoices measure it: add "
                                       "a charge on the meter, at price 0 for a free quota)"))
    return problems


def value_problem(feature: Feature, value: Any) -> str | None:
    """Why `value` is not a value of `feature` for a plan, or None."""
    if feature.type == SWITCH:
        return None if isinstance(value, bool) else f"a switch feature is true or false, got {value!r}"[:300]
    if feature.type == NUMBER:
        if (too_wide := whole_number_problem(value)) is not None:
            return too_wide
        if isinstance(value, float) or not isinstance(value, int | str | Decimal):
            return f"a number feature takes a number such as 10000, got {value!r}"[:300]
        try:
            number = to_decimal(value, bound=number_problem)
        except MoneyError as exc:
            return f"a number feature takes a number such as 10000: {exc}"[:300]
        if number < 0:
            return f"must not be negative, got {number}"
        return None
    values = value if isinstance(value, list) else [value]
    if not values:
        return "an enum feature grants at least one of its values"
    for item in values:
        if not isinstance(item, str) or item not in feature.values:
            return (f"{item!r} is not one of the feature's values ({', '.join(feature.values)})")[:300]
    if len(set(values)) != len(values):
        return "lists a value more than once"
    return None


def as_number(value: Any) -> Decimal | None:
    """A plan's number value as a Decimal (an integer, a decimal, or a decimal string), else None.
    Reads back a value value_problem took when its catalog was applied (to_decimal's syntax, or
    the looser one of an older version, such as " 10 ", for a catalog stored before)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


def enum_values(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else [value]
