"""The console's actions in a real browser: finalizing an invoice behind its confirmation, what a
viewer is (not) offered, a form whose CSRF token was tampered with, and a hostile customer name
shown as text on the customers page. Same server, data and browser as test_console_browser.py
(fixtures in console_server.py).
"""

from __future__ import annotations

import re

from .console_server import HOSTILE_NAME, Site, Tab

FINAL_NUMBER = re.compile(r"^[A-Z]+-\d{6}$")


def invoice_of(site: Site, number: str = "", id: str = "") -> dict:
    """An invoice by its number, or by its id (which stays when the final number replaces the draft's)."""
    for invoice in site.invoices():
        if (number and invoice["number"] == number) or (id and invoice["id"] == id):
            return invoice
    raise AssertionError(f"no invoice {number or id} in {site.invoices()}")


def test_an_operator_finalizes_a_draft_after_confirming_and_sees_its_final_number(tab: Tab, site: Site) -> None:
    draft = site.drafts[0]
    draft_id = invoice_of(site, draft)["id"]
    tab.sign_in("operator@example.com")
    assert tab.open(f"/console/invoices/{draft}").status == 200
    assert draft in tab.page.locator("main").inner_text()
    confirm = tab.page.get_by_test_id("finalize-confirm")
    assert not confirm.is_visible()  # nothing is posted by the first click
    tab.page.get_by_test_id("finalize").click()
    assert confirm.is_visible()
    assert invoice_of(site, id=draft_id)["status"] == "draft"
    with tab.page.expect_navigation():
        confirm.click()
    finalized = invoice_of(site, id=draft_id)
    assert finalized["status"] == "final" and FINAL_NUMBER.match(finalized["number"]), finalized
    shown = tab.page.locator("main").inner_text()
    assert finalized["number"] in shown
    assert tab.page.get_by_test_id("finalize").count() == 0  # a final invoice cannot be finalized again
    assert tab.errors == [] and tab.dialogs == []


def test_a_viewer_sees_a_draft_without_any_finalize_button(tab: Tab, site: Site) -> None:
    draft = site.drafts[-1]
    tab.sign_in("viewer@example.com")
    assert tab.open(f"/console/invoices/{draft}").status == 200
    assert draft in tab.page.locator("main").inner_text()  # the page is there, only the actions are not
    assert tab.page.get_by_test_id("finalize").count() == 0
    assert tab.page.get_by_test_id("finalize-confirm").count() == 0
    assert tab.errors == []


def test_a_tampered_csrf_token_is_refused_and_nothing_is_finalized(tab: Tab, site: Site) -> None:
    draft = site.drafts[-1]
    tab.sign_in("operator@example.com")
    tab.open(f"/console/invoices/{draft}")
    tab.page.get_by_test_id("finalize").click()
    # what a forged form from another site carries: not this session's token
    tab.page.locator("input[name=csrf_token]").evaluate_all("fields => fields.forEach(f => f.value = 'forged')")
    tab.page.evaluate("document.body.setAttribute('hx-headers', '{\"X-CSRF-Token\": \"forged\"}')")
    with tab.page.expect_navigation():
        tab.page.get_by_test_id("finalize-confirm").click()
    assert "security token" in tab.page.locator("body").inner_text()
    assert invoice_of(site, draft)["status"] == "draft"


def test_a_hostile_customer_name_is_shown_as_text_on_the_customers_page(tab: Tab) -> None:
    tab.sign_in("admin@example.com")
    assert tab.open("/console/customers").status == 200
    assert tab.page.get_by_text(HOSTILE_NAME, exact=True).count() >= 1  # the characters, not an element
    assert tab.page.locator("main script").count() == 0
    assert tab.dialogs == [] and tab.errors == []
