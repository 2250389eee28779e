"""The console's layout with names an operator does not control (they come from the catalog):
a name of ten thousand characters without a space, and one that switches the writing direction.
What the browser does with them (how wide a page gets, where text is drawn) is only visible in a
browser, so these drive Chromium; the HTML itself is checked in tests/web."""

from __future__ import annotations

from typing import Any

import pytest

from .console_server import CATALOG, Site, Tab

LONG_NAME = "Ω" + "Verylongname" * 850  # 10,201 characters, no space to wrap at
RTL_NAME = "شركة الاختبار \u202eRTL override"  # ends with RIGHT-TO-LEFT OVERRIDE, never closed
WIDTH = 1280


@pytest.fixture(scope="module")
def named(site: Site) -> Site:
    """The browser tests' catalog with two more customers: the long name and the right-to-left one."""
    extra = (f'  - {{reference: longname, name: "{LONG_NAME}", country: NL, currency: EUR, tax_rate: "21", timezone: UTC}}\n'
             f'  - {{reference: rtl, name: "{RTL_NAME}", country: NL, currency: EUR, tax_rate: "21", timezone: UTC}}\n')
    catalog = CATALOG.replace("subscriptions:\n", extra + "subscriptions:\n", 1)
    applied = site.api("POST", "/v1/catalog", content=catalog.encode(), headers={"content-type": "application/yaml"})
    assert applied.status_code == 201, applied.text
    return site


def page_width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_a_ten_thousand_character_name_does_not_widen_the_customers_list(tab: Tab, named: Site) -> None:
    tab.page.set_viewport_size({"width": WIDTH, "height": 900})
    tab.sign_in("viewer@example.com")
    tab.open("/console/customers")
    assert page_width(tab.page) <= WIDTH  # no sideways scrolling: every column stays on screen
    last_invoice = tab.page.locator("table[data-testid=customers] th").last.bounding_box()
    assert last_invoice is not None and last_invoice["x"] + last_invoice["width"] <= WIDTH
    row = tab.page.locator("table[data-testid=customers] tr", has_text="longname").bounding_box()
    assert row is not None and row["height"] < 120  # a few lines of the name, not hundreds
    assert tab.errors == []


def test_a_ten_thousand_character_name_does_not_widen_the_customer_page(tab: Tab, named: Site) -> None:
    tab.page.set_viewport_size({"width": WIDTH, "height": 900})
    tab.sign_in("viewer@example.com")
    tab.open("/console/customers/longname")
    assert page_width(tab.page) <= WIDTH
    heading = tab.page.locator("main h1").bounding_box()
    assert heading is not None and heading["height"] < 200
    # the reference stays readable beside the clipped name
    assert tab.page.locator("main h1 .mono").inner_text() == "longname"
    assert tab.page.locator("main h1 .mono").is_visible()
