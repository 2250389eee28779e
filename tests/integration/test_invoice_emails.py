"""Invoice emails over SMTP to a local server the test starts (aiosmtpd), on both stores: sending
one now, the delivery log, sending on finalization through `payments run`, hostile addresses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from ratecard.catalog import check_document
from ratecard.catalog.load import parse_text
from ratecard.catalog.schema import CatalogDocument
from ratecard.services import documents, invoice_delivery, invoices, payments
from ratecard.services.errors import Conflict, InvalidInput
from ratecard.store.catalogs import save_version

from ..smtp_inbox import Inbox, local_smtp
from .payments_workspace import PAYMENTS_CATALOG, Billed, billed_workspace, later
from .scenario import NOW, workspace


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with local_smtp(monkeypatch) as received:
        yield received


@pytest.fixture
def billed(db_url: str) -> Iterator[Billed]:
    workspace = billed_workspace(db_url)
    try:
        yield workspace
    finally:
        workspace.store.dispose()


def test_a_final_invoice_is_sent_with_its_attachment_and_logged(billed: Billed, inbox: Inbox) -> None:
    number = billed.invoice.number
    delivery = invoice_delivery.send_invoice(billed.store, number, NOW)
    assert (delivery.status, delivery.recipient) == ("sent", "ap@acme.example")
    ((sender, recipients, message),) = inbox.messages
    assert sender == "billing@acme.example" and recipients == ["ap@acme.example"]
    assert message["Subject"] == f"Invoice {number} from Acme Cloud BV"
    assert message["From"] == "Acme Cloud BV <billing@acme.example>"
    body = next(part for part in message.walk() if part.get_content_type() == "text/plain").get_payload(decode=True)
    assert b"Total: 31.98 EUR" in body and b"charged to your payment method" in body
    (attachment,) = [part for part in message.walk() if part.get_filename()]
    assert attachment.get_filename() == f"{number}.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_payload(decode=True).startswith(b"%PDF-")
    log = [invoice_delivery.delivery_document(d) for d in invoice_delivery.find_deliveries(billed.store, "live", number)]
    assert [(d["invoice"], d["recipient"], d["status"]) for d in log] == [(number, "ap@acme.example", "sent")]
    assert invoice_delivery.find_deliveries(billed.store, "sandbox") == []


def test_the_attachments_come_from_the_attachments_hook(billed: Billed, inbox: Inbox,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []
    monkeypatch.setattr(invoice_delivery, "attachments_for",
                        lambda store, invoice, environment: asked.append(invoice.number) or [])
    invoice_delivery.send_invoice(billed.store, billed.invoice.number, NOW)
    assert asked == [billed.invoice.number]
    assert [part for part in inbox.messages[0][2].walk() if part.get_filename()] == []


@pytest.mark.parametrize("address", ["ap@acme.example\r\nBcc: everyone@example.com", "two@a.example, three@b.example",
                                     "Evil <evil@example.com>", "no-at-sign", ""])
def test_hostile_addresses_are_refused_and_nothing_is_sent(billed: Billed, inbox: Inbox, address: str) -> None:
    with pytest.raises(InvalidInput):
        invoice_delivery.send_invoice(billed.store, billed.invoice.number, NOW, to=address)
    assert inbox.messages == []
    (logged,) = invoice_delivery.find_deliveries(billed.store)
    assert logged.status == "failed" and logged.detail


def test_a_customer_name_with_a_line_break_is_refused(db_url: str, inbox: Inbox) -> None:
    catalog = PAYMENTS_CATALOG.replace("name: Acme Inc", 'name: "Acme\\r\\nBcc: all@example.com"')
    _, problems = check_document(parse_text(catalog, "catalog.yaml"))
    assert [problem.path for problem in problems] == ["customers[0].name"]  # no catalog takes it now
    store, _ = workspace(db_url, PAYMENTS_CATALOG)
    try:  # one stored before that rule still loads: the mail refuses the name itself
        save_version(store, CatalogDocument.model_validate(parse_text(catalog, "catalog.yaml")), 0)
        invoices.generate(store, date(2026, 2, 1), NOW)
        draft = invoices.find_invoices(store, status="draft")[0]
        number = invoices.finalize_invoices(store, [draft.display_number], NOW).finalized[0].number
        with pytest.raises(InvalidInput, match="line breaks"):
            invoice_delivery.send_invoice(store, number, NOW)
        assert inbox.messages == []
    finally:
        store.dispose()


def test_drafts_are_not_sent(billed: Billed, inbox: Inbox) -> None:
    draft = invoices.find_invoices(billed.store, status="draft")  # February's, cut with January's
    assert draft
    with pytest.raises(Conflict, match="only a final invoice"):
        invoice_delivery.send_invoice(billed.store, draft[0].display_number, NOW)


def test_an_unreachable_server_is_logged_as_failed(billed: Billed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATECARD_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RATECARD_SMTP_PORT", "1")  # nothing listens there
    monkeypatch.setenv("RATECARD_SMTP_STARTTLS", "0")
    delivery = invoice_delivery.send_invoice(billed.store, billed.invoice.number, NOW)
    assert delivery.status == "failed" and "ConnectionRefused" in (delivery.detail or "")


def test_sending_on_finalization_is_queued_and_sent_by_payments_run(db_url: str, inbox: Inbox) -> None:
    store, _ = workspace(db_url, PAYMENTS_CATALOG.replace("send_on_finalization: false", "send_on_finalization: true"))
    try:
        invoices.generate(store, date(2026, 2, 1), NOW)
        draft = invoices.find_invoices(store, status="draft")[0]
        number = invoices.finalize_invoices(store, [draft.display_number], NOW).finalized[0].number
        assert [d.status for d in invoice_delivery.find_deliveries(store)] == ["queued"]
        assert inbox.messages == []  # finalization does not wait for the SMTP server
        run = payments.run_payments(store, later(0))
        assert run.emails == {"sent": 1}
        assert [(d.status, d.invoice_number) for d in invoice_delivery.find_deliveries(store)] == [("sent", number)]
        assert len(inbox.messages) == 1
        assert payments.run_payments(store, later(1)).emails == {}  # sent once
    finally:
        store.dispose()


def test_an_invoice_whose_pdf_fails_is_logged_and_the_other_emails_still_go(db_url: str, inbox: Inbox,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """payments run sends every queued email: one whose PDF cannot be made (the entity's own template
    asks for something that invoice does not have) is logged as failed with why, the others are sent."""
    store, _ = workspace(db_url, PAYMENTS_CATALOG.replace("send_on_finalization: false", "send_on_finalization: true"))
    try:
        invoices.generate(store, date(2026, 3, 1), NOW)
        drafts = [draft.display_number for draft in invoices.find_invoices(store, status="draft")]
        assert len(drafts) >= 2
        first, *others = [f.number for f in invoices.finalize_invoices(store, drafts, NOW).finalized]
        real_pdf = documents.invoice_pdf

        def pdf(store, reference, environment="live"):  # noqa: ANN001, ANN202 - invoice_pdf's signature
            if reference == str(invoices.find_invoice(store, first).id):
                raise Conflict("the PDF template of billing entity 'default' failed: 'no_such_field' is undefined")
            return real_pdf(store, reference, environment)

        monkeypatch.setattr(documents, "invoice_pdf", pdf)
        run = payments.run_payments(store, later(0))
        assert run.emails == {"failed": 1, "sent": len(others)}
        logged = {d.invoice_number: (d.status, d.detail) for d in invoice_delivery.find_deliveries(store)}
        assert logged[first] == ("failed", "the PDF template of billing entity 'default' failed: "
                                           "'no_such_field' is undefined")
        assert all(logged[number] == ("sent", None) for number in others) and len(inbox.messages) == len(others)
    finally:
        store.dispose()
