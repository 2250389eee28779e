"""`invoices finalize --due`: grace period, hold, and two finalizers at once (gapless numbers)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from ratecard.billing.finalize import finalize_due
from ratecard.billing.run import generate_invoices
from ratecard.ingest.importer import import_file
from ratecard.store.invoice_states import set_hold
from ratecard.store.invoices import list_invoices

from .scenario import EVENTS, NOW, current, workspace, write_jsonl

RATECARD = Path(sys.executable).parent / "ratecard"


def test_grace_period_and_hold(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    version, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", EVENTS), NOW)
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    opening, closing = list_invoices(store)
    # the Feb 1 (Berlin) boundary is Jan 31 23:00 UTC; 7 hours later it is still within grace
    seven_hours_after = datetime(2026, 2, 1, 6, tzinfo=UTC)
    report = finalize_due(store, seven_hours_after, "RC")
    assert [i.id for i in report.finalized] == [opening.id] and report.within_grace == 1
    assert report.finalized[0].number == "RC-000001"
    assert set_hold(store, closing.id, True)
    later = finalize_due(store, seven_hours_after + timedelta(hours=2), "RC")
    assert later.finalized == [] and later.on_hold == 1
    assert set_hold(store, closing.id, False)
    released = finalize_due(store, seven_hours_after + timedelta(hours=2), "RC")
    assert [i.number for i in released.finalized] == ["RC-000002"]
    assert not set_hold(store, closing.id, True)  # a final invoice cannot be held
    store.dispose()


def _many_customers(count: int) -> str:
    customers = "\n".join(f"  - {{reference: c{i:04d}, currency: EUR, tax_rate: '21', country: NL}}"
                          for i in range(count))
    subscriptions = "\n".join(f"  - {{reference: s{i:04d}, customer: c{i:04d}, plan: basic, start: 2026-01-01}}"
                              for i in range(count))
    return ("plans:\n  - {code: basic, currency: EUR, charges: [{code: base, model: flat, amount: '10.00'}]}\n"
            f"customers:\n{customers}\nsubscriptions:\n{subscriptions}\n")


@pytest.mark.slow
def test_two_finalizers_at_once_finalize_each_invoice_once_with_gapless_numbers(db_url: str) -> None:
    store, _ = workspace(db_url, _many_customers(150))
    version, catalog = current(store)
    generate_invoices(store, catalog, version, date(2026, 3, 1), NOW)  # 3 invoices each: 450 drafts
    drafts = len(list_invoices(store, status="draft"))
    environment = {**os.environ, "RATECARD_NOW": "2026-11-26T00:00:00Z"}
    command = [str(RATECARD), "invoices", "finalize", "--due", "--json", "--db", db_url]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
    final = list_invoices(store, status="final")
    numbers = sorted(invoice.number for invoice in final)
    assert len(final) == drafts == 450
    assert numbers == [f"RC-{n:06d}" for n in range(1, drafts + 1)]  # each once, no gaps
    import json

    finalized_by = [len(json.loads(out)["finalized"]) for out, _ in outputs]
    assert sum(finalized_by) == drafts  # no invoice counted by both processes
    store.dispose()
