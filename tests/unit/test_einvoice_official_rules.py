"""ratecard's e-invoices against the official rule sets (tests/einvoice_schematron.py): the CEN
EN 16931 rules and the Peppol BIS Billing 3.0 rules for UBL, the Factur-X EN 16931 rules for CII.
Representative invoices: one rate, zero rated, reverse charge, a credit note, a discount, a zero
amount, tiers, currencies with 0 and 2 decimals, a name with markup and formula characters."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from lxml import etree

from ratecard.documents.cii import cii_document
from ratecard.documents.model import DocumentError, invoice_view
from ratecard.documents.rules import check_document as check_rules
from ratecard.documents.ubl import ubl_document
from ratecard.store.corrections import credit_note_for
from ratecard.store.invoices import InvoiceRecord

from ..einvoice_schematron import errors, findings
from .test_einvoice_rules import HAND, catalog, invoices, line, record
from .test_tier_documents import API, GRADUATED, tiered

SELLER = {"peppol_id": "9930:DE123456789"}
BUYER = {"peppol_id": "0088:4035811991014", "tax_id": "DE987654321"}
NS = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
      "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
HOSTILE = "=HYPERLINK(\"http://x\")<b>&amp;</b> 'Kunde' & \"Söhne\" ]]>"


def peppol_catalog(customer: dict | None = None):
    """The unit tests' catalog, both parties with a Peppol participant id (PEPPOL-EN16931-R010, R020)."""
    return catalog(SELLER, {**BUYER, **(customer or {})})


def credit_note(invoice: InvoiceRecord) -> InvoiceRecord:
    credit = credit_note_for(invoice, "2026-10-02")
    credit.number, credit.status, credit.id = "CN-000001", "final", 2
    return credit


UNTAXED = record(HAND.lines, "0", "0.00")
CASES = {
    "standard rate, a graduated line stated as one unit": (HAND, {}),
    "tiers, one line per tier": (GRADUATED, {}),
    "credit note": (credit_note(HAND), {}),
    "credit note of tiers": (credit_note(GRADUATED), {}),
    "zero rated": (UNTAXED, {}),
    # its VAT is 0.00, never -0.00 (BR-Z-09), nor its amounts -0 in yen (BR-S-08)
    "credit note, zero rated": (credit_note(UNTAXED), {}),
    "credit note of a zero amount in yen": (credit_note(record([line("calls", "4", "0.0004", "0")], "7", "0",
                                                               currency="JPY")), {}),
    "reverse charge": (UNTAXED, {"country": "FR", "tax_id": "FR40303265045", "peppol_id": "9957:FR40303265045"}),
    # 100.00 less a 10 % discount: the discount is a line of -10.00 (quantity -1 at 10.00)
    "discount": (record([line("base", "1", "100.00", "100.00", "advance"),
                         line("discount", "1", "-10.00", "-10.00", "discount")], "19", "17.10"), {}),
    "zero amount": (record([line("calls", "0", "0.05", "0.00")], "19", "0.00"), {}),
    "US dollars": (record([line("calls", "1234", "0.05", "61.70")], "19", "11.72", currency="USD"), {}),
    "yen, no minor unit": (record([line("calls", "1234", "5", "6170")], "10", "617", currency="JPY"), {}),
    # 1.5 × 5 yen = 7.5, stored 8: Peppol's R120 allows 0.02 between quantity × price and the net amount
    "yen, a per-unit line rounded to the yen": (record([line("calls", "1.5", "5", "8")], "10", "1", currency="JPY"),
                                                {}),
    # tier 3: 2,501 × 0.001 = 2.501, rounded 3 yen
    "yen, tiers rounded to the yen": (record([tiered(API, "12501", "JPY")], "10", "3", currency="JPY"), {}),
    "a fractional quantity": (record([line("storage", "1.5", "0.333333", "0.50")], "19", "0.10"), {}),
    "markup and formula characters in names": (record([line("base", "1", "5.00", "5.00")], "19", "0.95"),
                                               {"name": HOSTILE}),
}


