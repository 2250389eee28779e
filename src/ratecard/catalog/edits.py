"""Edits of a catalog document's subscriptions: add one, give one new terms from an instant, end one.

Each edit takes the raw document (plain dicts and lists, as a file or `model_dump(mode="json")`
gives it) and returns a new document; the input is never changed (the new document shares every
part the edit leaves alone with it, so a catalog of thousands of subscriptions is not copied). An edit refuses only what
depends on the edit itself (an unknown subscription, changes it would overrule, ending an ended
subscription later); everything else (an unknown plan, a change outside the lifetime, a currency
or interval mismatch) is left to `check_document`, which names the path of each problem.

Instants are compared as the billing calendar reads them: a date is local midnight in the
subscription's timezone (its customer's, else the billing entity's).
"""

from __future__ import annotations

import copy
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..domain.periods import to_local

PRORATIONS = ("prorate", "none", "invoice_now")
END_PRORATIONS = ("prorate", "none")
MAX_OVERRIDE_TEXT = 10_000  # one --override argument; a tier list fits many times over


class EditError(ValueError):
    """An edit that cannot be made. `kind`: unknown_subscription, unknown_customer, exists,
    later_changes (the edit would overrule changes at or after its instant), ended (ending an
    ended subscription later), no_change (the terms asked for are those in force), invalid."""

    def __init__(self, message: str, kind: str, field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


def moment_text(moment: date | datetime) -> str:
    """How an instant is written into the document: a date as YYYY-MM-DD, else RFC 3339 with its offset."""
    if isinstance(moment, datetime):
        return moment.isoformat().replace("+00:00", "Z")
    return moment.isoformat()


def parse_moment(value: Any) -> date | datetime:
    """A document's date or RFC 3339 datetime (as `model_dump(mode="json")` or a file writes it)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))


def zone_of(document: dict[str, Any], subscription: dict[str, Any]) -> ZoneInfo:
    """The subscription's timezone: its customer's, else its billing entity's, else UTC."""
    customer = next((c for c in _list(document, "customers")
                     if isinstance(c, dict) and c.get("reference") == subscription.get("customer")), None)
    entity = document.get("billing_entity") or {}
    code = (customer or {}).get("billing_entity")
    if code is not None:
        entity = next((e for e in _list(document, "billing_entities") if isinstance(e, dict) and e.get("code") == code),
                      entity)
    name = (customer or {}).get("timezone") or (entity.get("timezone") if isinstance(entity, dict) else None) or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")  # check_document reports the bad name


def instant(value: Any, zone: ZoneInfo) -> datetime:
    """A document's date or datetime as an aware local instant (a date is local midnight)."""
    return to_local(parse_moment(value), zone)


def find_subscription(document: dict[str, Any], reference: str) -> dict[str, Any]:
    for subscription in _list(document, "subscriptions"):
        if isinstance(subscription, dict) and subscription.get("reference") == reference:
            return subscription
    raise EditError(f"subscription {reference!r} does not exist", "unknown_subscription")


def terms_before(document: dict[str, Any], subscription: dict[str, Any], moment: datetime
                 ) -> tuple[str, dict[str, dict[str, Any]]]:
    """(plan, overrides) in force just before `moment`: the start's terms, then each earlier change's."""
    zone = zone_of(document, subscription)
    plan = subscription.get("plan")
    overrides = dict(subscription.get("overrides") or {})
    for change in subscription.get("changes") or []:
        if instant(change["at"], zone) >= moment:
            break
        if change.get("plan") is not None and change["plan"] != plan:
            plan, overrides = change["plan"], {}
        if change.get("overrides") is not None:
            overrides = dict(change["overrides"])
    return plan, overrides


def quantity_before(document: dict[str, Any], subscription: dict[str, Any], moment: datetime) -> int:
    """The seats in force just before `moment` (a change of plan keeps them)."""
    zone = zone_of(document, subscription)
    quantity = subscription.get("quantity", 1)
    for change in subscription.get("changes") or []:
        if instant(change["at"], zone) >= moment:
            break
        if change.get("quantity") is not None:
            quantity = change["quantity"]
    return quantity if isinstance(quantity, int) else 1


def laid_over(base: dict[str, dict[str, Any]], extra: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Overrides `extra` laid over `base`, field by field within each charge."""
    merged = {code: dict(fields) for code, fields in base.items()}
    for code, fields in extra.items():
        merged[code] = {**merged.get(code, {}), **fields}
    return merged


def parse_override(text: str) -> tuple[str, str, Any]:
    """CHARGE.FIELD=VALUE -> (charge, field, value). A value starting with [ or { is JSON (a tier
    list), numbers in it kept exact; any other value is text ("39.00", "arrears")."""
    if len(text) > MAX_OVERRIDE_TEXT:
        raise EditError(f"is longer than {MAX_OVERRIDE_TEXT} characters", "invalid", "override")
    target, equals, raw = text.partition("=")
    charge, dot, field = target.strip().rpartition(".")
    if not equals or not dot or not charge or not field:
        raise EditError(f"{text[:80]!r} is not CHARGE.FIELD=VALUE (e.g. base.amount=39.00)", "invalid", "override")
    value: Any = raw.strip()
    if value.startswith(("[", "{")):
        try:
            value = json.loads(value, parse_float=Decimal)
        except (ValueError, RecursionError):
            raise EditError(f"{target.strip()}: the value is not valid JSON", "invalid", "override") from None
    return charge, field, value


def add_subscription(document: dict[str, Any], subscription: dict[str, Any]) -> dict[str, Any]:
    """The document with a new subscription. Its customer must exist: a subscription never creates one."""
    reference = subscription.get("reference")
    subscriptions = _list(document, "subscriptions")
    if any(isinstance(s, dict) and s.get("reference") == reference for s in subscriptions):
        raise EditError(f"a subscription with reference {reference!r} already exists", "exists", "reference")
    customer = subscription.get("customer")
    if not any(isinstance(c, dict) and c.get("reference") == customer for c in _list(document, "customers")):
        raise EditError(f"customer {customer!r} is not in the catalog; add it first (a catalog listing it, applied "
                        "with `ratecard catalog apply`, or POST /v1/customers)", "unknown_customer", "customer")
    return {**document, "subscriptions": [*subscriptions, copy.deepcopy(subscription)]}


def add_change(document: dict[str, Any], reference: str, at: date | datetime, *, plan: str | None = None,
               overrides: dict[str, dict[str, Any]] | None = None, proration: str = "prorate",
               replace_later: bool = False, quantity: int | None = None) -> dict[str, Any]:
    """The document with new terms for the subscription from `at`.

    `plan`: the plan from `at` (None: the plan in force stays). `overrides`: fields laid over the
    overrides in force when the plan stays, over none when it changes. `quantity`: the seats from
    `at` (None: those in force stay). The change is written with its plan and, when any, its
    complete overrides and its quantity, so it reads on its own. Changes at or after `at` are
    refused unless `replace_later`, which drops them."""
    edited, subscription = _editable(document, reference)
    zone = zone_of(edited, subscription)
    moment = to_local(at, zone)
    changes = list(subscription.get("changes") or [])
    later = [change for change in changes if instant(change["at"], zone) >= moment]
    if later and not replace_later:
        raise EditError(f"subscription {reference!r} has {len(later)} change(s) at or after {moment_text(at)} "
                        f"({_listed(later)}); a new change goes after the last one, or replaces them with "
                        "replace-later", "later_changes", "at")
    current_plan, current_overrides = terms_before(edited, subscription, moment)
    new_plan = plan if plan is not None else current_plan
    if new_plan == current_plan:
        new_overrides = laid_over(current_overrides, overrides) if overrides else None
    else:
        new_overrides = laid_over({}, overrides) if overrides else None
    seats = quantity_before(edited, subscription, moment)
    if new_plan == current_plan and (new_overrides is None or new_overrides == current_overrides) \
            and (quantity is None or quantity == seats):
        raise EditError(f"the terms in force at {moment_text(at)} are already plan {current_plan!r}"
                        + (" with these overrides" if overrides else "")
                        + (f" with {seats} seat(s)" if quantity is not None else "") + "; nothing to change",
                        "no_change", "quantity" if quantity is not None and plan is None else "plan")
    change: dict[str, Any] = {"at": moment_text(at), "plan": new_plan, "proration": proration}
    if new_overrides is not None:
        change["overrides"] = new_overrides
    if quantity is not None and quantity != seats:
        change["quantity"] = quantity
    subscription["changes"] = [c for c in changes if instant(c["at"], zone) < moment] + [change]
    return edited


def add_one_off(document: dict[str, Any], reference: str, charge: dict[str, Any]) -> dict[str, Any]:
    """The document with a one-off charge on the subscription (billed on its first invoice cut at or
    after the charge's `at`). Its code must be new on the subscription."""
    edited, subscription = _editable(document, reference)
    items = list(subscription.get("one_off") or [])
    if any(isinstance(item, dict) and item.get("code") == charge.get("code") for item in items):
        raise EditError(f"subscription {reference!r} has a one-off charge {charge.get('code')!r} already; give "
                        "this one another code", "exists", "code")
    subscription["one_off"] = [*items, copy.deepcopy(charge)]
    return edited


def set_end(document: dict[str, Any], reference: str, end: date | datetime, now: datetime, *,
            proration: str = "prorate", replace_later: bool = False) -> dict[str, Any]:
    """The document with the subscription ending at `end` (exclusive), settled by `proration`.

    An ended subscription (end at or before `now`) may end earlier (a backdated cancellation),
    never later. Changes at or after `end` are refused unless `replace_later`, which drops them."""
    edited, subscription = _editable(document, reference)
    zone = zone_of(edited, subscription)
    moment = to_local(end, zone)
    current = subscription.get("end")
    if current is not None:
        ended = instant(current, zone)
        if ended <= now and moment > ended:
            raise EditError(f"subscription {reference!r} ended at {moment_text(parse_moment(current))}; it cannot "
                            f"end later ({moment_text(end)}): start a new subscription instead", "ended", "at")
    changes = list(subscription.get("changes") or [])
    later = [change for change in changes if instant(change["at"], zone) >= moment]
    if later and not replace_later:
        raise EditError(f"subscription {reference!r} has {len(later)} change(s) at or after {moment_text(end)} "
                        f"({_listed(later)}); end it after them, or drop them with replace-later",
                        "later_changes", "at")
    if later:
        subscription["changes"] = [c for c in changes if instant(c["at"], zone) < moment]
    subscription["end"] = moment_text(end)
    subscription["end_proration"] = proration
    return edited


def clear_end(document: dict[str, Any], reference: str, now: datetime) -> dict[str, Any]:
    """The document with the subscription's end taken away (a cancellation undone), so it runs on.
    Only an end still to come can go: an ended subscription stays ended (start a new one)."""
    edited, subscription = _editable(document, reference)
    current = subscription.get("end")
    if current is None:
        raise EditError(f"subscription {reference!r} has no end to undo", "no_change", "type")
    zone = zone_of(edited, subscription)
    if instant(current, zone) <= now:
        raise EditError(f"subscription {reference!r} ended at {moment_text(parse_moment(current))}; an ended "
                        "subscription cannot be resumed: start a new subscription instead", "ended", "type")
    subscription["end"] = None
    subscription["end_proration"] = "prorate"
    return edited


def remove_subscription(document: dict[str, Any], reference: str) -> dict[str, Any]:
    """The document without the subscription (a subscription voided: as if it had never been
    made). The document keeps its customer; whether anything billed is the caller's question."""
    find_subscription(document, reference)
    return {**document, "subscriptions": [s for s in _list(document, "subscriptions")
                                          if not (isinstance(s, dict) and s.get("reference") == reference)]}


def drop_change(document: dict[str, Any], reference: str, at: date | datetime) -> dict[str, Any]:
    """The document without the subscription's change at exactly `at` (a scheduled change taken
    back); the changes around it stay, each reading on its own as add_change writes them."""
    edited, subscription = _editable(document, reference)
    zone = zone_of(edited, subscription)
    moment = to_local(at, zone)
    changes = list(subscription.get("changes") or [])
    kept = [change for change in changes if instant(change["at"], zone) != moment]
    if len(kept) == len(changes):
        raise EditError(f"subscription {reference!r} has no change at {moment_text(at)}", "invalid", "at")
    if kept:
        subscription["changes"] = kept
    else:
        subscription.pop("changes", None)  # as a subscription that never had one is written
    return edited


def set_first_terms(document: dict[str, Any], reference: str, *, start: date | datetime | None = None,
                    plan: str | None = None, quantity: int | None = None) -> dict[str, Any]:
    """The document with the subscription's first terms (start, plan, seats) replaced: for a
    subscription that has not started, so nothing was billed under them. A new plan drops the
    overrides written for the old one."""
    edited, subscription = _editable(document, reference)
    if start is not None:
        subscription["start"] = moment_text(start)
    if plan is not None and plan != subscription.get("plan"):
        subscription["plan"] = plan
        subscription.pop("overrides", None)
    if quantity is not None:
        subscription["quantity"] = quantity
    return edited


def _editable(document: dict[str, Any], reference: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new document whose subscription `reference` is a copy, free to change; the rest is shared."""
    subscriptions = list(_list(document, "subscriptions"))
    for index, subscription in enumerate(subscriptions):
        if isinstance(subscription, dict) and subscription.get("reference") == reference:
            subscriptions[index] = copy.deepcopy(subscription)
            return {**document, "subscriptions": subscriptions}, subscriptions[index]
    raise EditError(f"subscription {reference!r} does not exist", "unknown_subscription")


def _listed(changes: list[dict[str, Any]]) -> str:
    shown = ", ".join(f"{moment_text(parse_moment(c['at']))} plan {c.get('plan') or '(same)'}" for c in changes[:3])
    return shown + (f" and {len(changes) - 3} more" if len(changes) > 3 else "")


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key)
    return value if isinstance(value, list) else []
