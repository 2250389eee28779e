"""Compare ratecard's lines with the current system's, and name the cause of every difference.

Lines are matched on (customer, code, service_start), and for a charge priced per dimension on its
filter and group too (a legacy line names them in the columns `filter` and `group`). For each difference the cause is found
by re-running ratecard's own rating with one thing changed at a time:
- quantity: another aggregation over the same events, then the same aggregation over the
  period shifted to UTC or to the legacy system's own dates (period_boundary);
- amount: the legacy quantity priced by ratecard (the quantity's cause carries over), another
  tier model, the list price instead of the override (or another subscription's override), a
  filter's quantity priced at the charge's default price (filter_default_price), within one minor
  unit (rounding);
- tax, per (customer, service_start): the other tax rounding, the rate the legacy numbers imply;
- discount: a legacy line lower than ours by exactly a discount ratecard shows as a line of its
  own for that period (the legacy system netted it into the charge); that discount line, absent
  from the legacy export, has the same cause.
- currency: the legacy line is in another currency than ratecard's (its figures are not
  compared: 19.00 USD is neither 19.00 EUR nor an amount difference of it);
- duplicate_in_legacy: the legacy export holds the same line more than once and one copy is
  ratecard's line exactly (rows that differ are parts of one line and are added up);
- cap: a cap (`maximum`) applied on one side and not the other: a legacy line lower than ours by
  exactly ratecard's cap line (netted into the charge), a legacy charge capped at the maximum
  without proration, a cap line of ratecard's the legacy export lacks, or a legacy cap line
  (code `maximum` or `maximum:<charge>`) ratecard has no cap for.
Anything else is `unexplained`. Nothing is guessed: a cause is named only when the changed
computation reproduces the legacy figure exactly.

One-off invoices (written by hand, billing no subscription) are left out of ratecard's side: they
bill no usage, so they are no difference from the legacy system's usage invoices; the summary
counts their lines and their amount per currency (one_off_lines, one_off_amount).
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, localcontext
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from ..catalog import Catalog, MeterSpec, SubscriptionSpec
from ..domain.aggregation import Usage
from ..domain.caps import CHARGE_CAP_PREFIX, PLAN_CAP
from ..domain.caps import KIND as CAP_KIND
from ..domain.instants import from_micros, to_micros
from ..domain.money import EXACT_PRECISION, minor_unit, quantize
from ..domain.periods import local_midnight
from ..domain.pricing import TIERED_MODELS, Charge, Tier, price_usage
from ..domain.tax import invoice_tax
from ..store import Store
from ..store.invoices import ONE_OFF, billed_lines, draft_reference
from ..store.usage import Window, aggregate_usage
from .legacy import LegacyLine, dimension_text

CAUSES = ("missing_in_legacy", "missing_in_ratecard", "duplicate_in_legacy", "currency", "aggregation", "tier_model",
          "override", "filter_default_price", "tax_rate", "tax_rounding", "period_boundary", "discount", "cap",
          "rounding", "unexplained")
MAX_PLAUSIBLE_TAX_RATE = Decimal(50)
FIELD_ORDER = {"line": 0, "currency": 0, "quantity": 1, "amount": 2, "tax": 3}
ALTERNATIVE_AGGREGATIONS = ("sum", "max", "min", "count", "unique_count", "latest")
Key = tuple[str, str, date]
# lines are matched on the key plus the filter and group of a charge priced per dimension
MatchKey = tuple[str, str, date, str | None, str | None]


@dataclass
class RatecardLine:
    customer: str
    code: str
    service_start: date
    service_end: date
    quantity: Decimal
    amount: Decimal
    kind: str
    subscription: str
    invoice: str
    currency: str
    tax_rate: Decimal
    start_ts: int
    end_ts: int
    filter: str | None = None  # a charge priced per dimension: its filter (None: the default price)
    group: str | None = None  # and its group (legacy.dimension_text)

    @property
    def key(self) -> Key:
        return (self.customer, self.code, self.service_start)

    @property
    def match_key(self) -> MatchKey:
        return (self.customer, self.code, self.service_start, self.filter, self.group)


@dataclass
class Difference:
    customer: str
    code: str
    service_start: date
    field: str  # line | currency | quantity | amount | tax
    ratecard: Decimal | None
    legacy: Decimal | None
    cause: str
    detail: dict[str, Any] = field(default_factory=dict)
    currency: str | None = None
    filter: str | None = None
    group: str | None = None  # legacy.dimension_text

    @property
    def delta(self) -> Decimal | None:
        if self.ratecard is None or self.legacy is None or self.field == "currency":  # no delta across currencies
            return None
        return self.legacy - self.ratecard

    @property
    def money_at_stake(self) -> Decimal:
        """What the difference is worth: |delta| of money fields, the whole line when missing."""
        if self.field == "quantity":
            return Decimal(0)
        if self.field == "currency":  # ratecard's whole line, in ratecard's currency
            return abs(self.ratecard or Decimal(0))
        if self.delta is not None:
            return abs(self.delta)
        return abs(self.ratecard if self.ratecard is not None else self.legacy or Decimal(0))

    def as_dict(self) -> dict[str, Any]:
        figures = {
            "customer": self.customer, "code": self.code, "service_start": self.service_start.isoformat(),
            "field": self.field, "ratecard": _text(self.ratecard), "legacy": _text(self.legacy),
            "delta": _text(self.delta), "cause": self.cause, "currency": self.currency}
        return {
            **figures,
            # a detail never takes a figure's place: "legacy" stays a number (or null) for programs
            **{key: value for key, value in self.detail.items() if key not in figures},
            # a line of a charge priced per dimension says which
            **({"filter": self.filter} if self.filter is not None else {}),
            **({"group": json.loads(self.group)} if self.group is not None else {}),
        }


def _on(difference: Difference, line: RatecardLine | LegacyLine) -> Difference:
    """The difference tagged with the line's filter and group."""
    difference.filter, difference.group = line.filter, line.group
    return difference


