"""An event a subscription takes but no charge counts is flagged `unpriced` where it arrives, never
billed silently at nothing: the import report (and its dry run), `events list --status unpriced`,
the go-live check and the ingestion figures all show it. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from ratecard.billing.run import generate_invoices
from ratecard.domain.instants import to_micros
from ratecard.ingest.importer import ImportReport, import_file, import_records
from ratecard.ingest.records import RawEvent
from ratecard.ingest.reprocess import reprocess
from ratecard.services.event_explorer import EventFilters, explore
from ratecard.services.events import find_events
from ratecard.services.golive import check_readiness
from ratecard.services.monitoring import ingestion
from ratecard.store.catalogs import save_version
from ratecard.store.events import count_by_status
from ratecard.store.invoices import list_invoices
from ratecard.store.schema import events
from ratecard.store.usage import Window, aggregate_usage

from .scenario import NOW, catalog_document, current, workspace, write_jsonl

# tokens of each model are metered apart; nothing meters claude-3, and `images` is charged by no plan
CATALOG = """
billing_entity: {timezone: UTC, currency: EUR}
meters:
  - {code: gpt4o_tokens, source: tokens, aggregation: sum, field: tokens, filters: {model: [gpt-4o]}}
  - {code: mini_tokens, source: tokens, aggregation: sum, field: tokens, filters: {model: [gpt-4o-mini]}}
  - {code: images, aggregation: count}
plans:
  - code: ai
    currency: EUR
    charges:
      - {code: gpt4o, meter: gpt4o_tokens, model: per_unit, unit_amount: "0.00001"}
      - {code: mini, meter: mini_tokens, model: per_unit, unit_amount: "0.0000006"}
customers:
  - {reference: acme, currency: EUR, tax_rate: "0", country: NL}
subscriptions:
  - {reference: acme-ai, customer: acme, plan: ai, start: 2026-01-01}
