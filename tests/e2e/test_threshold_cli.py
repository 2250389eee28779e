"""Threshold invoices through the `ratecard` command: `catalog check` takes `invoice_threshold`
and a usage charge in advance, `invoices generate` cuts the threshold invoice at the local midnight
after the crossing, and `invoices list --json` shows it with its `threshold` line."""

from __future__ import annotations

from .harness import Cli, jsonl

CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
  - {code: api_calls, aggregation: count}
plans:
  - code: ai
    currency: EUR
    invoice_threshold: "100.00"
    charges:
      - code: tokens
        meter: tokens
        model: graduated
        tiers: [{up_to: 1000000, unit_amount: "0.00002"}, {up_to: null, unit_amount: "0.00001"}]
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.01", timing: advance}
customers:
  - {reference: acme, name: Acme Inc, currency: EUR, tax_rate: "19", timezone: Europe/Berlin}
subscriptions:
  - {reference: acme-ai, customer: acme, plan: ai, start: 2026-01-01}
"""


def test_generate_cuts_the_threshold_invoice_and_list_shows_it(cli: Cli) -> None:
    catalog = cli.write("catalog.yaml", CATALOG)
    assert cli.ok("catalog", "check", catalog, "--json", db=False).json()["valid"] is True
    cli.ok("catalog", "apply", catalog)
    # 10,000,000 tokens on Jan 15 in Berlin: 20.00 + 90.00 = 110.00, over the threshold
    events = cli.write("events.jsonl", jsonl(
        {"id": "t1", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-15T12:00:00Z",
         "properties": {"tokens": 10_000_000}}))
    cli.ok("events", "import", events)
    cli.ok("invoices", "generate", "--until", "2026-01-20")
    listed = cli.ok("invoices", "list", "--json").json()
    threshold = [invoice for invoice in listed if any(line["kind"] == "threshold" for line in invoice["lines"])]
    assert len(threshold) == 1
    [invoice] = threshold
    assert (invoice["issue_date"], invoice["status"], invoice["subtotal"], invoice["tax"], invoice["total"]) == \
        ("2026-01-16", "draft", "110.00", "20.90", "130.90")
    assert [(line["code"], line["kind"], line["amount"]) for line in invoice["lines"]] == \
        [("tokens", "threshold", "110.00")]
    # the upcoming invoice closing January bills the usage so far less the threshold invoice's 110.00
    preview = cli.ok("invoices", "preview", "acme", "--at", "2026-01-20T00:00:00+01:00", "--json").json()
    [upcoming] = preview["subscriptions"][0]["invoices"]
    assert [(line["code"], line["amount"]) for line in upcoming["lines"] if line["code"] == "tokens"] == \
        [("tokens", "0.00")]
    # run again: still one threshold invoice
    cli.ok("invoices", "generate", "--until", "2026-01-20")
    again = cli.ok("invoices", "list", "--json").json()
    assert sum(1 for item in again for line in item["lines"] if line["kind"] == "threshold") == 1