@dataclass
class Reconciliation:
    ratecard_lines: int
    legacy_lines: int
    matched: int
    differences: list[Difference]
    # one-off invoices' lines, left out of the comparison: how many, and their amount per currency
    one_off_lines: int = 0
    one_off_amount: dict[str, Decimal] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        by_cause: dict[str, dict[str, Any]] = {}
        for difference in self.differences:
            bucket = by_cause.setdefault(difference.cause, {"count": 0, "money": defaultdict(Decimal)})
            bucket["count"] += 1
            bucket["money"][difference.currency or "?"] += difference.money_at_stake
        return {
            "ratecard_lines": self.ratecard_lines,
            "legacy_lines": self.legacy_lines,
            "matched": self.matched,
            "differences": len(self.differences),
            "one_off_lines": self.one_off_lines,
            "one_off_amount": {currency: _text(amount) for currency, amount in sorted(self.one_off_amount.items())},
            "by_cause": {cause: {"count": b["count"], "money_at_stake": {c: _text(v) for c, v in b["money"].items()}}
                         for cause, b in sorted(by_cause.items(), key=lambda item: CAUSES.index(item[0]))},
        }

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "differences": [d.as_dict() for d in self.differences]}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


def ratecard_lines(store: Store, environment: str) -> list[RatecardLine]:
    """Every line of every draft and final invoice (void ones are not billed)."""
    lines = []
    dates: dict[str, date] = {}  # a few hundred distinct dates for hundreds of thousands of lines
    for (customer, code, start, end, quantity, amount, kind, subscription, draft_number, number, currency, tax_rate,
         start_ts, end_ts, filter_code, group) in billed_lines(store, environment):
        start_date = dates.get(start) or dates.setdefault(start, date.fromisoformat(start))
        end_date = dates.get(end) or dates.setdefault(end, date.fromisoformat(end))
        lines.append(RatecardLine(customer, code, start_date, end_date, quantity, amount, kind, subscription,
                                  number or draft_reference(draft_number), currency, tax_rate, start_ts, end_ts,
                                  filter_code, dimension_text(json.loads(group)) if group else None))
    return lines


