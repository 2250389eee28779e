"""Validate a catalog document and report every problem at once, each with its path.

Items are validated one by one, so a broken plan does not hide the problems of the
next one, and cross-references are checked against the items that did validate.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from ..domain.aggregation import NEEDS_FIELD
from ..domain.caps import CHARGE_CAP_PREFIX, PLAN_CAP
from ..domain.instants import to_micros
from ..domain.numbers import number_problem, whole_number_problem
from ..domain.one_off import line_amount_problem
from ..domain.periods import to_local
from ..domain.pricing import TIERED_MODELS
from ..domain.text import printed_text_problem
from .discount_rules import coupon_problems, discount_problems, named_as_stored, redemption_problems
from .features import feature_problems
from .identifiers import template_problem
from .schema import (
    BillingEntity,
    CatalogDocument,
    Charge,
    Coupon,
    Customer,
    Discount,
    ExtraBillingEntity,
    Feature,
    Meter,
    Plan,
    Subscription,
    Tier,
)

Model = TypeVar("Model", bound=BaseModel)

# which optional charge fields each model needs, and which it may carry
REQUIRED_FIELDS = {
    "flat": ("amount",),
    "per_unit": ("unit_amount",),
    "graduated": ("tiers",),
    "volume": ("tiers",),
    "stairstep": ("tiers",),
    "package": ("package_size", "package_amount"),
    "percentage": ("rate",),
    "graduated_percentage": ("tiers",),
}
# a percentage charge's free units and per-transaction bounds: it is then priced event by event
PER_EVENT_FIELDS = ("free_units_per_events", "free_units_per_total_aggregation", "per_transaction_min_amount",
                    "per_transaction_max_amount")
OPTIONAL_FIELDS = {"package": ("free_units",), "percentage": ("fixed_amount", *PER_EVENT_FIELDS)}
MODEL_FIELDS = ("amount", "unit_amount", "tiers", "package_size", "package_amount", "free_units",
                "rate", "fixed_amount", *PER_EVENT_FIELDS)
# the aggregation a charge priced event by event reads: each event's value is its share of the sum
PER_EVENT_AGGREGATIONS = ("sum",)
SECTIONS = ("billing_entity", "billing_entities", "meters", "plans", "customers", "subscriptions", "coupons",
            "features")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def format_path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _validate(model: type[Model], data: Any, path: str, problems: list[Problem]) -> Model | None:
    """Validate one item; on errors, report them and retry without the faulty optional
    fields so that the item's other problems (references, tiers) are still found."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        faulty = set()
        for item in error.errors():
            location = [p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            # drop pydantic's union-branch labels such as 'date' / 'datetime'
            location = [p for p in location if p not in ("date", "datetime", "decimal", "[key]")]
            if location:
                faulty.add(location[0])
            where = path + ("." if location and not isinstance(location[0], int) else "")
            where += format_path(location)
            problems.append(Problem(where, _message(item)))
    if not isinstance(data, dict):
        return None
    required = {name for name, info in model.model_fields.items() if info.is_required()}
    if faulty & required or not faulty <= set(data):
        return None
    try:
        return model.model_validate({k: v for k, v in data.items() if k not in faulty})
    except ValidationError:
        return None


def _message(item: dict[str, Any]) -> str:
    kind = item["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "literal_error":
        expected = item.get("ctx", {}).get("expected", "")
        return f"must be one of {expected}, got {item.get('input')!r}"
    message = item["msg"]
    return message.removeprefix("Value error, ")


def _list(document: dict[str, Any], key: str, problems: list[Problem]) -> list[Any]:
    value = document.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(Problem(key, f"must be a list, got {type(value).__name__}"))
        return []
    return value


def check_document(document: Any, warnings: list[Problem] | None = None) -> tuple[CatalogDocument | None,
                                                                                list[Problem]]:
    """Validate a parsed catalog. Returns the document when there is no problem.

    `warnings`, when given, receives what does not stop the catalog but deserves a look (see
    check_overlaps)."""
    problems: list[Problem] = []
    document = named_as_stored(document)  # a coupon named in another case is the code as stored
    if not isinstance(document, dict):
        return None, [Problem("", "the catalog must be a mapping of billing_entity, meters, plans, "
                                 "customers, subscriptions")]
    for key in document:
        if key not in SECTIONS:
            problems.append(Problem(str(key), f"is not a known section (expected one of {', '.join(SECTIONS)})"))

    entity = _validate(BillingEntity, document.get("billing_entity") or {}, "billing_entity", problems)
    raw_entities = _list(document, "billing_entities", problems)
    extra_entities = _items(ExtraBillingEntity, raw_entities, "billing_entities", problems)
    raw_meters = _list(document, "meters", problems)
    raw_plans = _list(document, "plans", problems)
    raw_customers = _list(document, "customers", problems)
    raw_subscriptions = _list(document, "subscriptions", problems)
    meters = _items(Meter, raw_meters, "meters", problems)
    plans, charges = _plans(raw_plans, problems)
    customers = _items(Customer, raw_customers, "customers", problems)
    subscriptions = _items(Subscription, raw_subscriptions, "subscriptions", problems)
    raw_coupons = _list(document, "coupons", problems)
    coupons = _items(Coupon, raw_coupons, "coupons", problems)
    raw_features = _list(document, "features", problems)
    features = _items(Feature, raw_features, "features", problems)

    _unique(meters, "meters", "code", problems)
    _unique(plans, "plans", "code", problems)
    _unique(customers, "customers", "reference", problems)
    _unique(subscriptions, "subscriptions", "reference", problems)

    # an item that failed validation still exists: references to it are not "unknown"
    meter_codes = {meter.code for _, meter in meters} | _raw_keys(raw_meters, "code")
    aggregations = {meter.code: meter.aggregation for _, meter in meters}
    plan_codes = _raw_keys(raw_plans, "code")
    customer_refs = _raw_keys(raw_customers, "reference")
    for index, meter in meters:
        _check_meter(meter, f"meters[{index}]", problems)
    for index, plan in plans:
        _check_words(plan.name, f"plans[{index}].name", problems)
        _check_bound(plan.minimum, f"plans[{index}].minimum", problems)
        _check_plan_maximum(plan, f"plans[{index}]", problems)
        _check_plan_currencies(plan, f"plans[{index}]", meter_codes, problems)
        _check_bound(plan.invoice_threshold, f"plans[{index}].invoice_threshold", problems)
    for index, customer in customers:
        _check_bound(customer.tax_rate, f"customers[{index}].tax_rate", problems)
        _check_words(customer.name, f"customers[{index}].name", problems)
        _check_words(customer.email, f"customers[{index}].email", problems)
    entity_codes = _check_entities(entity, extra_entities, raw_entities, problems)
    for index, customer in customers:
        if customer.billing_entity is not None and customer.billing_entity not in entity_codes:
            problems.append(Problem(f"customers[{index}].billing_entity",
                                    f"unknown billing entity {customer.billing_entity!r} (known: "
                                    f"{', '.join(sorted(entity_codes))})"))
    for plan_path, plan_charges in charges:
        _unique([(i, c) for i, c in plan_charges if c is not None], f"{plan_path}.charges", "code", problems)
        for c_index, charge in plan_charges:
            if charge is not None:
                check_charge(charge, f"{plan_path}.charges[{c_index}]", meter_codes, problems, aggregations)
                if charge.code == PLAN_CAP or charge.code.startswith(CHARGE_CAP_PREFIX):
                    problems.append(Problem(f"{plan_path}.charges[{c_index}].code",
                                            f"{charge.code!r} is the code of a cap's invoice lines (maximum, "
                                            "maximum:<charge>); choose another"))

    problems += [Problem(*found) for found in feature_problems(features, plans, _raw_keys(raw_features, "code"),
                                                                meter_codes)]
    for index, feature in features:
        _check_words(feature.name, f"features[{index}].name", problems)
        _check_words(feature.description, f"features[{index}].description", problems)
    for index, coupon in coupons:
        _check_words(coupon.description, f"coupons[{index}].description", problems)

    plans_by_code = {plan.code: plan for _, plan in plans}
    customers_by_ref = {customer.reference: customer for _, customer in customers}
    valid_subscriptions = {index for index, _ in subscriptions}
    for index, raw in enumerate(raw_subscriptions):
        if index not in valid_subscriptions and isinstance(raw, dict):
            _check_references(raw, f"subscriptions[{index}]", plan_codes, customer_refs, problems)
    for index, subscription in subscriptions:
        path = f"subscriptions[{index}]"
        _check_bound(subscription.invoice_threshold, f"{path}.invoice_threshold", problems)
        _check_references(subscription.model_dump(), path, plan_codes, customer_refs, problems)
        _check_subscription(subscription, path, plans_by_code, customers_by_ref, meter_codes, entity, problems,
                            aggregations)
    # a coupon that failed validation still exists: attaching it is not "unknown"
    _check_discounts(subscriptions, [coupon for _, coupon in coupons], _raw_keys(raw_coupons, "code"),
                     plans_by_code, customers_by_ref, entity, problems)
    check_overlaps(subscriptions, plans_by_code, customers_by_ref, meters, entity, problems,
                   warnings if warnings is not None else [])

    if problems:
        return None, _first_per_path(problems)
    return CatalogDocument.model_validate(document), []


def _check_discounts(subscriptions: list[tuple[int, Subscription]], coupons: list[Coupon], coupon_codes: set[str],
                     plans: dict[str, Plan], customers: dict[str, Customer], entity: BillingEntity | None,
                     problems: list[Problem]) -> None:
    """Subscriptions' discounts name charges of their plans; coupons are known and redeemable."""
    problems += [Problem(*found) for found in coupon_problems(coupons)]

    def as_instant(subscription: Subscription, moment: date | datetime) -> datetime:
        customer = customers.get(subscription.customer)
        zone = (customer.timezone if customer is not None else None) or (entity.timezone if entity else "UTC")
        return _as_comparable(moment, ZoneInfo(zone))

    for index, subscription in subscriptions:
        codes = [subscription.plan, *(change.plan for change in subscription.changes if change.plan is not None)]
        known = [plans[code] for code in codes if code in plans]
        problems += [Problem(*found) for found in
                     discount_problems(list(enumerate(subscription.discounts)), f"subscriptions[{index}].discounts",
                                       known)]
    problems += [Problem(*found) for found in redemption_problems(
        subscriptions, coupons, coupon_codes, plans, as_instant,
        lambda subscription: billing_currency(subscription, plans, customers))]


def _first_per_path(problems: list[Problem]) -> list[Problem]:
    """One problem per path: a field that failed its type check is not reported again as missing."""
    seen: set[str] = set()
    kept = []
    for problem in problems:
        if problem.path not in seen:
            seen.add(problem.path)
            kept.append(problem)
    return kept


def _items(model: type[Model], raw: list[Any], section: str, problems: list[Problem]) -> list[tuple[int, Model]]:
    valid = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.append(Problem(f"{section}[{index}]", f"must be a mapping, got {type(item).__name__}"))
            continue
        parsed = _validate(model, item, f"{section}[{index}]", problems)
        if parsed is not None:
            valid.append((index, parsed))
    return valid


def _plans(raw: list[Any], problems: list[Problem]) -> tuple[list[tuple[int, Plan]], list[tuple[str, list]]]:
    """Plans with each charge validated on its own, so one bad charge hides no other problem.

    Returns the valid plans, and every plan's charges (valid or not, by index) so that the
    charges of a plan whose own fields are broken are still checked.
    """
    valid = []
    charges: list[tuple[str, list]] = []
    for index, item in enumerate(raw):
        path = f"plans[{index}]"
        if not isinstance(item, dict):
            problems.append(Problem(path, f"must be a mapping, got {type(item).__name__}"))
            continue
        charges_raw = item.get("charges") or []
        if not isinstance(charges_raw, list):
            problems.append(Problem(f"{path}.charges", "must be a list of charges"))
            charges_raw = []
        plan_charges = [(c_index, validate_charge(charge, f"{path}.charges[{c_index}]", problems))
                        for c_index, charge in enumerate(charges_raw)]
        charges.append((path, plan_charges))
        discounts = _plan_discounts(item, path, [c for _, c in plan_charges if c is not None], problems)
        plan = _validate(Plan, {**item, "charges": [], "discounts": []}, path, problems)
        if plan is not None:
            valid.append((index, plan.model_copy(update={"charges": [c for _, c in plan_charges if c is not None],
                                                         "discounts": [d for _, d in discounts]})))
    return valid, charges


def _plan_discounts(item: dict[str, Any], path: str, charges: list[Charge],
                    problems: list[Problem]) -> list[tuple[int, Discount]]:
    """A plan's discounts, each validated on its own and checked against the plan's charges."""
    raw = item.get("discounts") or []
    if not isinstance(raw, list):
        problems.append(Problem(f"{path}.discounts", "must be a list of discounts"))
        return []
    discounts = _items(Discount, raw, f"{path}.discounts", problems)
    _unique(discounts, f"{path}.discounts", "code", problems)
    currency = item.get("currency")
    plan = Plan.model_construct(code=str(item.get("code")), currency=currency, charges=charges)
    problems += [Problem(*found) for found in discount_problems(discounts, f"{path}.discounts", [plan])]
    return discounts


def validate_charge(raw: Any, path: str, problems: list[Problem]) -> Charge | None:
    """One charge, with each tier validated on its own; a broken tier stays as None at its index."""
    if not isinstance(raw, dict):
        problems.append(Problem(path, f"must be a mapping, got {type(raw).__name__}"))
        return None
    tiers_raw = raw.get("tiers")
    if not isinstance(tiers_raw, list):
        return _validate(Charge, raw, path, problems)
    tiers = []
    for t_index, tier in enumerate(tiers_raw):
        where = f"{path}.tiers[{t_index}]"
        if not isinstance(tier, dict):
            problems.append(Problem(where, f"must be a mapping, got {type(tier).__name__}"))
            tiers.append(None)
        else:
            tiers.append(_validate(Tier, tier, where, problems))
    charge = _validate(Charge, {**raw, "tiers": []}, path, problems)
    return None if charge is None else charge.model_copy(update={"tiers": tiers})


# an entity's logo and template are read beside the catalog file (catalog/entity_files.py); a document
# that comes without a folder (a request body) cannot name them
FILE_NOT_READ = ("the file was not read: a logo or template is read from a catalog file (`ratecard catalog apply "
                 "FILE`), relative to its folder")


def _check_entities(default: BillingEntity | None, extra: list[tuple[int, ExtraBillingEntity]], raw: list[Any],
                    problems: list[Problem]) -> set[str]:
    """Codes and numbering prefixes unique across entities (each entity numbers its documents in
    sequences of its own), files read. Returns every entity code, including those that failed."""
    everyone: list[tuple[str, BillingEntity]] = [("billing_entity", default)] if default is not None else []
    everyone += [(f"billing_entities[{index}]", item) for index, item in extra]
    codes: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for path, item in everyone:
        _check_words(item.name, f"{path}.name", problems)
        _check_words(item.footer, f"{path}.footer", problems, lines=True)
        if item.code in codes:
            problems.append(Problem(f"{path}.code", f"{item.code!r} is already used by {codes[item.code]}"))
        codes.setdefault(item.code, path)
        credit = credit_note_prefix(item, path == "billing_entity")
        for field, prefix in (("invoice_prefix", item.invoice_prefix), ("credit_note_prefix", credit)):
            if prefix in prefixes:
                problems.append(Problem(f"{path}.{field}", f"{prefix!r} is already the numbering prefix of "
                                                          f"{prefixes[prefix]}: each sequence needs its own"))
            prefixes.setdefault(prefix, f"{path}.{field}")
        if item.logo and not item.logo_data:
            problems.append(Problem(f"{path}.logo", FILE_NOT_READ))
        if item.pdf_template and not item.pdf_template_text:
            problems.append(Problem(f"{path}.pdf_template", FILE_NOT_READ))
        if item.pdf_template_text:
            problem = template_problem(item.pdf_template_text)
            if problem:
                problems.append(Problem(f"{path}.pdf_template", problem))
    known = set(codes) | _raw_keys(raw, "code")
    return known if default is not None else known | {"default"}  # a broken default entity is still there


def credit_note_prefix(entity: BillingEntity, is_default: bool) -> str:
    """The credit notes' prefix when the entity names none: CN for the default entity (as before
    there were several), <invoice_prefix>-CN for the others."""
    if entity.credit_note_prefix:
        return entity.credit_note_prefix
    return "CN" if is_default else f"{entity.invoice_prefix}-CN"


def _raw_keys(raw: list[Any], key: str) -> set[str]:
    return {item[key] for item in raw if isinstance(item, dict) and isinstance(item.get(key), str)}


def _check_references(raw: dict[str, Any], path: str, plan_codes: set[str], customer_refs: set[str],
                      problems: list[Problem]) -> None:
    plan, customer = raw.get("plan"), raw.get("customer")
    if isinstance(plan, str) and plan not in plan_codes:
        problems.append(Problem(f"{path}.plan", f"unknown plan {plan!r}"))
    if isinstance(customer, str) and customer not in customer_refs:
        problems.append(Problem(f"{path}.customer", f"unknown customer {customer!r}"))


def _unique(items: list[tuple[int, Any]], section: str, key: str, problems: list[Problem]) -> None:
    seen: dict[str, int] = {}
    for index, item in items:
        value = getattr(item, key)
        if value in seen:
            problems.append(Problem(f"{section}[{index}].{key}",
                                    f"{value!r} is already used by {section}[{seen[value]}]"))
        else:
            seen[value] = index


# A property the usage queries read by name (a meter's field and filters, a charge's filters and
# group_by) is a JSON path in SQLite, which has no escape for a double quote or a backslash in a
# path's key: such a name would read as absent there (its usage billed as zero), so it is refused
# on both stores and a catalog stays portable between them.
_UNREADABLE_NAME = re.compile(r'["\\\x00-\x1f\x7f]')


def unreadable_property_name(name: str) -> bool:
    """A name SQLite's JSON paths cannot hold (see above)."""
    return _UNREADABLE_NAME.search(name) is not None


def _check_property_name(name: str, path: str, problems: list[Problem]) -> None:
    if unreadable_property_name(name):
        problems.append(Problem(path, f"property name {name[:60]!r} must not contain a double quote, a backslash or "
                                      "control characters"))


# The words a catalog puts on invoices, e-invoices, CSV exports and terminals: names, descriptions,
# the customer's email, the footer. A NUL, an escape sequence or 100,000 characters harm every one of
# them (a PDF column pushed off the page, an XML writer that drops characters, a terminal recoloured),
# so they are bounded and hold no control characters nor bidi overrides (domain/text.py, the rule the
# Solvimon-compatible API applies too); the footer may span lines. Checked here, when a
# catalog is checked or applied, and not in the pydantic models: a catalog stored before the rule
# still loads and its invoices still render.
MAX_WORDS = 500


def _check_words(value: str | None, path: str, problems: list[Problem], *, lines: bool = False) -> None:
    if value is None:
        return
    if not lines and len(value) > MAX_WORDS:
        problems.append(Problem(path, f"is {len(value):,} characters long: at most {MAX_WORDS} are allowed (it is "
                                      "printed on documents and exports)"))
    elif (problem := printed_text_problem(value, lines=lines)) is not None:
        problems.append(Problem(path, problem))


def _check_meter(meter: Meter, path: str, problems: list[Problem]) -> None:
    _check_words(meter.name, f"{path}.name", problems)
    if meter.aggregation in NEEDS_FIELD and not meter.field:
        problems.append(Problem(f"{path}.field", f"is required by aggregation {meter.aggregation}"))
    if meter.field:
        _check_property_name(meter.field, f"{path}.field", problems)
    for key, values in meter.filters.items():
        _check_property_name(key, f"{path}.filters", problems)
        if not values:
            problems.append(Problem(f"{path}.filters.{key}", "must list at least one value"))
        for index, value in enumerate(values):
            if (problem := whole_number_problem(value)) is not None:
                problems.append(Problem(f"{path}.filters.{key}[{index}]", problem))


# Every number a charge holds: prices and amounts, and the quantities tiers and packages count in.
BOUNDED_CHARGE_FIELDS = ("amount", "unit_amount", "package_size", "package_amount", "free_units", "rate",
                         "fixed_amount", "free_units_per_total_aggregation", "per_transaction_min_amount",
                         "per_transaction_max_amount", "maximum")
BOUNDED_TIER_FIELDS = ("up_to", "unit_amount", "flat_amount", "rate")


def _check_bound(value: Decimal | None, path: str, problems: list[Problem]) -> None:
    """The bound every number an event carries is held to (domain.numbers), for the catalog's numbers
    too: prices and quantities stay where pricing is exact and the store takes them.

    Checked here, when a catalog is checked or applied, and not in the pydantic models: a catalog
    stored before the bound still loads, and an invoice run reports what it cannot price."""
    if value is not None:
        problem = number_problem(value)
        if problem is not None:
            problems.append(Problem(path, problem))


def _check_charge_bounds(charge: Charge, path: str, problems: list[Problem]) -> None:
    for name in BOUNDED_CHARGE_FIELDS:
        _check_bound(getattr(charge, name), f"{path}.{name}", problems)
    for index, tier in enumerate(charge.tiers or []):
        if tier is not None:  # a tier that failed validation is reported already
            for name in BOUNDED_TIER_FIELDS:
                _check_bound(getattr(tier, name), f"{path}.tiers[{index}].{name}", problems)


def check_charge(charge: Charge, path: str, meter_codes: set[str], problems: list[Problem],
                 aggregations: dict[str, str] | None = None) -> None:
    """One charge's fields for its model. `aggregations` (meter code -> aggregation of the meters
    that validated) checks what a charge priced event by event reads."""
    _check_charge_bounds(charge, path, problems)
    _check_words(charge.description, f"{path}.description", problems)
    model = charge.model
    for name in REQUIRED_FIELDS[model]:
        if getattr(charge, name) is None:
            problems.append(Problem(f"{path}.{name}", f"is required by model {model}"))
    allowed = set(REQUIRED_FIELDS[model]) | set(OPTIONAL_FIELDS.get(model, ()))
    for name in MODEL_FIELDS:
        if name not in allowed and getattr(charge, name) is not None:
            problems.append(Problem(f"{path}.{name}", f"is not used by model {model}"))
    if model == "flat":
        if charge.meter is not None:
            problems.append(Problem(f"{path}.meter", "a flat charge is not metered; remove the meter"))
        if charge.maximum is not None:
            problems.append(Problem(f"{path}.maximum", "a flat fee is not capped: a maximum caps a usage charge"))
    else:
        if charge.meter is None:
            problems.append(Problem(f"{path}.meter", f"is required by model {model}"))
        elif charge.meter not in meter_codes:
            problems.append(Problem(f"{path}.meter", f"unknown meter {charge.meter!r}"))
    if (model in TIERED_MODELS or model == "graduated_percentage") and charge.tiers is not None:
        if not charge.tiers:
            problems.append(Problem(f"{path}.tiers", f"model {model} needs at least one tier"))
        _check_tiers(charge, path, problems)
        _check_tier_prices(charge, path, problems)
    if model == "percentage":
        _check_per_event(charge, path, problems, aggregations or {})
    if charge.filters is not None or charge.group_by is not None:
        _check_dimensions(charge, path, problems)


def _check_tier_prices(charge: Charge, path: str, problems: list[Problem]) -> None:
    """A graduated_percentage tier has a rate (and maybe a flat amount), no unit amount; the other
    tiered models' tiers have no rate."""
    for index, tier in enumerate(charge.tiers or []):
        if tier is None:
            continue
        where = f"{path}.tiers[{index}]"
        if charge.model == "graduated_percentage":
            if tier.rate is None:
                problems.append(Problem(f"{where}.rate", "is required by model graduated_percentage (percent of "
                                                         "the amount inside the tier)"))
            if tier.unit_amount != 0:
                problems.append(Problem(f"{where}.unit_amount", "is not used by model graduated_percentage (give "
                                                                "the tier's rate)"))
        elif tier.rate is not None:
            problems.append(Problem(f"{where}.rate", f"is not used by model {charge.model} (give the tier's "
                                                     "unit_amount, or use model graduated_percentage)"))


def _check_per_event(charge: Charge, path: str, problems: list[Problem], aggregations: dict[str, str]) -> None:
    """Free units and per-transaction bounds: a minimum not above the maximum, on a sum meter, and
    not with charge-level filters or group_by (read with getattr: a charge without them passes)."""
    low, high = charge.per_transaction_min_amount, charge.per_transaction_max_amount
    if low is not None and high is not None and low > high:
        problems.append(Problem(f"{path}.per_transaction_min_amount",
                                f"must not be greater than per_transaction_max_amount ({high}), got {low}"))
    given = [name for name in PER_EVENT_FIELDS if getattr(charge, name) is not None]
    for key in ("filters", "group_by"):  # charge-level keys, where a catalog version has them
        if given and getattr(charge, key, None):
            problems.append(Problem(f"{path}.{key}", f"cannot be combined with {given[0]}: free units and "
                                                     "per-transaction bounds are priced over all of the charge's "
                                                     "events in one series"))
    aggregation = aggregations.get(charge.meter or "")
    if given and aggregation is not None and aggregation not in PER_EVENT_AGGREGATIONS:
        problems.append(Problem(f"{path}.{given[0]}",
                                f"prices each event's value, which needs a meter with aggregation sum; meter "
                                f"{charge.meter!r} aggregates by {aggregation}"))


# the fields of a charge a filter may give its own value for (the price fields of its model)
FILTER_PRICE_FIELDS = ("unit_amount", "tiers", "package_size", "package_amount", "free_units", "rate",
                       "fixed_amount")


def _check_dimensions(charge: Charge, path: str, problems: list[Problem]) -> None:
    """filters and group_by: on a usage charge; filter codes
    unique; each filter matching on at least one property with at least one value, its price fields
    those of the charge's model, and the price they make with the charge's a valid one."""
    if charge.model == "flat":
        for name in ("filters", "group_by"):
            if getattr(charge, name) is not None:
                problems.append(Problem(f"{path}.{name}", "a flat charge is not metered: it has no usage to split"))
        return
    if charge.group_by is not None and len(set(charge.group_by)) != len(charge.group_by):
        problems.append(Problem(f"{path}.group_by", "names a property twice"))
    for index, name in enumerate(charge.group_by or ()):
        _check_property_name(name, f"{path}.group_by[{index}]", problems)
    seen: dict[str, int] = {}
    allowed = set(REQUIRED_FIELDS[charge.model]) | set(OPTIONAL_FIELDS.get(charge.model, ()))
    for index, item in enumerate(charge.filters or ()):
        where = f"{path}.filters[{index}]"
        if item.code in seen:
            problems.append(Problem(f"{where}.code", f"{item.code!r} is already used by {path}.filters[{seen[item.code]}]"))
        seen.setdefault(item.code, index)
        if not item.match:
            problems.append(Problem(f"{where}.match", "must name at least one property"))
        for key, values in item.match.items():
            _check_property_name(key, f"{where}.match", problems)
            if not values:
                problems.append(Problem(f"{where}.match.{key}", "must list at least one value"))
        given = [name for name in FILTER_PRICE_FIELDS if getattr(item, name) is not None]
        for name in given:
            if name not in allowed:
                problems.append(Problem(f"{where}.{name}", f"is not used by model {charge.model}"))
        if any(name not in allowed for name in given):
            continue
        price = filter_price(charge, item)
        # only the fields the filter gives: the charge's own are reported once, at the charge
        found: list[Problem] = []
        _check_charge_bounds(price, where, found)
        problems += [problem for problem in found
                     if problem.path[len(where) + 1:].split(".")[0].split("[")[0] in given]
        if (charge.model in TIERED_MODELS or charge.model == "graduated_percentage") and item.tiers is not None:
            if not item.tiers:
                problems.append(Problem(f"{where}.tiers", f"model {charge.model} needs at least one tier"))
            _check_tiers(price, where, problems)
            _check_tier_prices(price, where, problems)  # a rate on graduated_percentage's, none on the others'


def filter_price(charge: Charge, item: Any) -> Charge:
    """The charge a filter prices its events with: the charge's fields, the filter's price fields
    laid over them (without filters and group_by)."""
    fields = dump_charge(charge, exclude={"filters", "group_by"})
    fields.update(item.model_dump(exclude_none=True, include=set(FILTER_PRICE_FIELDS)))
    if item.tiers:
        fields["tiers"] = _tiers_dump(item.tiers)
    return Charge.model_validate(fields)


def _check_tiers(charge: Charge, path: str, problems: list[Problem]) -> None:
    tiers = charge.tiers or []
    previous = None
    for index, tier in enumerate(tiers):
        where = f"{path}.tiers[{index}].up_to"
        last = index == len(tiers) - 1
        if tier is None:  # reported already; its neighbours are still checked
            continue
        if tier.up_to is None:
            if not last:
                problems.append(Problem(where, "only the last tier may be unbounded (up_to: null)"))
            continue
        if last:
            problems.append(Problem(where, "the last tier must be unbounded (up_to: null)"))
        if tier.up_to == 0 and index == 0:
            problems.append(Problem(where, "must be greater than 0"))
        if previous is not None and tier.up_to <= previous:
            problems.append(Problem(where, f"must be greater than {previous}"))
        previous = tier.up_to if previous is None or tier.up_to > previous else previous


def _check_subscription(
    subscription: Subscription,
    path: str,
    plans: dict[str, Plan],
    customers: dict[str, Customer],
    meter_codes: set[str],
    entity: BillingEntity | None,
    problems: list[Problem],
    aggregations: dict[str, str] | None = None,
) -> None:
    plan = plans.get(subscription.plan)
    customer = customers.get(subscription.customer)
    if plan is not None and customer is not None and customer.currency and customer.currency not in plan_currencies(plan):
        problems.append(Problem(f"{path}.plan", f"plan {plan.code!r} has no prices in {customer.currency} (it bills "
                                                f"in {', '.join(plan_currencies(plan))}) but customer "
                                                f"{customer.reference!r} of subscription {subscription.reference!r} "
                                                f"is billed in {customer.currency}"))
    elif plan is not None:
        _check_amounts_off(subscription, path, plans, billing_currency(subscription, plans, customers), problems)
    # a date means local midnight in the subscription's timezone, as the billing calendar reads it
    zone = ZoneInfo((customer.timezone if customer is not None else None) or (entity.timezone if entity else "UTC"))
    if subscription.end is not None and _as_comparable(subscription.end, zone) <= _as_comparable(subscription.start, zone):
        problems.append(Problem(f"{path}.end", "must be after start"))
    _check_changes(subscription, path, plans, meter_codes, zone, problems, aggregations,
                   billing_currency(subscription, plans, customers))
    _check_one_offs(subscription, path, zone, problems)
    _check_early_combinations(subscription, path, plans, problems)
    if plan is None:
        return
    _check_overrides(subscription.overrides, plan, f"{path}.overrides", meter_codes, problems, aggregations)


# what a charge can hold that usage invoiced inside its period (threshold invoices, usage billed in
# advance) does not take into account yet: each needs the whole period's usage at once
EARLY_EXCLUSIVE_FIELDS = ("maximum", *PER_EVENT_FIELDS, "filters", "group_by")


def _early_exclusive(name: str, value: Any) -> bool:
    """Whether a plan's charge field holds what usage invoiced inside its period cannot take: any
    cap (a maximum of 0 caps too), a per-event allowance or bound that is set, filters or group_by."""
    return value is not None if name == "maximum" else bool(value)


def _check_early_combinations(subscription: Subscription, path: str, plans: dict[str, Plan],
                              problems: list[Problem]) -> None:
    """A subscription whose usage is invoiced inside its periods has no caps, per-event percentage
    rules, charge filters or group_by on any of its plans (this version cannot split those over
    several invoices of one period exactly)."""
    codes = [subscription.plan, *(change.plan for change in subscription.changes if change.plan is not None)]
    phase_plans = [plans[code] for code in codes if code in plans]
    threshold = subscription.invoice_threshold is not None or any(p.invoice_threshold is not None
                                                                   for p in phase_plans)
    overrides = [subscription.overrides, *(change.overrides or {} for change in subscription.changes)]
    usage = {charge.code for p in phase_plans for charge in p.charges if charge.model != "flat"}
    # timing: advance on a usage charge, by its plan or by an override of the subscription or a change
    advance = any(charge.model != "flat" and charge.timing == "advance" for p in phase_plans for charge in p.charges) \
        or any(isinstance(fields, dict) and fields.get("timing") == "advance"
               for given in overrides if isinstance(given, dict)
               for code, fields in given.items() if code in usage)
    if not (threshold or advance):
        return
    found: list[str] = []
    for p in phase_plans:
        if p.maximum is not None:
            found.append(f"plan {p.code!r} maximum")
        for charge in p.charges:
            fields = {name for name in EARLY_EXCLUSIVE_FIELDS if _early_exclusive(name, getattr(charge, name, None))}
            for given in overrides:
                fields_given = given.get(charge.code) if isinstance(given, dict) else None
                if isinstance(fields_given, dict):
                    fields |= {name for name, value in fields_given.items()
                               if name in EARLY_EXCLUSIVE_FIELDS and value is not None}
            found += [f"charge {charge.code!r} {name}" for name in sorted(fields)]
    if found:
        why = "invoice_threshold" if threshold else "a usage charge billed in advance"
        problems.append(Problem(path, f"bills usage inside its periods ({why}), which this version cannot combine "
                                      f"with {', '.join(dict.fromkeys(found))}: remove one or the other"))


def _check_one_offs(subscription: Subscription, path: str, zone: ZoneInfo, problems: list[Problem]) -> None:
    """One-off charges: codes unique on the subscription, amounts, quantities and the line's amount
    (their product) in bounds, each due inside its lifetime (a charge after the end would never be
    billed)."""
    _unique(list(enumerate(subscription.one_off)), f"{path}.one_off", "code", problems)
    start = _as_comparable(subscription.start, zone)
    end = _as_comparable(subscription.end, zone) if subscription.end is not None else None
    for index, item in enumerate(subscription.one_off):
        where = f"{path}.one_off[{index}]"
        before = len(problems)
        _check_bound(item.amount, f"{where}.amount", problems)
        _check_bound(item.quantity, f"{where}.quantity", problems)
        if len(problems) == before and (problem := line_amount_problem(item.quantity, item.amount)) is not None:
            problems.append(Problem(f"{where}.quantity", problem))  # each inside, the product is not
        at = _as_comparable(item.at, zone)
        if at < start:
            problems.append(Problem(f"{where}.at", "must not be before the subscription's start"))
        elif end is not None and at > end:
            problems.append(Problem(f"{where}.at", "must not be after the subscription's end (it would never be "
                                                   "billed)"))


def _check_changes(subscription: Subscription, path: str, plans: dict[str, Plan], meter_codes: set[str],
                   zone: ZoneInfo, problems: list[Problem], aggregations: dict[str, str] | None = None,
                   currency: str | None = None) -> None:
    """Each change after the previous one (and the start), before the end, to a plan with prices in
    the currency the subscription is billed in, on the same calendar: periods and invoices stay
    those of the subscription."""
    first = plans.get(subscription.plan)
    previous_at = _as_comparable(subscription.start, zone)
    current = first
    for index, change in enumerate(subscription.changes):
        where = f"{path}.changes[{index}]"
        at = _as_comparable(change.at, zone)
        if at <= previous_at:
            problems.append(Problem(f"{where}.at", "must be after the subscription's start and the previous change"))
        if subscription.end is not None and at >= _as_comparable(subscription.end, zone):
            problems.append(Problem(f"{where}.at", "must be before the subscription's end"))
        previous_at = max(previous_at, at)
        plan = current if change.plan is None else plans.get(change.plan)
        if change.plan is not None and plan is None:
            problems.append(Problem(f"{where}.plan", f"unknown plan {change.plan!r}"))
            continue
        if plan is None or first is None:
            continue
        billed_in = currency or first.currency
        if billed_in not in plan_currencies(plan) or plan.interval != first.interval:
            problems.append(Problem(f"{where}.plan", f"plan {plan.code!r} bills {plan.interval}ly in "
                                                     f"{', '.join(plan_currencies(plan))}; a change keeps the "
                                                     f"subscription's {first.interval}ly periods in {billed_in} (end "
                                                     "it and start a new subscription instead)"))
            continue
        if change.overrides:
            _check_overrides(change.overrides, plan, f"{where}.overrides", meter_codes, problems, aggregations)
        current = plan


def _check_amounts_off(subscription: Subscription, path: str, plans: dict[str, Plan], currency: str | None,
                       problems: list[Problem]) -> None:
    """A plan's amount off is in the plan's own currency: a subscription billed in another of the
    plan's currencies cannot have it (on its plan, or a plan it changes to)."""
    paths = [(f"{path}.plan", subscription.plan)]
    paths += [(f"{path}.changes[{index}].plan", change.plan) for index, change in enumerate(subscription.changes)
              if change.plan is not None]
    for where, code in paths:
        plan = plans.get(code)
        if plan is None or currency is None or currency == plan.currency:
            continue
        for discount in plan.discounts:
            if discount.amount_off is not None:
                problems.append(Problem(where, f"plan {plan.code!r} takes {discount.amount_off} {plan.currency} off "
                                               f"(its discount {discount.code!r}) but subscription "
                                               f"{subscription.reference!r} is billed in {currency}: an amount off "
                                               "is in the plan's currency"))
                break


def plan_currencies(plan: Plan) -> list[str]:
    """The currencies a plan has prices in: its own first."""
    return [plan.currency, *(code for code in plan.currencies if code != plan.currency)]


def billing_currency(subscription: Subscription, plans: dict[str, Plan], customers: dict[str, Customer]) -> str | None:
    """The currency a subscription is invoiced in: its customer's, else its plan's."""
    customer = customers.get(subscription.customer)
    if customer is not None and customer.currency:
        return customer.currency
    plan = plans.get(subscription.plan)
    return plan.currency if plan is not None else None


def _check_plan_maximum(plan: Plan, path: str, problems: list[Problem]) -> None:
    """A plan's cap: a bounded amount over usage charges of the plan."""
    if plan.maximum is None:
        return
    where = f"{path}.maximum"
    _check_bound(plan.maximum.amount, where if plan.maximum.charges is None else f"{where}.amount", problems)
    charges = {charge.code: charge for charge in plan.charges}
    for index, code in enumerate(plan.maximum.charges or ()):
        charge = charges.get(code)
        if charge is None:
            problems.append(Problem(f"{where}.charges[{index}]", f"plan {plan.code!r} has no charge {code!r}"))
        elif charge.model == "flat":
            problems.append(Problem(f"{where}.charges[{index}]", f"charge {code!r} is a flat fee: a maximum caps "
                                                                 "usage charges"))


# the charge fields that hold money: a plan's other currencies give them again, other fields are shared
PRICE_FIELDS = ("amount", "unit_amount", "tiers", "package_amount", "fixed_amount", "maximum",
                # a percentage charge's per-event amounts: a fee's bounds, and the free part of the amount
                "per_transaction_min_amount", "per_transaction_max_amount", "free_units_per_total_aggregation")


def _check_plan_currencies(plan: Plan, path: str, meter_codes: set[str], problems: list[Problem]) -> None:
    """Each of a plan's other currencies gives every price the plan has, and only prices: an amount
    is never converted, nor reused in another currency."""
    charges = {charge.code: charge for charge in plan.charges}
    for currency, prices in plan.currencies.items():
        where = f"{path}.currencies.{currency}"
        if currency == plan.currency:
            problems.append(Problem(where, f"is the plan's own currency: its prices in {currency} are the plan's"))
            continue
        for name, own in (("minimum", plan.minimum), ("maximum", plan.maximum)):
            given = getattr(prices, name)
            if own is not None and given is None:
                problems.append(Problem(f"{where}.{name}", f"is required: the plan has a {name} (in {plan.currency})"))
            elif own is None and given is not None:
                problems.append(Problem(f"{where}.{name}", f"the plan has no {name}"))
            _check_bound(given, f"{where}.{name}", problems)
        for code, fields in prices.charges.items():
            at = f"{where}.charges.{code}"
            if code not in charges:
                problems.append(Problem(at, f"plan {plan.code!r} has no charge {code!r}"))
                continue
            if not isinstance(fields, dict):
                problems.append(Problem(at, "must be a mapping of prices"))
                continue
            others = [name for name in fields if name not in PRICE_FIELDS
                      and not (name == "filters" and charges[code].filters)]
            for name in others:
                problems.append(Problem(f"{at}.{name}", f"is not a price (a currency gives {', '.join(PRICE_FIELDS)})"))
            if others or not _currency_filter_prices(charges[code], fields.get("filters"), f"{at}.filters", problems):
                continue
            if "maximum" in fields and charges[code].maximum is None:
                problems.append(Problem(f"{at}.maximum", f"the plan's charge {code!r} has no maximum"))
            charge = validate_charge(override_charge(charges[code], fields), at, problems)
            if charge is not None:
                check_charge(charge, at, meter_codes, problems)
        for code, charge in charges.items():
            given = prices.charges.get(code)
            for name in PRICE_FIELDS:
                if _holds_money(getattr(charge, name)) and not (isinstance(given, dict) and name in given):
                    problems.append(Problem(f"{where}.charges.{code}.{name}",
                                            f"is required: the plan's charge {code!r} has a {name} in {plan.currency}, "
                                            f"and each currency gives every price"))
            given_filters = given.get("filters") if isinstance(given, dict) else None
            for item in charge.filters or ():
                prices_given = given_filters.get(item.code) if isinstance(given_filters, dict) else None
                for name in FILTER_MONEY_FIELDS:
                    if _holds_money(getattr(item, name)) and not (isinstance(prices_given, dict) and name in prices_given):
                        problems.append(Problem(f"{where}.charges.{code}.filters.{item.code}.{name}",
                                                f"is required: filter {item.code!r} of charge {code!r} has a {name} in "
                                                f"{plan.currency}, and each currency gives every price"))


# the fields of a filter that hold money: a plan's other currencies give them again
FILTER_MONEY_FIELDS = ("unit_amount", "tiers", "package_amount", "fixed_amount")


def _currency_filter_prices(charge: Charge, given: Any, path: str, problems: list[Problem]) -> bool:
    """A currency's prices for a charge's filters: {filter code: {money field: value}}."""
    if given is None:
        return True
    if not isinstance(given, dict):
        problems.append(Problem(path, "must be a mapping of filter codes to prices"))
        return False
    codes = {item.code for item in charge.filters or ()}
    fine = True
    for code, fields in given.items():
        if code not in codes:
            problems.append(Problem(f"{path}.{code}", f"charge {charge.code!r} has no filter {code!r}"))
            fine = False
        elif not isinstance(fields, dict) or any(name not in FILTER_MONEY_FIELDS for name in fields):
            problems.append(Problem(f"{path}.{code}", f"gives a filter's prices only ({', '.join(FILTER_MONEY_FIELDS)})"))
            fine = False
    return fine


def _holds_money(value: Any) -> bool:
    if isinstance(value, list):
        return any(tier is not None and (tier.unit_amount or tier.flat_amount) for tier in value)
    return value is not None and value != 0


def _check_overrides(overrides: dict[str, Any], plan: Plan, path: str, meter_codes: set[str],
                     problems: list[Problem], aggregations: dict[str, str] | None = None) -> None:
    charges = {charge.code: charge for charge in plan.charges}
    for code, fields in overrides.items():
        where = f"{path}.{code}"
        if code not in charges:
            problems.append(Problem(where, f"plan {plan.code!r} has no charge {code!r}"))
            continue
        if not isinstance(fields, dict):
            problems.append(Problem(where, "must be a mapping of charge fields"))
            continue
        if "filters" in fields and not _filter_overrides(charges[code], fields["filters"], f"{where}.filters",
                                                         problems):
            continue
        merged = override_charge(charges[code], fields)
        # problems in the merged charge are reported under the override, where the user must look
        charge = validate_charge(merged, where, problems)
        if charge is not None:
            check_charge(charge, where, meter_codes, problems, aggregations)


def _filter_overrides(charge: Charge, overrides: Any, path: str, problems: list[Problem]) -> bool:
    """A charge's `filters` override: a mapping of the charge's filter codes to their price fields."""
    if not isinstance(overrides, dict):
        problems.append(Problem(path, "must be a mapping of the charge's filter codes to price fields "
                                      "(such as {gpt4o: {unit_amount: \"0.000008\"}})"))
        return False
    known = {item.code for item in charge.filters or ()}
    fine = True
    for code, fields in overrides.items():
        if code not in known:
            problems.append(Problem(f"{path}.{code}", f"charge {charge.code!r} has no filter {code!r}"
                                                      + (f" (its filters: {', '.join(sorted(known))})" if known else "")))
            fine = False
        elif not isinstance(fields, dict):
            problems.append(Problem(f"{path}.{code}", "must be a mapping of price fields"))
            fine = False
        else:
            for name in fields:
                if name not in FILTER_PRICE_FIELDS:
                    problems.append(Problem(f"{path}.{code}.{name}", "is not a price field a subscription may "
                                                                     f"override (one of {', '.join(FILTER_PRICE_FIELDS)})"))
                    fine = False
    return fine


def _tiers_dump(tiers: list[Any]) -> list[Any]:
    # an unbounded tier's `up_to: null` is a value, not an omission
    return [None if tier is None else {**tier.model_dump(exclude_none=True), "up_to": tier.up_to} for tier in tiers]


def dump_charge(charge: Charge, **options: Any) -> dict[str, Any]:
    """A charge's given fields as a mapping that validates back to the same charge (its tiers' and
    its filters' tiers' unbounded `up_to: null` kept)."""
    dumped = charge.model_dump(exclude_none=True, **options)
    if charge.tiers and "tiers" in dumped:
        dumped["tiers"] = _tiers_dump(charge.tiers)
    for index, item in enumerate(charge.filters or () if "filters" in dumped else ()):
        if item is not None and item.tiers:
            dumped["filters"][index]["tiers"] = _tiers_dump(item.tiers)
    return dumped


def override_charge(charge: Charge, fields: dict[str, Any]) -> dict[str, Any]:
    """A plan charge with a subscription's overriding fields laid over it (code and model kept).
    `filters` overrides the price fields of the charge's filters by code (each filter's code and
    match stay the plan's)."""
    merged = dump_charge(charge)
    filters = fields.get("filters")
    merged.update({name: value for name, value in fields.items() if name != "filters"})
    if isinstance(filters, dict) and "filters" in merged:
        merged["filters"] = [{**item, **filters.get(item["code"], {})} for item in merged["filters"]]
    return merged


def _as_comparable(moment: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment, time(0), tzinfo=zone)


# ---------------------------------------------------------------- overlapping subscriptions


class _Lifetime(NamedTuple):
    """One subscription's lifetime [start, end) on one event meter name its plan charges."""

    start_us: int
    end_us: int | None
    index: int
    reference: str
    meter: str  # the meter code of the charge
    requires_reference: bool
    start: datetime  # local, for the message
    end: datetime | None


def check_overlaps(subscriptions: list[tuple[int, Subscription]], plans: dict[str, Plan],
                   customers: dict[str, Customer], meters: list[tuple[int, Meter]], entity: BillingEntity | None,
                   problems: list[Problem], warnings: list[Problem]) -> None:
    """Two subscriptions of one customer alive at the same time whose plans charge a meter reading
    the same events would both bill an event of that time. That is refused (at the later one's
    path) unless at most one of them takes events that name no subscription (the others have
    `requires_reference: true`): then each event goes to the one it names, or to that one, and
    the overlap is a warning. Lifetimes are [start, end) in the customer's timezone.

    Per customer and event meter name, the lifetimes sorted by start are swept once, keeping the
    one that ends last: a lifetime overlaps an earlier one exactly when it starts before that end.
    O(n log n); each subscription is reported at most once, naming one subscription it overlaps."""
    reads = {meter.code: sorted({meter.code, meter.source or meter.code}) for _, meter in meters}
    default_zone = entity.timezone if entity is not None else "UTC"
    zones: dict[str, ZoneInfo] = {}
    plan_names: dict[str, dict[str, str]] = {}  # plan code -> its event meter names (without overrides)
    by_name: dict[tuple[str, str], list[_Lifetime]] = defaultdict(list)
    per_customer = Counter(subscription.customer for _, subscription in subscriptions)
    for index, subscription in subscriptions:
        if per_customer[subscription.customer] < 2:
            continue  # most customers have one subscription: nothing to overlap
        plan, customer = plans.get(subscription.plan), customers.get(subscription.customer)
        if plan is None or customer is None:
            continue
        zone_name = customer.timezone or default_zone
        zone = zones.get(zone_name) or zones.setdefault(zone_name, ZoneInfo(zone_name))
        start = to_local(subscription.start, zone)
        end = to_local(subscription.end, zone) if subscription.end is not None else None
        start_us, end_us = to_micros(start), to_micros(end) if end is not None else None
        if end_us is not None and end_us <= start_us:
            continue  # reported as an error of its own
        if subscription.overrides:
            names = _meter_names(plan, subscription.overrides, reads)
        else:
            names = plan_names.get(plan.code) or plan_names.setdefault(plan.code, _meter_names(plan, {}, reads))
        current = plan
        for change in subscription.changes:  # a meter any of its terms charges, over its whole lifetime
            current = plans.get(change.plan, current) if change.plan is not None else current
            for name, code in _meter_names(current, change.overrides or {}, reads).items():
                names = {**names} if name not in names else names
                names.setdefault(name, code)
        for name, code in names.items():
            by_name[(subscription.customer, name)].append(_Lifetime(
                start_us, end_us, index, subscription.reference, code, subscription.requires_reference, start, end))
    refused: dict[int, str] = {}
    allowed: dict[int, str] = {}
    for (customer, name), lifetimes in by_name.items():
        if len(lifetimes) < 2:
            continue
        lifetimes.sort(key=_start_then_index)
        taking_unnamed = [lifetime for lifetime in lifetimes if not lifetime.requires_reference]
        for earlier, later in _overlapping(taking_unnamed):
            if later.index not in refused:
                refused[later.index] = _overlap_text(earlier, later, customer, name) + (
                    ": an event of that time would be billed by both; set requires_reference: true on one of them "
                    "(only events naming it are then billed by it)")
        for earlier, later in _overlapping(lifetimes):
            if later.index in allowed or later.index in refused:
                continue
            takers = [lifetime.reference for lifetime in (earlier, later) if not lifetime.requires_reference]
            allowed[later.index] = _overlap_text(earlier, later, customer, name) + (
                f": each event is billed by the one it names; one naming neither goes to {takers[0]!r}" if takers else
                ": each event is billed by the one it names; one naming neither is billed by neither")
    problems.extend(Problem(f"subscriptions[{index}]", refused[index]) for index in sorted(refused))
    warnings.extend(Problem(f"subscriptions[{index}]", allowed[index]) for index in sorted(allowed)
                    if index not in refused)


def _start_then_index(lifetime: _Lifetime) -> tuple[int, int]:
    return lifetime.start_us, lifetime.index


def _meter_names(plan: Plan, overrides: dict[str, dict[str, Any]], reads: dict[str, list[str]]) -> dict[str, str]:
    """Each event meter name the plan's charges read -> the first charged meter code reading it
    (a subscription's override may name another meter for a charge)."""
    names: dict[str, str] = {}
    for charge in plan.charges:
        fields = overrides.get(charge.code)
        meter = fields.get("meter", charge.meter) if isinstance(fields, dict) else charge.meter
        if isinstance(meter, str):
            for name in reads.get(meter, (meter,)):
                names.setdefault(name, meter)
    return names


def _overlapping(lifetimes: list[_Lifetime]) -> Iterable[tuple[_Lifetime, _Lifetime]]:
    """(an earlier lifetime, a later one overlapping it), for each lifetime (sorted by start) that
    overlaps one before it: the earlier is the one ending last so far."""
    last: _Lifetime | None = None
    for lifetime in lifetimes:
        if last is not None and (last.end_us is None or lifetime.start_us < last.end_us):
            yield last, lifetime
        if last is None or (last.end_us is not None and (lifetime.end_us is None or lifetime.end_us > last.end_us)):
            last = lifetime


def _overlap_text(earlier: _Lifetime, later: _Lifetime, customer: str, name: str) -> str:
    if earlier.meter == later.meter:
        meter = f"meter {later.meter!r}"
    else:
        meter = f"meters {earlier.meter!r} and {later.meter!r} (both read events {name!r})"
    ends = [lifetime.end for lifetime in (earlier, later) if lifetime.end is not None]
    until = f"to {_moment_text(min(ends))}" if ends else "on"
    return (f"subscription {later.reference!r} overlaps {earlier.reference!r} (subscriptions[{earlier.index}]) of "
            f"customer {customer!r} on {meter} from {_moment_text(later.start)} {until}")


def _moment_text(moment: datetime) -> str:
    """A local midnight as its date (2026-01-10), any other moment in full."""
    if moment.time() == time(0) and moment.microsecond == 0:
        return moment.date().isoformat()
    return moment.isoformat()
