"""Every section of the console answers a signed-in user; nobody else gets past the login page."""

from __future__ import annotations

import html

import pytest

SECTIONS = ["/console/", "/console/customers", "/console/invoices", "/console/events", "/console/golive",
            "/console/alerts"]


@pytest.mark.parametrize("path", SECTIONS)
def test_each_section_loads_for_a_viewer_and_needs_a_login(console, path):
    answer = console.viewer.get(path)
    assert answer.status_code == 200, answer.text
    assert "viewer@example.com" in answer.text
    anonymous = console.anonymous().get(path)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/console/login")


def test_a_failure_inside_the_server_is_a_console_page_that_says_what_to_do(console, monkeypatch):
    """A defect (here: the invoice list failing) answers 500 with a page in the console's style that
    tells the person where the details are, never the exception's text or a traceback."""
    import ratecard.web.pages.invoices as invoices_page

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret detail of the failure")

    monkeypatch.setattr(invoices_page, "list_invoice_page", broken)
    answer = console.viewer.get("/console/invoices")
    assert answer.status_code == 500
    assert "<html" in answer.text and 'href="/console/"' in answer.text
    assert "server's log" in html.unescape(answer.text)
    assert "secret detail" not in answer.text and "Traceback" not in answer.text
    htmx = console.viewer.get("/console/invoices", headers={"HX-Request": "true"})
    assert htmx.status_code == 500 and "<html" not in htmx.text and "server's log" in html.unescape(htmx.text)
