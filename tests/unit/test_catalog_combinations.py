"""Pricing keys used together in one catalog: a plan's other currencies give its filters' prices too
(a filter never bills a EUR price to a USD customer), and a capped charge split by filters is
capped over all of its lines."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from ratecard.catalog.load import parse_text
from ratecard.catalog.model import build_catalog
from ratecard.catalog.validate import check_document
from ratecard.domain.periods import Period
from ratecard.domain.rating import Cut, rate_cut

D = Decimal

CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
plans:
  - code: ai
    currency: EUR
    charges:
      - code: llm
        meter: tokens
        model: per_unit
        unit_amount: "0.000002"
        filters:
          - {code: gpt4o, match: {model: [gpt-4o]}, unit_amount: "0.00001"}
    currencies:
      USD:
        charges:
          llm: {unit_amount: "0.000003"%s}
customers:
  - {reference: us, name: US Inc, currency: USD, timezone: UTC}
subscriptions:
  - {reference: us-ai, customer: us, plan: ai, start: 2026-01-01}
"""


def _check(text: str):
    return check_document(parse_text(text, "catalog.yaml"))


def test_a_currency_must_give_each_filters_price_and_it_is_the_one_billed() -> None:
    _, problems = _check(CATALOG % "")
    assert [problem.path for problem in problems] == ["plans[0].currencies.USD.charges.llm.filters.gpt4o.unit_amount"]
    _, problems = _check(CATALOG % ", filters: {gpt5: {unit_amount: \"1\"}}")
    assert "plans[0].currencies.USD.charges.llm.filters.gpt5" in [problem.path for problem in problems]
    document, problems = _check(CATALOG % ", filters: {gpt4o: {unit_amount: \"0.000012\"}}")
    assert problems == []
    plan = build_catalog(document).subscriptions["us-ai"].plan
    [llm] = plan.charges
    assert plan.currency == "USD" and llm.unit_amount == D("0.000003")
    assert [item.price.unit_amount for item in llm.filters] == [D("0.000012")]


CAPPED = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
plans:
  - code: ai
    currency: EUR
    charges:
      - code: llm
        meter: tokens
        model: per_unit
        unit_amount: "0.000002"
        maximum: "2.00"
        filters:
          - {code: gpt4o, match: {model: [gpt-4o]}, unit_amount: "0.00001"}
customers:
  - {reference: acme, name: Acme, timezone: UTC}
subscriptions:
  - {reference: acme-ai, customer: acme, plan: ai, start: 2026-01-01}
"""


def test_a_cap_on_a_charge_split_by_filters_caps_its_lines_together() -> None:
    document, problems = _check(CAPPED)
    assert problems == []
    catalog = build_catalog(document)
    subscription = catalog.subscriptions["acme-ai"]
    [llm] = subscription.plan.charges
    utc = ZoneInfo("UTC")
    january = Period(datetime(2026, 1, 1, tzinfo=utc), datetime(2026, 2, 1, tzinfo=utc),
                     datetime(2026, 1, 1, tzinfo=utc), datetime(2026, 2, 1, tzinfo=utc))
    from ratecard.domain.dimensions import split_usage  # the split the store hands the rating

    events = [(january.start, {"model": "gpt-4o", "tokens": 120_000}),
              (january.start, {"model": "claude-3", "tokens": 500_000})]
    usage = split_usage("sum", "tokens", llm.filters, llm.group_by, events)
    lines = rate_cut(subscription.terms(), Cut(january.end, january, None), {llm.usage_key: usage},
                     catalog.pricing_for(subscription))
    # gpt4o 1.20 + the default 1.00 = 2.20, capped at 2.00 over both lines
    billed = [(line.code, line.filter, line.amount) for line in lines if line.kind in ("usage", "maximum")]
    assert billed == [("llm", "gpt4o", D("1.20")), ("llm", None, D("1.00")), ("maximum:llm", None, D("-0.20"))]
