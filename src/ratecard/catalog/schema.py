"""The catalog's shape as pydantic models: field types, required fields, value ranges.

Cross-references (unknown meter, plan, customer; currency mismatches) are checked in
validate.py after this, so that every problem is reported at once.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_serializer,
    model_validator,
)

from ..domain.aggregation import AGGREGATIONS
from ..domain.dimensions import MAX_FILTERS, MAX_GROUP_BY, MAX_MATCH_KEYS, MAX_MATCH_VALUES
from ..domain.money import NO_MINOR_UNIT, MoneyError, is_currency, to_decimal
from ..domain.numbers import whole_number_problem
from ..domain.pricing import CHARGE_MODELS
from . import identifiers


def _decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        # only reachable from Python callers: files are parsed with exact decimals
        raise ValueError("must be a decimal string such as \"49.00\", not a float")
    try:
        # the range is catalog.validate's to check (the bound of domain.numbers), when a catalog is
        # checked or applied: a catalog stored before that bound still loads
        return to_decimal(value, bound=None)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


def _non_negative(value: Any) -> Decimal:
    number = _decimal(value)
    if number < 0:
        raise ValueError(f"must not be negative, got {number}")
    return number


def _positive(value: Any) -> Decimal:
    number = _decimal(value)
    if number <= 0:
        raise ValueError(f"must be greater than 0, got {number}")
    return number


def _currency(value: Any) -> str:
    if isinstance(value, str) and value in NO_MINOR_UNIT:
        raise ValueError(f"{value} has no minor unit in ISO 4217 (a precious metal, a fund or bond unit, a testing "
                         "code or 'no currency'): invoices cannot be rounded in it")
    if not isinstance(value, str) or not is_currency(value):
        raise ValueError(f"unknown currency {value!r} (expected an ISO 4217 code such as EUR)")
    return value


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"unknown timezone {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file name
        raise ValueError(f"unknown timezone {value!r} (expected an IANA name such as Europe/Berlin)") from None
    return value


def _moment(value: Any) -> date | datetime:
    """A date, or an RFC 3339 datetime that carries its offset."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return value
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not a date (2026-01-15) or RFC 3339 datetime") from None
    else:
        raise ValueError(f"{value!r} is not a date (2026-01-15) or RFC 3339 datetime")
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no timezone offset (add Z or +01:00)")
    return moment


Money = Annotated[Decimal, BeforeValidator(_non_negative)]
PositiveNumber = Annotated[Decimal, BeforeValidator(_positive)]
Currency = Annotated[str, BeforeValidator(_currency)]
Timezone = Annotated[str, BeforeValidator(_timezone)]
Moment = Annotated[date | datetime, BeforeValidator(_moment)]
_CONTROL = re.compile("[\x00-\x1f\x7f]")  # one C-level scan: every code of a large catalog goes through it


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (tabs, newlines, NUL, ...)")
    return value


Code = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_printable)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Text = Annotated[str, Field(max_length=500), AfterValidator(_printable)]
LongText = Annotated[str, Field(max_length=2000)]  # footers may span lines
Country = Annotated[str, AfterValidator(identifiers.country_code)]
TaxId = Annotated[Text, AfterValidator(identifiers.tax_identifier)]
PeppolId = Annotated[str, AfterValidator(identifiers.peppol_participant)]
Iban = Annotated[str, AfterValidator(identifiers.iban)]
Bic = Annotated[str, AfterValidator(identifiers.bic)]
LocaleName = Annotated[str, AfterValidator(identifiers.locale_name)]
LogoData = Annotated[str, AfterValidator(identifiers.logo_data_uri)]
TemplateText = Annotated[str, Field(max_length=identifiers.MAX_TEMPLATE_BYTES)]


class Address(Strict):
    lines: list[Text] = Field(min_length=1, max_length=3)  # EN 16931 has three address lines
    city: Text
    postal_code: Annotated[str, Field(max_length=20), AfterValidator(_printable)] | None = None
    country: Country
_STRIPE_ID = re.compile(r"[A-Za-z0-9_]{1,255}")
# one address, nothing a header could smuggle (CR/LF, commas, angle brackets, quotes)
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")


