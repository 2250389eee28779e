"""A schedule's on-demand pricing items in Solvimon's shape: ratecard's one-off charges of the
subscription (a set-up fee, professional services: `ratecard subscriptions charge`) due while the
schedule is in effect, each as a pricing with one FLAT item. Solvimon charges such items on
demand; ratecard bills each once, on the subscription's first invoice cut at or after its date."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from ...catalog import SubscriptionSpec
from ...domain.instants import to_micros
from ...domain.periods import to_local
from ...store.resources import stable_id
from .common import amount, decimal_text, wire_instant


def one_off_pricings(environment: str, spec: SubscriptionSpec, index: int, schedule_id: str,
                     currency: str) -> list[dict[str, Any]]:
    """The one-off charges due in the schedule's window [its start, the next one's start or the
    end); the first schedule also takes those due before the subscription starts (its first
    invoice bills them)."""
    zone = ZoneInfo(spec.timezone)
    phases = spec.phases()
    low = to_micros(to_local(phases[index].at, zone)) if index else None
    ends = phases[index + 1].at if index + 1 < len(phases) else spec.end
    high = to_micros(to_local(ends, zone)) if ends is not None else None
    out = []
    for order, charge in enumerate(spec.one_off_charges()):
        due = to_micros(charge.at)
        if (low is not None and due < low) or (high is not None and due >= high):
            continue
        key = f"{spec.reference}\0{charge.code}"
        out.append({
            "object_type": "PRICING", "id": stable_id("prc_", environment, "one_off", key),
            "pricing_plan_schedule_id": schedule_id, "name": charge.description or charge.code,
            "product_type": "DEFAULT", "display_order": order,
            "items": [{"object_type": "PRICING_ITEM", "id": stable_id("pit_", environment, "one_off", key),
                       "configs": [{"type": "FLAT", "pricing_type": "FLAT", "on_demand": False,
                                    "bands": [{"amount": amount(charge.amount, currency)}],
                                    "default_units": {"number": decimal_text(charge.quantity)}}]}],
            "ratecard": {"code": charge.code, "at": wire_instant(due), "quantity": decimal_text(charge.quantity),
                         "amount": amount(charge.amount, currency)},
        })
    return out
