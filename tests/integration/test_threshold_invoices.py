"""Threshold invoices and usage billed in advance through the invoice run, on SQLite and
PostgreSQL: runs up to different dates cut each early invoice once, the period's closing invoice
bills the rest (tiers never reset), and a late event before a final threshold invoice is
corrected on the next invoice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from ratecard.billing.run import generate_invoices
from ratecard.domain.instants import to_micros
from ratecard.golive.backfill import close_backfill, import_target
from ratecard.ingest.importer import import_file
from ratecard.store.backfills import create_backfill
from ratecard.store.catalogs import save_version
from ratecard.store.invoices import InvoiceRecord, change_status, list_invoices

from .scenario import NOW, catalog_document, current, workspace, write_jsonl

D = Decimal

CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
  - {code: api_calls, aggregation: count}
plans:
  - code: ai
    currency: EUR
    invoice_threshold: "500.00"
    charges:
      - {code: base, model: flat, amount: "49.00", timing: advance}
      - code: tokens
        meter: tokens
        model: graduated
        tiers: [{up_to: 1000000, unit_amount: "0.00002"}, {up_to: null, unit_amount: "0.00001"}]
  - code: payg
    currency: EUR
    charges:
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.50", timing: advance}
customers:
  - {reference: acme, name: Acme Inc, currency: EUR, tax_rate: "19", timezone: Europe/Berlin}
  - {reference: beta, name: Beta, currency: EUR, tax_rate: "0", timezone: Europe/Berlin}
  - {reference: gamma, name: Gamma, currency: EUR, tax_rate: "0", timezone: Europe/Berlin}
subscriptions:
  # the subscription's threshold wins over the plan's 500.00
  - {reference: acme-ai, customer: acme, plan: ai, start: 2026-01-01, invoice_threshold: "100.00"}
  - {reference: beta-payg, customer: beta, plan: payg, start: 2026-01-01}
  # the plan's threshold, never reached: no early invoice
  - {reference: gamma-ai, customer: gamma, plan: ai, start: 2026-01-01}
"""


def _tokens(event_id: str, timestamp: str, tokens: int, customer: str = "acme") -> dict:
    return {"id": event_id, "customer": customer, "meter": "tokens", "timestamp": timestamp,
            "properties": {"tokens": tokens}}


def _call(event_id: str, timestamp: str) -> dict:
    return {"id": event_id, "customer": "beta", "meter": "api_calls", "timestamp": timestamp}


EVENTS = [
    # 10,000,000 tokens on Jan 15 (Berlin): 20 + 90 = 110.00 so far, over the threshold of 100.00
    _tokens("t1", "2026-01-15T09:00:00Z", 6_000_000),
    _tokens("t2", "2026-01-15T22:30:00Z", 4_000_000),  # 23:30 in Berlin: still Jan 15
    # 4,000,000 more on Jan 26: 14,000,000 in January cost 150.00
    _tokens("t3", "2026-01-26T12:00:00Z", 4_000_000),
    _tokens("g1", "2026-01-20T12:00:00Z", 1_000_000, customer="gamma"),
    # beta's calls, billed in advance: 3 on Jan 3, 2 on Jan 5 (Berlin)
    *[_call(f"c{n}", "2026-01-03T10:00:00Z") for n in range(3)],
    *[_call(f"d{n}", "2026-01-05T10:00:00Z") for n in range(2)],
]


def _run(store, until: date) -> dict:
    version, catalog = current(store)
    report = generate_invoices(store, catalog, version, until, NOW)
    assert report.failures == []
    return report.as_dict()


def _of(store, subscription: str) -> list[InvoiceRecord]:
    return sorted((item for item in list_invoices(store) if item.subscription == subscription),
                  key=lambda item: item.boundary_ts)


def _lines(invoice: InvoiceRecord) -> list[tuple[str, str, Decimal]]:
    return [(line.code, line.kind, line.amount) for line in invoice.lines]


