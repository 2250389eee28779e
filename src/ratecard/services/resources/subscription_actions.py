"""Solvimon's actions on a whole pricing-plan subscription beyond create, change and cancel:
delete (a DRAFT only), void (a subscription made in error), copy (a DRAFT with the same terms)
and update-payment-method. Voiding goes through services.subscription_changes.void_subscription,
the function behind `ratecard subscriptions void`; the others touch the subscription's row only
(a DRAFT is not in the catalog; a payment method is not a billing term)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ...catalog.edits import moment_text, parse_moment
from ...catalog.schema import CatalogDocument
from ...domain.instants import to_micros
from ...domain.periods import to_local
from ...store import Store
from ...store.resources import ConfigChange, Resource, config_change
from .. import subscription_changes as changes
from .checks import already_exists, check_reference, invalid, invalid_operation, missing
from .model import View
from .schedule_drafts import draft_entry, new_draft_id
from .subscriptions import (
    MAX_REFERENCE,
    ROW_FIELDS,
    SUBSCRIPTION,
    SUBSCRIPTION_ROW_PREFIX,
    Found,
    _customer,
    _found,
    _put_row,
    _write_row,
    get,
    instant_text,
    row_of,
    terms_in,
)

# what a copy carries over from its source's row (not its status, cancellation or void record)
COPIED = (*ROW_FIELDS, "initial_term", "renewal_term", "auto_renewal", "custom_fields", "group_id",
          "requires_reference")
MAX_PAYMENT_METHOD = 255


def delete_draft(store: Store, environment: str, now: datetime, key: str) -> Found:
    """Take away a DRAFT subscription (it never was in the catalog: nothing billed, nothing to
    keep). Returns it as it was. Any other is refused: one that bills leaves history behind
    (cancel it, or void it when it was made in error)."""
    found = get(store, environment, now, key)
    reference = found.terms["reference"]
    if found.terms["status"] != "draft":
        raise invalid_operation(f"subscription {reference!r} is not a DRAFT: only a DRAFT (never billed) is deleted; "
                                "cancel it, or void it when it was made in error")
    with config_change(store, environment, to_micros(now)) as change:
        row = change.resources.by_reference.get((SUBSCRIPTION, reference))
        if row is not None:
            change.delete(row.id)
    return found


def void(store: Store, environment: str, now: datetime, key: str) -> Found:
    """Void a subscription made in error (`ratecard subscriptions void`): out of the catalog, so
    nothing is billed (its drafts are removed with it), refused once a final invoice names
    it. Its row keeps what it was (customer, plans and dates) and the status VOID; the reference
    stays taken."""
    found = get(store, environment, now, key)
    reference = found.terms["reference"]
    if found.terms["status"] == "draft":
        raise invalid_operation(f"subscription {reference!r} is a DRAFT (it never billed): delete it instead")
    if found.terms["status"] == "void":
        raise invalid_operation(f"subscription {reference!r} is VOID already")
    step = changes.void_step(store, now, environment, reference=reference)
    voided: dict[str, Any] = {}

    def edit(raw: dict[str, Any], document: CatalogDocument) -> tuple[dict[str, Any], list[str]]:
        voided["terms"] = terms_in(document, reference, now)  # the version the void is computed on
        return step.edit(raw, document)

    def rows(change: ConfigChange, _: CatalogDocument) -> None:
        """The row keeps what was voided: the terms of the version the void was stored over."""
        changes.void_drafts(change, now, reference)
        terms = voided["terms"]
        record = {"timezone": terms["timezone"], "start": terms["start"], "end": terms.get("end"),
                  "phases": [{"at": _text(phase["at"]), "plan": phase["plan"], "quantity": phase["quantity"]}
                             for phase in terms["phases"]]}
        _write_row(change, reference, {}, {
            "status": "VOID", "customer": terms["customer"], "voided_at": instant_text(now), "void": record,
            "requires_reference": bool(terms.get("requires_reference")) or None})

    changes.write_together(store, now, environment, [changes.Step(step.action, reference, edit)], rows)
    return _found(store, environment, now, reference)


def _text(moment: Any) -> str:
    return moment if isinstance(moment, str) else moment_text(moment)


def set_payment_method(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any]) -> Found:
    """Keep `payment_method_id` on the subscription's row (shown back on the subscription).
    `cancel_dunning_actions: true` is refused: ratecard's dunning is the billing entity's retry
    schedule, and `ratecard payments retry` charges again at once."""
    found = get(store, environment, now, key)
    reference = found.terms["reference"]
    if found.terms["status"] == "void":
        raise invalid_operation(f"subscription {reference!r} is VOID: it bills nothing to pay for")
    for name in data:
        if name not in ("payment_method_id", "cancel_dunning_actions") and data[name] is not None:
            raise invalid(name[:80], f"{name[:80]} is not a field of a payment method update")
    method = data.get("payment_method_id")
    if method is None:
        raise missing("payment_method_id", "payment_method_id is required (the payment method invoices of this "
                                           "subscription are paid with)")
    method = check_reference(method, "payment_method_id", MAX_PAYMENT_METHOD)
    dunning = data.get("cancel_dunning_actions")
    if dunning is not None and not isinstance(dunning, bool):
        raise invalid("cancel_dunning_actions", "cancel_dunning_actions must be true or false")
    if dunning:
        raise invalid("cancel_dunning_actions", "ratecard's dunning is the billing entity's retry schedule "
                                                "(payments.dunning_days), not cancelled per subscription; "
                                                "`ratecard payments retry` charges again at once")
    _put_row(store, environment, now, reference, {}, {"payment_method_id": method})
    return _found(store, environment, now, reference)


def copy(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any]) -> Found:
    """A new DRAFT subscription of the same customer with the source's row fields (name, terms,
    custom fields, group, payment method) and, as a DRAFT schedule, the plan and seats in force
    (a DRAFT source: its DRAFT schedules). It bills nothing until its schedule is activated."""
    for name in data:
        if name != "reference" and data[name] is not None:
            raise invalid(name[:80], f"{name[:80]} is not a field of a copy (only reference)")
    found = get(store, environment, now, key)
    source = found.terms["reference"]
    reference = data.get("reference")
    reference = check_reference(reference if reference is not None else f"sub_{secrets.token_hex(8)}",
                                max_length=MAX_REFERENCE)
    with config_change(store, environment, to_micros(now)) as change:
        view = View(environment, change.resources, change.catalog())
        document = view.document
        if row_of(view, reference) is not None or (
                document is not None and any(s.reference == reference for s in document.subscriptions)):
            raise already_exists("pricing plan subscription", reference)
        customer = _customer(view, {"customer_reference": found.terms["customer"]})
        row = row_of(view, source)
        body: dict[str, Any] = {name: row.body[name] for name in COPIED
                                if row is not None and row.body.get(name) is not None}
        if found.terms.get("requires_reference"):
            body["requires_reference"] = True
        body.update(draft=True, customer=customer, copied_from=source,
                    draft_schedules=_copied_schedules(environment, reference, found, row, now))
        change.put(Resource(change.new_id(SUBSCRIPTION_ROW_PREFIX, SUBSCRIPTION, reference), SUBSCRIPTION, reference,
                            body, 0, 0))
    return _found(store, environment, now, reference)


def _copied_schedules(environment: str, reference: str, found: Found, row: Resource | None,
                      now: datetime) -> list[dict[str, Any]]:
    """The copy's DRAFT schedule(s): the source's plan and seats in force now (its first terms when it
    has not started, its last when it has ended), with no start (activating it starts it then)."""
    if found.terms["status"] == "draft":
        return [{**entry, "id": new_draft_id(environment, reference)}
                for entry in (row.body.get("draft_schedules") or [] if row is not None else [])]
    if found.terms["status"] == "void":
        phases = (row.body.get("void") or {}).get("phases") or [] if row is not None else []
        chosen = phases[0] if phases else None
        versions: list[Any] = []
    else:
        phases = found.terms["phases"]
        current = [p for p in phases if _micros(p["at"], found) <= to_micros(now)]
        chosen = current[-1] if current else phases[0]
        versions = list(row.body.get("versions") or []) if row is not None else []
    if chosen is None:
        return []
    index = phases.index(chosen)
    version = versions[index] if index < len(versions) else None
    return [draft_entry(environment, reference, chosen["plan"], None, None, chosen["quantity"], version)]


def _micros(moment: Any, found: Found) -> int:
    parsed = parse_moment(moment) if isinstance(moment, str) else moment
    return to_micros(to_local(parsed, ZoneInfo(found.terms["timezone"])))


__all__ = ["copy", "delete_draft", "set_payment_method", "void"]
