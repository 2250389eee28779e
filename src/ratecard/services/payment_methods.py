"""Payment methods (Solvimon's PaymentMethodsApi): a stored reference to a customer's payment method
at the provider (Stripe: its `pm_…` id), with what may be shown of it (card brand, last four digits,
expiry, billing address) and a default flag.

A customer's ACTIVE default method is what ratecard charges its final invoices with (`payments run`,
`pay`, retries): `stored_method` hands it to the collection (payments.collect) in place of the Stripe
customer's own default. Without one, the Stripe customer's default payment method is charged, as
before. ratecard never holds card numbers or bank accounts: the method is created at the provider
(Stripe.js, a SetupIntent) and registered here by its id; IBANs and BICs are refused.

ARCHIVED is final: an archived method never becomes SETUP, ACTIVE or INACTIVE again, nor the
customer's default (as a payment method detached at Stripe cannot be attached again): register a
new one. Archiving the customer's default takes its flag away, and the customer has no default
until another method is made the default; archiving a method and making it the default in one
request is refused. No charge uses a method that is not ACTIVE here, not even when it is the Stripe
customer's own default (`unusable`).

Rules: the customer must be collected through Stripe (its catalog entry has `stripe_customer_id`);
the provider id is `integration_details.stripe.payment_method_id` or `integration_reference`, and is
unique per environment, as is `reference`. A customer's first method that is not ARCHIVED becomes
its default; making one default clears the flag on its others.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..catalog.schema import CatalogDocument
from ..domain.instants import to_micros
from ..payments.collect import MethodFor, Unusable
from ..store import Store
from ..store.payments import PaymentRecord
from ..store.resources import ConfigChange, Resource, config_change, rows_of_kinds
from .errors import AlreadyExists, Conflict, InvalidInput, MissingInput, NotFound
from .resources.checks import choice_or_default

KIND, PREFIX = "payment_method", "pmt_"
TYPES = ("CARD", "ONLINE_BANKING", "BUY_NOW_PAY_LATER", "DIRECT_DEBIT", "DIGITAL_WALLET", "UNKNOWN")
STATUSES = ("SETUP", "ACTIVE", "INACTIVE", "ARCHIVED")
DETAILS = {"CARD": "card", "ONLINE_BANKING": "online_banking", "BUY_NOW_PAY_LATER": "buy_now_pay_later",
           "DIRECT_DEBIT": "direct_debit", "DIGITAL_WALLET": "digital_wallet"}
FIELDS = ("object_type", "id", "created_at", "updated_at", "reference", "status", "type", *DETAILS.values(),
          "customer_id", "integration_id", "integration_reference", "integration_details", "billing_address",
          "is_default")
_PROVIDER_ID = re.compile(r"[A-Za-z0-9_]{1,255}")
_TEXT = re.compile(r"[^\x00-\x1f\x7f]{0,200}")
ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "state", "country")
# the card brands Solvimon's clients know (a brand outside them would break their parsing)
BRANDS = ("ACCEL", "AMERICAN_EXPRESS", "BANCONTACT", "CARNET", "CARTES_BANCAIRES", "DANKORT", "DINERS", "DISCOVER",
          "EFTPOS", "ELO", "GIROCARD", "HIPERCARD", "JCB", "MAESTRO", "MASTERCARD", "NYCE", "PULSE", "STAR",
          "UNION_PAY", "VISA", "V_PAY")


def _text(value: Any, field: str, limit: int = 200) -> str:
    if not isinstance(value, str) or len(value) > limit or not _TEXT.fullmatch(value):
        raise InvalidInput(f"{field} must be text of at most {limit} characters", field=field)
    return value


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be an object", field=field)
    return value


def provider_reference(data: dict[str, Any]) -> str | None:
    details = data.get("integration_details")
    given = None
    if details is not None:
        details = _object(details, "integration_details")
        if details.get("adyen") is not None:
            raise InvalidInput("integration_details.adyen: ratecard collects through Stripe only",
                               field="integration_details.adyen")
        stripe = details.get("stripe")
        if stripe is not None:
            given = _object(stripe, "integration_details.stripe").get("payment_method_id")
    reference = data.get("integration_reference")
    if given is not None and reference is not None and given != reference:
        raise InvalidInput("integration_reference and integration_details.stripe.payment_method_id name different "
                           "methods", field="integration_reference")
    value = given if given is not None else reference
    if value is None:
        return None
    field = "integration_details.stripe.payment_method_id" if given is not None else "integration_reference"
    if not isinstance(value, str) or not _PROVIDER_ID.fullmatch(value):
        raise InvalidInput(f"{field} must be a Stripe payment method id such as pm_1NdxQ2…", field=field)
    return value


def _details(kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """What may be shown of the method: display fields only (never an account number)."""
    name = DETAILS.get(kind)
    for other in DETAILS.values():
        if other != name and data.get(other) is not None:
            raise InvalidInput(f"{other}: the method's type is {kind}", field=other)
    if name is None or data.get(name) is None:
        return None
    given = _object(data[name], name)
    out: dict[str, Any] = {}
    for key, value in given.items():
        field = f"{name}.{key}"
        if value is None:
            continue
        if key in ("iban", "bic"):
            raise InvalidInput(f"{field}: ratecard stores a reference to the provider's method, not bank details",
                               field=field)
        if key == "last_four_digits":
            if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}", value):
                raise InvalidInput(f"{field} must be four digits", field=field)
            out[key] = value
        elif key == "expiry_date":
            expiry = _object(value, field)
            month, year = expiry.get("expiry_month"), expiry.get("expiry_year")
            if not isinstance(month, int) or isinstance(month, bool) or not 1 <= month <= 12 \
                    or not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2100:
                raise InvalidInput(f"{field} must have expiry_month 1..12 and expiry_year 2000..2100", field=field)
            out[key] = {"expiry_month": month, "expiry_year": year}
        elif key == "brand":
            if value not in BRANDS:
                raise InvalidInput(f"{field} must be one of {', '.join(BRANDS)}", field=field)
            out[key] = value
        elif key == "country":
            if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{2}", value):
                raise InvalidInput(f"{field} must be a two-letter country code such as NL", field=field)
            out[key] = value
        elif key in ("name", "owner_name"):
            out[key] = _text(value, field)
        else:
            raise InvalidInput(f"{field} is not a field of {name}", field=field)
    return out


def _address(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    given = _object(value, "billing_address")
    out = {}
    for key, item in given.items():
        if item is None:
            continue
        if key not in ADDRESS_FIELDS:
            raise InvalidInput(f"billing_address.{key} is not a field of an address", field=f"billing_address.{key}")
        out[key] = _text(item, f"billing_address.{key}")
    return out


def _check_fields(data: dict[str, Any]) -> None:
    for name in data:
        if name not in FIELDS:
            raise InvalidInput(f"{str(name)[:60]} is not a field of a payment method", field=str(name)[:60])
    if data.get("integration_id") not in (None, "stripe"):
        raise InvalidInput("integration_id: ratecard's one payment integration is stripe", field="integration_id")


def _reference(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"\S{1,256}", value) or re.search(r"[\x00-\x1f\x7f]", value):
        raise InvalidInput("reference must be 1 to 256 characters without whitespace", field="reference")
    return value



def _stripe_customer(document: CatalogDocument | None, customer: str) -> None:
    found = next((c for c in (document.customers if document is not None else []) if c.reference == customer), None)
    if found is None:
        raise InvalidInput(f"customer_id: no customer {customer[:60]!r}", field="customer_id")
    if not found.stripe_customer_id:
        raise InvalidInput(f"customer_id: customer {customer!r} pays by transfer (no stripe_customer_id in the "
                           "catalog): a stored payment method would never be charged", field="customer_id")


def _unique(change: ConfigChange, body: dict[str, Any], reference: str | None, but: str | None = None) -> None:
    for row in change.resources.of_kind(KIND):
        if row.id == but:
            continue
        if row.body.get("provider_reference") == body["provider_reference"]:
            raise AlreadyExists(f"payment method {body['provider_reference']!r} is registered already ({row.id})",
                                field="integration_reference")
        if reference is not None and row.body.get("reference") == reference:
            raise AlreadyExists(f"a payment method with reference {reference!r} already exists", field="reference")


def _set_default(change: ConfigChange, row: Resource) -> None:
    """`row` is its customer's default now: the flag leaves the customer's others."""
    for other in change.resources.of_kind(KIND):
        if other.id != row.id and other.body.get("customer") == row.body["customer"] and other.body.get("is_default"):
            change.put(Resource(other.id, KIND, other.reference, {**other.body, "is_default": False}, 0, 0))


def _body(data: dict[str, Any], customer: str, current: dict[str, Any] | None = None) -> dict[str, Any]:
    body = dict(current or {})
    kind = data.get("type", body.get("type", "UNKNOWN"))
    if kind not in TYPES:
        raise InvalidInput(f"type must be one of {', '.join(TYPES)}", field="type")
    if current is not None and kind != current["type"]:
        raise InvalidInput("type cannot change: register the other method", field="type")
    status = choice_or_default(data.get("status"), "status", STATUSES, body.get("status", "ACTIVE"))
    body.update({"customer": customer, "type": kind, "status": status})
    details = _details(kind, data)
    if details is not None:
        body["details"] = {**(body.get("details") or {}), **details}
    if "billing_address" in data:
        body["billing_address"] = _address(data["billing_address"])
    if "reference" in data:
        body["reference"] = _reference(data["reference"])
    return body


def create(store: Store, environment: str, now: datetime, document: CatalogDocument | None, customer: str,
           data: dict[str, Any]) -> Resource:
    _check_fields(data)
    _stripe_customer(document, customer)
    provider = provider_reference(data)
    if provider is None:
        raise MissingInput("integration_details.stripe.payment_method_id (or integration_reference) is required: the "
                           "Stripe payment method this one refers to", field="integration_reference")
    body = _body(data, customer)
    body["provider_reference"] = provider
    default = data.get("is_default")
    if default is not None and not isinstance(default, bool):
        raise InvalidInput("is_default must be true or false", field="is_default")
    _not_archived_default(body, default, "this method")
    with config_change(store, environment, to_micros(now)) as change:
        _unique(change, body, body.get("reference"))
        # a customer's first method is its default, unless it is ARCHIVED (nobody's default): then
        # the first one registered that is not
        others = [r for r in change.resources.of_kind(KIND) if r.body.get("customer") == customer
                  and r.body.get("status") != "ARCHIVED"]
        body["is_default"] = body["status"] != "ARCHIVED" and (bool(default) or not others)
        row_id = f"{PREFIX}{secrets.token_hex(10)}"
        row = change.put(Resource(row_id, KIND, row_id, body, 0, 0))
        if body["is_default"]:
            _set_default(change, row)
    return row


def _row(rows: list[Resource], key: str) -> Resource:
    found = next((r for r in rows if r.id == key), None) or next((r for r in rows if r.body.get("reference") == key),
                                                                  None)
    if found is None:
        raise NotFound(f"payment method {key[:80]!r} does not exist")
    return found


def listed(store: Store, environment: str) -> list[Resource]:
    return rows_of_kinds(store, environment, (KIND,))


def find(store: Store, environment: str, key: str) -> Resource:
    return _row(listed(store, environment), key)


def update(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any],
           customer: str | None = None) -> Resource:
    """Change what may change (status, default flag, display details, address, reference); the
    customer and the provider's method are the method itself."""
    _check_fields(data)
    with config_change(store, environment, to_micros(now)) as change:
        row = _row(change.resources.of_kind(KIND), key)
        if customer is not None and customer != row.body["customer"]:
            raise InvalidInput("customer_id cannot change: register the method for the other customer",
                               field="customer_id")
        provider = provider_reference(data)
        if provider is not None and provider != row.body["provider_reference"]:
            raise InvalidInput("the provider's payment method cannot change: register the other one",
                               field="integration_reference")
        body = _body(data, row.body["customer"], row.body)
        _archived_stays(row, body)
        default = data.get("is_default")
        _not_archived_default(body, default, f"payment method {row.id!r}")  # one archived before, or now
        _unique(change, body, body.get("reference") if "reference" in data else None, but=row.id)
        if default is not None:
            if not isinstance(default, bool):
                raise InvalidInput("is_default must be true or false", field="is_default")
            body["is_default"] = default
        if body["status"] == "ARCHIVED":
            body["is_default"] = False  # archiving the default: the customer has none until one is chosen
        row = change.put(Resource(row.id, KIND, row.reference, body, 0, 0))
        if body.get("is_default"):
            _set_default(change, row)
    return row


