"""Draft references (DRAFT-<n>) are counted per environment: sandbox's runs never shift live's, a
reference is looked up in the caller's environment only, and concurrent runs never share one."""

from __future__ import annotations

import dataclasses
import threading
from datetime import date
from decimal import Decimal

import pytest

from ratecard.cli import main
from ratecard.golive.readiness import readiness
from ratecard.golive.reconcile import ratecard_lines
from ratecard.services import invoices as service
from ratecard.services.errors import Conflict, NotFound
from ratecard.store import Store
from ratecard.store.catalogs import save_version
from ratecard.store.corrections import credit_note_for, save_correction
from ratecard.store.invoices import InvoiceRecord, list_invoices, save_drafts
from tests.api.conftest import Api  # the `api` fixture comes from this folder's conftest
from tests.integration.scenario import NOW, catalog_document, current, workspace

# The scenario's subscription starts 2026-01-15 with a flat fee in advance: one draft per cut,
# Jan 15, Feb 1, Mar 1, Apr 1.


@pytest.fixture
def store(db_url: str):
    """Both environments hold the same catalog; sandbox ran first, four drafts, then live, two."""
    store, _ = workspace(db_url)
    save_version(store, catalog_document(), 0, environment="sandbox")
    service.generate(store, date(2026, 4, 1), NOW, "sandbox")
    service.generate(store, date(2026, 2, 1), NOW, "live")
    yield store
    store.dispose()


def _references(store: Store, environment: str) -> list[str]:
    return [invoice.display_number for invoice in list_invoices(store, environment)]


def test_sandbox_runs_never_shift_live_draft_numbers(store: Store) -> None:
    assert _references(store, "sandbox") == ["DRAFT-1", "DRAFT-2", "DRAFT-3", "DRAFT-4"]
    assert _references(store, "live") == ["DRAFT-1", "DRAFT-2"]
    service.generate(store, date(2026, 3, 1), NOW, "live")  # live's next draft follows live's own
    assert _references(store, "live") == ["DRAFT-1", "DRAFT-2", "DRAFT-3"]
    service.generate(store, date(2026, 5, 1), NOW, "sandbox")
    assert _references(store, "sandbox")[-1] == "DRAFT-5"


def test_show_finalize_and_hold_act_on_the_environments_own_draft(store: Store) -> None:
    assert service.find_invoice(store, "DRAFT-4", "sandbox").issue_date == "2026-04-01"
    with pytest.raises(NotFound):
        service.find_invoice(store, "DRAFT-4", "live")  # live has two drafts; sandbox's fourth is not one of them

    service.hold_invoice(store, "DRAFT-1", True, "sandbox")
    with pytest.raises(Conflict):
        service.finalize_invoices(store, ["DRAFT-1"], NOW, "sandbox")
    [final] = service.finalize_invoices(store, ["DRAFT-1"], NOW, "live").finalized  # live's is not held
    assert (final.number, final.issue_date) == ("RC-000001", "2026-01-15")
    [sandbox_final] = service.finalize_invoices(store, ["DRAFT-2"], NOW, "sandbox").finalized
    assert (sandbox_final.number, sandbox_final.issue_date) == ("RC-000001", "2026-02-01")

    # a reference written down before finalization still finds its invoice, in its environment
    assert service.find_invoice(store, "DRAFT-1", "live").number == "RC-000001"
    assert service.find_invoice(store, "DRAFT-1", "sandbox").status == "draft"
    assert service.find_invoice(store, "draft-2", "live").status == "draft"
    for too_large in ("DRAFT-99999999999999999", "DRAFT-2147483648", "99999999999999999"):
        with pytest.raises(NotFound):
            service.find_invoice(store, too_large, "live")


