"""Solvimon-compatible resources (/v1/...), so the published Solvimon Python SDK works against
ratecard for what ratecard implements. See docs/solvimon-compat.md for the wire formats and §11
for the decisions taken where ratecard and Solvimon differ."""

from __future__ import annotations

from . import (
    calculations,
    customers,
    entitlements,
    features,
    invoices,
    meter_properties,
    meter_values,
    meters,
    reprocess,
    webhooks,
)
from .meter_data import routes as meter_data

# entitlements before customers: /v1/customers/{key:path} would take customers/<key>/entitlements
ROUTERS = [module.router for module in (meter_data, meter_values, meter_properties, meters, calculations, entitlements,
                                        customers, features, invoices, reprocess, webhooks)]

__all__ = ["ROUTERS"]
