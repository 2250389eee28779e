"""Pricing features used together on one subscription: a one-off charge with threshold invoices
is billed once, and the combinations this version cannot bill exactly are refused by
`catalog check` with the subscription's path (never billed wrongly)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from ratecard.billing.run import generate_invoices
from ratecard.catalog.load import parse_text
from ratecard.catalog.validate import check_document
from ratecard.ingest.importer import import_file
from ratecard.store.invoices import list_invoices

from .scenario import NOW, current, workspace, write_jsonl

D = Decimal

PLANS = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
plans:
  - code: ai
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "49.00", timing: advance}
      - {code: tokens, meter: tokens, model: per_unit, unit_amount: "0.00001"%s}
customers:
  - {reference: acme, name: Acme Inc, currency: EUR, tax_rate: "0", timezone: UTC}
subscriptions:
  - reference: acme-ai
    customer: acme
    plan: ai
    start: 2026-01-01
    invoice_threshold: "100.00"
%s
"""

ONE_OFF = """    one_off:
      - {code: setup, amount: "500.00", at: 2026-01-10}
"""


def test_a_one_off_before_a_threshold_invoice_is_billed_once_on_the_next_regular_invoice(db_url: str,
                                                                                         tmp_path: Path) -> None:
    store, _ = workspace(db_url, PLANS % ("", ONE_OFF))
    _, catalog = current(store)
    # 12,000,000 tokens on Jan 12: 120.00, over the threshold: a threshold invoice at Jan 13
    events = [{"id": "t1", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-12T10:00:00Z",
               "properties": {"tokens": 12_000_000}}]
    import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", events), NOW)
    version, catalog = current(store)
    report = generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    assert report.failures == []
    invoices = sorted(list_invoices(store), key=lambda item: item.boundary_ts)
    billed = [(invoice.issue_date, line.code, line.kind, line.amount) for invoice in invoices for line in invoice.lines]
    assert ("2026-01-13", "tokens", "threshold", D("120.00")) in billed
    # the set-up fee once, on the invoice that closes January (not on the threshold invoice too)
    assert [row for row in billed if row[1] == "setup"] == [("2026-02-01", "setup", "one_off", D("500.00"))]


def _problems(text: str) -> list[str]:
    _, problems = check_document(parse_text(text, "catalog.yaml"))
    return [f"{problem.path}: {problem.message}" for problem in problems]


def test_a_threshold_with_a_cap_or_per_event_rules_is_refused_with_the_subscription_path() -> None:
    assert _problems(PLANS % ("", "")) == []
    capped = _problems(PLANS % (', maximum: "50.00"', ""))
    assert len(capped) == 1 and capped[0].startswith("subscriptions[0]:") and "'tokens' maximum" in capped[0]
    overridden = _problems(PLANS % ("", "    overrides: {tokens: {maximum: \"50.00\"}}\n"))
    assert len(overridden) == 1 and "'tokens' maximum" in overridden[0]
    # a cap of 0 (free usage) is a cap too: threshold invoices would bill what it takes away
    free = _problems(PLANS % (', maximum: "0"', ""))
    assert len(free) == 1 and "'tokens' maximum" in free[0]
