"""A validated catalog resolved into domain objects that rating and the store use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ..domain.periods import Schedule, to_local
from ..domain.pricing import Charge, Tier
from ..domain.rating import Plan, Pricing
from .schema import CatalogDocument
from .schema import Charge as ChargeModel
from .validate import override_charge

ZERO = Decimal(0)


@dataclass(frozen=True)
class MeterSpec:
    code: str
    aggregation: str
    field: str | None
    filters: dict[str, tuple[Any, ...]]
    source: str | None

    @property
    def stream(self) -> str:
        """The event meter name this meter reads."""
        return self.source or self.code

    def reads(self, event_meter: str) -> bool:
        return event_meter == self.code or event_meter == self.stream


@dataclass(frozen=True)
class CustomerSpec:
    reference: str
    name: str | None
    country: str | None
    currency: str | None
    tax_rate: Decimal | None
    timezone: str | None
    email: str | None = None


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

    def pricing_for(self, subscription: SubscriptionSpec) -> Pricing:
        customer = self.customers[subscription.customer]
        return Pricing(
            currency=subscription.plan.currency,
            rounding=self.rounding,
            tax_rate=customer.tax_rate if customer.tax_rate is not None else ZERO,
            tax_rounding=self.tax_rounding,
        )



def to_domain_charge(model: ChargeModel) -> Charge:
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
        c.reference: CustomerSpec(c.reference, c.name, c.country, c.currency, c.tax_rate, c.timezone, c.email)
        for c in document.customers
    }
    subscriptions = {}
    for s in document.subscriptions:
        list_plan = plans[s.plan]
        plan = list_plan
        if s.overrides:
            charges = []
            for charge in plan_models[s.plan].charges:
                if charge.code in s.overrides:
                    merged = ChargeModel.model_validate(override_charge(charge, s.overrides[charge.code]))
                    charges.append(to_domain_charge(merged))
                else:
                    charges.append(to_domain_charge(charge))
            plan = Plan(list_plan.code, list_plan.currency, list_plan.interval, tuple(charges),
                        list_plan.minimum, list_plan.name)
        customer = customers[s.customer]
        subscriptions[s.reference] = SubscriptionSpec(
            reference=s.reference,
            customer=s.customer,
            plan_code=s.plan,
            start=s.start,
            end=s.end,
            billing_anchor=s.billing_anchor,
            plan=plan,
            list_plan=list_plan,
            timezone=customer.timezone or entity.timezone or "UTC",
            overrides=dict(s.overrides),
            bill_from=s.bill_from,
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
    )
