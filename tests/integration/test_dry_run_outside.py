"""The dry run says why a known customer's event matches no subscription: before its start,
after its end, or in a gap between two subscriptions."""

from __future__ import annotations

from pathlib import Path

from ratecard.ingest.importer import import_file
from ratecard.ingest.validate import OUTSIDE_REASONS
from ratecard.store.events import count_by_status

from .scenario import NOW, current, workspace, write_jsonl

CATALOG = """
meters:
  - {code: calls, aggregation: count}
plans:
  - {code: api, currency: EUR, charges: [{code: calls, meter: calls, model: per_unit, unit_amount: "0.10"}]}
customers:
  - {reference: gappy, currency: EUR, tax_rate: "0", country: NL}
  - {reference: gone, currency: EUR, tax_rate: "0", country: NL}
subscriptions:
  - {reference: gappy-1, customer: gappy, plan: api, start: 2026-02-01, end: 2026-04-01}
  - {reference: gappy-2, customer: gappy, plan: api, start: 2026-06-01}
  - {reference: gone-1, customer: gone, plan: api, start: 2026-01-01, end: 2026-03-01}
"""


# every reason is listed for a customer, most of them 0
NONE = dict.fromkeys(OUTSIDE_REASONS, 0)


def _event(number: int, customer: str, day: str) -> dict:
    return {"id": f"e{number}", "customer": customer, "meter": "calls", "timestamp": f"{day}T12:00:00Z"}


def test_dry_run_names_why_events_match_no_subscription(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    events = [_event(1, "gappy", "2026-01-15"), _event(2, "gappy", "2026-03-15"), _event(3, "gappy", "2026-04-15"),
              _event(4, "gappy", "2026-05-31"), _event(5, "gappy", "2026-07-01"), _event(6, "gone", "2026-03-01"),
              _event(7, "gone", "2026-02-28")]
    report = import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", events), NOW, dry_run=True)
    assert report.flags == {"no_subscription": 4}
    assert report.as_dict()["outside_subscriptions"] == [
        {**NONE, "customer": "gappy", "before_start": 1, "after_end": 0, "between_subscriptions": 2},
        {**NONE, "customer": "gone", "before_start": 0, "after_end": 1, "between_subscriptions": 0},
    ]
    assert count_by_status(store, "live") == {}  # a dry run writes nothing
    store.dispose()


def test_a_backfill_import_reports_events_outside_subscriptions_too(db_url: str, tmp_path: Path) -> None:
    from ratecard.domain.instants import to_micros
    from ratecard.golive.backfill import import_target
    from ratecard.store.backfills import create_backfill

    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    start, end = to_micros(NOW.replace(year=2026, month=4, day=1)), to_micros(NOW.replace(year=2026, month=6, day=1))
    backfill_id = create_backfill(store, "live", start, end, None, False, 1).id
    validator, writer_factory = import_target(store, catalog, NOW, backfill_id)
    events = [_event(1, "gappy", "2026-04-15"), _event(2, "gone", "2026-05-01")]
    report = import_file(store, catalog, write_jsonl(tmp_path / "b.jsonl", events), NOW, validator=validator,
                         writer_factory=writer_factory)
    assert report.as_dict()["outside_subscriptions"] == [
        {**NONE, "customer": "gappy", "before_start": 0, "after_end": 0, "between_subscriptions": 1},
        {**NONE, "customer": "gone", "before_start": 0, "after_end": 1, "between_subscriptions": 0},
    ]
    store.dispose()
