"""Tiered usage lines keep their parts from rating to storage and the JSON export, on SQLite and
PostgreSQL; parts never make a final invoice look changed (docs/billing.md, "Tiers on the invoice")."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import update

from ratecard.billing.export import invoice_document
from ratecard.billing.run import generate_invoices
from ratecard.ingest.importer import import_file
from ratecard.store.events import list_events
from ratecard.store.invoices import change_status, get_invoice, list_invoices
from ratecard.store.schema import invoice_lines

from ..e2e.harness import Cli
from .scenario import CATALOG, EVENTS, NOW, current, workspace, write_jsonl

# January's tokens (scenario): 1,200 + 300.5 = 1,500.5 on `graduated` 0-1,000 at 0, then 0.002 plus 5:
# 1,000 × 0 = 0 ; 500.5 × 0.002 + 5 = 6.001 ; the line 6.001 -> 6.00
JANUARY_TOKENS = [
    {"tier": 1, "first_unit": "1", "last_unit": "1000", "above": "0", "quantity": "1000", "unit_amount": "0",
     "flat_amount": "0", "amount": "0"},
    {"tier": 2, "first_unit": "1000", "last_unit": "1500.5", "above": "1000", "quantity": "500.5",
     "unit_amount": "0.002", "flat_amount": "5", "amount": "6.0010"},
]


def _january(db_url: str, tmp_path: Path):
    store, version = workspace(db_url)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", EVENTS), NOW)
    generate_invoices(store, catalog, version, date(2026, 3, 1), NOW)
    _, january, _ = list_invoices(store)
    return store, january


def test_the_json_of_an_invoice_lists_each_lines_tiers(db_url: str, tmp_path: Path) -> None:
    store, january = _january(db_url, tmp_path)
    shown = Cli(tmp_path)("invoices", "show", january.display_number, "--json", db=db_url)
    assert shown.code == 0, shown
    lines = {line["code"]: line for line in shown.json()["lines"]}
    assert lines["tokens"]["amount"] == "6.00"
    assert lines["tokens"]["tiers"] == JANUARY_TOKENS
    assert lines["calls"]["tiers"] == [] and lines["base"]["tiers"] == []
    exported = Cli(tmp_path)("invoices", "export", "--out", str(tmp_path / "out.json"), db=db_url)
    assert exported.code == 0, exported
    assert '"tiers"' in (tmp_path / "out.json").read_text()
    store.dispose()


def _late_tokens(store, tmp_path: Path, tokens: int) -> None:
    _, catalog = current(store)
    late = [{"id": f"late-{tokens}", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-25T12:00:00Z",
             "properties": {"tokens": tokens, "model": "mini"}}]
    import_file(store, catalog, write_jsonl(tmp_path / "late.jsonl", late), NOW)


def test_a_final_invoice_stored_without_parts_is_not_corrected_for_lacking_them(db_url: str, tmp_path: Path) -> None:
    store, january = _january(db_url, tmp_path)
    final = change_status(store, january.id, "final", 1, "RC")
    assert any(line.tiers for line in final.lines)
    version, catalog = current(store)
    assert generate_invoices(store, catalog, version, date(2026, 3, 1), NOW).corrections == []
    # as finalized before tiers were kept: no parts stored on any of its lines
    with store.engine.begin() as connection:
        connection.execute(update(invoice_lines).where(invoice_lines.c.invoice_id == final.id).values(tiers=None))
    before = invoice_document(get_invoice(store, final.number))
    assert all(line["tiers"] == [] for line in before["lines"])
    # a late event that changes no amount makes the run recompute the final cut (parts and all)
    _late_tokens(store, tmp_path, 0)
    assert [event.id for event in list_events(store, late=True)] == ["late-0"]
    version, catalog = current(store)
    report = generate_invoices(store, catalog, version, date(2026, 3, 1), NOW)
    assert report.corrections == []
    assert invoice_document(get_invoice(store, final.number)) == before
    store.dispose()


def test_a_late_event_in_a_tier_is_corrected_by_its_amount_alone(db_url: str, tmp_path: Path) -> None:
    store, january = _january(db_url, tmp_path)
    final = change_status(store, january.id, "final", 1, "RC")
    with store.engine.begin() as connection:
        connection.execute(update(invoice_lines).where(invoice_lines.c.invoice_id == final.id).values(tiers=None))
    # 1,000 more tokens in tier 2: 1,000 × 0.002 = 2.00 more
    _late_tokens(store, tmp_path, 1000)
    version, catalog = current(store)
    report = generate_invoices(store, catalog, version, date(2026, 3, 1), NOW)
    assert [(item["kind"], item["total"]) for item in report.corrections] == [("adjustment", "2.00")]
    store.dispose()


CHANGED = CATALOG.replace(
    "  - {reference: acme-pro, customer: acme, plan: pro, start: 2026-01-15, billing_anchor: 1}",
    """  - reference: acme-pro
    customer: acme
    plan: pro
    start: 2026-01-15
    billing_anchor: 1
    changes:
      - {at: 2026-01-21, plan: volume, proration: prorate}""",
).replace("customers:", """  - code: volume
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "49.00", timing: advance}
      - code: tokens
        meter: tokens
        model: volume
        tiers: [{up_to: 100, unit_amount: "0.01"}, {up_to: null, unit_amount: "0.001", flat_amount: "1"}]
customers:""")


def test_each_segment_of_a_changed_period_stores_its_own_parts(db_url: str, tmp_path: Path) -> None:
    store, version = workspace(db_url, CHANGED)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", EVENTS), NOW)
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    january = list_invoices(store)[-1]
    tokens = [line for line in invoice_document(january)["lines"] if line["code"] == "tokens"]
    # Jan 15-21 (Berlin) on `pro`: 1,200 tokens graduated, 1,000 free, 200 × 0.002 + 5 = 5.40
    # Jan 21-Feb 1 on `volume`: 300.5 tokens in its tier 2, 300.5 × 0.001 + 1 = 1.3005 -> 1.30
    assert [(line["quantity"], line["amount"], [(part["tier"], part["quantity"], part["amount"])
                                                for part in line["tiers"]]) for line in tokens] == [
        ("1200", "5.40", [(1, "1000", "0"), (2, "200", "5.400")]),
        ("300.5", "1.30", [(2, "300.5", "1.3005")]),
    ]
    store.dispose()
