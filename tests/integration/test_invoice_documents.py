"""Invoice documents on both stores: the PDF a customer reads, the e-invoices a receiver's system
reads (Peppol BIS UBL, Factur-X), numbering per billing entity. Figures hand-priced in
documents_workspace.py."""

from __future__ import annotations

import io
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from facturx import get_xml_from_pdf, xml_check_xsd
from lxml import etree
from pypdf import PdfReader

from ratecard.documents.rules import check_document
from ratecard.services.catalog import apply_catalog
from ratecard.services.documents import invoice_facturx, invoice_pdf, invoice_ubl
from ratecard.services.errors import Conflict, NotFound
from ratecard.services.invoices import find_invoices, generate, show_invoice

from ..einvoice_schematron import errors
from .documents_workspace import BERLIN_OCTOBER, CATALOG, HOSTILE_NAME, NOW, documents_workspace, draft_of, finalize

NS = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
      "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
      "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
      "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"}


def pdf_text(content: bytes) -> str:
    """The text of every page, the no-break spaces locales put in amounts read as plain spaces."""
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    return text.replace("\xa0", " ").replace("\u202f", " ")


@pytest.fixture
def store(db_url: str, tmp_path: Path):
    opened = documents_workspace(db_url, tmp_path)
    yield opened
    opened.dispose()


def finalize_all(store) -> list[str]:
    drafts = sorted(find_invoices(store, status="draft"), key=lambda i: (i.issue_date, i.customer))
    return finalize(store, *[d.display_number for d in drafts])


def test_each_billing_entity_numbers_its_invoices_in_its_own_gapless_sequence(store) -> None:
    numbers = finalize_all(store)
    # berlin-co (the default entity, AC) and paris-co (FR), September then October
    assert numbers == ["AC-000001", "FR-000001", "AC-000002", "FR-000002"]


def test_the_pdf_of_a_final_invoice_shows_number_totals_and_parties_in_the_entitys_locale(store) -> None:
    october = draft_of(store, "berlin-co", "2026-10-01")
    finalize(store, draft_of(store, "berlin-co", "2026-09-01"), october)
    document = invoice_pdf(store, "AC-000002")
    assert document.media_type == "application/pdf" and document.file_name == "AC-000002.pdf"
    text = pdf_text(document.content)
    assert "AC-000002" in text
    for figure in BERLIN_OCTOBER.values():
        assert figure in text
    assert "01.10.2026" in text  # the issue date as de_DE writes it
    assert "01.09.2026 – 30.09.2026" in text  # September's tokens: the service period, last day included
    assert "Acme Cloud GmbH" in text and "DE123456789" in text and "DE89370400440532013000" in text
    assert HOSTILE_NAME in text  # the customer's name is text on the page, never markup
    assert "DRAFT" not in text


def test_a_draft_pdf_is_watermarked_draft(store) -> None:
    text = pdf_text(invoice_pdf(store, draft_of(store, "berlin-co", "2026-10-01")).content)
    assert "DRAFT" in text and BERLIN_OCTOBER["total"] in text


def test_the_french_entity_formats_in_fr_fr(store) -> None:
    finalize_all(store)
    text = pdf_text(invoice_pdf(store, "FR-000002").content)
    # 1000.00 + 1500 tokens (500 × 0.01 + 5 = 10.00) = 1010.00; VAT 20 % = 202.00; total 1212.00
    assert "1 212,00 €" in text and "202,00 €" in text and "Facture" in text
    assert "Acme France SAS" in text


def test_page_one_renders_to_a_non_blank_png(store, tmp_path: Path) -> None:
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(invoice_pdf(store, draft_of(store, "berlin-co", "2026-10-01")).content)
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile", str(pdf),
                    str(tmp_path / "page")], check=True, timeout=60)
    data = (tmp_path / "page.png").read_bytes()
    assert data.startswith(b"\x89PNG")
    from PIL import Image  # WeasyPrint's own dependency

    image = Image.open(tmp_path / "page.png").convert("L")
    dark = sum(image.histogram()[:128])
    assert dark > 500  # text was drawn, not an empty page


def test_ubl_of_a_final_invoice_is_valid_peppol_bis(store) -> None:
    finalize(store, draft_of(store, "berlin-co", "2026-09-01"), draft_of(store, "berlin-co", "2026-10-01"))
    document = invoice_ubl(store, "AC-000002")
    assert document.media_type == "application/xml"
    assert xml_check_xsd(document.content, flavor="ubl-2.1-invoice") is True
    assert check_document(document.content) == []
    root = etree.fromstring(document.content)
    assert root.findtext("cbc:CustomizationID", namespaces=NS) == \
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
    assert root.findtext("cbc:ProfileID", namespaces=NS) == "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    assert root.findtext("cbc:InvoiceTypeCode", namespaces=NS) == "380"
    assert root.findtext("cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount", namespaces=NS) == "1229.56"
    assert root.findtext("cac:TaxTotal/cbc:TaxAmount", namespaces=NS) == "233.62"
    assert root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=NS) == "1463.18"
    assert root.findtext("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID", namespaces=NS) == "S"
    assert root.findtext("cac:AccountingCustomerParty/cac:Party/cac:PartyName/cbc:Name", namespaces=NS) == HOSTILE_NAME
    lines = root.findall("cac:InvoiceLine", NS)
    # the graduated tokens line, one line per tier: 1,000 × 0 ; 22,456 × 0.01 ; tier 2's flat 5.00 (229.56)
    assert [(line.findtext("cbc:ID", namespaces=NS), line.findtext("cbc:LineExtensionAmount", namespaces=NS))
            for line in lines] == [("1", "1000.00"), ("2.1", "0.00"), ("2.2", "224.56"), ("2.3", "5.00")]
    assert [line.findtext("cac:InvoicePeriod/cbc:EndDate", namespaces=NS) for line in lines] == \
        ["2026-10-31", "2026-09-30", "2026-09-30", "2026-09-30"]


