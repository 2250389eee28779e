"""The PDF of an invoice: the entity's own template, escaping, and nothing fetched while rendering."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from ratecard.documents.model import DocumentError, invoice_view
from ratecard.documents.pdf import render_pdf

from ..integration.documents_workspace import png
from .test_einvoice_rules import HAND, catalog, line, record


def pages(content: bytes) -> list:
    return PdfReader(io.BytesIO(content)).pages


def text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in pages(content)).replace("\xa0", " ")


def test_the_entitys_own_template_replaces_the_default() -> None:
    template = "<h1>Custom {{ invoice.number }}</h1><p>{{ fmt.money(invoice.total) }} {{ buyer.name }}</p>"
    view = invoice_view(HAND, catalog({"pdf_template_text": template, "locale": "de_DE"},
                                      customer={"name": "<b>Kunde</b>"}))
    shown = text(render_pdf(view))
    assert "Custom RC-000001" in shown and "1.536,60 €" in shown
    assert "<b>Kunde</b>" in shown  # autoescaped: the markup is text


def test_a_template_that_leaves_the_sandbox_is_refused_with_a_sentence() -> None:
    view = invoice_view(HAND, catalog({"pdf_template_text": "{{ invoice.__class__.__mro__ }}"}))
    with pytest.raises(DocumentError, match="the PDF template of billing entity 'default' failed"):
        render_pdf(view)
    missing = invoice_view(HAND, catalog({"pdf_template_text": "{{ invoice.no_such_field }}"}))
    with pytest.raises(DocumentError, match="no_such_field"):
        render_pdf(missing)


def test_only_data_uris_are_loaded(tmp_path: Path) -> None:
    (tmp_path / "secret.png").write_bytes(png())
    logo = "data:image/png;base64," + base64.b64encode(png()).decode()
    with_logo = invoice_view(HAND, catalog({"logo_data": logo}))
    assert len(pages(render_pdf(with_logo))[0].images) == 1  # the logo, embedded
    hostile = (f'<img src="file://{tmp_path}/secret.png"><div style="background: url(file://{tmp_path}/secret.png)">'
               "x</div>{{ invoice.number }}")
    view = invoice_view(HAND, catalog({"pdf_template_text": hostile}))
    content = render_pdf(view)
    assert "RC-000001" in text(content) and len(pages(content)[0].images) == 0  # refused, logged by WeasyPrint


def test_a_forty_digit_amount_is_printed_exactly() -> None:
    huge = record([line("base", "10000000000000000000", "9999999999999999999.99",
                        "99999999999999999999999999999999999999.90")], "0", "0.00")
    shown = text(render_pdf(invoice_view(huge, catalog({"locale": "de_DE"}))))
    assert "99.999.999.999.999.999.999.999.999.999.999.999.999,90 €" in shown


def test_a_hostile_footer_is_printed_as_text() -> None:
    footer = '<img src="file:///etc/passwd">=HYPERLINK("x") & <script>'
    shown = text(render_pdf(invoice_view(HAND, catalog({"footer": footer}))))
    assert footer in shown