def reconcile(store: Store, catalog: Catalog, legacy: Sequence[LegacyLine], environment: str = "live",
              keep: Callable[[str, date], bool] | None = None,
              ours: Sequence[RatecardLine] | None = None) -> Reconciliation:
    """`keep(customer, service_start)` limits both sides (a cohort, a cycle), the legacy lines on
    their local days; `ours`: ratecard's lines when the caller has read them already."""
    ours = ratecard_lines(store, environment) if ours is None else list(ours)
    legacy = on_local_days(legacy, ours, catalog)  # before `keep`: a day may move out of the cycle
    if keep is not None:
        ours = [line for line in ours if keep(line.customer, line.service_start)]
        legacy = [line for line in legacy if keep(line.customer, line.service_start)]
    one_off = [line for line in ours if line.subscription == ONE_OFF]  # billed by hand, not from usage
    if one_off:
        ours = [line for line in ours if line.subscription != ONE_OFF]
    one_off_amount: dict[str, Decimal] = defaultdict(Decimal)
    for line in one_off:
        one_off_amount[line.currency] += line.amount
    ours_by_key: dict[MatchKey, list[RatecardLine]] = defaultdict(list)
    for line in ours:
        ours_by_key[line.match_key].append(line)
    theirs_by_key: dict[MatchKey, list[LegacyLine]] = defaultdict(list)
    for line in legacy:
        theirs_by_key[line.match_key].append(line)

    finder = CauseFinder(store, catalog, environment)
    for line in ours:
        if line.kind == "discount":
            finder.discounts[(line.customer, line.service_start)].append(line)
        elif line.kind == CAP_KIND:
            finder.caps[(line.customer, line.service_start)].append(line)
    differences: list[Difference] = []
    pairs: list[tuple[RatecardLine, LegacyLine]] = []
    for key in set(ours_by_key) | set(theirs_by_key):
        mine, theirs = ours_by_key.get(key), theirs_by_key.get(key)
        if mine and not theirs:
            for line in mine:
                if line.kind == CAP_KIND:  # unless a legacy line netted it (below)
                    differences.append(_on(Difference(*key[:3], "line", line.amount, None, "cap",
                                                      {"legacy_cap": "no cap line"}, line.currency), line))
                elif line.amount != 0 or line.quantity != 0:
                    differences.append(_on(Difference(*key[:3], "line", line.amount, None, "missing_in_legacy",
                                                      currency=line.currency), line))
            continue
        if theirs and not mine:
            for line in theirs:
                if line.amount == 0 and not line.quantity:
                    continue  # a line of nothing, like ratecard's own lines of nothing above: no difference
                capping = line.code == PLAN_CAP or line.code.startswith(CHARGE_CAP_PREFIX)
                detail = {"ratecard_cap": "no cap line"} if capping else (
                    {"ratecard_customer": "unknown"} if line.customer not in catalog.customers else {})
                differences.append(_on(Difference(*key[:3], "line", None, line.amount,
                                                  "cap" if capping else "missing_in_ratecard", detail,
                                                  line.currency), line))
            continue
        merged = _merge_ours(mine)
        foreign = sorted({line.currency for line in theirs if line.currency and line.currency != merged.currency})
        if foreign:  # not comparable: neither a match nor an amount difference
            differences.append(_on(Difference(*key[:3], "currency", merged.amount,
                                              sum((line.amount for line in theirs), Decimal(0)), "currency",
                                              {"legacy_currency": ", ".join(foreign)}, merged.currency), merged))
            continue
        copy = _one_copy(merged, theirs)
        if copy is not None:
            invoices = ", ".join(dict.fromkeys(line.invoice for line in theirs if line.invoice))
            differences.append(_on(Difference(*key[:3], "line", merged.amount,
                                              sum((line.amount for line in theirs), Decimal(0)),
                                              "duplicate_in_legacy",
                                              {"copies": len(theirs), **({"invoices": invoices} if invoices else {})},
                                              merged.currency), merged))
            pairs.append((merged, copy))  # its tax is one copy's
            continue
        pairs.append((merged, _merge_theirs(theirs)))
    differences += finder.explain(pairs)
    differences += finder.explain_tax(pairs)
    for difference in differences:
        netted_into = finder.netted.get((difference.customer, difference.code, difference.service_start))
        if netted_into is None or difference.field != "line" or difference.legacy is not None:
            continue
        if difference.cause == "missing_in_legacy":
            difference.cause = "discount"
            difference.detail = {"legacy_netted_into": netted_into}
        elif difference.cause == "cap":
            difference.detail = {"legacy_netted_into": netted_into}
    # sorted once at the end (few differences), not the hundreds of thousands of keys
    differences.sort(key=lambda d: (d.customer, d.service_start, d.code, d.filter is None, d.filter or "",
                                    d.group or "", FIELD_ORDER.get(d.field, 9)))
    return Reconciliation(len(ours), len(legacy), len(pairs), differences, len(one_off), dict(one_off_amount))


