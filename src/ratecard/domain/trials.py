"""Free trials: the subscription's first days, priced at zero, then its terms as they are.

A trial is a first set of terms with every amount at zero: flat fees, usage prices, tiers,
packages, percentages and the minimum. Lines are still computed (quantities shown, each line at 0
with "free trial until <day>" in its description), so the customer sees what the trial covered.
At the trial's end the terms in force take over, as a change invoiced at once: the fees billed in
advance for the rest of that period are prorated by days and charged on an invoice cut at the
trial's end; usage after it is priced on the period's closing invoice. The billing anchor stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from .pricing import Charge, Tier
from .rating import Plan
from .terms import INVOICE_NOW, Terms, terms_at

ZERO = Decimal(0)


def free_charge(charge: Charge, note: str) -> Charge:
    """The charge with every amount at zero, its description telling why."""
    tiers = tuple(Tier(tier.up_to, ZERO, ZERO) for tier in charge.tiers)
    # a per-event minimum (or maximum) fee is an amount too: at zero, every event's fee is zero
    bounds = {name: ZERO for name in ("per_transaction_min_amount", "per_transaction_max_amount")
              if getattr(charge, name) is not None}
    # each filter prices its events at a price of its own: free as well
    filters = tuple(replace(item, price=free_charge(item.price, note)) for item in charge.filters)
    return replace(charge, description=f"{charge.description or charge.code} ({note})", amount=ZERO,
                   unit_amount=ZERO, tiers=tiers, package_amount=ZERO, rate=ZERO, fixed_amount=ZERO,
                   filters=filters, **bounds)


TRIAL_CODE = "{code} (trial)"


def free_plan(plan: Plan, until: datetime) -> Plan:
    """The plan as priced during a trial ending at `until`: every amount zero, no minimum. Its
    discounts stay (they take nothing from zero, and go on after the trial).

    Its code is not the plan's: terms under another code are a change of terms, so a fee billed in
    advance under the plan (a trial added after its period's opening invoice was final) is credited
    for the trial's days, where an edit of the plan's price would leave it as billed."""
    note = f"free trial until {until.date().isoformat()}"
    return replace(plan, code=TRIAL_CODE.format(code=plan.code),
                   charges=tuple(free_charge(charge, note) for charge in plan.charges), minimum=None)


def with_trial(terms: Sequence[Terms], trial_end: datetime, end: datetime | None = None) -> tuple[Terms, ...]:
    """The subscription's terms with a trial until `trial_end`: every set of terms before it is
    free, and the terms in force at `trial_end` start again there, invoiced at once. A change of the
    subscription starting exactly then is invoiced at once too: its proration would settle what the
    free terms billed, which is nothing (with `none`, the rest of the period would go unbilled).
    `end`: the subscription's end; a trial reaching it leaves nothing to bill."""
    if not terms or trial_end <= terms[0].start:
        return tuple(terms)
    result = [replace(item, plan=free_plan(item.plan, trial_end)) if item.start < trial_end
              else replace(item, proration=INVOICE_NOW) if item.start == trial_end else item
              for item in terms]
    starts_then = any(item.start == trial_end for item in terms)
    if not starts_then and (end is None or trial_end < end):
        index = terms_at(terms, trial_end)
        result.insert(index + 1, Terms(trial_end, terms[index].plan, INVOICE_NOW))
    return tuple(result)
