"""A validated catalog resolved into domain objects that rating and the store use."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from ..domain.caps import PlanCap
from ..domain.discounts import Discount
from ..domain.early import bills_early
from ..domain.json_values import text_form
from ..domain.periods import Schedule, local_midnight, to_local
from ..domain.pricing import Charge, ChargeFilter, Tier
from ..domain.rating import OneOff, Plan, Pricing
from ..domain.terms import Terms
from ..domain.trials import with_trial
from .discount_rules import resolve_codes
from .schema import Address, BillingEntity, CatalogDocument, Coupon, OneOffCharge
from .schema import Charge as ChargeModel
from .schema import Customer as CustomerModel
from .schema import Discount as DiscountModel
from .schema import Plan as PlanModel
from .schema import Subscription as SubscriptionModel
from .shared import SharedValues
from .source import DocumentSource
from .validate import credit_note_prefix, filter_price, override_charge

ZERO = Decimal(0)


@dataclass(frozen=True)
class MeterSpec:
    code: str
    aggregation: str
    field: str | None
    filters: dict[str, tuple[Any, ...]]
    source: str | None
    # a charge prices it event by event (domain.pricing.percentage_per_event): the store hands
    # each event's value with its sum (Usage.values)
    per_event: bool = False

    # the usage of a charge priced per dimension (domain.dimensions) is measured as a meter of its own:
    # `code` is the charge's usage key, `split` the charge (its filters and group_by)
    split: Charge | None = None

    @property
    def meter_code(self) -> str:
        """The code of the catalog's meter (a split meter's `code` is its charge's usage key)."""
        return self.split.meter if self.split is not None and self.split.meter else self.code

    @property
    def stream(self) -> str:
        """The event meter name this meter reads."""
        return self.source or self.code

    def reads(self, event_meter: str) -> bool:
        return event_meter == self.code or event_meter == self.stream


def split_meter(meter: MeterSpec, charge: Charge) -> MeterSpec:
    """The meter measuring a charge's usage per dimension: the same events, split by its filters and groups."""
    return replace(meter, code=charge.usage_key, source=meter.stream, split=charge)