def test_threshold_invoice_then_the_rest_at_period_end(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", EVENTS), NOW)

    _run(store, date(2026, 1, 14))
    assert [invoice.issue_date for invoice in _of(store, "acme-ai")] == ["2026-01-01"]  # the opening only

    _run(store, date(2026, 1, 16))
    opening, threshold = _of(store, "acme-ai")
    # cut at the local midnight after the crossing, Jan 16 00:00 in Berlin
    assert threshold.issue_date == "2026-01-16"
    assert _lines(threshold) == [("tokens", "threshold", D("110.00"))]
    assert (threshold.subtotal, threshold.tax, threshold.total) == (D("110.00"), D("20.90"), D("130.90"))
    assert threshold.lines[0].service_start == "2026-01-01" and threshold.lines[0].service_end == "2026-01-16"

    again = _run(store, date(2026, 1, 16))  # idempotent: the same threshold invoice, not a second one
    assert (again["created"], again["updated"]) == (0, 0)
    assert len(_of(store, "acme-ai")) == 2

    _run(store, date(2026, 2, 1))
    opening, threshold, closing = _of(store, "acme-ai")
    assert _lines(threshold) == [("tokens", "threshold", D("110.00"))]
    # tiers never reset: 14,000,000 tokens cost 150.00 for January, 110.00 of it invoiced already
    assert ("tokens", "usage", D("40.00")) in _lines(closing)
    assert ("base", "advance", D("49.00")) in _lines(closing)  # February's fee in advance

    # gamma's 1,000,000 tokens (20.00) never reach the plan's 500.00: billed at the period's end
    gamma = _of(store, "gamma-ai")
    assert len(gamma) == 2 and gamma[1].issue_date == "2026-02-01"
    assert sorted(_lines(gamma[1])) == [("base", "advance", D("49.00")), ("tokens", "usage", D("20.00"))]

    # beta's calls in advance: 1.50 at Jan 4 00:00, 1.00 at Jan 6 00:00, nothing left in arrears
    payg = _of(store, "beta-payg")
    assert [(invoice.issue_date, _lines(invoice)) for invoice in payg[:2]] == [
        ("2026-01-04", [("calls", "usage_advance", D("1.50"))]),
        ("2026-01-06", [("calls", "usage_advance", D("1.00"))])]
    assert _lines(payg[2]) == [("calls", "usage", D("0.00"))]

    # while they are drafts, threshold invoices follow the usage: 9,000,000 tokens more on Jan 5
    # (20 + 80 = 100.00 by Jan 6) cut one at Jan 6; by Jan 16, 19,000,000 cost 200.00, 100.00 more
    import_file(store, catalog, write_jsonl(tmp_path / "more.jsonl", [_tokens("t0", "2026-01-05T12:00:00Z",
                                                                              9_000_000)]), NOW)
    _run(store, date(2026, 2, 1))
    opening, early, threshold_again, closing_again = _of(store, "acme-ai")
    assert (early.issue_date, _lines(early)) == ("2026-01-06", [("tokens", "threshold", D("100.00"))])
    assert (threshold_again.id, _lines(threshold_again)) == (threshold.id, [("tokens", "threshold", D("100.00"))])
    # 23,000,000 tokens in January: 20 + 220 = 240.00, less the 200.00 invoiced early
    assert closing_again.id == closing.id and ("tokens", "usage", D("40.00")) in _lines(closing_again)

    # the closing invoice finalized before the threshold invoices: they stay, still drafts, and
    # still bill what the final closing invoice deducted
    change_status(store, closing_again.id, "final", 1, "RC")
    report = _run(store, date(2026, 2, 1))
    assert (report["removed"], report["corrections"]) == (0, [])
    kept = _of(store, "acme-ai")
    assert [(invoice.id, invoice.status, _lines(invoice)) for invoice in kept[1:3]] == [
        (early.id, "draft", [("tokens", "threshold", D("100.00"))]),
        (threshold.id, "draft", [("tokens", "threshold", D("100.00"))])]


def test_late_event_before_a_final_threshold_invoice_is_corrected_on_the_next(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", EVENTS), NOW)
    _run(store, date(2026, 1, 20))
    _, threshold = _of(store, "acme-ai")
    # 500,000 tokens on Jan 12 arrive after the draft was computed, before it is finalized: not on
    # it, so finalizing flags them late
    later = NOW + timedelta(hours=1)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "between.jsonl",
                                            [_tokens("between", "2026-01-12T12:00:00Z", 500_000)]), later)
    change_status(store, threshold.id, "final", to_micros(later) + 1, "RC")
    _run(store, date(2026, 2, 1))
    # by Jan 16, 10,500,000 tokens: 20 + 95 = 115.00 today, 110.00 billed: 5.00 on the next invoice
    assert [amount for _, kind, amount in _lines(_of(store, "acme-ai")[-1]) if kind == "adjustment"] == [D("5.00")]

    # 1,000,000 tokens on Jan 10, arriving after the threshold invoice was final: late
    late = [_tokens("late", "2026-01-10T12:00:00Z", 1_000_000)]
    import_file(store, catalog, write_jsonl(tmp_path / "late.jsonl", late), later)
    rerun = _run(store, date(2026, 2, 1))
    assert (rerun["created"], rerun["updated"]) == (0, 1)

    opening, final, closing = _of(store, "acme-ai")
    assert final.status == "final" and _lines(final) == [("tokens", "threshold", D("110.00"))]
    lines = _lines(closing)
    # by Jan 16, 11,500,000 tokens: 20 + 105 = 125.00 today, 110.00 billed: 15.00 corrected on the
    # next invoice
    assert [amount for code, kind, amount in lines if kind == "adjustment"] == [D("15.00")]
    # the period's 15,500,000 tokens cost 165.00: 165 - 125 at the period's end
    assert ("tokens", "usage", D("40.00")) in lines
    assert sum(amount for code, kind, amount in [*_lines(final), *lines] if code == "tokens") == D("165.00")


