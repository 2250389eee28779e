"""Creating a catalog coupon from Solvimon's coupon request: a new catalog version holding it,
validated whole like every catalog write (services/resources/model.save_document).

Mapping: `reference` is the coupon's code (what subscriptions name, and its promotion code);
discount PERCENTAGE -> percent_off, AMOUNT -> amount_off in the amount's currency; duration
ONE_TIME -> once, FOREVER -> forever, PERIOD -> repeating for `period.value` billing periods of
the subscription; `end_at` -> redeem_by; `maximum_redemptions` -> max_redemptions; `description`
and a `name` other than the code -> description (`<name>: <description>`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ...catalog.discount_rules import SAFE_CODE, new_code_problems
from ...catalog.schema import CatalogDocument, Coupon, PromotionCode
from ...domain.instants import to_micros
from ...domain.numbers import number_problem
from ...domain.text import printed_text_problem
from ...store import Store
from ...store.resources import config_change
from ..errors import AlreadyExists
from .checks import already_exists, invalid, invalid_operation, missing, not_found
from .model import save_document

DURATIONS = {"ONE_TIME": "once", "FOREVER": "forever", "PERIOD": "repeating"}
# what ratecard's coupons have no place for: refused rather than dropped
UNSUPPORTED = {"limited_to": "a coupon applies to the whole invoice of each subscription that carries it",
               "start_at": "a coupon is redeemable from the catalog version that adds it",
               "id": "a coupon's id is cpn_<reference>", "number_of_redemptions": "counted by ratecard"}


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(field, f"{field} must be an object")
    return value


def coupon_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The catalog coupon's fields from the request (not validated yet)."""
    for name, why in UNSUPPORTED.items():
        if data.get(name) is not None:
            raise invalid(name, f"{name}: {why}")
    known = {"object_type", "name", "reference", "description", "status", "discount", "duration", "end_at",
             "maximum_redemptions", "created_at", "updated_at"}
    for name in data:
        if name not in known and name not in UNSUPPORTED:
            raise invalid(name, f"{name} is not a field of a coupon")
    reference = data.get("reference")
    if reference is None:
        raise missing("reference", "reference is required: it is the coupon's code, which subscriptions name")
    if data.get("status") is not None and _status(data["status"]) in (None, "archived"):
        raise invalid("status", "status must be DRAFT, ACTIVE, INACTIVE or DEPRECATED")
    fields: dict[str, Any] = {"code": reference}
    # a catalog coupon has a code and a description, no name: a name other than the code is kept
    # in the description, before it ("Spring sale: 25 % off for three months")
    description, name = data.get("description"), data.get("name")
    if name is not None and not isinstance(name, str):
        raise invalid("name", "name must be a string")
    if name in (None, "", reference, description):
        name = None
    if description is not None and name is not None and isinstance(description, str):
        fields["description"] = f"{name}: {description}"
    elif description is not None or name is not None:
        fields["description"] = description if description is not None else name
    discount = _object(data.get("discount"), "discount") if data.get("discount") is not None else None
    if discount is None:
        raise missing("discount", "discount is required (PERCENTAGE with percentage, or AMOUNT with amount)")
    kind = discount.get("type")
    if kind == "PERCENTAGE":
        fields["percent_off"] = discount.get("percentage")
    elif kind == "AMOUNT":
        amount = _object(discount.get("amount"), "discount.amount")
        fields["amount_off"], fields["currency"] = amount.get("quantity"), amount.get("currency")
    else:
        raise invalid("discount.type", "discount.type must be PERCENTAGE or AMOUNT (USAGE discounts are not "
                                       "coupons in ratecard)")
    duration = _object(data.get("duration"), "duration") if data.get("duration") is not None else {"type": "ONE_TIME"}
    if not isinstance(duration.get("type"), str) or duration["type"] not in DURATIONS:
        raise invalid("duration.type", "duration.type must be ONE_TIME, FOREVER or PERIOD")
    fields["duration"] = DURATIONS[duration["type"]]
    if fields["duration"] == "repeating":
        period = _object(duration.get("period"), "duration.period")
        fields["periods"] = period.get("value")
    if data.get("end_at") is not None:
        fields["redeem_by"] = data["end_at"]
    if data.get("maximum_redemptions") is not None:
        fields["max_redemptions"] = data["maximum_redemptions"]
    return fields


