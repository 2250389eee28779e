"""The EN 16931 business rules on amounts that ratecard's e-invoices must keep, checked on the XML
as written (UBL or CII), so what is checked is what a receiver reads:

- BR-CO-10: the sum of the lines' net amounts = the document's line total;
- BR-CO-13: tax exclusive total = line total − allowances + charges (ratecard states none);
- BR-CO-15: tax inclusive total = tax exclusive total + VAT;
- BR-S-08 (and BR-Z-08, BR-AE-08): each VAT breakdown's taxable amount = the sum of the net amounts of
  the lines in its category and rate;
- BR-CO-17: each breakdown's VAT = taxable × rate / 100 rounded to two decimals, give or take less
  than 1 (tax rounded per line in a currency without minor units can drift further: such an
  e-invoice is refused, never issued);
- PEPPOL-EN16931-R120: each line's net amount = quantity × price / base quantity (rounded to the
  currency's digits, and within 0.02 of it as Peppol reads it).

The full Peppol and EN 16931 rule sets are Schematron (XSLT 2) files that need a Saxon processor;
ratecard checks the XML against the schemas (see xsd_problems) and these rules, the ones its own
arithmetic could break. The test suite runs the full sets (tests/einvoice_schematron.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from lxml import etree

UBL_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
UBL_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CII_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
CII_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
NS = {"cbc": UBL_CBC, "cac": UBL_CAC, "ram": CII_RAM, "rsm": CII_RSM}


@dataclass(frozen=True)
class Figures:
    """The amounts the rules compare, read from one document."""

    lines: list[tuple[str, Decimal, Decimal, Decimal, Decimal, tuple[str, Decimal]]]
    # (line id, net, quantity, price, base quantity, (category, rate))
    line_total: Decimal
    allowances: Decimal
    charges: Decimal
    tax_exclusive: Decimal
    tax_total: Decimal
    tax_inclusive: Decimal
    breakdown: list[tuple[str, Decimal, Decimal, Decimal]]  # (category, rate, taxable, tax)


@dataclass(frozen=True)
class RuleViolation:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


def _number(element: etree._Element | None, default: str | None = None) -> Decimal:
    text = element.text if element is not None and element.text is not None else default
    if text is None:
        raise ValueError("a required amount is missing")
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None


def _find(parent: etree._Element, path: str) -> etree._Element | None:
    found = parent.find(path, NS)
    return found


def ubl_figures(root: etree._Element) -> Figures:
    is_credit = etree.QName(root).localname == "CreditNote"
    line_tag, quantity_tag = ("cac:CreditNoteLine", "cbc:CreditedQuantity") if is_credit else \
        ("cac:InvoiceLine", "cbc:InvoicedQuantity")
    lines = []
    for line in root.findall(line_tag, NS):
        category = _find(line, "cac:Item/cac:ClassifiedTaxCategory")
        key = (_find(category, "cbc:ID").text or "", _number(_find(category, "cbc:Percent"), "0")) \
            if category is not None else ("", Decimal(0))
        lines.append((_find(line, "cbc:ID").text or "", _number(_find(line, "cbc:LineExtensionAmount")),
                      _number(_find(line, quantity_tag)), _number(_find(line, "cac:Price/cbc:PriceAmount")),
                      _number(_find(line, "cac:Price/cbc:BaseQuantity"), "1"), key))
    totals = _find(root, "cac:LegalMonetaryTotal")
    if totals is None:
        raise ValueError("no LegalMonetaryTotal")
    breakdown = []
    for subtotal in root.findall("cac:TaxTotal/cac:TaxSubtotal", NS):
        breakdown.append((_find(subtotal, "cac:TaxCategory/cbc:ID").text or "",
                          _number(_find(subtotal, "cac:TaxCategory/cbc:Percent"), "0"),
                          _number(_find(subtotal, "cbc:TaxableAmount")), _number(_find(subtotal, "cbc:TaxAmount"))))
    return Figures(
        lines=lines, line_total=_number(_find(totals, "cbc:LineExtensionAmount")),
        allowances=_number(_find(totals, "cbc:AllowanceTotalAmount"), "0"),
        charges=_number(_find(totals, "cbc:ChargeTotalAmount"), "0"),
        tax_exclusive=_number(_find(totals, "cbc:TaxExclusiveAmount")),
        tax_total=_number(_find(root, "cac:TaxTotal/cbc:TaxAmount"), "0"),
        tax_inclusive=_number(_find(totals, "cbc:TaxInclusiveAmount")), breakdown=breakdown)


def cii_figures(root: etree._Element) -> Figures:
    lines = []
    for item in root.findall("rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem", NS):
        tax = _find(item, "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax")
        key = (_find(tax, "ram:CategoryCode").text or "", _number(_find(tax, "ram:RateApplicablePercent"), "0")) \
            if tax is not None else ("", Decimal(0))
        price = _find(item, "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice")
        lines.append((
            _find(item, "ram:AssociatedDocumentLineDocument/ram:LineID").text or "",
            _number(_find(item, "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/"
                                "ram:LineTotalAmount")),
            _number(_find(item, "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity")),
            _number(_find(price, "ram:ChargeAmount") if price is not None else None),
            _number(_find(price, "ram:BasisQuantity") if price is not None else None, "1"), key))
    settlement = _find(root, "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement")
    if settlement is None:
        raise ValueError("no ApplicableHeaderTradeSettlement")
    summation = _find(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    if summation is None:
        raise ValueError("no SpecifiedTradeSettlementHeaderMonetarySummation")
    breakdown = [(_find(tax, "ram:CategoryCode").text or "", _number(_find(tax, "ram:RateApplicablePercent"), "0"),
                  _number(_find(tax, "ram:BasisAmount")), _number(_find(tax, "ram:CalculatedAmount")))
                 for tax in settlement.findall("ram:ApplicableTradeTax", NS)]
    tax_exclusive = _number(_find(summation, "ram:TaxBasisTotalAmount"))
    return Figures(
        lines=lines, line_total=_number(_find(summation, "ram:LineTotalAmount")),
        allowances=_number(_find(summation, "ram:AllowanceTotalAmount"), "0"),
        charges=_number(_find(summation, "ram:ChargeTotalAmount"), "0"),
        tax_exclusive=tax_exclusive, tax_total=_number(_find(summation, "ram:TaxTotalAmount"), "0"),
        tax_inclusive=_number(_find(summation, "ram:GrandTotalAmount")), breakdown=breakdown)


def figures_of(xml: bytes) -> Figures:
    """UBL (Invoice, CreditNote) or CII, by its root element."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(xml, parser)
    if etree.QName(root).namespace == CII_RSM:
        return cii_figures(root)
    return ubl_figures(root)