@pytest.mark.parametrize("case", CASES)
def test_each_invoice_keeps_the_official_en16931_and_peppol_rules(case: str) -> None:
    invoice, customer = CASES[case]
    view = invoice_view(invoice, peppol_catalog(customer))
    assert errors(ubl_document(view)) == []
    assert errors(cii_document(view)) == []


def test_the_markup_in_a_name_reaches_the_rules_as_text() -> None:
    invoice, customer = CASES["markup and formula characters in names"]
    root = etree.fromstring(ubl_document(invoice_view(invoice, peppol_catalog(customer))))
    assert root.findtext("cac:AccountingCustomerParty/cac:Party/cac:PartyName/cbc:Name", namespaces=NS) == HOSTILE


def test_without_peppol_ids_the_ubl_breaks_only_the_endpoint_rules() -> None:
    # docs/invoices.md, "What is not stated": no peppol_id, no EndpointID, which Peppol requires
    xml = ubl_document(invoice_view(HAND, catalog()))
    assert sorted(finding.rule for finding in findings(xml) if finding.flag == "fatal") == \
        ["PEPPOL-EN16931-R010", "PEPPOL-EN16931-R020"]


@pytest.mark.parametrize(("old", "new", "rule"), [
    ("<cbc:TaxInclusiveAmount currencyID=\"EUR\">1536.60<", "<cbc:TaxInclusiveAmount currencyID=\"EUR\">1536.61<",
     "BR-CO-15"),
    ("<cbc:PriceAmount currencyID=\"EUR\">0.05<", "<cbc:PriceAmount currencyID=\"EUR\">-0.05<", "BR-27"),
    ("<cbc:EndpointID schemeID=\"0088\">", "<cbc:EndpointID schemeID=\"XX\">", "PEPPOL-EN16931-CL008"),
])
def test_the_official_rules_catch_a_broken_document(old: str, new: str, rule: str) -> None:
    xml = ubl_document(invoice_view(HAND, peppol_catalog())).decode()
    assert old in xml
    assert rule in {finding.rule for finding in findings(xml.replace(old, new, 1).encode())}


def test_an_invoice_in_a_currency_with_three_decimals_has_no_e_invoice() -> None:
    # EN 16931 states every amount with at most two decimals (BR-DEC-09 … BR-DEC-23, UBL-DT-01), and
    # its sums round to two (BR-CO-14, BR-CO-15 fail on 6.170 + 0.617 BHD): such an e-invoice is refused
    bhd = record([line("calls", "1234", "0.005", "6.170")], "10", "0.617", currency="BHD")
    view = invoice_view(bhd, peppol_catalog())
    for render in (ubl_document, cii_document):
        with pytest.raises(DocumentError, match=r"RC-000001 is in BHD, whose amounts have 3 decimals"):
            render(view)



def test_a_yen_line_rounded_to_the_yen_is_one_unit_at_its_amount_and_both_checks_refuse_it_otherwise() -> None:
    invoice, customer = CASES["yen, a per-unit line rounded to the yen"]
    xml = ubl_document(invoice_view(invoice, peppol_catalog(customer))).decode()
    stated = ('<cbc:InvoicedQuantity unitCode="C62">1<', '<cbc:PriceAmount currencyID="JPY">8<')
    assert all(text in xml for text in stated) and "<cbc:Note>1.5 × Calls</cbc:Note>" in xml
    # stated as 1.5 × 5 = 7.5 for its 8 yen: ratecard's own check and Peppol's refuse it alike
    rounded = xml.replace(stated[0], '<cbc:InvoicedQuantity unitCode="C62">1.5<').replace(
        stated[1], '<cbc:PriceAmount currencyID="JPY">5<').encode()
    assert "PEPPOL-EN16931-R120" in {violation.rule for violation in check_rules(rounded, 0)}
    assert "PEPPOL-EN16931-R120" in {finding.rule for finding in findings(rounded)}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=invoices())
def test_every_generated_invoice_keeps_the_official_rules(generated: tuple[InvoiceRecord, int]) -> None:
    invoice, _ = generated
    view = invoice_view(invoice, peppol_catalog())
    assert errors(ubl_document(view)) == []
    assert errors(cii_document(view)) == []