def _stripe_id(value: Any) -> str:
    if not isinstance(value, str) or not _STRIPE_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a Stripe id (letters, digits and _, such as cus_NffrFeUfNV2Hib)")
    return value


def _address(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 254 or not _ADDRESS.fullmatch(value):
        raise ValueError(f"{value!r} is not one email address (name@example.com)")
    return value


def _ascending_days(value: list[int]) -> list[int]:
    if any(later <= earlier for earlier, later in zip(value, value[1:], strict=False)):
        raise ValueError(f"must be ascending days after the first failure, got {value}")
    return value


StripeId = Annotated[str, BeforeValidator(_stripe_id)]
EmailAddress = Annotated[str, BeforeValidator(_address)]
DunningDay = Annotated[int, Field(ge=1, le=365, strict=True)]


class PaymentSettings(Strict):
    """How final invoices are collected: retries of a failed card payment at these days after the
    first failure, then the invoice is uncollectible."""

    dunning_days: Annotated[list[DunningDay], Field(max_length=12), AfterValidator(_ascending_days)] = [1, 3, 7]


class EmailSettings(Strict):
    """The sender of invoice emails, and whether a final invoice is sent to its customer at once."""

    sender: EmailAddress | None = None
    sender_name: Annotated[str, Field(max_length=200), AfterValidator(_printable)] | None = None
    send_on_finalization: StrictBool = False


class BillingEntity(Strict):
    code: Code = "default"  # how customers name the entity that bills them
    name: str = "ratecard"
    legal_name: Text | None = None  # the seller's registered name on documents (else `name`)
    country: str | None = None
    address: Address | None = None
    tax_id: TaxId | None = None
    peppol_id: PeppolId | None = None
    iban: Iban | None = None
    bic: Bic | None = None
    logo: Text | None = None  # a PNG or SVG file, relative to the catalog file
    locale: LocaleName = "en_US"
    footer: LongText | None = None
    payment_terms_days: int = Field(default=30, ge=0, le=365)  # an invoice's due date: its issue date + these days
    pdf_template: Text | None = None  # a Jinja2 HTML file, relative to the catalog file
    # filled by ratecard from `logo` and `pdf_template` when the catalog file is read, so a stored
    # catalog version renders the same documents wherever it is read (the files are not needed again)
    logo_data: LogoData | None = None
    pdf_template_text: TemplateText | None = None
    timezone: Timezone = "UTC"
    currency: Currency = "EUR"
    rounding: Literal["half_up", "half_even"] = "half_up"
    tax_rounding: Literal["invoice", "line"] = "invoice"
    invoice_prefix: str = "RC"
    # credit notes have a sequence of their own: CN for the default entity, else <invoice_prefix>-CN
    credit_note_prefix: Code | None = None
    # how a final invoice is corrected: on the subscription's next invoice, or by a document of its own
    corrections: Literal["next_invoice", "credit_note"] = "next_invoice"
    payments: PaymentSettings | None = None
    email: EmailSettings | None = None


class ExtraBillingEntity(BillingEntity):
    """One of `billing_entities`: the same fields, its code required."""

    code: Code


class Meter(Strict):
    code: Code
    name: str | None = None
    aggregation: Literal[AGGREGATIONS]  # type: ignore[valid-type]
    field: str | None = None
    filters: dict[str, list[str | int | Decimal | bool]] = {}
    source: Code | None = None


class Tier(Strict):
    up_to: Money | None
    unit_amount: Money = Decimal(0)
    flat_amount: Money = Decimal(0)
    rate: Money | None = None  # graduated_percentage only: percent of the amount inside the tier


# free_units_per_events: a count of events, a whole number (a billion free events is plenty)
MAX_FREE_EVENTS = 1_000_000_000
def _event_count(value: Any) -> int:
    """A whole number of events: an integer, or a number written as text (what `--override
    CHARGE.free_units_per_events=3` gives); never a boolean, a fraction or a float."""
    if isinstance(value, str):
        number = _decimal(value)
        if number == number.to_integral_value() and not 0 <= number <= MAX_FREE_EVENTS:
            raise ValueError(f"must be between 0 and {MAX_FREE_EVENTS:,}, got {value}")
        value = int(number) if number == number.to_integral_value() else value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number of events such as 3, got {value!r}")
    if not 0 <= value <= MAX_FREE_EVENTS:
        raise ValueError(f"must be between 0 and {MAX_FREE_EVENTS:,}, got {value}")
    return value


EventCount = Annotated[int, BeforeValidator(_event_count)]


def _match_value(value: Any) -> Any:
    """A value a property is compared with: one clear message for anything else (rather than one per
    type it is not)."""
    if value is None or isinstance(value, (dict, list, tuple, set)):
        raise ValueError("must be a text, a number or a boolean (an object, a list or null matches no event)")
    if (problem := whole_number_problem(value)) is not None:
        raise ValueError(problem)
    return value


FilterValue = Annotated[str | int | Decimal | bool, BeforeValidator(_match_value)]
# a filter's code names its invoice lines (the line field `filter`)
FilterCode = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_printable)]
MatchValues = Annotated[list[FilterValue], Field(max_length=MAX_MATCH_VALUES)]


