"""The PDF of an invoice: the entity's own template, escaping, and nothing fetched while rendering."""

from __future__ import annotations

import base64
import io
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from ratecard.documents.model import DocumentError, invoice_view
from ratecard.documents.pdf import render_pdf
from ratecard.store.invoices import LineRecord

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


def shown_on_page(content: bytes, tmp_path: Path) -> str:
    """The text a reader sees: poppler's pdftotext keeps only what is drawn inside the page."""
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(content)
    result = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, timeout=60)
    return result.stdout.decode().replace("\xa0", " ")


def test_a_long_word_wraps_and_never_pushes_the_amounts_off_the_page(tmp_path: Path) -> None:
    # 500 characters without a space (the longest description and name a catalog takes): a URL, an id
    word = "https://example.com/" + "a" * 480
    hostile = record([LineRecord("base", word, "advance", "2026-09-01", "2026-10-01", 0, 0, Decimal(1),
                                 Decimal("1000.00"), Decimal("1000.00"))], "19", "190.00")
    view = invoice_view(hostile, catalog({"locale": "de_DE", "legal_name": "L" * 500}, customer={"name": "N" * 500}))
    shown = shown_on_page(render_pdf(view), tmp_path)
    assert "Menge" in shown and "Betrag" in shown  # the column headings
    assert "1 1.000,00 EUR 1.000,00 €" in " ".join(shown.split())  # the line's quantity, price and amount
    assert "RECHNUNG AN" in shown and "Kunde: acme" in shown  # the buyer's block
    runs = re.findall(r"a{5,}|N{5,}|L{5,}", shown)  # each long word, wrapped over several lines
    assert [sum(len(run) for run in runs if run[0] == letter) for letter in "aNL"] == [480, 500, 500]


def test_an_endless_description_is_cut_with_a_mark_and_the_page_count_stays_small(tmp_path: Path) -> None:
    # a line grouped by an event property names its value, which may be as long as the event (1 MiB)
    word = "Tokens (region " + "x" * 60_000 + ")"
    hostile = record([LineRecord("tokens", word, "usage", "2026-09-01", "2026-10-01", 0, 0, Decimal(1),
                                 Decimal("1000.00"), Decimal("1000.00"))], "19", "190.00")
    content = render_pdf(invoice_view(hostile, catalog({"locale": "de_DE"})))
    assert len(pages(content)) <= 2
    shown = shown_on_page(content, tmp_path).replace("\u200b", "")
    assert "(59,016 more characters)" in " ".join(shown.split())
    assert "1 1.000,00 EUR 1.000,00 €" in " ".join(shown.split()) and "Gesamt 1.190,00 €" in " ".join(shown.split())
