"""An invoice or credit note as a PDF: an HTML template (Jinja2, sandboxed, autoescaped) laid out
by WeasyPrint. The entity's own template, kept in the catalog version, replaces the default one.

Nothing is fetched while rendering: the only URLs a document may use are data: URIs (the logo is
one), so a template or an SVG logo that names a file or a server gets nothing."""

from __future__ import annotations

from decimal import localcontext
from importlib.resources import files
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from .formatting import Formatter
from .labels import labels_for
from .model import DocumentError, InvoiceView

DEFAULT_TEMPLATE = "invoice.html"


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
            return _environment().from_string(source).render(template_context(view))
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