class ChargeFilter(Strict):
    """A price for the events whose properties match (domain.dimensions): its price fields are those
    of the charge's model, each omitted one taken from the charge."""

    code: FilterCode
    description: Text | None = None
    match: Annotated[dict[Annotated[str, Field(min_length=1, max_length=200)], MatchValues],
                     Field(max_length=MAX_MATCH_KEYS)]
    unit_amount: Money | None = None
    tiers: list[Tier] | None = None
    package_size: PositiveNumber | None = None
    package_amount: Money | None = None
    free_units: Money | None = None
    rate: Money | None = None
    fixed_amount: Money | None = None


class Charge(Strict):
    code: Code
    model: Literal[CHARGE_MODELS]  # type: ignore[valid-type]
    description: str | None = None
    meter: Code | None = None
    timing: Literal["advance", "arrears"] | None = None
    amount: Money | None = None
    unit_amount: Money | None = None
    tiers: list[Tier] | None = None
    package_size: PositiveNumber | None = None
    package_amount: Money | None = None
    free_units: Money | None = None
    rate: Money | None = None
    fixed_amount: Money | None = None
    # percentage: free units and per-transaction bounds (priced event by event)
    free_units_per_events: EventCount | None = None
    free_units_per_total_aggregation: Money | None = None
    per_transaction_min_amount: Money | None = None
    per_transaction_max_amount: Money | None = None
    maximum: Money | None = None  # a usage charge's cap per period, prorated like a fee
    filters: Annotated[list[ChargeFilter], Field(max_length=MAX_FILTERS)] | None = None
    group_by: Annotated[list[Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_printable)]],
                        Field(min_length=1, max_length=MAX_GROUP_BY)] | None = None


def _percent(value: Any) -> Decimal:
    number = _positive(value)
    if number > 100:
        raise ValueError(f"is a percentage and must be at most 100, got {number}")
    return number


Percent = Annotated[Decimal, BeforeValidator(_percent)]
# its invoice lines are coded "discount:<code>", and a line's code holds 200 characters
DiscountCode = Annotated[str, Field(min_length=1, max_length=191), AfterValidator(_printable)]
Periods = Annotated[StrictInt, Field(ge=1, le=10_000)]
# a count of redemptions: a catalog is stored as JSON, whose integers stop at 64 bits (a larger one
# failed the save instead of being refused)
Redemptions = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
MAX_TRIAL_DAYS = 730  # two years
MAX_QUANTITY = 1_000_000  # seats on one subscription
MAX_ONE_OFFS = 1_000  # one-off charges on one subscription


class Off(Strict):
    """Exactly one of a percentage or an amount off."""

    percent_off: Percent | None = None
    amount_off: PositiveNumber | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Off:
        if (self.percent_off is None) == (self.amount_off is None):
            raise ValueError("give exactly one of percent_off or amount_off")
        return self


class Discount(Off):
    """Off every period from the subscription's start for `periods` periods (omitted: forever),
    of one `charge` (omitted: of every charge). An amount is in the plan's currency."""

    code: DiscountCode
    description: Text | None = None
    charge: Code | None = None
    periods: Periods | None = None


# A coupon's (or promotion code's) lifecycle: only an active one can be taken by a subscription;
# the subscriptions that carried it when it left active (`kept_by`) keep it.
RedeemStatus = Literal["draft", "active", "inactive", "deprecated", "archived"]
MAX_PROMOTION_CODES = 1000


