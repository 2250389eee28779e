"""Shared by the trial, seat and one-off tests: a catalog built from a dict, and every invoice of
one subscription priced with the domain alone (usage given per segment)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ratecard.catalog import Catalog, build_catalog, check_document
from ratecard.domain.aggregation import Usage
from ratecard.domain.invoice import Line
from ratecard.domain.rating import invoice_cuts, rate_cut
from ratecard.domain.terms import segments

UsageOf = Callable[[datetime, datetime], dict[str, Usage]]


def catalog_of(document: dict[str, Any]) -> Catalog:
    checked, problems = check_document(document)
    assert problems == [], problems
    assert checked is not None
    return build_catalog(checked)


def problems_of(document: dict[str, Any]) -> dict[str, str]:
    _, problems = check_document(document)
    return {problem.path: problem.message for problem in problems}


def invoices(catalog: Catalog, reference: str, until: date, usage: UsageOf | None = None
             ) -> dict[datetime, list[Line]]:
    """boundary -> lines of every cut up to `until` (inclusive), as an invoice run prices them."""
    spec = catalog.subscriptions[reference]
    zone = ZoneInfo(spec.timezone)
    terms = spec.terms()
    result = {}
    for cut in invoice_cuts(spec.schedule(), datetime.combine(until, time(23, 59), tzinfo=zone), terms):
        measured: Any = {}
        if cut.closing is not None:
            measured = [usage(part.start, part.end) if usage else {} for part in segments(terms, cut.closing)]
        result[cut.boundary] = rate_cut(terms, cut, measured, catalog.pricing_for(spec),
                                        end_prorated=spec.end_prorated, one_offs=spec.one_off_charges())
    return result


def shown(lines: list[Line]) -> list[tuple[str, str, str, str, str]]:
    """(kind, code, quantity, unit amount, amount) of each line, as the export shows them."""
    return [(line.kind, line.code, f"{line.quantity:f}", f"{line.unit_amount:f}", f"{line.amount:f}")
            for line in lines]


def at(day: date, zone: str = "UTC") -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))


D = Decimal