def on_local_days(legacy: Sequence[LegacyLine], ratecard: Sequence[RatecardLine], catalog: Catalog) -> list[LegacyLine]:
    """A legacy line whose period start is an instant (2026-01-31T23:00:00Z) and matches no line of
    ours on the day it was written is matched on its day in the timezone of one of the customer's
    subscriptions (Feb 1 in Berlin), when ratecard has a line that day; its end goes the same way."""
    if all(line.start_instant is None for line in legacy):
        return list(legacy)
    ours = {line.match_key for line in ratecard}
    zones: dict[str, set[str]] = defaultdict(set)
    for subscription in catalog.subscriptions.values():
        zones[subscription.customer].add(subscription.timezone)
    moved = []
    for line in legacy:
        if line.start_instant is not None and line.match_key not in ours:
            for zone in sorted(zones.get(line.customer, ())):
                local = ZoneInfo(zone)
                day = line.start_instant.astimezone(local).date()
                if (line.customer, line.code, day, line.filter, line.group) in ours:
                    end = line.end_instant.astimezone(local).date() if line.end_instant else line.service_end
                    line = dataclasses.replace(line, service_start=day, service_end=end)
                    break
        moved.append(line)
    return moved


def _one_copy(ours: RatecardLine, theirs: list[LegacyLine]) -> LegacyLine | None:
    """One of several identical legacy lines, when that one copy is ours exactly and all of them
    added up are not (identical lines that add up to ours are one line billed in parts)."""
    if len(theirs) < 2:
        return None
    first = theirs[0]
    figures = {(line.amount, line.quantity, line.tax, line.service_end) for line in theirs}
    if len(figures) > 1 or first.amount != ours.amount or first.quantity not in (None, ours.quantity):
        return None
    if first.amount == 0 and not first.quantity:
        return None  # a line of nothing, however many times: added up it is still ours
    return first


def _merge_ours(lines: list[RatecardLine]) -> RatecardLine:
    if len(lines) == 1:
        return lines[0]
    first = lines[0]
    return dataclasses.replace(first, quantity=sum((x.quantity for x in lines), Decimal(0)),
                               amount=sum((x.amount for x in lines), Decimal(0)))


def _merge_theirs(lines: list[LegacyLine]) -> LegacyLine:
    if len(lines) == 1:
        return lines[0]
    first = lines[0]
    quantities = [x.quantity for x in lines]
    taxes = [x.tax for x in lines]
    return dataclasses.replace(
        first,
        quantity=None if None in quantities else sum(quantities, Decimal(0)),  # type: ignore[arg-type]
        amount=sum((x.amount for x in lines), Decimal(0)),
        tax=None if None in taxes else sum(taxes, Decimal(0)),  # type: ignore[arg-type]
    )