# the request's names for the catalog fields, so a refusal names what the caller sent
WIRE_NAMES = {"code": "reference", "percent_off": "discount.percentage", "amount_off": "discount.amount.quantity",
              "currency": "discount.amount.currency", "periods": "duration.period.value", "redeem_by": "end_at",
              "max_redemptions": "maximum_redemptions", "description": "description"}


def _coupon(fields: dict[str, Any]) -> Coupon:
    try:
        coupon = Coupon.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = WIRE_NAMES.get(str(first["loc"][0]) if first["loc"] else "", None)
        message = str(first["msg"]).removeprefix("Value error, ")
        raise invalid(where, f"{where or 'coupon'}: {message}") from None
    # the catalog check refuses these too, but names the catalog's path, not the request's field
    if coupon.description is not None and (problem := printed_text_problem(coupon.description)) is not None:
        raise invalid("description", f"description {problem}")
    # the catalog check bounds them too, but names the catalog's path, not the request's field
    for name in ("amount_off", "percent_off"):
        value = getattr(coupon, name)
        problem = number_problem(value) if value is not None else None
        if problem is not None:
            raise invalid(WIRE_NAMES[name], f"{WIRE_NAMES[name]}: {problem}")
    return coupon


def create_coupon(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> Coupon:
    """Add the coupon to the catalog as a new version (409 when its code exists)."""
    coupon = _coupon(coupon_fields(data))
    if data.get("status") not in (None, "ACTIVE"):  # created not redeemable (yet)
        coupon = coupon.model_copy(update={"status": STATUSES[data["status"]]})
    with config_change(store, environment, to_micros(now)) as change:
        document = change.catalog() or CatalogDocument()
        if any(existing.code == coupon.code for existing in document.coupons):
            raise already_exists("coupon", coupon.code)
        _check_new_code(document, [*document.coupons, coupon], coupon.code, "reference")
        save_document(change, document.model_copy(update={"coupons": [*document.coupons, coupon]}),
                      f"creating coupon {coupon.code!r}")
    return coupon


def _check_new_code(document: CatalogDocument, coupons: list[Coupon], code: str, field: str) -> None:
    """A new coupon or promotion code: safe characters only (400), and not one a person reads as
    an existing code, such as the same letters in another case (409, as an existing code)."""
    problems = new_code_problems(document.coupons, coupons)
    if problems:
        message = problems[0][1]
        if SAFE_CODE.fullmatch(code):
            raise AlreadyExists(message, field=field)
        raise invalid(field, f"{field}: {message}")


# ---------------------------------------------------------------- lifecycle, edits, promotion codes

# target status -> the statuses it may be reached from (archived is final)
TRANSITIONS = {"active": ("draft", "active", "inactive", "deprecated"),
               "inactive": ("draft", "active", "inactive"),
               "deprecated": ("draft", "active", "inactive", "deprecated"),
               "archived": ("draft", "active", "inactive", "deprecated", "archived")}
STATUSES = {"DRAFT": "draft", "ACTIVE": "active", "INACTIVE": "inactive", "DEPRECATED": "deprecated",
            "ARCHIVED": "archived"}


def _status(value: Any) -> str | None:
    """The catalog status a request's `status` names, None when it names none (a list or an
    object is no status: looked up as a key, it would fail rather than be refused)."""
    return STATUSES.get(value) if isinstance(value, str) else None


def _carriers(document: CatalogDocument, codes: set[str]) -> list[str]:
    return [s.reference for s in document.subscriptions if codes & set(s.coupons)]


def _moved(item: Any, target: str, carriers: list[str], what: str) -> dict[str, Any]:
    """The fields of a coupon or promotion code moved to `target`. Leaving active, the
    subscriptions that carry it now (`carriers`) keep it (kept_by); no other can take it until it
    is active again."""
    if item.status == target:
        return {}
    if item.status not in TRANSITIONS[target]:
        raise invalid_operation(f"{what} is {item.status.upper()}: it cannot become {target.upper()}")
    if target == "active":
        return {"status": target, "kept_by": []}
    return {"status": target, "kept_by": carriers if item.status == "active" else item.kept_by}


def _edit(store: Store, environment: str, now: datetime, code: str,
          change_coupon: Any, what: str) -> tuple[Coupon, CatalogDocument]:
    """Replace the coupon `code` with change_coupon(coupon, carriers) in a new catalog version;
    carriers: the subscriptions that carry it now (by its code or a promotion code)."""
    with config_change(store, environment, to_micros(now)) as change:
        document = change.catalog() or CatalogDocument()
        current = next((c for c in document.coupons if c.code == code), None)
        if current is None:
            raise not_found("coupon", code)
        edited = change_coupon(current, _carriers(document, {current.code, *(
            p.code for p in current.promotion_codes)}))
        coupons = [edited if c.code == code else c for c in document.coupons]
        document = document.model_copy(update={"coupons": coupons})
        save_document(change, document, what)
        change.changed = True  # the catalog moved: cached views notice at once
        return edited, document


def change_coupon_status(store: Store, environment: str, now: datetime, code: str,
                         target: str) -> tuple[Coupon, CatalogDocument]:
    return _edit(store, environment, now, code,
                 lambda c, carriers: c.model_copy(update=_moved(c, target, carriers, f"coupon {c.code!r}")),
                 f"setting coupon {code!r} {target}")


# what an ARCHIVED coupon keeps as it is (its name and description may still be edited)
FROZEN_WHEN_ARCHIVED = ("discount", "duration", "end_at", "maximum_redemptions")
PATCHABLE = ("name", "description", "status", "discount", "duration", "end_at", "maximum_redemptions", "reference",
             "object_type", "id", "created_at", "updated_at")


def update_coupon(store: Store, environment: str, now: datetime, code: str,
                  data: dict[str, Any]) -> tuple[Coupon, CatalogDocument]:
    """PATCH: the fields given replace the coupon's (an edited discount applies from the next
    invoice, like a price); `status` moves it along its lifecycle; its code cannot change."""
    for name in data:
        if name not in PATCHABLE and name not in UNSUPPORTED:
            raise invalid(name, f"{name} is not a field of a coupon")
    for name in ("limited_to", "start_at", "number_of_redemptions"):
        if data.get(name) is not None:
            raise invalid(name, f"{name}: {UNSUPPORTED[name]}")
    if data.get("reference") not in (None, code):
        raise invalid_operation("a coupon's reference is the code subscriptions name: it cannot change", "reference")
    target = data.get("status")
    if target is not None and _status(target) is None:
        raise invalid("status", f"status must be one of {', '.join(STATUSES)}")

    def edited(current: Coupon, carriers: list[str]) -> Coupon:
        frozen = [name for name in FROZEN_WHEN_ARCHIVED if data.get(name) is not None]
        if current.status == "archived" and frozen:
            # archived is final: the subscriptions that kept the coupon keep the discount they took
            raise invalid_operation(f"coupon {code!r} is ARCHIVED: its {', '.join(frozen)} no longer change",
                                    frozen[0])
        fields = current.model_dump(exclude={"status", "kept_by", "promotion_codes"})
        if "description" in data or "name" in data:
            wire = coupon_fields({"reference": code, "discount": {"type": "PERCENTAGE", "percentage": "1"},
                                  "name": data.get("name"), "description": data.get("description")})
            fields["description"] = wire.get("description")
        if data.get("discount") is not None or data.get("duration") is not None:
            # a field given is checked as given: an empty one ("", {}, []) is refused, not the current kept
            discount = data["discount"] if data.get("discount") is not None else _wire_discount(current)
            duration = data["duration"] if data.get("duration") is not None else _wire_duration(current)
            wire = coupon_fields({"reference": code, "discount": discount, "duration": duration})
            for name in ("percent_off", "amount_off", "currency", "duration", "periods"):
                fields[name] = wire.get(name)
        if "end_at" in data:
            fields["redeem_by"] = data["end_at"]
        if "maximum_redemptions" in data:
            fields["max_redemptions"] = data["maximum_redemptions"]
        coupon = _coupon(fields).model_copy(update={"status": current.status, "kept_by": current.kept_by,
                                                    "promotion_codes": current.promotion_codes})
        if target is not None:
            coupon = coupon.model_copy(update=_moved(coupon, STATUSES[target], carriers, f"coupon {code!r}"))
        return coupon

    return _edit(store, environment, now, code, edited, f"changing coupon {code!r}")


def _wire_discount(coupon: Coupon) -> dict[str, Any]:
    if coupon.percent_off is not None:
        return {"type": "PERCENTAGE", "percentage": str(coupon.percent_off)}
    return {"type": "AMOUNT", "amount": {"quantity": str(coupon.amount_off), "currency": coupon.currency}}


def _wire_duration(coupon: Coupon) -> dict[str, Any]:
    kind = {value: key for key, value in DURATIONS.items()}[coupon.duration]
    return {"type": kind, "period": {"value": coupon.periods}} if coupon.periods else {"type": kind}


PROMOTION_FIELDS = ("object_type", "id", "code_format", "code", "coupon_id", "status", "limited_to", "start_at",
                    "end_at", "maximum_redemptions", "number_of_redemptions", "created_at", "updated_at")


def create_promotion_code(store: Store, environment: str, now: datetime, coupon_code: str,
                          data: dict[str, Any]) -> tuple[Coupon, PromotionCode, CatalogDocument]:
    """Add a promotion code to its coupon (a new catalog version); its code is unique among
    every coupon's and promotion code's."""
    for name in data:
        if name not in PROMOTION_FIELDS:
            raise invalid(name, f"{name} is not a field of a promotion code")
    for name, why in (("limited_to", "a promotion code is redeemable by any customer"),
                      ("start_at", "a promotion code is redeemable from the catalog version that adds it"),
                      ("id", "a promotion code's id is promo_<code>"), ("number_of_redemptions", "counted by ratecard")):
        if data.get(name) is not None:
            raise invalid(name, f"{name}: {why}")
    if data.get("code_format") not in (None, "CUSTOM"):
        raise invalid("code_format", "code_format must be CUSTOM: ratecard does not generate codes")
    if data.get("code") is None:
        raise missing("code", "code is required: the code a subscription names to take the coupon")
    status = data.get("status", "ACTIVE")
    if _status(status) in (None, "archived"):
        raise invalid("status", "status must be DRAFT, ACTIVE, INACTIVE or DEPRECATED")
    fields = {"code": data["code"], "max_redemptions": data.get("maximum_redemptions"),
              "redeem_by": data.get("end_at"), "status": STATUSES[status]}
    try:
        promotion = PromotionCode.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = {"code": "code", "max_redemptions": "maximum_redemptions", "redeem_by": "end_at"}.get(
            str(first["loc"][0]) if first["loc"] else "", None)
        raise invalid(where, f"{where or 'promotion code'}: {str(first['msg']).removeprefix('Value error, ')}") \
            from None
    with config_change(store, environment, to_micros(now)) as change:
        document = change.catalog() or CatalogDocument()
        taken = {coupon.code for coupon in document.coupons} | {
            p.code for coupon in document.coupons for p in coupon.promotion_codes}
        if promotion.code in taken:
            raise already_exists("promotion code", promotion.code, "code")
        current = next((c for c in document.coupons if c.code == coupon_code), None)
        if current is None:
            raise invalid("coupon_id", f"there is no coupon {coupon_code[:100]!r}")
        coupon = current.model_copy(update={"promotion_codes": [*current.promotion_codes, promotion]})
        _check_new_code(document, [coupon if c.code == coupon_code else c for c in document.coupons],
                        promotion.code, "code")
        document = document.model_copy(update={"coupons": [coupon if c.code == coupon_code else c
                                                           for c in document.coupons]})
        save_document(change, document, f"adding promotion code {promotion.code!r}")
        change.changed = True
        return coupon, promotion, document


def change_promotion_status(store: Store, environment: str, now: datetime, code: str,
                            target: str) -> tuple[Coupon, PromotionCode, CatalogDocument]:
    """Move a promotion code along its lifecycle (the coupon's own code follows the coupon)."""
    with config_change(store, environment, to_micros(now)) as change:
        document = change.catalog() or CatalogDocument()
        for coupon in document.coupons:
            for promotion in coupon.promotion_codes:
                if promotion.code == code:
                    moved = promotion.model_copy(update=_moved(promotion, target, _carriers(document, {code}),
                                                               f"promotion code {code!r}"))
                    edited = coupon.model_copy(update={"promotion_codes": [
                        moved if p.code == code else p for p in coupon.promotion_codes]})
                    document = document.model_copy(update={"coupons": [
                        edited if c.code == coupon.code else c for c in document.coupons]})
                    save_document(change, document, f"setting promotion code {code!r} {target}")
                    change.changed = True
                    return edited, moved, document
            if coupon.code == code:
                raise invalid_operation(f"{code!r} is coupon {code!r}'s own code: its status is the coupon's "
                                        "(change the coupon)")
        raise not_found("promotion code", code)
