"""A final invoice as UN/CEFACT Cross Industry Invoice (D16B), Factur-X's EN 16931 profile: the XML
a Factur-X PDF carries. Element order follows the Factur-X EN 16931 schema."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from .einvoice import (
    CREDIT_NOTE_TYPE,
    INVOICE_TYPE,
    UNIT_CODE,
    TaxCategory,
    amount_text,
    check_ready,
    einvoice_lines,
    number_text,
    tax_category,
    wide_decimals,
    xml_text,
)
from .model import InvoiceView, Party

GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"
RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
SEPA_CREDIT_TRANSFER = "58"


def _el(parent: etree._Element, namespace: str, name: str, text: str | None = None,
        **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{namespace}}}{name}", attributes)
    if text is not None:
        element.text = xml_text(text)
    return element


def _ram(parent: etree._Element, name: str, text: str | None = None, **attributes: str) -> etree._Element:
    return _el(parent, RAM, name, text, **attributes)


def _day(parent: etree._Element, name: str, day: date) -> None:
    _el(_ram(parent, name), UDT, "DateTimeString", day.strftime("%Y%m%d"), format="102")


@wide_decimals
def cii_document(view: InvoiceView) -> bytes:
    """The CII XML (UTF-8); DocumentError for a draft or missing party data."""
    check_ready(view)
    credit = view.is_credit_note
    factor = Decimal(-1) if credit else Decimal(1)
    currency, digits = view.currency, view.digits
    lines = einvoice_lines(view)
    category = tax_category(view)
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap={"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT})
    context = _el(root, RSM, "ExchangedDocumentContext")
    _ram(_ram(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", GUIDELINE_EN16931)
    document = _el(root, RSM, "ExchangedDocument")
    _ram(document, "ID", view.number)
    _ram(document, "TypeCode", CREDIT_NOTE_TYPE if credit else INVOICE_TYPE)
    _day(document, "IssueDateTime", view.issue_date)
    if view.entity.footer:
        _ram(_ram(document, "IncludedNote"), "Content", view.entity.footer)
    transaction = _el(root, RSM, "SupplyChainTradeTransaction")
    for line in lines:
        item = _ram(transaction, "IncludedSupplyChainTradeLineItem")
        line_document = _ram(item, "AssociatedDocumentLineDocument")
        _ram(line_document, "LineID", str(line.position))
        if line.note:
            _ram(_ram(line_document, "IncludedNote"), "Content", line.note)
        product = _ram(item, "SpecifiedTradeProduct")
        _ram(product, "SellerAssignedID", line.code)
        _ram(product, "Name", line.name)
        agreement = _ram(item, "SpecifiedLineTradeAgreement")
        _ram(_ram(agreement, "NetPriceProductTradePrice"), "ChargeAmount", number_text(line.price))
        _ram(_ram(item, "SpecifiedLineTradeDelivery"), "BilledQuantity", number_text(line.quantity), unitCode=UNIT_CODE)
        settlement = _ram(item, "SpecifiedLineTradeSettlement")
        _line_tax(_ram(settlement, "ApplicableTradeTax"), category)
        period = _ram(settlement, "BillingSpecifiedPeriod")
        _day(period, "StartDateTime", line.start)
        _day(period, "EndDateTime", line.end)
        _ram(_ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation"), "LineTotalAmount",
             amount_text(line.net, digits))
    agreement = _ram(transaction, "ApplicableHeaderTradeAgreement")
    _ram(agreement, "BuyerReference", view.buyer.reference or view.buyer.name)
    _party(_ram(agreement, "SellerTradeParty"), view.seller)
    _party(_ram(agreement, "BuyerTradeParty"), view.buyer)
    _ram(transaction, "ApplicableHeaderTradeDelivery")
    settlement = _ram(transaction, "ApplicableHeaderTradeSettlement")
    pays_in = bool(view.entity.iban) and not credit  # a credit note asks for no payment
    if pays_in:
        _ram(settlement, "PaymentReference", view.number)
    _ram(settlement, "InvoiceCurrencyCode", currency)
    if pays_in:
        means = _ram(settlement, "SpecifiedTradeSettlementPaymentMeans")
        _ram(means, "TypeCode", SEPA_CREDIT_TRANSFER)
        _ram(_ram(means, "PayeePartyCreditorFinancialAccount"), "IBANID", view.entity.iban)
        if view.entity.bic:
            _ram(_ram(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", view.entity.bic)
    for row in view.taxes:
        tax = _ram(settlement, "ApplicableTradeTax")
        _ram(tax, "CalculatedAmount", amount_text(row.tax * factor, digits))
        _ram(tax, "TypeCode", "VAT")
        if category.exemption_reason:
            _ram(tax, "ExemptionReason", category.exemption_reason)
        _ram(tax, "BasisAmount", amount_text(row.taxable * factor, digits))
        _ram(tax, "CategoryCode", category.code)
        _ram(tax, "RateApplicablePercent", number_text(category.rate))
    if view.period_start is not None and view.period_end is not None:
        period = _ram(settlement, "BillingSpecifiedPeriod")
        _day(period, "StartDateTime", view.period_start)
        _day(period, "EndDateTime", view.period_end)
    if not credit and view.due_date is not None:
        _day(_ram(settlement, "SpecifiedTradePaymentTerms"), "DueDateDateTime", view.due_date)
    summation = _ram(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    net = sum((line.net for line in lines), Decimal(0))
    _ram(summation, "LineTotalAmount", amount_text(net, digits))
    _ram(summation, "TaxBasisTotalAmount", amount_text(view.subtotal * factor, digits))
    _ram(summation, "TaxTotalAmount", amount_text(view.tax * factor, digits), currencyID=currency)
    _ram(summation, "GrandTotalAmount", amount_text(view.total * factor, digits))
    _ram(summation, "DuePayableAmount", amount_text(view.total * factor, digits))
    if view.corrects_number:
        referenced = _ram(settlement, "InvoiceReferencedDocument")
        _ram(referenced, "IssuerAssignedID", view.corrects_number)
        if view.corrects_issue_date is not None:
            _el(_ram(referenced, "FormattedIssueDateTime"), QDT, "DateTimeString",
                view.corrects_issue_date.strftime("%Y%m%d"), format="102")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _line_tax(element: etree._Element, category: TaxCategory) -> None:
    _ram(element, "TypeCode", "VAT")
    _ram(element, "CategoryCode", category.code)
    _ram(element, "RateApplicablePercent", number_text(category.rate))


def _party(element: etree._Element, party: Party) -> None:
    if party.reference:
        _ram(element, "ID", party.reference)
    _ram(element, "Name", party.legal_name)
    address = _ram(element, "PostalTradeAddress")
    if party.address is not None:
        if party.address.postal_code:
            _ram(address, "PostcodeCode", party.address.postal_code)
        for name, text in zip(("LineOne", "LineTwo", "LineThree"), party.address.lines, strict=False):
            _ram(address, name, text)
        _ram(address, "CityName", party.address.city)
    _ram(address, "CountryID", party.country or "")
    if party.peppol_id:
        scheme, _, identifier = party.peppol_id.partition(":")
        _ram(_ram(element, "URIUniversalCommunication"), "URIID", identifier, schemeID=scheme)
    elif party.email:
        _ram(_ram(element, "URIUniversalCommunication"), "URIID", party.email, schemeID="EM")
    if party.tax_id:
        _ram(_ram(element, "SpecifiedTaxRegistration"), "ID", party.tax_id, schemeID="VA")
