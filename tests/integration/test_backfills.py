"""Backfills on SQLite and PostgreSQL: a time window of historical usage imported while pending
(stored, never billed), billed at close (drafts refreshed, each changed final invoice corrected
by one credit note and one new invoice), undone by revert. Amounts are computed by hand below.

The catalog: one plan, base 10.00 a month in advance, calls 0.50 each, tokens 0.01 each.
acme pays 20 % tax, beta none; both subscribed from 2026-09-01 on the 1st, in UTC. The invoice
cut at Nov 1 bills October's usage (arrears) and November's base fee (advance).
"""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest

from ratecard.billing.export import invoice_document
from ratecard.billing.run import generate_invoices
from ratecard.domain.instants import to_micros
from ratecard.golive.backfill import close_backfill, import_target, revert_backfill
from ratecard.ingest.importer import import_file
from ratecard.store import Store
from ratecard.store.backfills import BackfillError, create_backfill, get_backfill, list_backfills
from ratecard.store.events import list_events
from ratecard.store.invoices import InvoiceRecord, billed_lines, change_status, list_invoices

from ..e2e.harness import Cli
from .scenario import NOW, current, workspace, write_jsonl

CATALOG = """
billing_entity: {name: Backfill BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: calls, aggregation: count}
  - {code: tokens, aggregation: sum, field: tokens}
plans:
  - code: basic
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "10.00", timing: advance}
      - {code: calls, meter: calls, model: per_unit, unit_amount: "0.50"}
      - {code: tokens, meter: tokens, model: per_unit, unit_amount: "0.01"}
customers:
  - {reference: acme, name: Acme, country: NL, currency: EUR, tax_rate: "20"}
  - {reference: beta, name: Beta, country: NL, currency: EUR, tax_rate: "0"}
subscriptions:
  - {reference: acme-basic, customer: acme, plan: basic, start: 2026-09-01, billing_anchor: 1}
  - {reference: beta-basic, customer: beta, plan: basic, start: 2026-09-01, billing_anchor: 1}
"""

def _us(text: str) -> int:
    from datetime import datetime

    return to_micros(datetime.fromisoformat(text.replace("Z", "+00:00")))


OCT_1, NOV_1 = _us("2026-10-01T00:00:00Z"), _us("2026-11-01T00:00:00Z")


def _call(event_id: str, timestamp: str, customer: str = "acme") -> dict:
    return {"id": event_id, "customer": customer, "meter": "calls", "timestamp": timestamp}


def _tokens(event_id: str, timestamp: str, tokens: int, customer: str = "acme") -> dict:
    return {"id": event_id, "customer": customer, "meter": "tokens", "timestamp": timestamp,
            "properties": {"tokens": tokens}}


STORED = [
    _call("s1", "2026-09-10T10:00:00Z"),  # September: billed at Oct 1
    _call("o1", "2026-10-05T10:00:00Z"),
    _call("o2", "2026-10-31T23:59:59Z"),
    _call("b1", "2026-10-06T10:00:00Z", "beta"),
]


def _setup(db_url: str, tmp_path: Path) -> Store:
    store, _ = workspace(db_url, CATALOG)
    version, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "stored.jsonl", STORED), NOW)
    generate_invoices(store, catalog, version, NOW.date().replace(day=1), NOW)
    return store


def _cut(store: Store, subscription: str, issue_date: str = "2026-11-01") -> InvoiceRecord:
    """The invoice standing for a cut: the latest revision of kind invoice."""
    found = [i for i in list_invoices(store) if i.subscription == subscription and i.kind == "invoice"
             and i.boundary_ts == _us(f"{issue_date}T00:00:00Z")]
    return max(found, key=lambda i: i.revision)


def _amounts(invoice: InvoiceRecord) -> dict[str, tuple[Decimal, Decimal]]:
    return {line.code: (line.quantity, line.amount) for line in invoice.lines}


def _backfill_import(store: Store, tmp_path: Path, backfill_id: str, events: list[dict], name: str = "bf.jsonl"):
    _, catalog = current(store)
    validator, writer_factory = import_target(store, catalog, NOW, backfill_id)
    return import_file(store, catalog, write_jsonl(tmp_path / name, events), NOW, validator=validator,
                       writer_factory=writer_factory)


