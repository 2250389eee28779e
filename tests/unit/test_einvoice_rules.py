"""E-invoices (Peppol BIS UBL, Factur-X CII) keep the EN 16931 rules on amounts: a hand-computed
invoice, each rule caught when broken, and a property over generated invoices."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from facturx import xml_check_xsd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from ratecard.catalog import build_catalog, check_document
from ratecard.documents.cii import cii_document
from ratecard.documents.model import DocumentError, invoice_view
from ratecard.documents.rules import check_document as check_rules
from ratecard.documents.ubl import ubl_document
from ratecard.domain.money import quantize
from ratecard.domain.tax import invoice_tax
from ratecard.store.corrections import credit_note_for
from ratecard.store.invoices import InvoiceRecord, LineRecord

ENTITY = {"name": "Acme", "legal_name": "Acme Cloud GmbH", "tax_id": "DE123456789", "iban": "DE89370400440532013000",
          "address": {"lines": ["Hauptstraße 1"], "city": "Berlin", "postal_code": "10115", "country": "DE"}}


def catalog(entity: dict | None = None, customer: dict | None = None):
    document, problems = check_document({
        "billing_entity": {**ENTITY, **(entity or {})},
        "plans": [{"code": "pro", "currency": "EUR"}],
        "customers": [{"reference": "acme", "name": "Acme Kunde", "country": "DE", **(customer or {})}],
    })
    assert problems == []
    return build_catalog(document)


def line(code: str, quantity: str, unit: str, amount: str, kind: str = "usage") -> LineRecord:
    return LineRecord(code, code.title(), kind, "2026-09-01", "2026-10-01", 0, 0, Decimal(quantity), Decimal(unit),
                      Decimal(amount))


def record(lines: list[LineRecord], rate: str, tax: str, *, currency: str = "EUR", status: str = "final",
           kind: str = "invoice") -> InvoiceRecord:
    with localcontext() as context:
        context.prec = 100  # as rating adds amounts: exactly
        subtotal = sum((item.amount for item in lines), Decimal(0))
        total = subtotal + Decimal(tax)
    return InvoiceRecord(id=1, number="RC-000001" if status == "final" else None, customer="acme", subscription="s",
                         status=status, currency=currency, timezone="UTC", boundary_ts=0, issue_date="2026-10-01",
                         subtotal=subtotal, tax=Decimal(tax), total=total, tax_rate=Decimal(rate),
                         catalog_version=1, lines=lines, kind=kind, draft_number=1)


# a fee, a per-unit line (1,234 calls × 0.05 = 61.70) and a graduated line whose unit price shown
# is no factor of its amount (23,456 tokens at 0.0098 would be 229.87, the tiers say 229.56);
# 1291.26 at 19 % = 245.3394 -> 245.34
HAND = record([line("base", "1", "1000.00", "1000.00", "advance"), line("calls", "1234", "0.05", "61.70"),
               line("tokens", "23456", "0.0098", "229.56")], "19", "245.34")


def test_the_hand_computed_invoice_as_ubl() -> None:
    xml = ubl_document(invoice_view(HAND, catalog()))
    assert check_rules(xml) == []
    assert xml_check_xsd(xml, flavor="ubl-2.1-invoice") is True
    root = etree.fromstring(xml)
    ns = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
          "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
    lines = [(item.findtext("cbc:InvoicedQuantity", namespaces=ns), item.findtext("cac:Price/cbc:PriceAmount",
                                                                                    namespaces=ns),
              item.findtext("cbc:LineExtensionAmount", namespaces=ns), item.findtext("cbc:Note", namespaces=ns))
             for item in root.findall("cac:InvoiceLine", ns)]
    # the graduated line is stated as one unit at its amount, the metered quantity in its note (R120)
    assert lines == [("1", "1000", "1000.00", None), ("1234", "0.05", "61.70", None),
                     ("1", "229.56", "229.56", "23456 × Tokens")]
    totals = root.find("cac:LegalMonetaryTotal", ns)
    assert [totals.findtext(f"cbc:{name}", namespaces=ns) for name in
            ("LineExtensionAmount", "TaxExclusiveAmount", "TaxInclusiveAmount", "PayableAmount")] == \
        ["1291.26", "1291.26", "1536.60", "1536.60"]
    assert root.findtext("cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount", namespaces=ns) == "1291.26"
    assert root.findtext("cac:TaxTotal/cbc:TaxAmount", namespaces=ns) == "245.34"
    assert root.findtext("cbc:DueDate", namespaces=ns) == "2026-10-31"  # 30 days, the entity's default terms


def test_the_hand_computed_invoice_as_cii() -> None:
    xml = cii_document(invoice_view(HAND, catalog()))
    assert check_rules(xml) == []
    assert xml_check_xsd(xml, flavor="factur-x", level="en16931") is True


@pytest.mark.parametrize(("old", "new", "rule"), [
    # a line's net amount changed: the lines no longer add up, and quantity × price breaks too
    ("<cbc:LineExtensionAmount currencyID=\"EUR\">61.70<", "<cbc:LineExtensionAmount currencyID=\"EUR\">61.71<",
     "BR-CO-10"),
    ("<cbc:TaxExclusiveAmount currencyID=\"EUR\">1291.26<", "<cbc:TaxExclusiveAmount currencyID=\"EUR\">1291.27<",
     "BR-CO-13"),
    ("<cbc:TaxInclusiveAmount currencyID=\"EUR\">1536.60<", "<cbc:TaxInclusiveAmount currencyID=\"EUR\">1536.61<",
     "BR-CO-15"),
    ("<cbc:TaxableAmount currencyID=\"EUR\">1291.26<", "<cbc:TaxableAmount currencyID=\"EUR\">1291.25<", "BR-S-08"),
    ("<cbc:PriceAmount currencyID=\"EUR\">0.05<", "<cbc:PriceAmount currencyID=\"EUR\">0.06<", "PEPPOL-EN16931-R120"),
])
def test_each_rule_is_caught_when_broken(old: str, new: str, rule: str) -> None:
    xml = ubl_document(invoice_view(HAND, catalog())).decode()
    assert old in xml
    broken = check_rules(xml.replace(old, new, 1).encode())
    assert rule in {violation.rule for violation in broken}, broken


def test_a_draft_or_a_seller_without_vat_id_has_no_e_invoice() -> None:
    with pytest.raises(DocumentError, match="final invoices only"):
        ubl_document(invoice_view(record(HAND.lines, "19", "245.34", status="draft"), catalog()))
    with pytest.raises(DocumentError, match="has no tax_id"):
        ubl_document(invoice_view(HAND, catalog({"tax_id": None})))


def test_zero_rated_and_reverse_charge_categories() -> None:
    untaxed = record(HAND.lines, "0", "0.00")
    assert b"<cbc:ID>Z</cbc:ID>" in ubl_document(invoice_view(untaxed, catalog()))
    reverse = ubl_document(invoice_view(untaxed, catalog(customer={"country": "FR", "tax_id": "FR40303265045"})))
    assert b"<cbc:ID>AE</cbc:ID>" in reverse and b"Reverse charge" in reverse
    assert check_rules(reverse) == [] and xml_check_xsd(reverse, flavor="ubl-2.1-invoice")


def test_tax_rounded_per_line_beyond_br_co_17s_tolerance_is_caught() -> None:
    # three lines of 5 yen at 10 %: 0.5 each, rounded up per line = 3 yen; 15 × 10 % = 1.50: off by 1.50
    lines = [line(f"c{n}", "1", "5", "5") for n in range(3)]
    xml = ubl_document(invoice_view(record(lines, "10", "3", currency="JPY"), catalog()))
    assert [violation.rule for violation in check_rules(xml, 0)] == ["BR-CO-17"]


def test_amounts_of_forty_digits_are_stated_and_checked_exactly() -> None:
    # 10^19 units at 10^19 - 0.01 each: an amount no float and no 28-digit context holds
    huge = "99999999999999999999999999999999999999.90"
    big = record([line("base", "10000000000000000000", "9999999999999999999.99", huge)], "0", "0.00")
    xml = ubl_document(invoice_view(big, catalog()))
    assert check_rules(xml) == [] and huge.encode() in xml


def test_control_characters_of_a_description_do_not_break_the_xml() -> None:
    odd = record([line("base\x01", "1", "5.00", "5.00")], "19", "0.95")
    xml = ubl_document(invoice_view(odd, catalog()))
    assert check_rules(xml) == [] and b"\x01" not in xml


# ------------------------------------------------------------------------------ the property

CURRENCIES = {"EUR": 2, "JPY": 0, "USD": 2}  # three decimals have no e-invoice (see MAX_DIGITS)


@st.composite
def invoices(draw: st.DrawFn) -> tuple[InvoiceRecord, int]:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    digits = CURRENCIES[currency]
    lines = []
    for index in range(draw(st.integers(min_value=1, max_value=6))):
        quantity = Decimal(draw(st.integers(min_value=0, max_value=10**7))).scaleb(-draw(st.integers(0, 3)))
        unit = Decimal(draw(st.integers(min_value=0, max_value=10**7))).scaleb(-draw(st.integers(0, 6)))
        if draw(st.booleans()):  # per unit: the amount is quantity × price, rounded
            amount = quantize(quantity * unit, currency)
        else:  # tiered, prorated, a minimum or a credit: an amount of its own, maybe negative
            amount = Decimal(draw(st.integers(min_value=-10**8, max_value=10**8))).scaleb(-digits)
            unit = amount if draw(st.booleans()) else unit
        lines.append(line(f"c{index}", str(quantity), str(unit), str(amount)))
    rate = draw(st.sampled_from(["0", "7", "19", "20", "21.5"]))
    # per-line rounding in yen drifts by up to half a yen a line: past BR-CO-17's tolerance (see below)
    rounding = draw(st.sampled_from(["invoice", "line"])) if digits else "invoice"
    tax = invoice_tax([item.amount for item in lines], Decimal(rate), currency, tax_rounding=rounding)
    invoice = record(lines, rate, str(tax), currency=currency)
    if draw(st.booleans()):
        invoice = credit_note_for(invoice, "2026-10-02")
        invoice.number, invoice.status, invoice.id = "CN-000001", "final", 2
    return invoice, digits


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=invoices())
def test_every_generated_invoice_keeps_the_rules_in_ubl_and_cii(generated: tuple[InvoiceRecord, int]) -> None:
    invoice, digits = generated
    view = invoice_view(invoice, catalog())
    for xml in (ubl_document(view), cii_document(view)):
        assert check_rules(xml, digits) == []
    credit = invoice.kind == "credit_note"
    assert xml_check_xsd(ubl_document(view), flavor="ubl-2.1-creditnote" if credit else "ubl-2.1-invoice")