def _without_defaults(data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Leave out fields at their default, so a catalog without lifecycles keeps its digest."""
    return {key: value for key, value in data.items() if key not in defaults or value != defaults[key]}


class PromotionCode(Strict):
    """Another code a subscription can name to take its coupon, with limits of its own."""

    code: DiscountCode
    status: RedeemStatus = "active"
    kept_by: list[Code] = []  # subscriptions that carried it when it left active
    max_redemptions: Redemptions | None = None
    redeem_by: Moment | None = None

    @model_serializer(mode="wrap")
    def _compact(self, handler: Any) -> Any:
        return _without_defaults(handler(self), {"status": "active", "kept_by": []})


class Coupon(Off):
    """Defined once, attached to subscriptions by code (like Stripe's coupons), or by one of its
    promotion codes."""

    code: DiscountCode
    description: Text | None = None
    currency: Currency | None = None  # required with amount_off
    duration: Literal["once", "repeating", "forever"]
    periods: Periods | None = None  # required with duration repeating
    max_redemptions: Redemptions | None = None
    redeem_by: Moment | None = None  # a subscription starting after it cannot take the coupon
    status: RedeemStatus = "active"
    kept_by: list[Code] = []  # subscriptions that carried it when it left active
    promotion_codes: Annotated[list[PromotionCode], Field(max_length=MAX_PROMOTION_CODES)] = []

    @model_serializer(mode="wrap")
    def _compact(self, handler: Any) -> Any:
        return _without_defaults(handler(self), {"status": "active", "kept_by": [], "promotion_codes": []})

    @model_validator(mode="after")
    def _consistent(self) -> Coupon:
        if self.amount_off is not None and self.currency is None:
            raise ValueError("amount_off needs a currency")
        if self.percent_off is not None and self.currency is not None:
            raise ValueError("currency is only for amount_off")
        if (self.duration == "repeating") != (self.periods is not None):
            raise ValueError("periods is required with duration repeating, and only then")
        return self

    @property
    def period_count(self) -> int | None:
        """How many periods it applies to (None: forever)."""
        return 1 if self.duration == "once" else self.periods


class PlanMaximum(Strict):
    """A plan's cap per period over its usage charges (`charges`: some of them; omitted: all)."""

    amount: Money
    charges: Annotated[list[Code], Field(min_length=1, max_length=1000)] | None = None


def _plan_maximum(value: Any) -> Any:
    """`maximum: "500.00"` is `maximum: {amount: "500.00"}`."""
    if isinstance(value, dict | PlanMaximum):
        return value
    if isinstance(value, list | tuple | set | bool) or value is None:
        raise ValueError('must be an amount such as "500.00", or {amount, charges: [code, ...]}')
    return {"amount": value}


MAX_PLAN_CURRENCIES = 200


class PlanPrices(Strict):
    """A plan's prices in one more currency: its minimum and cap amounts, and per charge code the
    charge fields that hold money (laid over the plan's charge like a subscription's overrides)."""

    minimum: Money | None = None
    maximum: Money | None = None  # the amount of the plan's cap (it covers the plan's `maximum.charges`)
    charges: dict[str, dict[str, Any]] = {}


TrialDays = Annotated[StrictInt, Field(ge=0, le=MAX_TRIAL_DAYS)]
Seats = Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]


MAX_FEATURES = 200
MAX_ENUM_VALUES = 50


class Feature(Strict):
    """Something a plan grants (Solvimon's feature): a number (a quota; with `meter`, a usage
    limit measured by that meter over the subscription's current period), a switch, or one or
    more values of an enumeration."""

    code: Code
    name: Text | None = None
    description: Text | None = None
    type: Literal["number", "switch", "enum"]
    values: Annotated[list[Code], Field(max_length=MAX_ENUM_VALUES)] = []  # enum only: the allowed values
    meter: Code | None = None  # number only: the meter whose usage this period counts against the value


# a plan's value of a feature: a number (decimal string or integer), true/false, or enum value(s)
FeatureValue = StrictBool | int | Decimal | Annotated[str, Field(max_length=200)] | \
    Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=MAX_ENUM_VALUES)]


