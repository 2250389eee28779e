"""Unit prices on invoice documents: an exact average (amount ÷ quantity, 12 decimals) is shown to
6 decimals, or 6 significant digits when that keeps more, trailing zeros dropped, at least the
currency's digits, rounded half up; a catalog price is shown as it is. Amounts never change, and the
e-invoice states the shown price only where quantity × price still gives the line's net amount."""

from __future__ import annotations

from decimal import Decimal as D

from facturx import xml_check_xsd
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from ratecard.documents.cii import cii_document
from ratecard.documents.formatting import Formatter
from ratecard.documents.model import invoice_view
from ratecard.documents.pdf import render_html
from ratecard.documents.rules import check_document as check_rules
from ratecard.documents.ubl import ubl_document
from ratecard.domain.money import display_price

from .test_einvoice_rules import catalog, line, record

UBL = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
       "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}


def test_the_rule_by_hand() -> None:
    # demo: 142.1 GB of storage billed as one 25 GB package (5.00 EUR): 5.00 / 142.1 = 0.035186488388
    assert display_price(D("0.035186488388"), 2) == D("0.0351865")  # 6 significant digits: more than 6 decimals
    assert display_price(D("4.166666666667"), 2) == D("4.166667")  # 6 decimals
    assert display_price(D("0.000000037965"), 2) == D("0.000000037965")  # needs no rounding at 6 significant
    assert display_price(D("0.1234565"), 2) == D("0.123457")  # half up
    assert display_price(D("0.00000775"), 2) == D("0.00000775")  # a catalog price per token, exactly
    assert display_price(D("0.0001"), 2) == D("0.0001")
    assert display_price(D("49"), 2) == D("49.00") and display_price(D("2.5000000"), 2) == D("2.50")
    assert display_price(D("1235"), 0) == D("1235") and display_price(D("12.3456789"), 0) == D("12.345679")
    german = Formatter.for_locale("de_DE", "EUR", 2)
    assert german.price(D("0.035186488388")) == "0,0351865 EUR"
    assert german.exact(D("0.011628875")) == "0,011628875 EUR"  # a tier part's amount keeps every digit


prices = st.decimals(min_value=D("0.000000000001"), max_value=D("1000000"), places=12)


@given(prices, st.sampled_from([0, 2, 3]))
def test_the_shown_price_is_the_nearest_at_the_decimals_it_shows(price: D, digits: int) -> None:
    shown = display_price(price, digits)
    decimals = -shown.as_tuple().exponent
    assert digits <= decimals <= max(digits, 6, 6 - 1 - price.adjusted())
    assert abs(shown - price) <= D(1).scaleb(-decimals) / 2  # rounded, never truncated or moved further
    if -price.normalize().as_tuple().exponent <= max(digits, 6):
        assert shown == price  # a price with 6 decimals or fewer is shown exactly


def _storage_invoice():
    """One package line: 142.1 GB at one package of 5.00 EUR, its unit amount the exact average."""
    return record([line("storage", "142.1", "0.035186488388", "5.00")], "19", "0.95")


def test_the_pdf_shows_the_average_to_six_significant_digits_and_the_same_amounts() -> None:
    html = render_html(invoice_view(_storage_invoice(), catalog({"locale": "de_DE"})))
    assert "0,0351865 EUR" in html and "0,035186488388" not in html
    assert "5,00" in html and "0,95" in html and "5,95" in html  # amount, VAT and total as stored


def _ubl_line(xml: bytes) -> tuple[str | None, ...]:
    item = etree.fromstring(xml).find("cac:InvoiceLine", UBL)
    return tuple(item.findtext(path, namespaces=UBL) for path in
                 ("cbc:InvoicedQuantity", "cac:Price/cbc:PriceAmount", "cbc:LineExtensionAmount"))


def test_the_e_invoice_states_the_shown_price_when_it_gives_the_net_amount() -> None:
    view = invoice_view(_storage_invoice(), catalog())
    xml = ubl_document(view)
    # 142.1 × 0.0351865 = 5.00000165 -> 5.00, within 0.02 of it
    assert _ubl_line(xml) == ("142.1", "0.0351865", "5.00")
    assert check_rules(xml) == [] and xml_check_xsd(xml, flavor="ubl-2.1-invoice") is True
    cii = cii_document(view)
    assert b"<ram:ChargeAmount>0.0351865</ram:ChargeAmount>" in cii and check_rules(cii) == []


def test_the_e_invoice_keeps_the_exact_price_when_the_shown_one_misses_the_net_amount() -> None:
    # 12,345.67 for 33,333 units: the average 0.370373803738 shown as 0.370374 would give
    # 33,333 × 0.370374 = 12,345.676542 -> 12,345.68, a cent off; the e-invoice keeps the exact price
    # (33,333 × 0.370373803738 = 12,345.669999998754: 12,345.67) while the PDF shows 0.370374
    invoice = record([line("calls", "33333", "0.370373803738", "12345.67")], "0", "0.00")
    view = invoice_view(invoice, catalog())
    xml = ubl_document(view)
    assert _ubl_line(xml) == ("33333", "0.370373803738", "12345.67")
    assert check_rules(xml) == [] and xml_check_xsd(xml, flavor="ubl-2.1-invoice") is True
    assert "0.370374 EUR" in render_html(view)