"""
# the fix: claude-3 gets a meter and a charge of its own
PRICED = CATALOG.replace(
    "  - {code: images, aggregation: count}",
    "  - {code: images, aggregation: count}\n"
    "  - {code: claude_tokens, source: tokens, aggregation: sum, field: tokens, filters: {model: [claude-3]}}",
).replace(
    '      - {code: mini, meter: mini_tokens, model: per_unit, unit_amount: "0.0000006"}',
    '      - {code: mini, meter: mini_tokens, model: per_unit, unit_amount: "0.0000006"}\n'
    '      - {code: claude, meter: claude_tokens, model: per_unit, unit_amount: "0.000002"}',
)


def _tokens(event_id: str, model: str, tokens: int, **extra) -> dict:
    return {"id": event_id, "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
            "properties": {"model": model, "tokens": tokens}, **extra}


EVENTS = [
    _tokens("g1", "gpt-4o", 120_000),
    _tokens("m1", "gpt-4o-mini", 2_000_000),
    _tokens("c1", "claude-3", 500_000),
    _tokens("c2", "=HYPERLINK(\"x\")", 1, subscription="acme-ai"),  # names its subscription: judged the same
    {"id": "i1", "customer": "acme", "meter": "images", "timestamp": "2026-01-20T11:00:00Z"},
]


def _total(store) -> Decimal:
    version, catalog = current(store)
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    (invoice,) = [i for i in list_invoices(store) if i.issue_date == "2026-02-01"]
    return invoice.subtotal


def test_the_dry_run_reports_unpriced_events_and_writes_nothing(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    report = import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", EVENTS), NOW, dry_run=True)
    assert dict(report.flags) == {"unpriced": 3}
    assert report.samples["unpriced"] == ["c1", "c2", "i1"]
    assert report.as_dict()["unpriced"] == [
        {"customer": "acme", "meter": "images", "reason": "meter_not_charged", "events": 1},
        {"customer": "acme", "meter": "tokens", "reason": "filtered_out", "events": 2},
    ]
    assert count_by_status(store, "live") == {}
    store.dispose()


def test_unpriced_events_are_listed_checked_counted_and_priced_after_the_fix(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", EVENTS), NOW)
    assert count_by_status(store, "live") == {"matched": 2, "unpriced": 3}
    assert sorted(e.id for e in find_events(store, status="unpriced")) == ["c1", "c2", "i1"]
    assert {e.id for e in find_events(store, status="unmatched")} == {"c1", "c2", "i1"}
    explored = explore(store, NOW, EventFilters(outcome="unmatched")).events
    assert {e.event.id for e in explored} == {"c1", "c2", "i1"}
    assert {e.reason for e in explored} == {"unpriced: its subscription takes it, but no charge of the plan counts it "
                                            "(meter not charged, or left out by the meters' filters)"}

    findings = [f for f in check_readiness(store, NOW).findings if f.kind == "unpriced_events"]
    assert [(f.severity, f.subject) for f in findings] == [("warning", "acme / images"), ("warning", "acme / tokens")]
    assert findings[1].message.startswith("2 event(s) taken by a subscription but counted by no charge")
    assert "(e.g. c1, c2)" in findings[1].message
    assert not [f for f in check_readiness(store, NOW).findings if f.kind == "unmatched_events"]

    totals = ingestion(store, NOW, 60)["totals"]
    assert totals["unmatched"] == 3 and totals["unmatched_by_reason"] == {"unpriced": 3}

    # 120,000 x 0.00001 + 2,000,000 x 0.0000006 = 1.20 + 1.20: the claude-3 tokens are flagged, not lost
    assert _total(store) == Decimal("2.40")

    save_version(store, catalog_document(PRICED), 1)
    _, catalog = current(store)
    result = reprocess(store, catalog, NOW)
    # c1 now lands on the claude line (+ 500,000 x 0.000002 = 1.00); c2's model and the images stay unpriced
    assert result["matched"] == 1 and result["still_unmatched"] == {"unpriced": 2}
    assert _total(store) == Decimal("3.40")
    store.dispose()


def test_events_a_charge_counts_are_never_unpriced(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, PRICED)
    _, catalog = current(store)
    report = import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", EVENTS[:3]), NOW)
    assert dict(report.flags) == {} and report.as_dict()["unpriced"] == []
    assert _total(store) == Decimal("3.40")
    store.dispose()


# one stream split by model over three charged meters (a number and a boolean among the filter
# values: filters compare text forms) and one meter no charge uses; `other` is charged by no plan
SPLIT = """
billing_entity: {timezone: UTC, currency: EUR}
meters:
  - {code: a_calls, source: llm, aggregation: count, filters: {model: [a]}}
  - {code: b_tokens, source: llm, aggregation: sum, field: tokens, filters: {model: [b, 1]}}
  - {code: t_users, source: llm, aggregation: unique_count, field: user, filters: {model: [true]}}
  - {code: x_calls, source: llm, aggregation: count, filters: {model: [x]}}
  - {code: other, aggregation: count}
plans:
  - code: ai
    currency: EUR
    charges:
      - {code: a, meter: a_calls, model: per_unit, unit_amount: "1"}
      - {code: b, meter: b_tokens, model: per_unit, unit_amount: "1"}
      - {code: t, meter: t_users, model: per_unit, unit_amount: "1"}
customers:
  - {reference: acme, currency: EUR, tax_rate: "0", country: NL}
subscriptions:
  - {reference: acme-ai, customer: acme, plan: ai, start: 2026-01-01}
