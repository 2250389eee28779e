"""`golive check`: blockers and warnings over the stored catalog and data, on both stores."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from ratecard.billing.run import generate_invoices
from ratecard.golive.readiness import readiness
from ratecard.ingest.importer import import_file

from .scenario import CATALOG, EVENTS, NOW, current, workspace, write_jsonl

EXTENDED = CATALOG.replace(
    "subscriptions:",
    "  - {reference: newco, currency: EUR}\n"
    "subscriptions:\n  - {reference: newco-pro, customer: newco, plan: pro, start: 2026-01-01}",
).replace("plans:\n", "plans:\n  - {code: unused, currency: EUR, charges: [{code: f, model: flat, amount: '1'}]}\n")


def test_readiness_findings(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, EXTENDED)
    version, catalog = current(store)
    stray = [{"id": "stray-1", "customer": "ghost", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"}]
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", [*EVENTS, *stray]), NOW)
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    findings = {(f.severity, f.kind, f.subject) for f in readiness(store, catalog, NOW, quiet_days=30)}
    assert ("blocker", "customer_without_tax_rate", "newco") in findings
    assert ("warning", "customer_without_country", "newco") in findings
    assert ("warning", "plan_without_subscriptions", "unused") in findings
    assert ("warning", "unmatched_events", "ghost / api_calls") in findings
    # every meter is silent in the 30 days before 2026-11-26: the events are from January
    assert ("warning", "meter_without_recent_events", "tokens") in findings
    assert any(f[1] == "draft_past_grace_period" for f in findings)
    # on the billing date itself the drafts are within their 8-hour grace period
    early = readiness(store, catalog, datetime(2026, 2, 1, 7, tzinfo=UTC), quiet_days=30)
    stale = [f for f in early if f.kind == "draft_past_grace_period"]
    assert stale and all("2026-02-01" not in f.message for f in stale)  # only the January drafts
    assert not any(f.kind == "meter_without_recent_events" and f.subject == "tokens" for f in early)


MANY = CATALOG.replace(
    "subscriptions:",
    "".join(f"  - {{reference: c{n}, name: Customer {n}}}\n" for n in range(1, 12)) + "subscriptions:\n"
    + "".join(f"  - {{reference: c{n}-pro, customer: c{n}, plan: pro, start: 2026-01-01}}\n" for n in range(1, 12)),
)


def test_the_summary_counts_and_picks_the_examples_the_full_report_groups(db_url: str, tmp_path: Path) -> None:
    """The console's summary (counts and examples read from the database) equals the groups of
    the full report `golive check --json` lists: causes, counts, examples in natural order."""
    from ratecard.services.golive import check_readiness, summarize_readiness
    from ratecard.store.invoice_states import live_drafts, set_hold

    store, _ = workspace(db_url, MANY)
    version, catalog = current(store)
    strays = [{"id": f"stray-{n}", "customer": f"ghost{n}", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"}
              for n in range(1, 6)]
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", [*EVENTS, *strays]), NOW)
    generate_invoices(store, catalog, version, date(2026, 3, 1), NOW)
    held = next(draft for draft in live_drafts(store, "live") if draft.draft_number == 2)
    assert set_hold(store, held.id, True)

    full = check_readiness(store, NOW, "live", 30)
    summary = summarize_readiness(store, NOW, "live", 30)
    assert [group.as_dict() for group in summary.groups()] == [group.as_dict() for group in full.groups()]
    assert (summary.blockers, summary.warnings, summary.ready) == (full.blockers, full.warnings, full.ready)

    by_kind = {group.kind: group for group in summary.groups()}
    stale = by_kind["draft_past_grace_period"]
    assert stale.count > 10  # DRAFT-10 and on exist: string order would put them before DRAFT-3
    assert [f.subject for f in stale.examples] == ["DRAFT-1", "DRAFT-3", "DRAFT-4"]  # DRAFT-2 is held
    assert [f.subject for f in by_kind["customer_without_tax_rate"].examples] == ["c1", "c2", "c3"]
    assert by_kind["customer_without_tax_rate"].count == 11
    assert by_kind["unmatched_events"].count == 5