def _archived_stays(row: Resource, body: dict[str, Any]) -> None:
    """An ARCHIVED method stays ARCHIVED (and so, by `_not_archived_default`, nobody's default): the
    way back is a new method."""
    if row.body.get("status") == "ARCHIVED" and body["status"] != "ARCHIVED":
        raise Conflict(f"payment method {row.id!r} is ARCHIVED: it cannot become {body['status']}; register the "
                       "customer's new Stripe payment method instead", field="status")


def _not_archived_default(body: dict[str, Any], default: Any, what: str) -> None:
    """A method that is ARCHIVED (or made so by this request) cannot be made the customer's default."""
    if body["status"] == "ARCHIVED" and default is True:
        raise Conflict(f"{what} is ARCHIVED: it cannot be the customer's default; make an ACTIVE method the default",
                       field="is_default")


def upsert(store: Store, environment: str, now: datetime, document: CatalogDocument | None, customer: str | None,
           data: dict[str, Any]) -> tuple[Resource, bool]:
    """PUT: the method with this `reference` (else this provider id) is updated, or created; (row, created)."""
    rows = listed(store, environment)
    provider = provider_reference(data)
    reference = _reference(data.get("reference"))
    existing = next((r for r in rows if reference is not None and r.body.get("reference") == reference), None) or \
        next((r for r in rows if provider is not None and r.body.get("provider_reference") == provider), None)
    if existing is not None:
        return update(store, environment, now, existing.id, data, customer), False
    if customer is None:
        raise MissingInput("customer_id is required to register a new payment method", field="customer_id")
    return create(store, environment, now, document, customer, data), True