def test_a_draft_has_no_e_invoice(store) -> None:
    draft = draft_of(store, "berlin-co", "2026-10-01")
    with pytest.raises(Conflict, match="final invoices only"):
        invoice_ubl(store, draft)
    with pytest.raises(Conflict, match="final invoices only"):
        invoice_facturx(store, draft)
    with pytest.raises(NotFound):
        invoice_ubl(store, "AC-999999")


def test_facturx_embeds_valid_en16931_cii_in_a_pdf_a3(store) -> None:
    finalize_all(store)
    document = invoice_facturx(store, "FR-000002")
    name, xml = get_xml_from_pdf(document.content, check_xsd=False)
    assert name == "factur-x.xml"
    assert xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    assert check_document(xml) == []
    root = etree.fromstring(xml)
    summation = root.find("rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
                          "ram:SpecifiedTradeSettlementHeaderMonetarySummation", NS)
    assert summation.findtext("ram:GrandTotalAmount", namespaces=NS) == "1212.00"
    reader = PdfReader(io.BytesIO(document.content))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp or b'pdfaid:part="3"' in xmp  # PDF/A-3
    assert list(reader.attachments) == ["factur-x.xml"]
    assert "FR-000002" in pdf_text(document.content)


def downgrade_both(store, folder: Path, catalog: str = CATALOG) -> dict:
    """Both customers move to basic on 2026-09-16: each October invoice is corrected by a credit note."""
    downgraded = catalog
    for customer in ("berlin", "paris"):
        downgraded = downgraded.replace(
            f"{{reference: {customer}-pro, customer: {customer}-co, plan: pro, start: 2026-09-01}}",
            f"{{reference: {customer}-pro, customer: {customer}-co, plan: pro, start: 2026-09-01, "
            f"changes: [{{at: 2026-09-16, plan: basic}}]}}")
    (folder / "downgraded.yaml").write_text(downgraded, encoding="utf-8")
    apply_catalog(store, folder / "downgraded.yaml", NOW)
    generate(store, date(2026, 10, 1), NOW)
    return {i.customer: i for i in find_invoices(store) if i.kind == "credit_note"}


def test_credit_notes_are_ubl_credit_notes_in_each_entitys_credit_sequence(store, tmp_path: Path) -> None:
    finalize_all(store)
    credit_notes = downgrade_both(store, tmp_path)
    assert credit_notes["berlin-co"].number == "CN-000001"  # the default entity keeps the CN sequence
    assert credit_notes["paris-co"].number == "FR-CN-000001"
    for customer, credit_note in credit_notes.items():
        corrected = show_invoice(store, credit_note.number).corrected
        document = invoice_ubl(store, credit_note.number)
        assert xml_check_xsd(document.content, flavor="ubl-2.1-creditnote") is True, customer
        assert check_document(document.content) == [], customer
        root = etree.fromstring(document.content)
        assert etree.QName(root).localname == "CreditNote"
        assert root.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "381"
        # stored negated, stated positive: the document type says it credits
        assert Decimal(root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=NS)) == -credit_note.total
        assert root.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=NS) == \
            corrected.number
        text = pdf_text(invoice_pdf(store, credit_note.number).content)
        assert credit_note.number in text and ("Gutschrift" in text or "Avoir" in text)
        _, cii = get_xml_from_pdf(invoice_facturx(store, credit_note.number).content, check_xsd=False)
        assert etree.fromstring(cii).findtext("rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) == "381"
        assert check_document(cii) == []


# both entities and both customers with a Peppol participant id (PEPPOL-EN16931-R010, R020)
PEPPOL_CATALOG = CATALOG.replace("  tax_id: DE123456789\n", "  tax_id: DE123456789\n  peppol_id: \"9930:DE123456789\"\n") \
    .replace("    tax_id: FR40303265045\n", "    tax_id: FR40303265045\n    peppol_id: \"9957:FR40303265045\"\n") \
    .replace("    tax_id: DE987654321\n", "    tax_id: DE987654321\n    peppol_id: \"9930:DE987654321\"\n") \
    .replace("    tax_rate: \"20\"\n", "    tax_rate: \"20\"\n    peppol_id: \"0009:12345678200015\"\n")


def test_every_e_invoice_keeps_the_official_en16931_and_peppol_rules(db_url: str, tmp_path: Path) -> None:
    store = documents_workspace(db_url, tmp_path, PEPPOL_CATALOG)
    try:
        numbers = finalize_all(store)
        credit_notes = [credit_note.number for credit_note in downgrade_both(store, tmp_path, PEPPOL_CATALOG).values()]
        # two entities (19 % and 20 %), the tokens in tiers, the customer's name in markup; their credit notes
        assert len(numbers) == 4 and len(credit_notes) == 2
        for number in numbers + credit_notes:
            assert errors(invoice_ubl(store, number).content) == [], number
            _, cii = get_xml_from_pdf(invoice_facturx(store, number).content, check_xsd=False)
            assert errors(cii) == [], number
    finally:
        store.dispose()