R120_SLACK = Decimal("0.02")  # what Peppol's R120 allows between quantity × price and a line's net amount


def within_r120_slack(stated: Decimal, net: Decimal) -> bool:
    """Whether quantity × price / base quantity (`stated`) is close enough to the net amount for
    PEPPOL-EN16931-R120: rounding to the currency's digits is not enough where a unit is worth more
    than 0.02 (1.5 × 5 yen = 7.5, stored 8)."""
    return abs(stated - net) <= R120_SLACK


def _round(value: Decimal, digits: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def check_figures(figures: Figures, digits: int = 2) -> list[RuleViolation]:
    """Every rule the figures break (an empty list: they keep them all), in exact arithmetic."""
    with localcontext() as context:
        context.prec = 100
        return _violations(figures, digits)


def _violations(figures: Figures, digits: int) -> list[RuleViolation]:
    found: list[RuleViolation] = []
    net_sum = sum((line[1] for line in figures.lines), Decimal(0))
    if net_sum != figures.line_total:
        found.append(RuleViolation("BR-CO-10", f"the lines' net amounts add up to {net_sum}, the line total says "
                                               f"{figures.line_total}"))
    expected_exclusive = figures.line_total - figures.allowances + figures.charges
    if expected_exclusive != figures.tax_exclusive:
        found.append(RuleViolation("BR-CO-13", f"tax exclusive total {figures.tax_exclusive} is not line total − "
                                               f"allowances + charges = {expected_exclusive}"))
    if figures.tax_exclusive + figures.tax_total != figures.tax_inclusive:
        found.append(RuleViolation("BR-CO-15", f"tax inclusive total {figures.tax_inclusive} is not tax exclusive "
                                               f"total + VAT = {figures.tax_exclusive + figures.tax_total}"))
    per_category: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
    for line in figures.lines:
        per_category[(line[5][0], line[5][1])] += line[1]
    for category, rate, taxable, tax in figures.breakdown:
        lines_sum = per_category.pop((category, rate), Decimal(0))
        if taxable != lines_sum:
            found.append(RuleViolation(f"BR-{category}-08", f"VAT breakdown {category} {rate}%: taxable amount "
                                                            f"{taxable}, its lines add up to {lines_sum}"))
        expected = _round(taxable * rate / 100, 2)  # the rule rounds to two decimals, whatever the currency
        if abs(tax - expected) >= 1:
            found.append(RuleViolation("BR-CO-17", f"VAT breakdown {category} {rate}%: VAT {tax} is not taxable × "
                                                   f"rate = {expected}"))
    for (category, rate), lines_sum in per_category.items():
        found.append(RuleViolation(f"BR-{category}-08", f"lines in category {category} {rate}% add up to {lines_sum} "
                                                        "but there is no VAT breakdown for them"))
    breakdown_tax = sum((row[3] for row in figures.breakdown), Decimal(0))
    if breakdown_tax != figures.tax_total:
        found.append(RuleViolation("BR-CO-14", f"the VAT total {figures.tax_total} is not the sum of the breakdown "
                                               f"{breakdown_tax}"))
    for line_id, net, quantity, price, base, _ in figures.lines:
        if base == 0:
            found.append(RuleViolation("PEPPOL-EN16931-R121", f"line {line_id}: the base quantity is 0"))
            continue
        if price < 0:
            found.append(RuleViolation("BR-27", f"line {line_id}: the price {price} is negative"))
        stated = quantity * price / base
        computed = _round(stated, digits)
        if computed != net or not within_r120_slack(stated, net):
            found.append(RuleViolation("PEPPOL-EN16931-R120", f"line {line_id}: quantity {quantity} × price {price} "
                                                              f"/ base {base} = {computed}, the net amount says {net}"))
    return found


def check_document(xml: bytes, digits: int = 2) -> list[RuleViolation]:
    try:
        figures = figures_of(xml)
    except (ValueError, AttributeError, etree.XMLSyntaxError) as exc:
        return [RuleViolation("XML", f"cannot read the amounts: {exc}")]
    return check_figures(figures, digits)