def stored_method(store: Store, environment: str) -> MethodFor:
    """For the collection: a charge's customer's ACTIVE default method (its Stripe id), or None."""
    defaults: dict[str, str] | None = None

    def method(payment: PaymentRecord) -> str | None:
        nonlocal defaults
        if defaults is None:  # read once per collection run, when a charge is made
            defaults = {row.body["customer"]: row.body["provider_reference"] for row in listed(store, environment)
                        if row.body.get("is_default") and row.body.get("status") == "ACTIVE"}
        return defaults.get(payment.customer)

    return method


def unusable(store: Store, environment: str) -> Unusable:
    """For the collection: why the Stripe customer's default method must not be charged (ratecard
    holds it for the customer as not ACTIVE, e.g. ARCHIVED), or None."""
    held: dict[tuple[str, str], str] | None = None

    def why(payment: PaymentRecord, provider: str) -> str | None:
        nonlocal held
        if held is None:  # read once per collection run, when a charge falls back to Stripe's default
            held = {(row.body["customer"], row.body["provider_reference"]): row.body.get("status", "ACTIVE")
                    for row in listed(store, environment)}
        status = held.get((payment.customer, provider), "ACTIVE")
        if status == "ACTIVE":
            return None
        return (f"the Stripe customer's default payment method {provider} is {status} in ratecard: only an ACTIVE "
                "method is charged (register an active one)")

    return why


