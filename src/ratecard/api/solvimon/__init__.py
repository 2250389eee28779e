"""Solvimon-compatible resources (/v1/...), so the published Solvimon Python SDK works against
ratecard for what ratecard implements. See docs/solvimon-compat.md for the wire formats and §11
for the decisions taken where ratecard and Solvimon differ."""

from __future__ import annotations

from . import (
    alerts,
    billing,
    calculations,
    coupon_actions,
    customers,
    entitlements,
    features,
    invoice_actions,
    invoice_lines,
    invoice_upkeep,
    invoices,
    meter_properties,
    meter_values,
    meters,
    payment_methods,
    payments,
    pricing_plan_groups,
    pricing_plan_schedules,
    pricing_plans,
    products,
    reprocess,
    subscriptions,
    usage_limits,
    webhooks,
)
from .meter_data import routes as meter_data

ROUTERS = [module.router for module in (
    meter_data,
    meter_values,
    meter_properties,
    meters,
    calculations,
    entitlements,  # before customers (routing.py keeps a {key:path} off sub-resources too)
    customers,
    features,
    invoice_actions,  # before the invoice read routes: its paths are more specific
    invoice_lines,
    invoice_upkeep,
    invoices,
    payment_methods,
    payments,
    billing,
    coupon_actions,
    reprocess,
    alerts,
    subscriptions,
    pricing_plan_schedules,
    products,
    pricing_plans,
    pricing_plan_groups,
    usage_limits,
    webhooks,
)]

__all__ = ["ROUTERS"]
