"""Invoice documents use cases: the PDF of an invoice or credit note (drafts too, watermarked), and
its e-invoices (Peppol BIS UBL, Factur-X), final invoices only, checked before they are handed out."""

from __future__ import annotations

from dataclasses import dataclass

from ..documents.cii import cii_document
from ..documents.model import DocumentError, InvoiceView, invoice_view
from ..documents.rules import check_document
from ..documents.ubl import ubl_document
from ..outputs import download_name
from ..store import Store
from ..store.invoices import InvoiceRecord
from .catalog import catalog_at, current_catalog
from .errors import Conflict, ServiceError
from .invoices import find_invoice, invoice_or_none

PDF = "application/pdf"
XML = "application/xml"


class DocumentInvalid(ServiceError):
    """ratecard built an e-invoice that breaks a schema or business rule: a defect, never handed out."""


@dataclass(frozen=True)
class Document:
    number: str
    content: bytes
    media_type: str
    extension: str

    @property
    def file_name(self) -> str:
        """NUMBER.ext, with what a file name must not hold (a prefix may have a slash) replaced."""
        return download_name(self.number, self.extension)


def document_view(store: Store, reference: str, environment: str = "live") -> InvoiceView:
    """The invoice's document content, its parties from the catalog version it was computed with."""
    invoice = find_invoice(store, reference, environment)
    catalog = catalog_at(store, invoice.catalog_version, environment)
    if catalog is None:
        _, catalog = current_catalog(store, environment)
    corrected: InvoiceRecord | None = None
    if invoice.corrects is not None:
        corrected = invoice_or_none(store, str(invoice.corrects), environment)
    return invoice_view(invoice, catalog, corrected)


def invoice_pdf(store: Store, reference: str, environment: str = "live") -> Document:
    """The PDF of any invoice, credit note or draft (a draft carries a DRAFT watermark)."""
    from ..documents.pdf import render_pdf  # WeasyPrint: a second of imports, paid by the first PDF only

    view = document_view(store, reference, environment)
    try:
        return Document(view.number, render_pdf(view), PDF, "pdf")
    except DocumentError as exc:
        raise Conflict(str(exc)) from None


def einvoice_problems(xml: bytes, digits: int) -> list[str]:
    """What is wrong with an e-invoice's XML: its schema first, then the EN 16931 rules on amounts."""
    from ..documents.schemas import xsd_problem  # the factur-x library, imported when first needed

    problem = xsd_problem(xml)
    return ([f"schema: {problem}"] if problem else []) + [str(violation) for violation in check_document(xml, digits)]


def _checked(view: InvoiceView, xml: bytes) -> bytes:
    problems = einvoice_problems(xml, view.digits)
    if problems:
        raise DocumentInvalid(f"the e-invoice of {view.number} breaks {len(problems)} rule(s); nothing was written",
                              details=problems)
    return xml


def _einvoice_view(store: Store, reference: str, environment: str) -> InvoiceView:
    view = document_view(store, reference, environment)
    if view.is_draft:
        raise Conflict(f"invoice {reference} is {view.status}: e-invoices are issued for final invoices only "
                       f"(finalize it first with `ratecard invoices finalize {reference}`)")
    return view


def invoice_ubl(store: Store, reference: str, environment: str = "live") -> Document:
    """Peppol BIS Billing 3.0 UBL (Invoice, or CreditNote for a credit note), checked."""
    view = _einvoice_view(store, reference, environment)
    try:
        xml = ubl_document(view)
    except DocumentError as exc:
        raise Conflict(str(exc)) from None
    return Document(view.number, _checked(view, xml), XML, "xml")


def invoice_facturx(store: Store, reference: str, environment: str = "live") -> Document:
    """Factur-X (EN 16931 profile): a PDF/A-3 with the checked CII XML embedded."""
    from ..documents.facturx_pdf import facturx_document

    view = _einvoice_view(store, reference, environment)
    try:
        xml = _checked(view, cii_document(view))
        return Document(view.number, facturx_document(view, xml), PDF, "pdf")
    except DocumentError as exc:
        raise Conflict(str(exc)) from None
