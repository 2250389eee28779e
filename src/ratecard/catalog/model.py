"""A validated catalog resolved into domain objects that rating and the store use."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from ..domain.discounts import Discount
from ..domain.json_values import text_form
from ..domain.periods import Schedule, to_local
from ..domain.pricing import Charge, ChargeFilter, Tier
from ..domain.rating import Plan, Pricing
from ..domain.terms import Terms
from .schema import Address, BillingEntity, CatalogDocument, Coupon
from .schema import Charge as ChargeModel
from .schema import Discount as DiscountModel
from .validate import credit_note_prefix, filter_price, override_charge

ZERO = Decimal(0)


@dataclass(frozen=True)
class MeterSpec:
    code: str
    aggregation: str
    field: str | None
    filters: dict[str, tuple[Any, ...]]
    source: str | None
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class PhaseSpec:
    """Terms in force from `at` until the next phase: the subscription's start for the first one."""

    at: date | datetime
    plan_code: str
    plan: Plan  # with the phase's overrides applied
    list_plan: Plan
    overrides: dict[str, dict[str, Any]]
    proration: str  # prorate | none | invoice_now (how the change settles fees billed in advance)


@dataclass(frozen=True)
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
        first = PhaseSpec(self.start, self.plan_code, self.plan, self.list_plan, self.overrides, "none")
        return (first, *self.changes)

    def terms(self) -> tuple[Terms, ...]:
        """The phases as domain terms: local instants in the subscription's timezone."""
        return self._terms

    @cached_property
    def _terms(self) -> tuple[Terms, ...]:
        # computed once per catalog: an invoice run asks for them several times per cut
        zone = ZoneInfo(self.timezone)
        return tuple(Terms(to_local(phase.at, zone), phase.plan, phase.proration) for phase in self.phases())

    @property
    def end_prorated(self) -> bool:
        return self.end_proration == "prorate"
    requires_reference: bool = False  # bills only the events that name it

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
    document: CatalogDocument
    corrections: str = "next_invoice"  # next_invoice | credit_note
    # every billing entity by code, the default one (`billing_entity`) first
    entities: dict[str, BillingEntity] = field(default_factory=dict)
    default_entity: str = "default"

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
    tiers = tuple(Tier(t.up_to, t.unit_amount, t.flat_amount) for t in model.tiers or ())
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
    )


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
    entity = document.billing_entity
    meters = {
        m.code: MeterSpec(m.code, m.aggregation, m.field, {k: tuple(v) for k, v in m.filters.items()}, m.source)
        for m in document.meters
    }
    plan_models = {p.code: p for p in document.plans}
    plans = {
        p.code: Plan(p.code, p.currency, p.interval, tuple(to_domain_charge(c) for c in p.charges), p.minimum, p.name)
        for p in document.plans
    }
    customers = {
        c.reference: CustomerSpec(c.reference, c.name, c.country, c.currency, c.tax_rate, c.timezone, c.email,
                                  c.billing_entity, c.address, c.tax_id, c.peppol_id, c.stripe_customer_id)
        for c in document.customers
    }
    entities: dict[str, BillingEntity] = {entity.code: entity}
    entities.update({extra.code: extra for extra in document.billing_entities})
    def with_overrides(code: str, overrides: dict[str, dict[str, Any]]) -> Plan:
        list_plan = plans[code]
        if not overrides:
            return list_plan
        charges = []
        for charge in plan_models[code].charges:
            if charge.code in overrides:
                merged = ChargeModel.model_validate(override_charge(charge, overrides[charge.code]))
                charges.append(to_domain_charge(merged))
            else:
                charges.append(to_domain_charge(charge))
        return Plan(list_plan.code, list_plan.currency, list_plan.interval, tuple(charges),
                    list_plan.minimum, list_plan.name)

    coupons = {coupon.code: coupon for coupon in document.coupons}
    subscriptions = {}
    for s in document.subscriptions:
        customer = customers[s.customer]
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

        list_plan = plans[s.plan]
        plan = with_discounts(with_overrides(s.plan, s.overrides), s.plan)
        changes = []
        code, overrides = s.plan, dict(s.overrides)
        for change in s.changes:
            if change.plan is not None and change.plan != code:
                code, overrides = change.plan, {}
            if change.overrides is not None:
                overrides = dict(change.overrides)
            changes.append(PhaseSpec(change.at, code, with_discounts(with_overrides(code, overrides), code),
                                     plans[code], overrides, change.proration))
        subscriptions[s.reference] = SubscriptionSpec(
            reference=s.reference,
            customer=s.customer,
            plan_code=s.plan,
            start=s.start,
            end=s.end,
            billing_anchor=s.billing_anchor,
            plan=plan,
            list_plan=list_plan,
            timezone=timezone,
            overrides=dict(s.overrides),
            bill_from=s.bill_from,
            changes=tuple(changes),
            end_proration=s.end_proration,
            requires_reference=s.requires_reference,
        )
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
        document=document,
        corrections=entity.corrections,
        entities=entities,
        default_entity=entity.code,
    )
