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


LEGACY_WITH_MARKUP = (
    "customer,code,service_start,service_end,quantity,amount\n"
    'acme,base,2026-01-01,2026-02-01,1,49.00\n'
    '"<img src=x onerror=alert(1)>",base,2026-01-01,2026-02-01,1,49.00\n'
    '"=HYPERLINK(""http://evil.example"",""x"")",calls,2026-01-01,2026-02-01,3,0.30\n'
)


def test_a_legacy_file_with_markup_in_its_cells_is_shown_as_text(tab: Tab, tmp_path) -> None:
    legacy = tmp_path / "legacy.csv"
    legacy.write_text(LEGACY_WITH_MARKUP)
    tab.sign_in("operator@example.com")
    assert tab.open("/console/golive/reconcile").status == 200
    tab.page.set_input_files("input[name=file]", str(legacy))
    with tab.page.expect_navigation():
        tab.page.locator("form[action$='/upload'] button[type=submit]").click()
    shown = tab.page.locator("main").inner_text()
    assert "missing in ratecard" in shown  # the two rows of customers ratecard does not know
    tab.page.get_by_role("link", name="missing in ratecard").click()
    tab.page.wait_for_load_state()
    lines = tab.page.locator("main").inner_text()
    assert "<img src=x onerror=alert(1)>" in lines  # the characters, not an element
    assert '=HYPERLINK("http://evil.example","x")' in lines
    assert tab.page.locator("main img").count() == 0
    # a cell refused whole: the refusal quotes it, as text
    legacy.write_text(LEGACY_WITH_MARKUP.replace("acme,base,2026-01-01,2026-02-01,1,49.00",
                                                 'acme,base,2026-01-01,2026-02-01,1,"<b>49.00</b>"'))
    assert tab.open("/console/golive/reconcile").status == 200
    tab.page.set_input_files("input[name=file]", str(legacy))
    with tab.page.expect_navigation():
        tab.page.locator("form[action$='/upload'] button[type=submit]").click()
    assert "'<b>49.00</b>' is not a number" in tab.page.locator("body").inner_text()
    assert tab.page.locator("body b").count() == 0
    assert tab.dialogs == []


def test_a_viewer_posting_an_action_from_the_page_gets_403_and_nothing_changes(tab: Tab, site: Site) -> None:
    draft = site.drafts[-1]
    tab.sign_in("viewer@example.com")
    tab.open(f"/console/invoices/{draft}")
    # the viewer's own valid session and CSRF token: only the role is missing
    status = tab.page.evaluate(
        """async (path) => {
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
            const answer = await fetch(path, {method: 'POST', headers: {'X-CSRF-Token': token}});
            return answer.status;
        }""", f"/console/invoices/{draft}/finalize")
    assert status == 403
    assert invoice_of(site, draft)["status"] == "draft"


def test_sandbox_data_never_appears_on_live_pages(tab: Tab, site: Site) -> None:
    from ratecard.store import open_store
    from ratecard.store.keys import create_key

    store = open_store(site.db_url)
    try:
        _, sandbox_key = create_key(store, "sandbox", 0, "browser test")
    finally:
        store.dispose()
    catalog = CATALOG_WITH_SANDBOX_ONLY_CUSTOMER
    applied = site.api("POST", "/v1/catalog", content=catalog.encode(),
                       headers={"content-type": "application/yaml", "X-API-KEY": sandbox_key})
    assert applied.status_code == 201, applied.text
    tab.sign_in("admin@example.com")
    for path in ("/console/customers", "/console/catalog"):
        tab.open(path)
        assert "Sandbox Only Ltd" not in tab.page.locator("main").inner_text(), path
    tab.page.get_by_test_id("environment-select").select_option("sandbox")
    with tab.page.expect_navigation():
        tab.page.locator("form.env-switch button[type=submit]").click()
    tab.open("/console/customers")
    assert "Sandbox Only Ltd" in tab.page.locator("main").inner_text()
    tab.page.get_by_test_id("environment-select").select_option("live")
    with tab.page.expect_navigation():
        tab.page.locator("form.env-switch button[type=submit]").click()
    tab.open("/console/customers")
    assert "Sandbox Only Ltd" not in tab.page.locator("main").inner_text()
    assert tab.errors == []


CATALOG_WITH_SANDBOX_ONLY_CUSTOMER = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: pro
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "49.00", timing: advance}
customers:
  - {reference: sandbox-only, name: Sandbox Only Ltd, country: NL, currency: EUR, tax_rate: "21", timezone: UTC}
subscriptions:
  - {reference: sandbox-only-pro, customer: sandbox-only, plan: pro, start: 2026-01-01}
"""