# slots: a catalog holds one spec per customer and per subscription (100,000s); an instance
# __dict__ would cost about 700 bytes more each
@dataclass(frozen=True, slots=True)
class CustomerSpec:
    reference: str
    name: str | None
    country: str | None
    currency: str | None
    tax_rate: Decimal | None
    timezone: str | None
    email: str | None = None
    billing_entity: str | None = None  # the code of the entity that bills the customer (None: the default one)
    address: Address | None = None
    tax_id: str | None = None
    peppol_id: str | None = None
    stripe_customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    """Terms in force from `at` until the next phase: the subscription's start for the first one."""

    at: date | datetime
    plan_code: str
    plan: Plan  # with the phase's overrides applied
    list_plan: Plan
    overrides: dict[str, dict[str, Any]]
    proration: str  # prorate | none | invoice_now (how the change settles fees billed in advance)
    quantity: int = 1  # seats: the plan's flat fees are billed this many times


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    reference: str
    customer: str
    plan_code: str
    start: date | datetime
    end: date | datetime | None
    billing_anchor: int | None
    plan: Plan  # with the subscription's overrides applied
    list_plan: Plan  # the plan as listed, without overrides
    timezone: str
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    bill_from: date | datetime | None = None
    changes: tuple[PhaseSpec, ...] = ()  # the terms after the first, in time order
    end_proration: str = "prorate"  # prorate | none

    def phases(self) -> tuple[PhaseSpec, ...]:
        """Every set of terms in time order, the first in force from the start."""
        first = PhaseSpec(self.start, self.plan_code, self.plan, self.list_plan, self.overrides, "none",
                          self.quantity)
        return (first, *self.changes)

    def terms(self) -> tuple[Terms, ...]:
        """The phases as domain terms: local instants in the subscription's timezone, with the
        free trial, if any, as the first terms (see domain.trials)."""
        # computed once per catalog: an invoice run asks for them several times per cut
        if self._terms is None:
            object.__setattr__(self, "_terms", self._build_terms())
        return self._terms

    def _build_terms(self) -> tuple[Terms, ...]:
        zone = ZoneInfo(self.timezone)
        terms = tuple(Terms(to_local(phase.at, zone), phase.plan, phase.proration) for phase in self.phases())
        trial_end = self.trial_end()
        if trial_end is None:
            return terms
        return with_trial(terms, trial_end, to_local(self.end, zone) if self.end is not None else None)

    def trial_end(self) -> datetime | None:
        """The instant the free trial ends: local midnight `trial_days` days after the start's local
        day (None: no trial)."""
        if not self.trial_days:
            return None
        zone = ZoneInfo(self.timezone)
        return local_midnight(to_local(self.start, zone).date() + timedelta(days=self.trial_days), zone)

    def one_off_charges(self) -> tuple[OneOff, ...]:
        """The one-off charges as domain values, each due at a local instant."""
        if self._one_offs is None:
            object.__setattr__(self, "_one_offs", self._build_one_offs())
        return self._one_offs

    def _build_one_offs(self) -> tuple[OneOff, ...]:
        if not self.one_off:
            return ()
        zone = ZoneInfo(self.timezone)
        return tuple(OneOff(item.code, item.amount, to_local(item.at, zone), item.quantity, item.description)
                     for item in self.one_off)

    @property
    def end_prorated(self) -> bool:
        return self.end_proration == "prorate"
    requires_reference: bool = False  # bills only the events that name it
    trial_days: int = 0  # the subscription's own, else its plan's
    quantity: int = 1  # seats at the start (each change may set another)
    one_off: tuple[OneOffCharge, ...] = ()
    invoice_threshold: Decimal | None = None  # wins over the plans' (domain.early)
    # computed on first use (slots leave no __dict__ for cached_property); not copied by replace()
    _terms: tuple[Terms, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _one_offs: tuple[OneOff, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _bills_early: bool | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def bills_early(self) -> bool:
        """Whether usage is invoiced inside its periods: a threshold, or a usage charge in advance."""
        if self._bills_early is None:
            object.__setattr__(self, "_bills_early",
                               bills_early([phase.plan for phase in self.phases()], self.invoice_threshold))
        return self._bills_early

    def billed_from(self) -> datetime | None:
        """bill_from as an instant in the subscription's timezone (a date means its midnight)."""
        if self.bill_from is None:
            return None
        return to_local(self.bill_from, ZoneInfo(self.timezone))

    def schedule(self) -> Schedule:
        return Schedule.build(self.start, self.end, self.plan.interval, ZoneInfo(self.timezone),
                              self.billing_anchor)


@dataclass(frozen=True)
class Catalog:
    entity_name: str
    currency: str
    timezone: str
    rounding: str
    tax_rounding: str
    invoice_prefix: str
    meters: dict[str, MeterSpec]
    plans: dict[str, Plan]
    customers: dict[str, CustomerSpec]
    subscriptions: dict[str, SubscriptionSpec]
    source: DocumentSource  # the document: see `document`
    corrections: str = "next_invoice"  # next_invoice | credit_note
    # every billing entity by code, the default one (`billing_entity`) first
    entities: dict[str, BillingEntity] = field(default_factory=dict)
    default_entity: str = "default"

    @property
    def document(self) -> CatalogDocument:
        """The validated document (a catalog read from the store validates it again on first use:
        see catalog.source)."""
        return self.source.document()

    def subscriptions_of(self, customer: str) -> tuple[SubscriptionSpec, ...]:
        """The customer's subscriptions, in catalog order (from an index built once per catalog:
        reading one customer's never walks every subscription)."""
        return self._subscriptions_by_customer.get(customer, ())

    @cached_property
    def _subscriptions_by_customer(self) -> dict[str, tuple[SubscriptionSpec, ...]]:
        found: dict[str, list[SubscriptionSpec]] = {}
        for subscription in self.subscriptions.values():
            found.setdefault(subscription.customer, []).append(subscription)
        return {customer: tuple(specs) for customer, specs in found.items()}

    def entity_for(self, customer: str) -> BillingEntity:
        """The entity that bills the customer: its own, else the default one (also for a customer
        this version no longer lists)."""
        spec = self.customers.get(customer)
        code = spec.billing_entity if spec is not None and spec.billing_entity else self.default_entity
        return self.entities.get(code) or self.document.billing_entity

    def invoice_prefix_for(self, customer: str) -> str:
        return self.entity_for(customer).invoice_prefix

    def credit_note_prefix_for(self, customer: str) -> str:
        entity = self.entity_for(customer)
        return credit_note_prefix(entity, entity.code == self.default_entity)

    def pricing_for(self, subscription: SubscriptionSpec) -> Pricing:
        customer = self.customers[subscription.customer]
        entity = self.entity_for(subscription.customer)
        return Pricing(
            currency=subscription.plan.currency,
            rounding=entity.rounding,
            tax_rate=customer.tax_rate if customer.tax_rate is not None else ZERO,
            tax_rounding=entity.tax_rounding,
        )



def to_domain_charge(model: ChargeModel) -> Charge:
    charge = _plain_charge(model)
    if not model.filters and not model.group_by:
        return charge
    filters = tuple(
        ChargeFilter(item.code, tuple(sorted((key, frozenset(form for form in map(text_form, values) if form is not None))
                                             for key, values in item.match.items())),
                     _plain_charge(filter_price(model, item)), item.description)
        for item in model.filters or ())
    return replace(charge, filters=filters, group_by=tuple(model.group_by or ()))


def _plain_charge(model: ChargeModel) -> Charge:
    tiers = tuple(Tier(t.up_to, t.unit_amount, t.flat_amount, t.rate if t.rate is not None else ZERO)
                  for t in model.tiers or ())
    return Charge(
        code=model.code,
        model=model.model,
        meter=model.meter,
        timing=model.timing or ("advance" if model.model == "flat" else "arrears"),
        description=model.description,
        amount=model.amount if model.amount is not None else ZERO,
        unit_amount=model.unit_amount if model.unit_amount is not None else ZERO,
        tiers=tiers,
        package_size=model.package_size if model.package_size is not None else Decimal(1),
        package_amount=model.package_amount if model.package_amount is not None else ZERO,
        free_units=model.free_units if model.free_units is not None else ZERO,
        rate=model.rate if model.rate is not None else ZERO,
        fixed_amount=model.fixed_amount if model.fixed_amount is not None else ZERO,
        free_units_per_events=model.free_units_per_events,
        free_units_per_total_aggregation=model.free_units_per_total_aggregation,
        per_transaction_min_amount=model.per_transaction_min_amount,
        per_transaction_max_amount=model.per_transaction_max_amount,
        maximum=model.maximum,
    )


def charges_in(model: PlanModel, currency: str) -> list[ChargeModel]:
    """A plan's charges with their prices in `currency` (the plan's own, or one of its `currencies`)."""
    prices = model.currencies.get(currency) if currency != model.currency else None
    if prices is None or not prices.charges:
        return list(model.charges)
    return [ChargeModel.model_validate(override_charge(charge, prices.charges[charge.code]))
            if charge.code in prices.charges else charge for charge in model.charges]


def plan_in(model: PlanModel, currency: str, charges: list[ChargeModel] | None = None) -> Plan:
    """A plan priced in `currency` (`charges`: its charges with a subscription's overrides laid over)."""
    prices = model.currencies.get(currency) if currency != model.currency else None
    minimum = prices.minimum if prices is not None else model.minimum
    cap = model.maximum
    maximum = None
    if cap is not None:
        amount = prices.maximum if prices is not None and prices.maximum is not None else cap.amount
        maximum = PlanCap(amount, tuple(cap.charges or ()))
    charges = charges if charges is not None else charges_in(model, currency)
    return Plan(model.code, currency, model.interval, tuple(to_domain_charge(c) for c in charges), minimum,
                model.name, maximum=maximum, threshold=model.invoice_threshold)


def with_quantity(plan: Plan, quantity: int) -> Plan:
    """The plan billed for `quantity` seats (its flat fees that many times)."""
    return plan if quantity == 1 else replace(plan, quantity=Decimal(quantity))


def period_end(schedule: Schedule, count: int | None) -> datetime | None:
    """The end of the subscription's count-th period (None: forever, or it has fewer periods)."""
    if count is None:
        return None
    for number, period in enumerate(schedule.periods(), start=1):
        if number == count:
            return period.end
    return None


def discount_of(model: DiscountModel, schedule: Schedule) -> Discount:
    return Discount(model.code, model.percent_off, model.amount_off, model.charge,
                    period_end(schedule, model.periods), model.description)


def coupon_discount(coupon: Coupon, schedule: Schedule) -> Discount:
    return Discount(coupon.code, coupon.percent_off, coupon.amount_off, None,
                    period_end(schedule, coupon.period_count), coupon.description)


def build_catalog(document: CatalogDocument) -> Catalog:
    """Resolve a validated document (see check_document) into domain objects."""
    return resolve_catalog(document, document.customers, document.subscriptions, DocumentSource.held(document))


def resolve_catalog(document: CatalogDocument, customer_models: Iterable[CustomerModel],
                    subscription_models: Iterable[SubscriptionModel], source: DocumentSource) -> Catalog:
    """The catalog of a document whose customers and subscriptions are given apart (`document`'s own
    are not read): each model is needed only while its spec is built, so a caller may validate
    them one at a time and keep none (catalog.stored). Repeated values are shared (SharedValues)."""
    shared = SharedValues()
    entity = document.billing_entity
    meters = {
        m.code: MeterSpec(m.code, m.aggregation, m.field, {k: tuple(v) for k, v in m.filters.items()}, m.source)
        for m in document.meters
    }
    plan_models = {p.code: p for p in document.plans}
    plans = {p.code: plan_in(p, p.currency) for p in document.plans}
    priced: dict[tuple[str, str], Plan] = {}  # (plan code, currency) -> the plan in another of its currencies
    customers = {
        c.reference: CustomerSpec(c.reference, c.name, shared(c.country), shared(c.currency), shared(c.tax_rate),
                                  shared(c.timezone), c.email, shared(c.billing_entity), c.address, c.tax_id,
                                  c.peppol_id, c.stripe_customer_id)
        for c in customer_models
    }
    entities: dict[str, BillingEntity] = {entity.code: entity}
    entities.update({extra.code: extra for extra in document.billing_entities})
    def listed(code: str, currency: str) -> Plan:
        """The plan as listed in a currency: its own prices, or those of one of its `currencies`."""
        if currency == plans[code].currency or currency not in plan_models[code].currencies:
            return plans[code]
        found = priced.get((code, currency))
        return found if found is not None else priced.setdefault((code, currency), plan_in(plan_models[code], currency))

    def with_overrides(code: str, overrides: dict[str, dict[str, Any]], currency: str) -> Plan:
        if not overrides:
            return listed(code, currency)
        billed_in = currency if currency in plan_models[code].currencies else plans[code].currency
        charges = [ChargeModel.model_validate(override_charge(charge, overrides[charge.code]))
                   if charge.code in overrides else charge for charge in charges_in(plan_models[code], billed_in)]
        return plan_in(plan_models[code], billed_in, charges)

    # a subscription names a coupon by its code or one of its promotion codes
    coupons = {code: coupon for code, (coupon, _) in resolve_codes(document.coupons).items()}
    subscriptions = {}
    for s in subscription_models:
        customer = customers[s.customer]
        # a customer with a currency is invoiced in it (the plan has prices in it: see validate)
        currency = customer.currency or plans[s.plan].currency
        timezone = customer.timezone or entities[customer.billing_entity or entity.code].timezone or "UTC"
        phase_codes = (s.plan, *(change.plan for change in s.changes if change.plan is not None))
        discounted = s.discounts or s.coupons or any(plan_models[code].discounts for code in phase_codes)
        # the calendar is only needed to count a discount's periods (most subscriptions have none)
        schedule = Schedule.build(s.start, s.end, plans[s.plan].interval, ZoneInfo(timezone), s.billing_anchor) \
            if discounted else None
        own = (*(discount_of(item, schedule) for item in s.discounts),
               *(coupon_discount(coupons[code], schedule) for code in s.coupons)) if schedule is not None else ()

        def with_discounts(plan: Plan, code: str, schedule: Schedule | None = schedule,
                           own: tuple[Discount, ...] = own) -> Plan:
            """The plan of a phase with its own discounts, then the subscription's and its coupons'."""
            if schedule is None:
                return plan
            discounts = (*(discount_of(item, schedule) for item in plan_models[code].discounts), *own)
            return replace(plan, discounts=discounts) if discounts else plan

        list_plan = listed(s.plan, currency)
        plan = with_quantity(with_discounts(with_overrides(s.plan, s.overrides, currency), s.plan), s.quantity)
        changes = []
        code, overrides, quantity = s.plan, dict(s.overrides), s.quantity
        for change in s.changes:
            if change.plan is not None and change.plan != code:
                code, overrides = change.plan, {}
            if change.overrides is not None:
                overrides = dict(change.overrides)
            if change.quantity is not None:
                quantity = change.quantity
            changes.append(PhaseSpec(change.at, code,
                                     with_quantity(with_discounts(with_overrides(code, overrides, currency), code),
                                                   quantity),
                                     listed(code, currency), overrides, change.proration, quantity))
        subscriptions[s.reference] = SubscriptionSpec(
            reference=s.reference,
            customer=customer.reference,
            plan_code=shared(s.plan),
            start=shared(s.start),
            end=shared(s.end),
            billing_anchor=s.billing_anchor,
            plan=plan,
            list_plan=list_plan,
            timezone=timezone,
            overrides=dict(s.overrides),
            bill_from=shared(s.bill_from),
            changes=tuple(changes),
            end_proration=shared(s.end_proration),
            requires_reference=s.requires_reference,
            trial_days=s.trial_days if s.trial_days is not None else plan_models[s.plan].trial_days,
            quantity=s.quantity,
            one_off=tuple(s.one_off),
            invoice_threshold=s.invoice_threshold,
        )
    per_event = {charge.meter for subscription in subscriptions.values() for phase in subscription.phases()
                 for charge in phase.plan.charges if charge.per_event}
    per_event |= {charge.meter for plan in plans.values() for charge in plan.charges if charge.per_event}
    for code in per_event:
        if code in meters:
            meters[code] = replace(meters[code], per_event=True)
    return Catalog(
        entity_name=entity.name,
        currency=entity.currency,
        timezone=entity.timezone,
        rounding=entity.rounding,
        tax_rounding=entity.tax_rounding,
        invoice_prefix=entity.invoice_prefix,
        meters=meters,
        plans=plans,
        customers=customers,
        subscriptions=subscriptions,
        source=source,
        corrections=entity.corrections,
        entities=entities,
        default_entity=entity.code,
    )