class CauseFinder:
    """Re-runs ratecard's rating with one thing changed to find what reproduces the legacy figure."""

    def __init__(self, store: Store, catalog: Catalog, environment: str) -> None:
        self.store = store
        self.catalog = catalog
        self.environment = environment
        # ratecard's discount lines per (customer, service start), and those a legacy line netted in
        self.discounts: dict[tuple[str, date], list[RatecardLine]] = defaultdict(list)
        self.caps: dict[tuple[str, date], list[RatecardLine]] = defaultdict(list)  # lines of kind maximum
        self.netted: dict[Key, str] = {}

    # ---------------------------------------------------------------- lines

    def explain(self, pairs: Sequence[tuple[RatecardLine, LegacyLine]]) -> list[Difference]:
        differences: list[Difference] = []
        quantity_suspects = [(ours, theirs) for ours, theirs in pairs
                             if theirs.quantity is not None and theirs.quantity != ours.quantity
                             and self._meter_of(ours) is not None]
        quantity_causes = self._quantity_causes(quantity_suspects)
        for ours, theirs in pairs:
            cause_of_quantity: tuple[str, dict[str, Any]] | None = None
            if theirs.quantity is not None and theirs.quantity != ours.quantity:
                cause_of_quantity = quantity_causes.get(id(ours), ("unexplained", {}))
                differences.append(_on(Difference(*ours.key, "quantity", ours.quantity, theirs.quantity,
                                                  cause_of_quantity[0], cause_of_quantity[1], ours.currency), ours))
            if theirs.amount != ours.amount:
                cause, detail = self._amount_cause(ours, theirs, cause_of_quantity)
                differences.append(_on(Difference(*ours.key, "amount", ours.amount, theirs.amount, cause, detail,
                                                  ours.currency), ours))
        return differences

    def _subscription(self, line: RatecardLine) -> SubscriptionSpec | None:
        return self.catalog.subscriptions.get(line.subscription)

    def _charge(self, line: RatecardLine, listed: bool = False) -> Charge | None:
        subscription = self._subscription(line)
        if subscription is None:
            return None
        plan = subscription.list_plan if listed else subscription.plan
        charge = next((c for c in plan.charges if c.code == line.code), None)
        if charge is None or not charge.is_split:
            return charge
        # a line of a charge priced per dimension is priced by its filter, or at the charge's own price
        found = next((item.price for item in charge.filters if item.code == line.filter), None)
        return found if found is not None else dataclasses.replace(charge, filters=(), group_by=())

    def _split(self, line: RatecardLine) -> Charge | None:
        """The charge priced per dimension the line belongs to (None for any other line)."""
        subscription = self._subscription(line)
        charge = next((c for c in subscription.plan.charges if c.code == line.code), None) if subscription else None
        return charge if charge is not None and charge.is_split else None

    def _meter_of(self, line: RatecardLine) -> MeterSpec | None:
        if self._split(line) is not None:
            return None  # a filter's or a group's share of the meter: no other aggregation is tried on it
        charge = self._charge(line)
        if charge is None or charge.meter is None:
            return None
        return self.catalog.meters.get(charge.meter)

    def _quantity_causes(self, suspects: Sequence[tuple[RatecardLine, LegacyLine]]) -> dict[int, tuple[str, dict]]:
        """Batched: every alternative aggregation for all suspects at once, then shifted windows."""
        causes: dict[int, tuple[str, dict]] = {}
        if not suspects:
            return causes
        windows = [Window(index, ours.customer, ours.start_ts, ours.end_ts) for index, (ours, _) in enumerate(suspects)]
        variants: list[MeterSpec] = []
        meters = {meter.code: meter for ours, _ in suspects if (meter := self._meter_of(ours)) is not None}
        for meter in meters.values():
            for aggregation in ALTERNATIVE_AGGREGATIONS:
                if aggregation == meter.aggregation or (aggregation != "count" and not meter.field):
                    continue
                variants.append(dataclasses.replace(meter, code=f"{meter.code}\x1f{aggregation}",
                                                    aggregation=aggregation, source=meter.stream))
        usage = aggregate_usage(self.store, windows, variants, self.environment) if variants else {}
        remaining = []
        for index, (ours, theirs) in enumerate(suspects):
            meter = self._meter_of(ours)
            found = None
            for aggregation in ALTERNATIVE_AGGREGATIONS:
                code = f"{meter.code}\x1f{aggregation}"  # type: ignore[union-attr]
                measured = usage.get((index, code))
                quantity = measured.quantity if measured else (Decimal(0) if any(v.code == code for v in variants)
                                                                 else None)
                if quantity is not None and quantity == theirs.quantity:
                    found = ("aggregation", {"aggregation": aggregation})
                    break
            if found:
                causes[id(ours)] = found
            else:
                remaining.append((ours, theirs))
        causes.update(self._boundary_causes(remaining))
        return causes

    def _boundary_causes(self, suspects: Sequence[tuple[RatecardLine, LegacyLine]]) -> dict[int, tuple[str, dict]]:
        """The same aggregation over the period in UTC, or over the legacy system's own dates."""
        windows: list[Window] = []
        labels: list[tuple[int, str]] = []
        for ours, theirs in suspects:
            subscription = self._subscription(ours)
            zone = ZoneInfo(subscription.timezone if subscription else "UTC")
            end = theirs.service_end or ours.service_end
            utc = ZoneInfo("UTC")
            candidates = {
                "UTC": (local_midnight(ours.service_start, utc), local_midnight(ours.service_end, utc)),
                "legacy dates": (local_midnight(theirs.service_start, zone), local_midnight(end, zone)),
                "legacy dates in UTC": (local_midnight(theirs.service_start, utc), local_midnight(end, utc)),
            }
            for label, (start, stop) in candidates.items():
                start_us, end_us = to_micros(start), to_micros(stop)
                if (start_us, end_us) == (ours.start_ts, ours.end_ts) or end_us <= start_us:
                    continue
                labels.append((id(ours), label))
                windows.append(Window(len(windows), ours.customer, start_us, end_us))
        if not windows:
            return {}
        meters = {meter.code: meter for ours, _ in suspects if (meter := self._meter_of(ours)) is not None}
        usage = aggregate_usage(self.store, windows, list(meters.values()), self.environment)
        wanted = {id(ours): (theirs, self._meter_of(ours)) for ours, theirs in suspects}
        causes: dict[int, tuple[str, dict]] = {}
        for window, (owner, label) in zip(windows, labels, strict=True):
            if owner in causes:
                continue
            theirs, meter = wanted[owner]
            measured = usage.get((window.key, meter.code), Usage.zero())  # type: ignore[union-attr]
            if measured.quantity == theirs.quantity:
                causes[owner] = ("period_boundary", {"window": label, "window_start": from_micros(window.start_us)
                                                     .isoformat(), "window_end": from_micros(window.end_us).isoformat()})
        return causes

    def _price(self, line: RatecardLine, charge: Charge, quantity: Decimal) -> Decimal | None:
        """What ratecard would bill for this line with `charge` and `quantity`, rounded once."""
        rounding = self.catalog.entity_for(line.customer).rounding
        if not charge.is_usage:
            subscription = self._subscription(line)
            if subscription is None:
                return None
            period = subscription.schedule().period_containing(from_micros(line.start_ts))
            if period is None:
                return None
            return quantize(period.prorate(charge.amount), line.currency, rounding)
        if charge.model != "percentage":
            return quantize(price_usage(charge, quantity).amount, line.currency, rounding)
        measured = self._usage_of(line, charge.per_event)
        if charge.per_event and quantity != measured.quantity:
            return None  # priced event by event: another quantity has no events' values to price
        return quantize(price_usage(charge, quantity, measured.events, measured.values).amount, line.currency,
                        rounding)

    def _usage_of(self, line: RatecardLine, per_event: bool) -> Usage:
        """The events that made the line: how many (a percentage charge adds a fixed amount per
        event) and, for a charge priced event by event, each one's value."""
        meter = self._meter_of(line)
        if meter is None:
            return Usage.zero()
        if per_event and meter.aggregation == "sum":
            meter = dataclasses.replace(meter, per_event=True)
        usage = aggregate_usage(self.store, [Window(0, line.customer, line.start_ts, line.end_ts)], [meter],
                                self.environment)
        return usage.get((0, meter.code), Usage.zero())

    def _amount_cause(self, ours: RatecardLine, theirs: LegacyLine,
                      quantity_cause: tuple[str, dict] | None) -> tuple[str, dict[str, Any]]:
        charge = self._charge(ours)
        quantity = theirs.quantity if theirs.quantity is not None else ours.quantity
        if charge is not None:
            if quantity_cause is not None and self._price(ours, charge, quantity) == theirs.amount:
                return quantity_cause[0], {**quantity_cause[1], "via": "quantity"}
            if charge.model in TIERED_MODELS:
                for model in ("graduated", "volume", "stairstep"):
                    if model != charge.model and self._price(ours, dataclasses.replace(charge, model=model),
                                                             quantity) == theirs.amount:
                        return "tier_model", {"model": model}
            if charge.model == "graduated_percentage" and self._price(ours, _volume_rates(charge), quantity) \
                    == theirs.amount:
                # the legacy system took the whole amount at the rate of the tier it reaches
                return "tier_model", {"model": "volume"}
            split = self._split(ours)
            if split is not None and ours.filter is not None and self._price(
                    ours, dataclasses.replace(split, filters=(), group_by=()), quantity) == theirs.amount:
                return "filter_default_price", {"filter": ours.filter}
            listed = self._charge(ours, listed=True)
            if listed is not None and listed != charge and self._price(ours, listed, quantity) == theirs.amount:
                return "override", {"legacy_used": "the list price"}
            if listed == charge:
                for other in self._overrides_of(ours):
                    if self._price(ours, other[1], quantity) == theirs.amount:
                        return "override", {"legacy_used": "an override", "like_subscription": other[0]}
        netted = self._netted_discount(ours, theirs)
        if netted is not None:
            return "discount", {"discount": netted.code}
        capped = self._cap_cause(ours, theirs, charge)
        if capped is not None:
            return "cap", capped
        if abs(theirs.amount - ours.amount) <= minor_unit(ours.currency):
            return "rounding", {}
        return "unexplained", {}

    def _netted_discount(self, ours: RatecardLine, theirs: LegacyLine) -> RatecardLine | None:
        """A discount line of the same customer and period that the legacy line is lower by."""
        if ours.kind == "discount":
            return None
        for discount in self.discounts.get((ours.customer, ours.service_start), ()):
            if ours.amount + discount.amount == theirs.amount and discount.key not in self.netted:
                self.netted[discount.key] = ours.code
                return discount
        return None

    def _cap_cause(self, ours: RatecardLine, theirs: LegacyLine, charge: Charge | None) -> dict[str, Any] | None:
        """A cap applied on one side only: the legacy line netted ratecard's cap line of this charge
        (or the plan's) into the charge, or capped the charge at its maximum without proration."""
        if ours.kind == CAP_KIND:
            return None
        caps = self.caps.get((ours.customer, ours.service_start), ())
        for cap in caps:
            if cap.code in (CHARGE_CAP_PREFIX + ours.code, PLAN_CAP) and ours.amount + cap.amount == theirs.amount \
                    and cap.key not in self.netted:
                self.netted[cap.key] = ours.code
                return {"cap": cap.code, "legacy_cap": "netted the cap into the charge"}
        if charge is not None and charge.maximum is not None and ours.amount > theirs.amount and \
                theirs.amount == quantize(charge.maximum, ours.currency, self.catalog.entity_for(ours.customer).rounding):
            return {"cap": CHARGE_CAP_PREFIX + ours.code, "legacy_cap": "capped at the maximum without proration"}
        return None

    def _overrides_of(self, line: RatecardLine) -> list[tuple[str, Charge]]:
        """Charges with this code that other subscriptions of the same plan override."""
        subscription = self._subscription(line)
        if subscription is None:
            return []
        overridden = self._overridden.get((subscription.plan_code, line.code), [])
        return [(reference, charge) for reference, charge in overridden if reference != subscription.reference]

    @cached_property
    def _overridden(self) -> dict[tuple[str, str], list[tuple[str, Charge]]]:
        """(plan, charge code) -> (subscription, its overriding charge), built once: a scan of
        every subscription per difference made thousands of differences take minutes."""
        index: dict[tuple[str, str], list[tuple[str, Charge]]] = defaultdict(list)
        for other in self.catalog.subscriptions.values():
            for charge in other.plan.charges:
                if charge.code in other.overrides:
                    index[(other.plan_code, charge.code)].append((other.reference, charge))
        return index

    # ---------------------------------------------------------------- tax

    def explain_tax(self, pairs: Sequence[tuple[RatecardLine, LegacyLine]]) -> list[Difference]:
        groups: dict[tuple[str, date], list[tuple[RatecardLine, LegacyLine]]] = defaultdict(list)
        for ours, theirs in pairs:
            if theirs.tax is not None:
                groups[(ours.customer, ours.service_start)].append((ours, theirs))
        differences = []
        for (customer, start), group in sorted(groups.items()):
            entity = self.catalog.entity_for(customer)  # each entity rounds its customers' tax its own way
            rounding, tax_rounding = entity.rounding, entity.tax_rounding
            currency = group[0][0].currency
            rate = group[0][0].tax_rate
            ours_amounts = [o.amount for o, _ in group]
            theirs_amounts = [t.amount for _, t in group]
            legacy_tax = sum((t.tax for _, t in group), Decimal(0))  # type: ignore[misc]
            ours_tax = invoice_tax(ours_amounts, rate, currency, rounding, tax_rounding)
            if legacy_tax == ours_tax:
                continue
            if invoice_tax(theirs_amounts, rate, currency, rounding, tax_rounding) == legacy_tax:
                continue  # the amount differences, reported per line, explain the tax
            cause, detail = self._tax_cause(customer, theirs_amounts, legacy_tax, rate, currency, ours_tax)
            differences.append(Difference(customer, "tax", start, "tax", ours_tax, legacy_tax, cause, detail, currency))
        return differences

    def _tax_cause(self, customer: str, amounts: list[Decimal], legacy_tax: Decimal, rate: Decimal, currency: str,
                   ours_tax: Decimal) -> tuple[str, dict[str, Any]]:
        entity = self.catalog.entity_for(customer)
        rounding, tax_rounding = entity.rounding, entity.tax_rounding
        other = "line" if tax_rounding == "invoice" else "invoice"
        if invoice_tax(amounts, rate, currency, rounding, other) == legacy_tax:
            return "tax_rounding", {"tax_rounding": other}
        subtotal = sum(amounts, Decimal(0))
        if subtotal != 0:
            implied = legacy_tax / subtotal * 100
            # rates people use: 0-50 %, at most 2 decimals, the simplest that reproduces the tax
            for places in (0, 1, 2):
                candidate = implied.quantize(Decimal(1).scaleb(-places)).normalize()
                if not Decimal(0) <= candidate <= MAX_PLAUSIBLE_TAX_RATE or candidate == rate:
                    continue
                for mode in (tax_rounding, other):
                    if invoice_tax(amounts, candidate, currency, rounding, mode) == legacy_tax:
                        return "tax_rate", {"legacy_rate": f"{candidate:f}", "ratecard_rate": f"{rate:f}"}
        if abs(legacy_tax - ours_tax) <= minor_unit(currency):
            return "rounding", {}
        return "unexplained", {}


def _volume_rates(charge: Charge) -> Charge:
    """A graduated_percentage charge read as volume: the whole amount at the rate of the tier it
    reaches (its rate as a unit amount), plus that tier's flat amount."""
    with localcontext() as context:
        context.prec = EXACT_PRECISION
        tiers = tuple(Tier(tier.up_to, tier.rate / 100, tier.flat_amount) for tier in charge.tiers)
    return dataclasses.replace(charge, model="volume", tiers=tiers)
