"""Billing under change, on SQLite and PostgreSQL, with hand-computed figures: a plan changed
inside a period is prorated like Stripe's default, drafts always mirror the current catalog, and
final invoices are corrected by new lines, never edited."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ratecard.billing.run import generate_invoices
from ratecard.ingest.importer import import_file
from ratecard.store import open_store
from ratecard.store.catalogs import save_version
from ratecard.store.invoices import change_status, list_invoices

from ..migrated import at_head
from .scenario import catalog_document, current, write_jsonl

NOW = datetime(2026, 12, 1, tzinfo=UTC)

HEAD = """
billing_entity: {name: Acme Cloud BV, timezone: UTC, currency: USD}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - {code: basic, currency: USD, charges: [{code: base, model: flat, amount: "100.00", timing: advance},
                                          {code: calls, meter: api_calls, model: per_unit, unit_amount: "1.00"}]}
  - {code: pro, currency: USD, charges: [{code: base, model: flat, amount: "200.00", timing: advance},
                                        {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.50"}]}
customers:
  - {reference: acme, tax_rate: "0"}
"""


@pytest.fixture
def store(db_url: str):
    opened = open_store(at_head(db_url))
    yield opened
    opened.dispose()


def _apply(store, subscriptions: str, head: str = HEAD) -> None:
    save_version(store, catalog_document(head + "subscriptions:\n" + subscriptions), 0)


def _run(store, until: date):
    version, catalog = current(store)
    return generate_invoices(store, catalog, version, until, NOW)


def _lines(invoice) -> list[tuple[str, str, str]]:
    return [(line.code, line.kind, f"{line.amount:f}") for line in invoice.lines]


def _by_issue(store) -> dict[str, object]:
    return {invoice.issue_date: invoice for invoice in list_invoices(store) if invoice.kind == "invoice"
            and invoice.status != "void"}


def _calls(tmp_path: Path, store, *stamps: str) -> None:
    _, catalog = current(store)
    events = [{"id": f"c-{stamp}", "customer": "acme", "meter": "api_calls", "timestamp": stamp} for stamp in stamps]
    import_file(store, catalog, write_jsonl(tmp_path / f"calls-{len(stamps)}-{stamps[0][:10]}.jsonl", events), NOW)


def test_upgrade_mid_period_is_prorated_on_the_next_invoice_like_stripe(store) -> None:
    # 100.00 in advance from May 1, switched to 200.00 on May 15: May has 31 days, 17 of them left
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-05-01, billing_anchor: 1,\n"
                  "     changes: [{at: 2026-05-15, plan: pro}]}\n")
    _run(store, date(2026, 6, 1))
    june = _by_issue(store)["2026-06-01"]
    assert _lines(june) == [
        ("base", "advance", "200.00"),
        ("calls", "usage", "0.00"), ("calls", "usage", "0.00"),  # one line per part of May, each at 0 calls
        ("base", "proration", "-54.84"),  # 100.00 × 17/31 unused
        ("base", "proration", "109.68"),  # 200.00 × 17/31 remaining
    ] or sorted(_lines(june)) == sorted([("base", "advance", "200.00"), ("calls", "usage", "0.00"),
                                          ("calls", "usage", "0.00"), ("base", "proration", "-54.84"),
                                          ("base", "proration", "109.68")])
    assert june.total == Decimal("254.84")


def test_usage_is_priced_per_part_of_the_period_under_the_terms_in_force(store, tmp_path: Path) -> None:
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-05-01,\n"
                  "     changes: [{at: 2026-05-15, plan: pro, proration: none}]}\n")
    _calls(tmp_path, store, "2026-05-10T00:00:00Z", "2026-05-20T00:00:00Z", "2026-05-21T00:00:00Z")
    _run(store, date(2026, 6, 1))
    june = _by_issue(store)["2026-06-01"]
    usage = sorted((line.service_start, f"{line.quantity:f}", f"{line.amount:f}") for line in june.lines
                   if line.kind == "usage")
    assert usage == [("2026-05-01", "1", "1.00"), ("2026-05-15", "2", "1.00")]  # 1 × 1.00, then 2 × 0.50
    assert not [line for line in june.lines if line.kind == "proration"]  # none: May keeps its 100.00


def test_invoice_now_cuts_the_proration_at_the_change(store) -> None:
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-05-01,\n"
                  "     changes: [{at: 2026-05-15, plan: pro, proration: invoice_now}]}\n")
    _run(store, date(2026, 6, 1))
    invoices = _by_issue(store)
    assert sorted(_lines(invoices["2026-05-15"])) == [("base", "proration", "-54.84"), ("base", "proration", "109.68")]
    assert not [line for line in invoices["2026-06-01"].lines if line.kind == "proration"]


def test_a_timezone_fix_removes_the_drafts_at_the_old_boundaries(store) -> None:
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-01-01}\n")
    assert _run(store, date(2026, 2, 1)).created == 2
    head = HEAD.replace('- {reference: acme, tax_rate: "0"}',
                        '- {reference: acme, tax_rate: "0", timezone: Europe/Berlin}')
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-01-01}\n", head)
    report = _run(store, date(2026, 2, 1))
    assert report.removed == 2 and len(report.removals) == 2
    drafts = list_invoices(store)
    assert len(drafts) == 2 and all(invoice.timezone == "Europe/Berlin" for invoice in drafts)


def test_a_subscription_removed_from_the_catalog_loses_its_drafts(store) -> None:
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-01-01}\n"
                  "  - {reference: t, customer: acme, plan: pro, start: 2026-01-01, requires_reference: true}\n")
    _run(store, date(2026, 2, 1))
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-01-01}\n")
    report = _run(store, date(2026, 2, 1))
    assert {removal["subscription"] for removal in report.removals} == {"t"}
    assert {invoice.subscription for invoice in list_invoices(store)} == {"s"}


def test_ending_inside_a_period_billed_in_advance_credits_the_unused_days(store) -> None:
    # base 28.00 for February (28 days), final; the subscription then ends on Feb 15: 14 days unused
    head = HEAD.replace('amount: "100.00"', 'amount: "28.00"')
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-02-01}\n", head)
    _run(store, date(2026, 2, 1))
    opening = _by_issue(store)["2026-02-01"]
    change_status(store, opening.id, "final", 1, "RC")
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-02-01, end: 2026-02-15}\n", head)
    _run(store, date(2026, 3, 1))
    closing = _by_issue(store)["2026-02-15"]
    assert ("base", "proration", "-14.00") in _lines(closing)
    assert "2026-03-01" not in _by_issue(store)  # nothing after the end


def test_the_minimum_reads_what_was_billed_not_todays_price(store) -> None:
    head = HEAD.replace('amount: "100.00"', 'amount: "30.00"').replace(
        "- {code: basic, currency: USD,", "- {code: basic, currency: USD, minimum: \"100.00\",")
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-02-01}\n", head)
    _run(store, date(2026, 2, 1))
    change_status(store, _by_issue(store)["2026-02-01"].id, "final", 1, "RC")
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-02-01}\n",
           head.replace('amount: "30.00"', 'amount: "60.00"'))
    _run(store, date(2026, 3, 1))
    march = _by_issue(store)["2026-03-01"]
    minimum = next(line for line in march.lines if line.code == "minimum")
    assert minimum.amount == Decimal("70.00")  # 100 − the 30.00 February was billed
    assert ("base", "advance", "60.00") in _lines(march)  # March at the new price


def test_a_late_event_after_a_final_invoice_is_billed_by_the_next_run(store, tmp_path: Path) -> None:
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-02-01}\n")
    _calls(tmp_path, store, "2026-02-10T00:00:00Z")
    _run(store, date(2026, 3, 1))
    march = _by_issue(store)["2026-03-01"]
    change_status(store, march.id, "final", 1, "RC")
    _calls(tmp_path, store, "2026-02-11T00:00:00Z", "2026-02-12T00:00:00Z")  # late: February is final
    _run(store, date(2026, 4, 1))
    april = _by_issue(store)["2026-04-01"]
    adjustments = [line for line in april.lines if line.kind == "adjustment"]
    assert [(line.code, line.service_start, f"{line.amount:f}") for line in adjustments] == [
        ("calls", "2026-02-01", "2.00")]
    assert adjustments[0].description.startswith("Correction of RC-000001: ")  # the invoice it corrects
    # once that invoice is final, nothing is billed twice
    change_status(store, april.id, "final", 2, "RC")
    _run(store, date(2026, 5, 1))
    may = _by_issue(store)["2026-05-01"]
    assert not [line for line in may.lines if line.kind == "adjustment"]


def test_a_correction_with_nothing_to_carry_it_is_a_credit_note(store) -> None:
    # pro (200.00) for February, every invoice final; then a downgrade to basic (100.00) backdated to
    # Feb 15: 14 of 28 days → credit 200 × 14/28 = 100.00, charge 100 × 14/28 = 50.00: net −50.00
    _apply(store, "  - {reference: s, customer: acme, plan: pro, start: 2026-02-01, end: 2026-03-01}\n")
    _run(store, date(2026, 3, 1))
    for invoice in sorted(list_invoices(store), key=lambda i: i.boundary_ts):
        change_status(store, invoice.id, "final", 1, "RC")
    _apply(store, "  - {reference: s, customer: acme, plan: pro, start: 2026-02-01, end: 2026-03-01,\n"
                  "     changes: [{at: 2026-02-15, plan: basic}]}\n")
    report = _run(store, date(2026, 3, 1))
    notes = [invoice for invoice in list_invoices(store) if invoice.kind == "credit_note"]
    assert len(notes) == 1 and notes[0].status == "final" and notes[0].total == Decimal("-50.00")
    assert notes[0].number.startswith("CN")
    assert report.corrections and report.corrections[0]["kind"] == "credit_note"
    assert _run(store, date(2026, 3, 1)).corrections == []  # credited once


def test_corrections_credit_note_setting_issues_documents_of_their_own(store, tmp_path: Path) -> None:
    head = HEAD.replace("currency: USD}", "currency: USD, corrections: credit_note}", 1)
    _apply(store, "  - {reference: s, customer: acme, plan: basic, start: 2026-02-01}\n", head)
    _calls(tmp_path, store, "2026-02-10T00:00:00Z")
    _run(store, date(2026, 3, 1))
    change_status(store, _by_issue(store)["2026-03-01"].id, "final", 1, "RC")
    _calls(tmp_path, store, "2026-02-11T00:00:00Z")  # late
    report = _run(store, date(2026, 4, 1))
    assert [(item["kind"], item["total"]) for item in report.corrections] == [("correction", "1.00")]
    april = _by_issue(store)["2026-04-01"]
    assert not [line for line in april.lines if line.kind == "adjustment"]  # not on the next invoice
    assert _run(store, date(2026, 4, 1)).corrections == []
