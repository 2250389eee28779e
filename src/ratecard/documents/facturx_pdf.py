"""A Factur-X invoice: the PDF rendered as PDF/A-3 with the CII XML embedded (factur-x.xml, EN 16931
profile), made by the factur-x library."""

from __future__ import annotations

from facturx import generate_from_binary

from .cii import cii_document
from .model import InvoiceView
from .pdf import render_pdf


def facturx_document(view: InvoiceView, xml: bytes | None = None) -> bytes:
    """The Factur-X PDF; `xml`, when the caller has built (and checked) the CII already."""
    xml = xml if xml is not None else cii_document(view)
    pdf = render_pdf(view, pdf_variant="pdf/a-3b")
    title = f"{'Credit note' if view.is_credit_note else 'Invoice'} {view.number}"
    metadata = {"author": view.seller.legal_name, "keywords": "Factur-X", "title": title,
                "subject": f"{title} of {view.seller.legal_name}"}
    return generate_from_binary(pdf, xml, flavor="factur-x", level="en16931", check_xsd=False, pdf_metadata=metadata,
                                lang=view.entity.locale.replace("_", "-"))
