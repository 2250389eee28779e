"""An invoice or credit note as a PDF: an HTML template (Jinja2, sandboxed, autoescaped) laid out
by WeasyPrint. The entity's own template, kept in the catalog version, replaces the default one.

Nothing is fetched while rendering: the only URLs a document may use are data: URIs (the logo is
one), so a template or an SVG logo that names a file or a server gets nothing."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import localcontext
from importlib.resources import files
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from .formatting import Formatter
from .labels import labels_for
from .model import DocumentError, InvoiceView, Party

DEFAULT_TEMPLATE = "invoice.html"
# A word longer than WORD_CHUNK characters (a URL, an order id, a hostile name) gets a zero-width
# break opportunity (U+200B) after every WORD_CHUNK characters, so the layout can wrap it where it
# must instead of widening its column and pushing the amounts off the page. Done here and not
# with CSS (overflow-wrap: anywhere): WeasyPrint's cost for that grows with the square of the
# word's length (2,000 characters took half a minute, 60,000 never ended).
WORD_CHUNK = 20
_LONG_WORD = re.compile(rf"\S{{{WORD_CHUNK + 1},}}")
# A text printed longer than this (a line description naming an event's property value, which may be
# as long as the event) is cut there with a visible mark saying how much was left out: the page
# count and the time to lay it out stay bounded (the stored invoice, its export and its e-invoices
# keep the whole text).
MAX_PRINTED = 1000


def breakable(text: str | None) -> str | None:
    """`text` with a zero-width break opportunity inside each word longer than WORD_CHUNK, cut at
    MAX_PRINTED characters with "… (N more characters)"."""
    if not text:
        return text
    if len(text) > MAX_PRINTED:
        text = f"{text[:MAX_PRINTED]}… ({len(text) - MAX_PRINTED:,} more characters)"
    return _LONG_WORD.sub(lambda word: "\u200b".join(word[0][i:i + WORD_CHUNK]
                                                     for i in range(0, len(word[0]), WORD_CHUNK)), text)


def _breakable_party(party: Party) -> Party:
    address = party.address
    if address is not None:
        address = address.model_copy(update={"lines": [breakable(line) for line in address.lines],
                                             "city": breakable(address.city)})
    return replace(party, name=breakable(party.name), legal_name=breakable(party.legal_name), address=address,
                   reference=breakable(party.reference), email=breakable(party.email))


def laid_out(view: InvoiceView) -> InvoiceView:
    """The view as the PDF prints it: the words the catalog and the events chose (names, address
    lines, descriptions, the footer) made breakable; amounts, dates and numbers as they are."""
    entity = view.entity.model_copy(update={"footer": breakable(view.entity.footer)})
    return replace(view, seller=_breakable_party(view.seller), buyer=_breakable_party(view.buyer), entity=entity,
                   lines=tuple(replace(line, description=breakable(line.description)) for line in view.lines))


def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                                         lstrip_blocks=True)


def default_template() -> str:
    return files(__package__).joinpath("templates", DEFAULT_TEMPLATE).read_text(encoding="utf-8")


def template_context(view: InvoiceView) -> dict[str, Any]:
    """What a template sees: the invoice (`invoice`), the formatter (`fmt`: money, price, quantity,
    percent, day) and the words in the entity's language (`labels`)."""
    formatter = Formatter.for_locale(view.entity.locale, view.currency, view.digits)
    return {"invoice": view, "fmt": formatter, "labels": labels_for(formatter.locale.language),
            "entity": view.entity, "seller": view.seller, "buyer": view.buyer}


def render_html(view: InvoiceView) -> str:
    source = view.entity.pdf_template_text or default_template()
    try:
        with localcontext() as context:
            context.prec = 100  # Babel rounds amounts to the currency's digits: 40-digit amounts stay exact
            return _environment().from_string(source).render(template_context(laid_out(view)))
    except TemplateError as exc:  # the entity's template asks for something the invoice does not have
        raise DocumentError(f"the PDF template of billing entity {view.entity.code!r} failed: {exc}") from None


def render_pdf(view: InvoiceView, *, pdf_variant: str | None = None) -> bytes:
    """The PDF bytes; `pdf_variant` ("pdf/a-3b") for a Factur-X carrier."""
    html = HTML(string=render_html(view), url_fetcher=URLFetcher(allowed_protocols={"data"}))
    options: dict[str, Any] = {"pdf_variant": pdf_variant} if pdf_variant else {}
    pdf = html.write_pdf(**options)
    if pdf is None:  # write_pdf returns the bytes when given no target
        raise DocumentError("the PDF could not be produced")
    return pdf