def test_closed_backfill_corrects_the_final_threshold_invoice_and_nothing_twice(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", EVENTS), NOW)
    _run(store, date(2026, 2, 1))
    _, threshold, closing = _of(store, "acme-ai")
    change_status(store, threshold.id, "final", 1, "RC")
    change_status(store, closing.id, "final", 2, "RC")

    # a backfill over January (Berlin) adds 1,000,000 tokens on Jan 10, before the threshold cut
    backfill = create_backfill(store, "live", to_micros(datetime(2025, 12, 31, 23, tzinfo=UTC)),
                               to_micros(datetime(2026, 1, 31, 23, tzinfo=UTC)), None, False, to_micros(NOW))
    _, catalog = current(store)
    validator, writer_factory = import_target(store, catalog, NOW, backfill.id)
    import_file(store, catalog, write_jsonl(tmp_path / "bf.jsonl", [_tokens("bf", "2026-01-10T12:00:00Z", 1_000_000)]),
                NOW, validator=validator, writer_factory=writer_factory)
    result = close_backfill(store, backfill.id, NOW)

    # the threshold invoice is replaced: 11,000,000 tokens by Jan 16 cost 120.00 (was 110.00, +19% tax);
    # the closing invoice bills 160.00 - 120.00 = 40.00 as before: replaced for its quantity
    # (15,000,000 tokens now), at the same total (40.00 + base 49.00, +19% tax)
    assert [(item["issue_date"], item["original"]["total"], item["replacement"]["total"])
            for item in result["corrections"]] == [("2026-01-16", "130.90", "142.80"),
                                                   ("2026-02-01", "105.91", "105.91")]
    standing = [invoice for invoice in _of(store, "acme-ai") if invoice.kind == "invoice"]
    latest = {invoice.boundary_ts: invoice for invoice in sorted(standing, key=lambda item: item.revision)}
    tokens = [(line.kind, line.quantity, line.amount) for invoice in latest.values() for line in invoice.lines
              if line.code == "tokens"]
    assert sorted(tokens) == [("threshold", D(11_000_000), D("120.00")), ("usage", D(15_000_000), D("40.00"))]
    assert [line for invoice in latest.values() for line in invoice.lines if line.kind == "adjustment"] == []


def test_price_edit_after_a_final_threshold_invoice_applies_to_what_is_not_yet_invoiced(db_url: str,
                                                                                        tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", EVENTS), NOW)
    _run(store, date(2026, 1, 16))
    _, threshold = _of(store, "acme-ai")
    change_status(store, threshold.id, "final", 1, "RC")
    # the tokens' prices double from the next catalog version on
    doubled = CATALOG.replace('unit_amount: "0.00002"}, {up_to: null, unit_amount: "0.00001"',
                              'unit_amount: "0.00004"}, {up_to: null, unit_amount: "0.00002"')
    assert doubled != CATALOG
    save_version(store, catalog_document(doubled), 2)
    _run(store, date(2026, 2, 1))
    opening, final, again, closing = _of(store, "acme-ai")
    # the final one stands at the old prices; at the new ones the 10,000,000 tokens so far cost
    # 220.00, 110.00 of it not yet invoiced: a threshold invoice the next midnight
    assert _lines(final) == [("tokens", "threshold", D("110.00"))]
    assert (again.issue_date, _lines(again)) == ("2026-01-17", [("tokens", "threshold", D("110.00"))])
    # January's 14,000,000 tokens at the new prices, 300.00, less the 220.00 invoiced
    assert ("tokens", "usage", D("80.00")) in _lines(closing)
    assert not any(kind == "adjustment" for _, kind, _ in _lines(closing))


AGGREGATIONS_CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: m_sum, aggregation: sum, field: v, source: s}
  - {code: m_count, aggregation: count, source: s}
  - {code: m_max, aggregation: max, field: v, source: s}
  - {code: m_min, aggregation: min, field: v, source: s}
  - {code: m_unique, aggregation: unique_count, field: v, source: s}
  - {code: m_latest, aggregation: latest, field: v, source: s}
plans:
  - code: all
    currency: EUR
    invoice_threshold: "7.00"
    charges:
      - {code: c_sum, meter: m_sum, model: per_unit, unit_amount: "0.01"}
      - {code: c_count, meter: m_count, model: per_unit, unit_amount: "0.10"}
      - {code: c_max, meter: m_max, model: per_unit, unit_amount: "0.02", timing: advance}
      - {code: c_min, meter: m_min, model: per_unit, unit_amount: "0.03"}
      - {code: c_unique, meter: m_unique, model: per_unit, unit_amount: "0.05"}
      - {code: c_latest, meter: m_latest, model: per_unit, unit_amount: "0.04", timing: advance}
customers:
  - {reference: acme, name: Acme Inc, currency: EUR, timezone: America/New_York}
subscriptions:
  - {reference: acme-all, customer: acme, plan: all, start: 2026-03-01}
"""


def test_day_by_day_roll_up_equals_the_roll_up_to_each_midnight(db_url: str, tmp_path: Path, monkeypatch) -> None:
    """sum, count, max and min are rolled up per day and joined; the plans are the same as when every
    meter is rolled up from the period's start to each midnight (over a change to daylight saving time)."""
    import ratecard.billing.early as early_module

    store, _ = workspace(db_url, AGGREGATIONS_CATALOG)
    version, catalog = current(store)
    events = [{"id": f"e{n}", "customer": "acme", "meter": "s",
               "timestamp": f"2026-03-{1 + (n * 7) % 30:02d}T{(n * 5) % 24:02d}:{n % 60:02d}:00Z",
               "properties": {"v": (n * 37) % 23 - 4}} for n in range(120)]
    import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", events), NOW)

    def plans() -> list:
        planner = early_module.EarlyPlanner(store, catalog, date(2026, 4, 1), "live", {}, {})
        planner.plan_open()
        found = planner.for_subscription(catalog.subscriptions["acme-all"])
        assert found
        return [(plan.billed, [(cut.boundary, cut.early) for cut in plan.cuts]) for _, plan in sorted(found.items())]

    joined = plans()
    monkeypatch.setattr(early_module, "JOINED", frozenset())
    assert plans() == joined
    kinds = {line.kind for _, cuts in joined for _, lines in cuts for line in lines}
    assert kinds == {"threshold", "usage_advance"}  # the comparison holds both kinds of early invoices
