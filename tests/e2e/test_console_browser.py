"""The console in a real browser (headless Chromium, Playwright) against a real `ratecard serve`:
what a person sees when signing in, moving between pages, mistyping a password, meeting a hostile
customer name, switching to the sandbox and signing out. The in-process tests (tests/web) check
the HTML; these check what the browser does with it: the Content-Security-Policy, htmx, forms,
redirects and cookies.
"""

from __future__ import annotations

import re

from .console_server import CONSOLE_PAGES, LOCKED_USER, PASSWORD, Site, Tab

LOGIN = re.compile(r".*/console/login(\?.*)?$")
DOWNLOAD = re.compile(r"(\.csv|\.json|\.html|/export)(\?|$)")


def visit_all(tab: Tab, paths: list[str], settle: str = "load") -> dict[str, int]:
    """Each page's status, with the errors the browser reported collected in tab.errors.
    settle="networkidle" also waits for what htmx loads after the page (half a second more a page)."""
    statuses = {}
    for path in paths:
        statuses[path] = tab.open(path).status
        tab.page.wait_for_load_state(settle)
    return statuses


def test_signing_in_through_the_form_opens_the_page_asked_for(tab: Tab) -> None:
    tab.open("/console/invoices")
    tab.page.wait_for_url(LOGIN)  # not signed in: sent to the form, remembering where to go
    tab.submit_login("operator@example.com", PASSWORD)
    tab.page.wait_for_url(re.compile(r".*/console/invoices$"))
    assert "operator@example.com" in tab.page.locator("header").inner_text()
    assert tab.errors == []


def test_every_page_in_the_navigation_loads_without_a_browser_error(tab: Tab) -> None:
    tab.sign_in("admin@example.com")
    links = tab.navigation()
    assert set(CONSOLE_PAGES) <= set(links), links  # an admin is offered every section
    statuses = visit_all(tab, links, settle="networkidle")
    assert statuses == dict.fromkeys(links, 200)
    # each page's own links to other console pages (details, filters, the next page): one level
    found: list[str] = []
    for path in links:
        tab.open(path)
        # downloads (a CSV export) are files, not pages: the browser saves them instead of showing them
        hrefs = tab.page.locator("main a[href^='/console/']:not([download])").evaluate_all(
            "all => all.map(a => a.getAttribute('href'))")
        for href in hrefs:
            if href not in links and href not in found and not DOWNLOAD.search(href):
                found.append(href)
    statuses = visit_all(tab, found[:25])
    assert [path for path, status in statuses.items() if status != 200] == []
    assert tab.errors == []  # CSP violations and script errors are reported as console errors
    assert tab.dialogs == []


def test_a_viewer_is_not_offered_the_users_page(tab: Tab) -> None:
    tab.sign_in("viewer@example.com")
    links = tab.navigation()
    assert "/console/" in links and "/console/users" not in links
    assert tab.open("/console/users").status == 403
    assert "admin role" in tab.page.locator("body").inner_text()


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(tab: Tab) -> None:
    tab.open("/console/login")
    for attempt in range(1, 6):
        tab.submit_login(LOCKED_USER, f"not the password {attempt}")
        assert tab.page.url.endswith("/console/login")
    tab.submit_login(LOCKED_USER, PASSWORD)
    message = tab.page.get_by_test_id("login-error").inner_text()
    # the same sentence as any refusal (a stranger cannot tell a locked account from no account),
    # and it tells the person what happened and who can help
    assert "Wrong e-mail or password" in message
    assert "locked for 15 minutes" in message and "ratecard users reset" in message
    assert tab.open("/console/").url.endswith("/console/login?next=/console/")  # no session was opened


def test_a_hostile_customer_name_never_runs_as_a_script(tab: Tab, site: Site) -> None:
    assert any(invoice["customer"] == "hostile" for invoice in site.invoices())  # it is in the data shown
    tab.sign_in("admin@example.com")
    visit_all(tab, tab.navigation(), settle="networkidle")
    assert tab.dialogs == []
    assert tab.errors == []


def test_the_sandbox_switch_shows_the_banner_and_switching_back_removes_it(tab: Tab) -> None:
    tab.sign_in("operator@example.com")
    tab.open("/console/invoices")
    banner = tab.page.get_by_test_id("sandbox-banner")
    assert banner.count() == 0
    tab.page.get_by_test_id("environment-select").select_option("sandbox")
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="switch").click()
    assert tab.page.url.endswith("/console/invoices")  # back on the page it was switched from
    assert "test data only" in banner.inner_text()
    assert "(sandbox)" in tab.page.title()
    tab.open("/console/events")  # the choice belongs to the session, not to one page
    assert banner.is_visible()
    tab.page.get_by_test_id("environment-select").select_option("live")
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="switch").click()
    assert banner.count() == 0 and "(sandbox)" not in tab.page.title()
    assert tab.errors == []


def test_signing_out_ends_the_session_on_the_server(tab: Tab) -> None:
    tab.sign_in("viewer@example.com")
    cookies = tab.page.context.cookies()
    assert [cookie["name"] for cookie in cookies] == ["ratecard_session"]
    with tab.page.expect_navigation():
        tab.page.get_by_role("button", name="sign out").click()
    tab.page.wait_for_url(LOGIN)
    assert "ratecard_session" not in [cookie["name"] for cookie in tab.page.context.cookies()]
    tab.page.context.add_cookies(cookies)  # the old cookie, replayed: the server has forgotten it
    assert tab.open("/console/").url.endswith("/console/login?next=/console/")
    assert tab.errors == []