def test_the_cli_names_live_drafts_by_their_own_numbers(store: Store, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RATECARD_NOW", NOW.isoformat())

    def run(*args: str, code: int = 0) -> str:
        assert main([*args, "--db", store.url]) == code
        captured = capsys.readouterr()
        return captured.out + captured.err

    shown = run("invoices", "show", "DRAFT-2")
    assert "DRAFT-2" in shown and "2026-02-01" in shown
    assert "DRAFT-2: on hold" in run("invoices", "hold", "DRAFT-2")
    assert "RC-000001: final" in run("invoices", "finalize", "DRAFT-1")
    listed = run("invoices", "list")
    assert "DRAFT-2" in listed and "DRAFT-3" not in listed  # sandbox's drafts are not live's
    assert "DRAFT-4" in run("invoices", "show", "DRAFT-4", code=2)


def test_go_live_findings_and_reconciliation_name_the_environments_drafts(store: Store) -> None:
    for environment, expected in (("sandbox", ["DRAFT-1", "DRAFT-2", "DRAFT-3", "DRAFT-4"]),
                                  ("live", ["DRAFT-1", "DRAFT-2"])):
        _, catalog = current(store)
        stale = [f.subject for f in readiness(store, catalog, NOW, environment=environment)
                 if f.kind == "draft_past_grace_period"]
        assert stale == expected
        assert sorted({line.invoice for line in ratecard_lines(store, environment)}) == expected


def test_corrections_take_the_next_numbers_of_their_environment(store: Store) -> None:
    [original] = service.finalize_invoices(store, ["DRAFT-2"], NOW, "live").finalized
    replacement = dataclasses.replace(original, id=None, number=None, revision=original.revision + 1,
                                      corrects=original.id, subtotal=Decimal("1"), tax=Decimal("0"),
                                      total=Decimal("1"), lines=[])
    saved = save_correction(store, "live", original, credit_note_for(original, "2026-03-01"), replacement,
                            1, "RC", "CN")
    assert saved is not None
    credit_note, new_invoice = saved
    assert new_invoice is not None
    assert (credit_note.draft_number, new_invoice.draft_number) == (3, 4)
    assert service.find_invoice(store, "DRAFT-3", "live").number == "CN-000001"
    service.generate(store, date(2026, 3, 1), NOW, "live")
    assert _references(store, "live")[-1] == "DRAFT-5"  # numbers are never given twice
    assert _references(store, "sandbox") == ["DRAFT-1", "DRAFT-2", "DRAFT-3", "DRAFT-4"]


def _draft(subscription: str) -> InvoiceRecord:
    return InvoiceRecord(
        id=None, number=None, customer="acme", subscription=subscription, status="draft", currency="EUR",
        timezone="UTC", boundary_ts=0, issue_date="2026-01-01", subtotal=Decimal("1"), tax=Decimal("0"),
        total=Decimal("1"), tax_rate=Decimal("0"), catalog_version=1)


def test_concurrent_runs_of_one_environment_never_share_a_number(db_url: str) -> None:
    store, _ = workspace(db_url)
    rounds, size = 6, 15
    start = threading.Barrier(3)
    failures: list[BaseException] = []

    def writer(name: str, environment: str) -> None:
        try:
            start.wait()
            for batch in range(rounds):
                drafts = [_draft(f"{name}-{batch}-{n}") for n in range(size)]
                assert save_drafts(store, environment, drafts, 1) == (size, 0)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=args)
               for args in (("a", "live"), ("b", "live"), ("c", "sandbox"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    live = sorted(invoice.draft_number or 0 for invoice in list_invoices(store, "live"))
    sandbox = sorted(invoice.draft_number or 0 for invoice in list_invoices(store, "sandbox"))
    store.dispose()
    assert live == list(range(1, 2 * rounds * size + 1))
    assert sandbox == list(range(1, rounds * size + 1))


def test_a_key_never_reaches_the_other_environments_drafts(api: Api) -> None:
    api.apply_catalog(env="live")
    api.apply_catalog(env="sandbox")
    assert api.post("/v1/invoice-runs", env="sandbox", json={"until": "2026-04-01"}).status_code == 200
    assert api.post("/v1/invoice-runs", env="live", json={"until": "2026-02-01"}).status_code == 200

    listed = api.get("/v1/invoices", env="live", params={"order_by": "invoice_date", "order_direction": "asc"})
    assert [i["invoice_number"] for i in listed.json()["data"]] == ["DRAFT-1", "DRAFT-2"]
    assert api.get("/v1/invoices/DRAFT-3", env="live").status_code == 404
    assert api.get("/v1/invoices/DRAFT-3", env="sandbox").json()["invoice_number"] == "DRAFT-3"

    live_first = api.get("/v1/invoices/DRAFT-1", env="live").json()
    sandbox_first = api.get("/v1/invoices/DRAFT-1", env="sandbox").json()
    assert live_first["id"] != sandbox_first["id"]
    # both are the first cut, Jan 15 in Berlin (in UTC on the wire)
    assert (live_first["invoice_date"], sandbox_first["invoice_date"]) == ("2026-01-14T23:00:00Z",) * 2
    assert api.get(f"/v1/invoices/{live_first['id']}", env="sandbox").status_code == 404
    exported = api.get("/v1/exports/invoices", env="sandbox").json()
    assert [i["number"] for i in exported] == ["DRAFT-1", "DRAFT-2", "DRAFT-3", "DRAFT-4"]
