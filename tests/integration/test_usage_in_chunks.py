"""An invoice run over more windows than it reads at once (billing.run.USAGE_CHUNK) reads the usage
from roll-ups in chunks of whole customers: the invoices are those of one read, including a
customer whose events are split between two subscriptions by the one they name. Usage read from
the raw events is read in one go."""

from __future__ import annotations

from pathlib import Path

import pytest

from ratecard.billing import run
from ratecard.billing.export import invoices_json
from ratecard.ingest.importer import import_file
from ratecard.services.rollups import rebuild_rollups
from ratecard.store.invoices import list_invoices

from .scenario import NOW, current, workspace, write_jsonl

CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
  - {code: api_calls, aggregation: count}
plans:
  - code: pro
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "49.00", timing: advance}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.0125"}
      - {code: tokens, meter: tokens, model: per_unit, unit_amount: "0.002"}
customers:
  - {reference: a, currency: EUR, tax_rate: "21"}
  - {reference: b, currency: EUR, tax_rate: "21"}
  - {reference: c, currency: EUR, tax_rate: "21", timezone: Asia/Kolkata}
subscriptions:
  - {reference: a-1, customer: a, plan: pro, start: 2026-09-01}
  - {reference: b-1, customer: b, plan: pro, start: 2026-09-01}
  - {reference: c-1, customer: c, plan: pro, start: 2026-09-01}
  - {reference: a-2, customer: a, plan: pro, start: 2026-09-15, requires_reference: true}
"""


def _events() -> list[dict]:
    events = []
    for day in range(1, 29):
        for customer, named in (("a", None), ("a", "a-2"), ("b", None), ("c", None)):
            event = {"id": f"{customer}-{named}-{day}", "customer": customer, "meter": "tokens",
                     "timestamp": f"2026-{9 + day % 2}-{day:02d}T18:45:00Z", "properties": {"tokens": day * 10}}
            if named:
                event["subscription"] = named
            events += [event, {**event, "id": event["id"] + "-call", "meter": "api_calls"}]
    return events


def test_a_run_reading_usage_in_chunks_bills_as_one_read(db_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store, version = workspace(db_url, CATALOG)
    try:
        _, catalog = current(store)
        import_file(store, catalog, write_jsonl(tmp_path / "events.jsonl", _events()), NOW)
        until = NOW.date()
        reads: list[int] = []
        aggregate = run.aggregate_usage

        def counted(store, windows, meters, environment):
            reads.append(len({window.customer for window in windows}))
            return aggregate(store, windows, meters, environment)

        monkeypatch.setattr(run, "aggregate_usage", counted)
        monkeypatch.setattr(run, "USAGE_CHUNK", 1)
        raw = run.generate_invoices(store, catalog, version, until, NOW)  # no roll-ups yet: one read
        assert reads == [3] and raw.created > 0 and raw.failures == []
        written = invoices_json(list_invoices(store))
        rebuild_rollups(store, "live", NOW)
        chunked = run.generate_invoices(store, catalog, version, until, NOW)
        assert reads[1:] == [1, 1, 1]  # one read per customer, a's two subscriptions together
        monkeypatch.setattr(run, "USAGE_CHUNK", 10_000)
        whole = run.generate_invoices(store, catalog, version, until, NOW)
        assert reads[4:] == [3]
        for again in (chunked, whole):  # the same drafts: recomputed, unchanged
            assert (again.created, again.updated, again.unchanged) == (0, 0, raw.created)
        assert invoices_json(list_invoices(store)) == written
        quantities = {(line["code"], invoice["subscription"]) for invoice in written for line in invoice["lines"]
                      if line["code"] in ("tokens", "calls") and line["quantity"] != "0"}
        assert ("tokens", "a-2") in quantities and ("tokens", "a-1") in quantities
    finally:
        store.dispose()