class Plan(Strict):
    code: Code
    name: str | None = None
    currency: Currency
    interval: Literal["month", "quarter", "year"] = "month"
    minimum: Money | None = None
    maximum: Annotated[PlanMaximum, BeforeValidator(_plan_maximum)] | None = None
    # days free from a subscription's start (a subscription's own trial_days wins; 0: none)
    trial_days: TrialDays = 0
    # cut an invoice for the period so far when its usage not yet invoiced reaches this amount
    invoice_threshold: PositiveNumber | None = None
    charges: list[Charge] = []
    discounts: list[Discount] = []
    # prices in other currencies: a customer billed in one of them is invoiced in it
    currencies: Annotated[dict[Currency, PlanPrices], Field(max_length=MAX_PLAN_CURRENCIES)] = {}
    # what the plan grants: feature code -> its value (checked against `features` in validate)
    features: Annotated[dict[str, FeatureValue], Field(max_length=MAX_FEATURES)] = {}


class Customer(Strict):
    reference: Code
    name: str | None = None
    email: str | None = None
    country: str | None = None
    address: Address | None = None
    tax_id: TaxId | None = None
    peppol_id: PeppolId | None = None
    billing_entity: Code | None = None  # the entity that bills the customer (else the default one)
    currency: Currency | None = None
    tax_rate: Money | None = None
    timezone: Timezone | None = None
    # the customer's Stripe customer (its default payment method is charged for each final invoice)
    stripe_customer_id: StripeId | None = None

    @field_validator("tax_rate")
    @classmethod
    def _tax_at_most_100(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value > 100:
            raise ValueError(f"is a percentage and must be at most 100, got {value}")
        return value


class SubscriptionChange(Strict):
    """New terms in force from `at` until the next change (or the end)."""

    at: Moment
    plan: Code | None = None  # omitted: the plan in force before the change
    # omitted: the overrides in force before, when the plan stays; none when the plan changes
    overrides: dict[str, dict[str, Any]] | None = None
    # how fees billed in advance for the period holding `at` are settled (like Stripe's
    # proration_behavior): prorate on the next invoice, not at all, or on an invoice cut at once
    proration: Literal["prorate", "none", "invoice_now"] = "prorate"
    quantity: Seats | None = None  # omitted: the quantity in force before (it stays across plans)


class OneOffCharge(Strict):
    """A charge billed once, on the subscription's first invoice cut at or after `at`."""

    code: Code
    amount: Money
    description: Text | None = None
    at: Moment
    quantity: PositiveNumber = Decimal(1)


class Subscription(Strict):
    reference: Code
    customer: Code
    plan: Code
    start: Moment
    end: Moment | None = None
    billing_anchor: int | None = None
    overrides: dict[str, dict[str, Any]] = {}
    # ratecard bills only lines whose service period starts on or after bill_from: the periods
    # before it were billed by the system this subscription came from
    bill_from: Moment | None = None
    changes: list[SubscriptionChange] = []
    # ending inside a period: credit the unused part of fees billed in advance, or keep them
    end_proration: Literal["prorate", "none"] = "prorate"
    # only events that name this subscription are billed by it (see validate.check_overlaps)
    requires_reference: StrictBool = False
    discounts: list[Discount] = []
    coupons: list[Code] = []  # codes of the catalog's coupons
    trial_days: TrialDays | None = None  # omitted: the plan's; 0: no trial
    quantity: Seats = 1  # seats: every flat fee is billed this many times
    one_off: Annotated[list[OneOffCharge], Field(max_length=MAX_ONE_OFFS)] = []
    # the plan's invoice_threshold for this subscription (it wins over the plan's)
    invoice_threshold: PositiveNumber | None = None

    @field_validator("billing_anchor")
    @classmethod
    def _anchor_in_month(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 31:
            raise ValueError(f"must be a day of the month in 1..31, got {value}")
        return value


class CatalogDocument(Strict):
    billing_entity: BillingEntity = BillingEntity()
    billing_entities: list[ExtraBillingEntity] = []
    meters: list[Meter] = []
    plans: list[Plan] = []
    customers: list[Customer] = []
    subscriptions: list[Subscription] = []
    coupons: list[Coupon] = []
    features: Annotated[list[Feature], Field(max_length=MAX_FEATURES)] = []
