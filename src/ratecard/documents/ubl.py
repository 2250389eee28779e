"""A final invoice as Peppol BIS Billing 3.0: a UBL 2.1 Invoice, or a CreditNote (type 381) for a
credit note. Element order follows the UBL 2.1 schemas (docs/invoices.md maps every field)."""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from ..catalog.schema import Address
from .einvoice import (
    CREDIT_NOTE_TYPE,
    INVOICE_TYPE,
    UNIT_CODE,
    EInvoiceLine,
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

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
SEPA_CREDIT_TRANSFER = "58"


def _cac(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def _cbc(parent: etree._Element, name: str, text: str, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{CBC}}}{name}", attributes)
    element.text = xml_text(text)
    return element


@wide_decimals
def ubl_document(view: InvoiceView) -> bytes:
    """The UBL XML (UTF-8, with its declaration); DocumentError for a draft or missing party data."""
    check_ready(view)
    credit = view.is_credit_note
    namespace = CREDIT_NOTE_NS if credit else INVOICE_NS
    root = etree.Element(f"{{{namespace}}}{'CreditNote' if credit else 'Invoice'}",
                         nsmap={None: namespace, "cac": CAC, "cbc": CBC})
    currency, digits = view.currency, view.digits
    lines = einvoice_lines(view)
    category = tax_category(view)
    _cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    _cbc(root, "ProfileID", PROFILE_ID)
    _cbc(root, "ID", view.number)
    _cbc(root, "IssueDate", view.issue_date.isoformat())
    if not credit and view.due_date is not None:
        _cbc(root, "DueDate", view.due_date.isoformat())
    _cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", CREDIT_NOTE_TYPE if credit else INVOICE_TYPE)
    if view.entity.footer:
        _cbc(root, "Note", view.entity.footer)
    _cbc(root, "DocumentCurrencyCode", currency)
    _cbc(root, "BuyerReference", view.buyer.reference or view.buyer.name)
    if view.period_start is not None and view.period_end is not None:
        period = _cac(root, "InvoicePeriod")
        _cbc(period, "StartDate", view.period_start.isoformat())
        _cbc(period, "EndDate", view.period_end.isoformat())
    if view.corrects_number:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(reference, "ID", view.corrects_number)
        if view.corrects_issue_date is not None:
            _cbc(reference, "IssueDate", view.corrects_issue_date.isoformat())
    _party(_cac(root, "AccountingSupplierParty"), view.seller)
    _party(_cac(root, "AccountingCustomerParty"), view.buyer)
    if view.entity.iban and not credit:  # the account the buyer pays into; a credit note asks for no payment
        means = _cac(root, "PaymentMeans")
        _cbc(means, "PaymentMeansCode", SEPA_CREDIT_TRANSFER)
        _cbc(means, "PaymentID", view.number)
        account = _cac(means, "PayeeFinancialAccount")
        _cbc(account, "ID", view.entity.iban)
        if view.entity.bic:
            _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", view.entity.bic)
    if not credit and view.due_date is not None:
        days = (view.due_date - view.issue_date).days
        _cbc(_cac(root, "PaymentTerms"), "Note", f"Payment within {days} days" if days else "Payment on receipt")
    factor = Decimal(-1) if credit else Decimal(1)
    tax_total = _cac(root, "TaxTotal")
    _cbc(tax_total, "TaxAmount", amount_text(view.tax * factor, digits), currencyID=currency)
    for row in view.taxes:
        subtotal = _cac(tax_total, "TaxSubtotal")
        _cbc(subtotal, "TaxableAmount", amount_text(row.taxable * factor, digits), currencyID=currency)
        _cbc(subtotal, "TaxAmount", amount_text(row.tax * factor, digits), currencyID=currency)
        _tax_category(_cac(subtotal, "TaxCategory"), category, with_reason=True)
    net = sum((line.net for line in lines), Decimal(0))
    totals = _cac(root, "LegalMonetaryTotal")
    _cbc(totals, "LineExtensionAmount", amount_text(net, digits), currencyID=currency)
    _cbc(totals, "TaxExclusiveAmount", amount_text(view.subtotal * factor, digits), currencyID=currency)
    _cbc(totals, "TaxInclusiveAmount", amount_text(view.total * factor, digits), currencyID=currency)
    _cbc(totals, "PayableAmount", amount_text(view.total * factor, digits), currencyID=currency)
    for line in lines:
        _line(root, line, credit, currency, digits, category)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _tax_category(element: etree._Element, category: TaxCategory, *, with_reason: bool) -> None:
    _cbc(element, "ID", category.code)
    _cbc(element, "Percent", number_text(category.rate))
    if with_reason and category.exemption_reason:
        _cbc(element, "TaxExemptionReason", category.exemption_reason)
    _cbc(_cac(element, "TaxScheme"), "ID", "VAT")


def _party(parent: etree._Element, party: Party) -> None:
    element = _cac(parent, "Party")
    if party.peppol_id:
        scheme, _, identifier = party.peppol_id.partition(":")
        _cbc(element, "EndpointID", identifier, schemeID=scheme)
    if party.reference:
        _cbc(_cac(element, "PartyIdentification"), "ID", party.reference)
    _cbc(_cac(element, "PartyName"), "Name", party.name)
    _address(_cac(element, "PostalAddress"), party.address, party.country or "")
    if party.tax_id:
        scheme = _cac(element, "PartyTaxScheme")
        _cbc(scheme, "CompanyID", party.tax_id)
        _cbc(_cac(scheme, "TaxScheme"), "ID", "VAT")
    _cbc(_cac(element, "PartyLegalEntity"), "RegistrationName", party.legal_name)
    if party.email:
        _cbc(_cac(element, "Contact"), "ElectronicMail", party.email)


def _address(element: etree._Element, address: Address | None, country: str) -> None:
    if address is not None:
        if address.lines:
            _cbc(element, "StreetName", address.lines[0])
        if len(address.lines) > 1:
            _cbc(element, "AdditionalStreetName", address.lines[1])
        _cbc(element, "CityName", address.city)
        if address.postal_code:
            _cbc(element, "PostalZone", address.postal_code)
        if len(address.lines) > 2:
            _cbc(_cac(element, "AddressLine"), "Line", address.lines[2])
    _cbc(_cac(element, "Country"), "IdentificationCode", country)


def _line(root: etree._Element, line: EInvoiceLine, credit: bool, currency: str, digits: int,
          category: TaxCategory) -> None:
    element = _cac(root, "CreditNoteLine" if credit else "InvoiceLine")
    _cbc(element, "ID", str(line.position))
    if line.note:
        _cbc(element, "Note", line.note)
    _cbc(element, "CreditedQuantity" if credit else "InvoicedQuantity", number_text(line.quantity), unitCode=UNIT_CODE)
    _cbc(element, "LineExtensionAmount", amount_text(line.net, digits), currencyID=currency)
    period = _cac(element, "InvoicePeriod")
    _cbc(period, "StartDate", line.start.isoformat())
    _cbc(period, "EndDate", line.end.isoformat())
    item = _cac(element, "Item")
    _cbc(item, "Name", line.name)
    _cbc(_cac(item, "SellersItemIdentification"), "ID", line.code)
    _tax_category(_cac(item, "ClassifiedTaxCategory"), category, with_reason=False)
    price = _cac(element, "Price")
    _cbc(price, "PriceAmount", number_text(line.price), currencyID=currency)
