"""Jinja2 with autoescaping on for every template: a customer named `<script>` is shown as text.

Pages render through `page()`, which hands every template the visit (user, role, environment,
CSRF token) and the navigation; `fragment()` renders an htmx partial the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from ..domain.instants import from_micros
from ..domain.money import display_price_in, significant_decimals
from .context import CSRF_FIELD, Visit

NAVIGATION = (
    ("overview", "Overview", "/console/"),
    ("customers", "Customers", "/console/customers"),
    ("invoices", "Invoices", "/console/invoices"),
    ("events", "Events", "/console/events"),
    ("golive", "Go-live", "/console/golive"),
    ("alerts", "Alerts & webhooks", "/console/alerts"),
    ("catalog", "Catalog", "/console/catalog"),
)
ADMIN_NAVIGATION = (("users", "Users", "/console/users"), ("keys", "API keys", "/console/keys"))


def money(value: Any, currency: str | None = None) -> str:
    """1234.5 -> '1,234.50' (with the currency code when given); None -> '—'."""
    if value is None or value == "":
        return "—"
    amount = Decimal(str(value))
    exponent = -amount.as_tuple().exponent if isinstance(amount.as_tuple().exponent, int) else 2
    places = max(2, min(int(exponent), 12))
    text = f"{amount:,.{places}f}"
    return f"{text} {currency}" if currency else text


def price(value: Any, currency: str) -> str:
    """A unit price as documents show it (domain.money.display_price_in: the decimals it needs, at
    most 6 or 6 significant digits), with thousands separators; None -> '—'."""
    if value is None or value == "":
        return "—"
    shown = display_price_in(Decimal(str(value)), currency)
    exponent = shown.as_tuple().exponent
    return f"{shown:,.{-exponent if isinstance(exponent, int) and exponent < 0 else 0}f}"


def quantity(value: Any) -> str:
    """A quantity as documents show it: every significant digit, no trailing zeros, thousands
    grouped ('5.000000000000' -> '5', '2501.000' -> '2,501'); None -> '—'."""
    if value is None or value == "":
        return "—"
    number = Decimal(str(value))
    if not number.is_finite():
        return str(value)
    return f"{number:,.{significant_decimals(number)}f}"


def instant(value: Any) -> str:
    """µs, a datetime or an RFC 3339 string -> 'YYYY-MM-DD HH:MM UTC'; None -> '—'. A time with another
    offset (a period that starts at midnight in the customer's timezone) is converted to UTC first."""
    if value is None or value == "":
        return "—"
    if isinstance(value, int):
        value = from_micros(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.strftime("%Y-%m-%d %H:%M")
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def query(base: str, **params: Any) -> str:
    """A link with its query string; empty values are left out (paging links keep the filters)."""
    kept = {key: value for key, value in params.items() if value not in (None, "")}
    return f"{base}?{urlencode(kept)}" if kept else base


def segment(value: Any) -> str:
    """A reference as one path segment: a slash is encoded too (Jinja's `urlencode` keeps it), so
    a customer named `../../users` links to its own page, not to another one the browser resolves."""
    return quote(str(value), safe="")


_templates = Environment(loader=PackageLoader("ratecard.web", "templates"), autoescape=select_autoescape(default=True),
                         undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_templates.filters["money"] = money
_templates.filters["price"] = price
_templates.filters["instant"] = instant
_templates.filters["quantity"] = quantity
_templates.filters["segment"] = segment
_templates.globals["query"] = query
_templates.globals["csrf_field"] = CSRF_FIELD


def page(visit: Visit, template: str, section: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A whole page: the layout (navigation, environment banner) around `template`."""
    navigation = NAVIGATION + (ADMIN_NAVIGATION if visit.can("admin") else ())
    body = _templates.get_template(template).render(visit=visit, session=visit.session, section=section,
                                                    navigation=navigation, **values)
    return HTMLResponse(body, status_code=status_code)


def fragment(visit: Visit | None, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A part of a page, for htmx (no layout)."""
    body = _templates.get_template(template).render(visit=visit, session=visit.session if visit else None, **values)
    return HTMLResponse(body, status_code=status_code)


def bare(template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A page for someone not signed in (login, errors before a session exists)."""
    return HTMLResponse(_templates.get_template(template).render(**values), status_code=status_code)
