"""GET /v1/invoices/{id}/pdf|ubl|facturx: the documents service's bytes, the key's environment only,
refusals in the error envelope."""

from __future__ import annotations

import io

import pytest
from facturx import get_xml_from_pdf, xml_check_xsd
from pypdf import PdfReader

from ratecard.services.invoices import finalize_invoices, find_invoices
from ratecard.store import open_store

from ..integration.documents_workspace import CATALOG, EVENTS, HOSTILE_NAME, NOW
from .conftest import Api

# a request body has no folder: the catalog goes without its logo file
API_CATALOG = CATALOG.replace("  logo: logo.png\n", "")


@pytest.fixture
def live(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """Both entities' customers invoiced up to 2026-10-01; berlin-co's two invoices final (AC-000001/2)."""
    monkeypatch.setenv("RATECARD_NOW", "2026-10-05T00:00:00Z")
    api.apply_catalog(API_CATALOG)
    assert api.post("/v1/events", json=EVENTS).status_code == 200
    assert api.post("/v1/invoice-runs", json={"until": "2026-10-01"}).status_code == 200
    store = open_store(api.url, migrate=False)
    try:
        drafts = sorted((i for i in find_invoices(store, status="draft") if i.customer == "berlin-co"),
                        key=lambda i: i.issue_date)
        finalize_invoices(store, [d.display_number for d in drafts], NOW)
    finally:
        store.dispose()
    return api


def test_the_pdf_of_a_final_invoice_and_of_a_draft(live: Api) -> None:
    response = live.get("/v1/invoices/AC-000002/pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'inline; filename="AC-000002.pdf"'
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text().replace("\xa0", " ")
    assert "AC-000002" in text and "1.463,18 €" in text and HOSTILE_NAME in text and "DRAFT" not in text
    draft = live.get("/v1/invoices/DRAFT-4/pdf")  # paris-co's October invoice, still a draft
    assert draft.status_code == 200
    assert "DRAFT" in PdfReader(io.BytesIO(draft.content)).pages[0].extract_text()


def test_ubl_and_facturx_of_a_final_invoice(live: Api) -> None:
    ubl = live.get("/v1/invoices/AC-000002/ubl")
    assert ubl.status_code == 200, ubl.text
    assert ubl.headers["content-type"].startswith("application/xml")
    assert xml_check_xsd(ubl.content, flavor="ubl-2.1-invoice") is True
    assert b"<cbc:PayableAmount currencyID=\"EUR\">1463.18</cbc:PayableAmount>" in ubl.content
    facturx = live.get("/v1/invoices/AC-000002/facturx")
    assert facturx.status_code == 200 and facturx.headers["content-type"] == "application/pdf"
    _, xml = get_xml_from_pdf(facturx.content, check_xsd=False)
    assert xml_check_xsd(xml, flavor="factur-x", level="en16931") is True


def test_refusals(live: Api) -> None:
    draft = live.get("/v1/invoices/DRAFT-4/ubl")
    assert draft.status_code == 400
    assert draft.json()["code"] == "INVALID_OPERATION" and "final invoices only" in draft.json()["message"]
    missing = live.get("/v1/invoices/AC-999999/pdf")
    assert (missing.status_code, missing.json()["code"]) == (404, "RESOURCE_NOT_FOUND")
    # the sandbox key sees none of the live environment's invoices
    assert live.get("/v1/invoices/AC-000002/pdf", env="sandbox").status_code == 404
