"""A tiered line on every document (docs/invoices.md, "Tiers"): its parts as rows under it in the
PDF, one e-invoice line per tier (and one per flat amount) in UBL and CII where the rounded parts add
up to the line, the line as one unit at its amount otherwise; the EN 16931 checks hold either way."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from facturx import xml_check_xsd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from ratecard.documents.cii import cii_document
from ratecard.documents.model import invoice_view
from ratecard.documents.pdf import render_pdf
from ratecard.documents.rules import check_document as check_rules
from ratecard.documents.ubl import ubl_document
from ratecard.domain.money import quantize
from ratecard.domain.pricing import Charge, Tier, price_usage
from ratecard.domain.tax import invoice_tax
from ratecard.domain.tiers import parts_json, tier_parts
from ratecard.store.corrections import credit_note_for
from ratecard.store.invoices import InvoiceRecord

from .test_einvoice_rules import catalog, line, record
from .test_invoice_pdf import text

D = Decimal
UBL = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
       "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
CII = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
       "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"}
API = Charge(code="api", model="graduated", meter="calls",
             tiers=(Tier(D(1000), D(0)), Tier(D(10000), D("0.002"), D("5.00")), Tier(None, D("0.001"))))


def tiered(charge: Charge, quantity: str, currency: str = "EUR") -> object:
    amount = quantize(price_usage(charge, D(quantity)).amount, currency)
    shown = price_usage(charge, D(quantity)).unit_amount
    return replace(line("api", quantity, str(shown), str(amount)),
                   tiers=parts_json(tier_parts(charge, D(quantity))))


# 12,500 calls: 1,000 × 0 = 0.00 ; 9,000 × 0.002 = 18.00 plus 5.00 flat ; 2,500 × 0.001 = 2.50 ; 25.50
# with a 10.00 fee: 35.50 at 19 % = 6.745 -> 6.75 ; total 42.25
GRADUATED = record([line("base", "1", "10.00", "10.00", "advance"), tiered(API, "12500")], "19", "6.75")


def ubl_lines(xml: bytes, tag: str = "InvoiceLine", quantity: str = "InvoicedQuantity") -> list[tuple]:
    root = etree.fromstring(xml)
    return [(item.findtext("cbc:ID", namespaces=UBL), item.findtext(f"cbc:{quantity}", namespaces=UBL),
             item.findtext("cac:Price/cbc:PriceAmount", namespaces=UBL),
             item.findtext("cbc:LineExtensionAmount", namespaces=UBL), item.findtext("cac:Item/cbc:Name", namespaces=UBL))
            for item in root.findall(f"cac:{tag}", UBL)]


def test_a_graduated_line_is_one_ubl_line_per_tier_and_one_per_flat_amount() -> None:
    xml = ubl_document(invoice_view(GRADUATED, catalog()))
    assert check_rules(xml) == []
    assert xml_check_xsd(xml, flavor="ubl-2.1-invoice") is True
    assert ubl_lines(xml) == [
        ("1", "1", "10", "10.00", "Base"),
        ("2.1", "1000", "0", "0.00", "Api (tier 1: units 1–1000)"),
        ("2.2", "9000", "0.002", "18.00", "Api (tier 2: units 1001–10000)"),
        ("2.3", "1", "5", "5.00", "Api (tier 2: flat amount)"),
        ("2.4", "2500", "0.001", "2.50", "Api (tier 3: units 10001–12500)"),
    ]
    totals = etree.fromstring(xml).find("cac:LegalMonetaryTotal", UBL)
    assert [totals.findtext(f"cbc:{name}", namespaces=UBL) for name in ("LineExtensionAmount", "PayableAmount")] == \
        ["35.50", "42.25"]


def test_a_graduated_line_in_cii() -> None:
    xml = cii_document(invoice_view(GRADUATED, catalog()))
    assert check_rules(xml) == []
    assert xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    items = etree.fromstring(xml).findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", CII)
    assert [(item.findtext("ram:AssociatedDocumentLineDocument/ram:LineID", namespaces=CII),
             item.findtext("ram:SpecifiedLineTradeDelivery/ram:BilledQuantity", namespaces=CII),
             item.findtext("ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/"
                           "ram:LineTotalAmount", namespaces=CII)) for item in items] == [
        ("1", "1", "10.00"), ("2.1", "1000", "0.00"), ("2.2", "9000", "18.00"), ("2.3", "1", "5.00"),
        ("2.4", "2500", "2.50")]


def test_a_credit_note_of_a_graduated_invoice_credits_each_tier() -> None:
    credit = credit_note_for(GRADUATED, "2026-10-02")
    credit.number, credit.id = "CN-000001", 2
    xml = ubl_document(invoice_view(credit, catalog()))
    assert check_rules(xml) == []
    assert xml_check_xsd(xml, flavor="ubl-2.1-creditnote") is True
    assert [row[:4] for row in ubl_lines(xml, "CreditNoteLine", "CreditedQuantity")] == [
        ("1", "1", "10", "10.00"), ("2.1", "1000", "0", "0.00"), ("2.2", "9000", "0.002", "18.00"),
        ("2.3", "1", "5", "5.00"), ("2.4", "2500", "0.001", "2.50")]


def test_parts_whose_rounding_does_not_add_up_leave_the_line_whole() -> None:
    # three tiers of one unit at 0.005: each part rounds to 0.01 (0.03), the line is 0.015 -> 0.02
    halves = Charge(code="api", model="graduated", meter="calls",
                    tiers=(Tier(D(1), D("0.005")), Tier(D(2), D("0.005")), Tier(None, D("0.005"))))
    invoice = record([tiered(halves, "3")], "0", "0.00")
    assert invoice.lines[0].amount == D("0.02")
    xml = ubl_document(invoice_view(invoice, catalog()))
    assert check_rules(xml) == []
    # as before tiers were kept: the line at its unit price shown, 3 × 0.005 = 0.015 -> 0.02
    assert ubl_lines(xml) == [("1", "3", "0.005", "0.02", "Api")]


def test_parts_that_do_not_add_up_and_no_factor_price_give_one_unit_at_the_amount() -> None:
    # 0.005 + 0.005 + 1,234,565 × 0.001 = 1,234.575 -> 1,234.58; the parts round to 0.01 + 0.01 + 1,234.57
    # = 1,234.59, and the average price shown (0.00100000648) × 1,234,567 = 1,234.57: one unit at 1,234.58
    halves = Charge(code="api", model="graduated", meter="calls",
                    tiers=(Tier(D(1), D("0.005")), Tier(D(2), D("0.005")), Tier(None, D("0.001"))))
    invoice = record([tiered(halves, "1234567")], "0", "0.00")
    assert invoice.lines[0].amount == D("1234.58")
    xml = ubl_document(invoice_view(invoice, catalog()))
    assert check_rules(xml) == []
    assert ubl_lines(xml) == [("1", "1", "1234.58", "1234.58", "Api")]
    assert etree.fromstring(xml).findtext("cac:InvoiceLine/cbc:Note", namespaces=UBL) == "1234567 × Api"


def test_a_line_stored_without_parts_is_stated_as_before() -> None:
    invoice = record([replace(GRADUATED.lines[1], tiers=None)], "0", "0.00")
    # one line at the average price shown (12,500 × 0.00204 = 25.50)
    assert ubl_lines(ubl_document(invoice_view(invoice, catalog()))) == [("1", "12500", "0.00204", "25.50", "Api")]


def test_the_pdf_shows_each_tier_under_its_line() -> None:
    shown = text(render_pdf(invoice_view(GRADUATED, catalog())))
    assert "Tier 1: 1–1,000" in shown
    assert "Tier 2: 1,001–10,000 9,000 0.002 EUR + 5.00 EUR flat 23.00 EUR" in shown
    assert "Tier 3: 10,001–12,500 2,500 0.001 EUR 2.50 EUR" in shown
    assert "€25.50" in shown
    german = text(render_pdf(invoice_view(GRADUATED, catalog({"locale": "de_DE"}))))
    assert "Stufe 2: 1.001–10.000 9.000 0,002 EUR + 5,00 EUR pauschal 23,00 EUR" in german


# ------------------------------------------------------------------------------ the property

CURRENCIES = {"EUR": 2, "JPY": 0, "USD": 2}  # three decimals have no e-invoice (see MAX_DIGITS)
MONEY = st.builds(lambda n, k: D(n).scaleb(-k), st.integers(0, 10**6), st.integers(0, 6))
QUANTITY = st.builds(lambda n, k: D(n).scaleb(-k), st.integers(1, 10**8), st.integers(0, 3))


@st.composite
def tiered_invoices(draw: st.DrawFn) -> tuple[InvoiceRecord, int]:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    bounds = sorted({D(b) for b in draw(st.lists(st.integers(1, 10**6), max_size=4))})
    table = (*[Tier(b, draw(MONEY), draw(MONEY)) for b in bounds], Tier(None, draw(MONEY), draw(MONEY)))
    charge = Charge(code="api", model=draw(st.sampled_from(["graduated", "volume", "stairstep"])), meter="m",
                    tiers=table)
    lines = [tiered(charge, str(draw(QUANTITY)), currency)]
    rate = draw(st.sampled_from(["0", "19", "21.5"]))
    tax = invoice_tax([item.amount for item in lines], D(rate), currency)
    invoice = record(lines, rate, str(tax), currency=currency)
    if draw(st.booleans()):
        invoice = credit_note_for(invoice, "2026-10-02")
        invoice.number, invoice.id = "CN-000001", 2
    return invoice, CURRENCIES[currency]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=tiered_invoices())
def test_every_tiered_line_keeps_the_rules_split_or_not(generated: tuple[InvoiceRecord, int]) -> None:
    invoice, digits = generated
    view = invoice_view(invoice, catalog())
    for xml in (ubl_document(view), cii_document(view)):
        assert check_rules(xml, digits) == []