def test_create_refuses_overlapping_pending_backfills(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    first = create_backfill(store, "live", OCT_1, NOV_1, None, False, 1)
    assert (first.status, first.replace, first.customer) == ("pending", False, None)
    with pytest.raises(BackfillError, match=f"overlaps pending backfill {first.id}"):
        create_backfill(store, "live", _us("2026-10-15T00:00:00Z"), _us("2026-11-15T00:00:00Z"), None, False, 2)
    with pytest.raises(BackfillError, match="overlaps"):  # a customer's window inside an all-customer one
        create_backfill(store, "live", OCT_1, NOV_1, "acme", False, 2)
    touching = create_backfill(store, "live", NOV_1, _us("2026-12-01T00:00:00Z"), None, True, 3)  # [from, to)
    with pytest.raises(BackfillError, match="--to must be after --from"):
        create_backfill(store, "live", NOV_1, NOV_1, None, False, 4)
    # one customer's pending backfill does not block another customer's
    close_backfill(store, first.id, NOW)
    create_backfill(store, "live", OCT_1, NOV_1, "acme", False, 5)
    create_backfill(store, "live", OCT_1, NOV_1, "beta", False, 6)
    with pytest.raises(BackfillError, match="overlaps"):
        create_backfill(store, "live", OCT_1, NOV_1, "beta", False, 7)
    assert [b.status for b in list_backfills(store, "live")] == ["closed", "pending", "pending", "pending"]
    assert [b.id for b in list_backfills(store, "live", "closed")] == [first.id]
    assert touching.replace

    # the CLI says the same: one line on stderr, exit 2, nothing created
    cli = Cli(tmp_path)
    refused = cli("backfill", "create", "--from", "2026-11-15", "--to", "2026-11-20", db=db_url)
    assert refused.code == 2 and "overlaps pending backfill" in refused.err and touching.id in refused.err
    assert len(refused.err.strip().splitlines()) == 1 and "Traceback" not in refused.err
    bad = cli("backfill", "create", "--from", "2026-10-01T00:00:00", "--to", "2026-11-01", db=db_url)
    assert bad.code == 2 and "--from" in bad.err and "timezone offset" in bad.err
    assert len(list_backfills(store, "live")) == 4
    store.dispose()


def test_events_outside_the_window_are_rejected_and_pending_events_are_not_billed(db_url: str,
                                                                                   tmp_path: Path) -> None:
    store = _setup(db_url, tmp_path)
    backfill = create_backfill(store, "live", OCT_1, NOV_1, None, False, to_micros(NOW))
    _, writer_factory = import_target(store, current(store)[1], NOW, backfill.id)
    cli = Cli(tmp_path)
    events = [
        _call("n1", "2026-10-01T00:00:00Z"),  # the window's first instant: in
        _call("n2", "2026-11-01T00:00:00Z"),  # its end is exclusive: out
        _call("n3", "2026-09-30T23:59:59Z"),  # before it: out
        _tokens("n4", "2026-10-20T10:00:00Z", 150),
    ]
    result = cli("events", "import", write_jsonl(tmp_path / "bf.jsonl", events), "--backfill", backfill.id, "--json",
                 db=db_url)
    assert result.code == 1, result  # rejected events: exit 1, like any import
    report = result.json()
    assert (report["backfill"], report["read"], report["stored"]) == (backfill.id, 4, 2)
    assert report["rejected"] == {"outside_backfill": 2}
    assert [(r["line"], r["id"]) for r in report["rejections"]] == [(2, "n2"), (3, "n3")]
    assert f"outside backfill {backfill.id}'s window [2026-10-01T00:00:00Z, 2026-11-01T00:00:00Z)" in \
        report["rejections"][0]["message"]
    assert get_backfill(store, "live", backfill.id).events == 2

    # pending: stored in the backfill only; neither events nor invoices see them
    assert {e.id for e in list_events(store, limit=None)} == {"s1", "o1", "o2", "b1"}
    before = invoice_document(_cut(store, "acme-basic"))
    version, catalog = current(store)
    run = generate_invoices(store, catalog, version, NOW.date().replace(day=1), NOW)
    assert (run.created, run.updated) == (0, 0)
    assert invoice_document(_cut(store, "acme-basic")) == before

    # an unknown backfill or one that is no longer pending is refused, whole, exit 2
    missing = cli("events", "import", tmp_path / "bf.jsonl", "--backfill", "bf_nope", db=db_url)
    assert missing.code == 2 and "bf_nope" in missing.err and len(missing.err.strip().splitlines()) == 1
    close_backfill(store, backfill.id, NOW)
    closed = cli("events", "import", tmp_path / "bf.jsonl", "--backfill", backfill.id, db=db_url)
    assert closed.code == 2 and "is closed" in closed.err
    # an import that began while it was pending stops at its next batch: nothing lands after close
    writer = writer_factory(store)
    with pytest.raises(BackfillError, match="is closed"):
        writer.write([("live", "late-1", "acme", "calls", OCT_1, "{}", 0, "matched", False)])
    assert get_backfill(store, "live", backfill.id).events == 2
    store.dispose()


def test_close_refreshes_drafts_and_corrects_a_final_invoice_once(db_url: str, tmp_path: Path) -> None:
    store = _setup(db_url, tmp_path)
    acme, beta = _cut(store, "acme-basic"), _cut(store, "beta-basic")
    # acme at Nov 1: base 10.00 + 2 calls x 0.50 = 11.00, tax 20 % 2.20, total 13.20
    assert (acme.subtotal, acme.tax, acme.total) == (Decimal("11.00"), Decimal("2.20"), Decimal("13.20"))
    assert _amounts(beta)["calls"] == (Decimal(1), Decimal("0.50"))
    assert beta.total == Decimal("10.50")
    original = change_status(store, acme.id, "final", to_micros(NOW), "RC")
    assert original.number == "RC-000001"

    backfill = create_backfill(store, "live", OCT_1, NOV_1, None, False, to_micros(NOW))
    report = _backfill_import(store, tmp_path, backfill.id, [
        _call("n1", "2026-10-02T10:00:00Z"), _call("n2", "2026-10-03T10:00:00Z"), _call("n3", "2026-10-04T10:00:00Z"),
        _tokens("n4", "2026-10-20T10:00:00Z", 150),
        _call("n5", "2026-10-21T10:00:00Z", "beta"),
        _call("o1", "2026-10-05T10:00:00Z"),  # already stored: the same event, never counted twice
    ])
    assert (report.stored, dict(report.rejected)) == (6, {})

    result = close_backfill(store, backfill.id, NOW)
    assert result["events"] == {"added": 5, "already_stored": 1, "replaced": 0}
    assert result["backfill"]["status"] == "closed"
    assert (result["drafts_created"], result["drafts_refreshed"]) == (0, 1)  # beta's draft

    # beta's draft is simply refreshed: base 10.00 + 2 calls x 0.50, no tax = 11.00
    refreshed = _cut(store, "beta-basic")
    assert (refreshed.id, refreshed.status, refreshed.total) == (beta.id, "draft", Decimal("11.00"))

    # acme's final invoice is untouched; one credit note negates it, one new invoice bills the new figures
    assert invoice_document(next(i for i in list_invoices(store) if i.id == original.id)) == \
        invoice_document(original)
    notes = [i for i in list_invoices(store) if i.kind == "credit_note"]
    replacements = [i for i in list_invoices(store) if i.corrects is not None and i.kind == "invoice"]
    assert len(notes) == 1 and len(replacements) == 1
    note, new = notes[0], replacements[0]
    assert (note.number, note.status, note.corrects, note.revision) == ("CN-000001", "final", original.id, 1)
    assert (note.subtotal, note.tax, note.total) == (Decimal("-11.00"), Decimal("-2.20"), Decimal("-13.20"))
    # every line of the original, negated (quantity and amount), over the same service period
    assert [(line.code, line.quantity, line.unit_amount, line.amount, line.service_start, line.service_end)
            for line in note.lines] == [
        ("base", Decimal(-1), Decimal("10.00"), Decimal("-10.00"), "2026-11-01", "2026-12-01"),
        ("calls", Decimal(-2), Decimal("0.50"), Decimal("-1.00"), "2026-10-01", "2026-11-01"),
        ("tokens", Decimal(0), Decimal("0.01"), Decimal("0.00"), "2026-10-01", "2026-11-01")]
    tokens_line = invoice_document(note)["lines"][2]
    assert (tokens_line["quantity"], tokens_line["amount"]) == ("0", "0.00")  # never "-0.00"
    # the new invoice: base 10.00, 5 calls x 0.50 = 2.50, 150 tokens x 0.01 = 1.50; 14.00 + 20 % = 16.80
    assert (new.number, new.status, new.corrects, new.revision) == ("RC-000002", "final", original.id, 1)
    assert _amounts(new) == {"base": (Decimal(1), Decimal("10.00")), "calls": (Decimal(5), Decimal("2.50")),
                             "tokens": (Decimal(150), Decimal("1.50"))}
    assert (new.subtotal, new.tax, new.total) == (Decimal("14.00"), Decimal("2.80"), Decimal("16.80"))
    assert new.issue_date == note.issue_date == "2026-11-26"
    assert result["corrections"] == [{
        "customer": "acme", "subscription": "acme-basic", "issue_date": "2026-11-01",
        "original": {"id": original.id, "number": "RC-000001", "total": "13.20"},
        "credit_note": {"id": note.id, "number": "CN-000001", "total": "-13.20"},
        "replacement": {"id": new.id, "number": "RC-000002", "total": "16.80"},
        "difference": "3.60",
    }]

    # reconciliation reads what the customer is billed now: the new invoice, not the original or its credit note
    cut = [(line[1], line[4], line[8]) for line in billed_lines(store) if line[8] in (original.id, note.id, new.id)]
    assert sorted(cut) == [("base", Decimal(1), new.id), ("calls", Decimal(5), new.id),
                           ("tokens", Decimal(150), new.id)]

    # closing again, or running invoices, changes nothing
    count = len(list_invoices(store))
    again = close_backfill(store, backfill.id, NOW)
    assert again["already_done"] and again["corrections"] == [] and again["events"]["added"] == 0
    version, catalog = current(store)
    run = generate_invoices(store, catalog, version, NOW.date().replace(day=1), NOW)
    assert (run.created, run.updated) == (0, 0)
    assert len(list_invoices(store)) == count

    # the export shows what each document is and what it corrects
    cli = Cli(tmp_path)
    exported = cli("invoices", "export", "--status", "final", db=db_url).json()
    assert [(d["number"], d["kind"], d["corrects"], d["total"]) for d in exported] == [
        ("RC-000001", "invoice", None, "13.20"), ("CN-000001", "credit_note", original.id, "-13.20"),
        ("RC-000002", "invoice", original.id, "16.80")]
    shown = cli("invoices", "show", "CN-000001", db=db_url)
    assert shown.code == 0 and "credit note" in shown.out and "credits RC-000001" in shown.out
    assert "replaces RC-000001" in cli("invoices", "show", "RC-000002", db=db_url).out
    listed = cli("invoices", "list", "--status", "final", db=db_url)
    assert "credit note" in listed.out and listed.out.count("RC-000001") == 3  # itself + corrected twice

    # revert: the backfill's events leave, the replacement is corrected again back to 13.20
    reverted = revert_backfill(store, backfill.id, NOW)
    assert reverted["events"] == {"removed": 5, "restored": 0}
    assert [(c["original"]["number"], c["credit_note"]["number"], c["credit_note"]["total"],
             c["replacement"]["number"], c["replacement"]["total"], c["difference"]) for c in reverted["corrections"]] \
        == [("RC-000002", "CN-000002", "-16.80", "RC-000003", "13.20", "-3.60")]
    current_acme = _cut(store, "acme-basic")
    assert (current_acme.number, current_acme.revision, current_acme.corrects) == ("RC-000003", 2, new.id)
    assert _amounts(current_acme) == _amounts(original)
    assert _cut(store, "beta-basic").total == Decimal("10.50")
    assert {e.id for e in list_events(store, limit=None)} == {"s1", "o1", "o2", "b1"}
    assert get_backfill(store, "live", backfill.id).status == "reverted"
    with pytest.raises(BackfillError, match="reverted"):
        close_backfill(store, backfill.id, NOW)
    assert revert_backfill(store, backfill.id, NOW)["already_done"]
    store.dispose()


def test_replace_swaps_the_window_events_and_revert_restores_them(db_url: str, tmp_path: Path) -> None:
    store = _setup(db_url, tmp_path)
    backfill = create_backfill(store, "live", OCT_1, NOV_1, None, True, to_micros(NOW))
    _backfill_import(store, tmp_path, backfill.id, [
        _tokens("o1", "2026-10-05T10:00:00Z", 100),  # a corrected o1: same id, now a tokens event
        _call("r1", "2026-10-07T10:00:00Z"),
    ])
    result = close_backfill(store, backfill.id, NOW)
    # every stored event of the window (o1, o2 of acme, b1 of beta) is replaced; September's s1 stays
    assert result["events"] == {"added": 2, "already_stored": 0, "replaced": 3}
    stored = {e.id: e.meter for e in list_events(store, limit=None)}
    assert stored == {"s1": "calls", "o1": "tokens", "r1": "calls"}
    # acme: base 10.00 + 1 call 0.50 + 100 tokens 1.00 = 11.50, tax 2.30; beta: base 10.00 + no calls
    acme, beta = _cut(store, "acme-basic"), _cut(store, "beta-basic")
    assert (acme.status, acme.subtotal, acme.total) == ("draft", Decimal("11.50"), Decimal("13.80"))
    assert _amounts(beta)["calls"] == (Decimal(0), Decimal("0.00")) and beta.total == Decimal("10.00")
    assert result["corrections"] == []  # only drafts in the window
    # the September cut (Oct 1) is not touched
    assert _amounts(_cut(store, "acme-basic", "2026-10-01"))["calls"] == (Decimal(1), Decimal("0.50"))

    reverted = revert_backfill(store, backfill.id, NOW)
    assert reverted["events"] == {"removed": 2, "restored": 3}
    assert {e.id: e.meter for e in list_events(store, limit=None)} == {
        "s1": "calls", "o1": "calls", "o2": "calls", "b1": "calls"}
    assert _cut(store, "acme-basic").total == Decimal("13.20")
    assert _cut(store, "beta-basic").total == Decimal("10.50")
    store.dispose()


def test_a_customer_scoped_replace_leaves_other_customers_alone(db_url: str, tmp_path: Path) -> None:
    store = _setup(db_url, tmp_path)
    backfill = create_backfill(store, "live", OCT_1, NOV_1, "acme", True, to_micros(NOW))
    report = _backfill_import(store, tmp_path, backfill.id, [
        _call("r1", "2026-10-07T10:00:00Z"),
        _call("r2", "2026-10-08T10:00:00Z", "beta"),  # not the backfill's customer
    ])
    assert dict(report.rejected) == {"outside_backfill": 1}
    assert "'beta' is not backfill" in report.rejections[0].message
    result = close_backfill(store, backfill.id, NOW)
    assert result["events"] == {"added": 1, "already_stored": 0, "replaced": 2}  # acme's o1, o2
    assert {e.id for e in list_events(store, limit=None)} == {"s1", "r1", "b1"}
    assert _cut(store, "acme-basic").total == Decimal("12.60")  # 10.00 + 1 call 0.50, + 20 %
    assert _cut(store, "beta-basic").total == Decimal("10.50")
    store.dispose()


def test_revert_order_pending_revert_and_later_overlapping_close(db_url: str, tmp_path: Path) -> None:
    store = _setup(db_url, tmp_path)
    # a pending backfill reverted: its events were never billed, nothing to correct
    pending = create_backfill(store, "live", OCT_1, NOV_1, None, False, 1)
    _backfill_import(store, tmp_path, pending.id, [_call("p1", "2026-10-09T10:00:00Z")])
    undone = revert_backfill(store, pending.id, NOW)
    assert undone["events"] == {"removed": 0, "restored": 0} and undone["backfill"]["status"] == "reverted"
    assert "p1" not in {e.id for e in list_events(store, limit=None)}

    # two closed backfills over the same window: the later one must be reverted first
    first = create_backfill(store, "live", OCT_1, NOV_1, None, True, 2)
    _backfill_import(store, tmp_path, first.id, [_call("f1", "2026-10-09T10:00:00Z")])
    close_backfill(store, first.id, NOW)
    second = create_backfill(store, "live", _us("2026-10-15T00:00:00Z"), NOV_1, None, True, 3)
    _backfill_import(store, tmp_path, second.id, [_call("g1", "2026-10-20T10:00:00Z")], "bf2.jsonl")
    close_backfill(store, second.id, NOW)
    with pytest.raises(BackfillError, match=f"backfill {second.id} .* revert it first"):
        revert_backfill(store, first.id, NOW)
    revert_backfill(store, second.id, NOW)
    revert_backfill(store, first.id, NOW)
    assert {e.id for e in list_events(store, limit=None)} == {"s1", "o1", "o2", "b1"}
    assert _cut(store, "acme-basic").total == Decimal("13.20")
    store.dispose()


def test_two_closes_at_once_issue_one_correction_with_gapless_numbers(db_url: str, tmp_path: Path) -> None:
    store = _setup(db_url, tmp_path)
    change_status(store, _cut(store, "acme-basic").id, "final", to_micros(NOW), "RC")
    backfill = create_backfill(store, "live", OCT_1, NOV_1, None, False, to_micros(NOW))
    _backfill_import(store, tmp_path, backfill.id, [_call("n1", "2026-10-02T10:00:00Z")])
    results: list[dict] = []
    errors: list[BaseException] = []

    def close() -> None:
        try:
            results.append(close_backfill(store, backfill.id, NOW))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=close) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r["already_done"] for r in results) == [False, True]
    assert sum(len(r["corrections"]) for r in results) == 1
    numbers = sorted(i.number for i in list_invoices(store) if i.number)
    assert numbers == ["CN-000001", "RC-000001", "RC-000002"]
    # 3 calls: 10.00 + 1.50 = 11.50, + 20 % = 13.80
    assert _cut(store, "acme-basic").total == Decimal("13.80")
    store.dispose()