def method_for(store: Store, environment: str, key: str, customer: str) -> Callable[[PaymentRecord], str | None]:
    """A chosen method of the customer (authorize with payment_method_id): ACTIVE, the customer's own."""
    row = find(store, environment, key)
    if row.body["customer"] != customer:
        raise InvalidInput(f"payment_method_id: {key!r} is not a payment method of the invoice's customer",
                           field="payment_method_id")
    if row.body.get("status") != "ACTIVE":
        raise Conflict(f"payment method {key!r} is {row.body.get('status')}: only an ACTIVE method is charged",
                       field="payment_method_id")
    provider = row.body["provider_reference"]
    return lambda payment: provider


def register_default(store: Store, environment: str, now: datetime, customer: str, provider: str) -> Resource | None:
    """refresh: the Stripe customer's default method, registered (as the default) unless it is known."""
    if any(row.body.get("provider_reference") == provider for row in listed(store, environment)):
        return None
    with config_change(store, environment, to_micros(now)) as change:
        body = {"customer": customer, "type": "UNKNOWN", "status": "ACTIVE", "provider_reference": provider,
                "is_default": not any(r.body.get("customer") == customer for r in change.resources.of_kind(KIND))}
        row_id = f"{PREFIX}{secrets.token_hex(10)}"
        return change.put(Resource(row_id, KIND, row_id, body, 0, 0))


def refresh(store: Store, environment: str, now: datetime, document: CatalogDocument | None, customer: str,
            api: Callable[[], Any] | None = None) -> list[Resource]:
    """Ask Stripe for the customer's default payment method and register it unless it is known;
    the customer's methods."""
    from ..payments import stripe_gateway
    from ..payments.stripe_gateway import Outcome, StripeNotConfigured

    _stripe_customer(document, customer)
    stripe_id = next(c.stripe_customer_id for c in document.customers if c.reference == customer) \
        if document is not None else None
    try:
        client = (api or stripe_gateway.client)()
    except StripeNotConfigured as exc:
        raise Conflict(f"{exc}: the customer's methods cannot be read from Stripe") from None
    found = stripe_gateway.default_payment_method(client, stripe_id or "")
    if isinstance(found, Outcome):
        raise Conflict(f"Stripe did not give customer {customer!r}'s default payment method: {found.failure}")
    register_default(store, environment, now, customer, found)
    return [row for row in listed(store, environment) if row.body["customer"] == customer]