"""
MISSING = object()
DRAWN = st.lists(st.tuples(
    st.sampled_from(["llm", "llm", "llm", "other"]),
    st.sampled_from([MISSING, None, "a", "b", "1", 1, Decimal("1.0"), 1.5, True, "true", False, "x", "z", {"k": 1}]),
    st.sampled_from([MISSING, None, 0, 7, Decimal("2.5"), "3", True]),
    st.sampled_from([MISSING, None, "u1", "u2", 3, [1]]),
), max_size=30)


def test_every_accepted_event_is_counted_by_a_charge_or_unpriced(db_url: str) -> None:
    """Property: the events the charged meters count (in SQL, at the invoice run) are exactly the
    matched ones; every other accepted event is unpriced."""
    store, _ = workspace(db_url, SPLIT)
    _, catalog = current(store)
    charged = [catalog.meters[code] for code in ("a_calls", "b_tokens", "t_users")]
    january = Window(0, "acme", to_micros(datetime(2026, 1, 1, tzinfo=UTC)), to_micros(datetime(2026, 2, 1, tzinfo=UTC)),
                     "acme-ai", True)

    @settings(max_examples=30, deadline=None)
    @given(drawn=DRAWN)
    def check(drawn: list) -> None:
        environment = f"p{uuid.uuid4().hex[:10]}"  # each example its own events
        raws = []
        for i, (meter, model, tokens, user) in enumerate(drawn):
            drawn_properties = {"model": model, "tokens": tokens, "user": user}
            properties = {key: value for key, value in drawn_properties.items() if value is not MISSING}
            raws.append(RawEvent(f"e{i}", "acme", meter, f"2026-01-{i % 28 + 1:02d}T10:00:00Z", properties, i + 1))
        report = ImportReport("drawn", False)
        import_records(store, catalog, raws, NOW, report, environment=environment, background=False)
        statuses = count_by_status(store, environment)
        assert set(statuses) <= {"matched", "unpriced"}
        assert sum(statuses.values()) == report.accepted
        # the invoice run counts matched events only: let it count every accepted one, to see which
        # of them its SQL would have billed. The charged meters' filters are disjoint: none twice.
        with store.engine.begin() as connection:
            connection.execute(update(events).where(events.c.environment == environment).values(status="matched"))
        counted = aggregate_usage(store, [january], charged, environment)
        assert sum(usage.events for usage in counted.values()) == statuses.get("matched", 0)

    try:
        check()
    finally:
        store.dispose()


def test_the_plan_in_force_at_the_event_time_decides(db_url: str, tmp_path: Path) -> None:
    """From Jan 15 acme is on a plan that charges claude-3 tokens too: the same event is unpriced
    before the change, matched after it."""
    changed = PRICED.replace("  - code: ai\n", "  - code: ai_plus\n").replace(
        "plans:\n", "plans:\n" + CATALOG.split("plans:\n")[1].split("customers:")[0]).replace(
        "plan: ai, start: 2026-01-01}", "plan: ai, start: 2026-01-01, changes: [{at: 2026-01-15, plan: ai_plus}]}")
    store, _ = workspace(db_url, changed)
    _, catalog = current(store)
    claude = [{**_tokens("before", "claude-3", 10), "timestamp": "2026-01-14T23:59:59Z"},
              {**_tokens("after", "claude-3", 10), "timestamp": "2026-01-15T00:00:00Z"}]
    import_file(store, catalog, write_jsonl(tmp_path / "c.jsonl", claude), NOW)
    assert {e.id: e.status for e in find_events(store)} == {"before": "unpriced", "after": "matched"}
    store.dispose()


def test_the_reason_given_for_one_event() -> None:
    """The validator's verdict and its reason, for the worked example's catalog."""
    from ratecard.catalog import build_catalog
    from ratecard.ingest.validate import EventValidator

    validator = EventValidator(build_catalog(catalog_document(CATALOG)), NOW)
    ts = to_micros(datetime(2026, 1, 20, 10, tzinfo=UTC))
    assert validator.unpriced_reason("acme", ts, "tokens", None, {"model": "gpt-4o", "tokens": 1}) is None
    assert validator.unpriced_reason("acme", ts, "tokens", None, {"model": "claude-3", "tokens": 1}) == "filtered_out"
    assert validator.unpriced_reason("acme", ts, "tokens", None, {"model": "gpt-4o"}) == "filtered_out"  # no field
    assert validator.unpriced_reason("acme", ts, "tokens", "acme-ai") == "filtered_out"
    assert validator.unpriced_reason("acme", ts, "images", None, {}) == "meter_not_charged"
