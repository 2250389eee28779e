"""The console's layout with names an operator does not control (they come from the catalog):
a name as long as the catalog allows (500 characters) without a space, and one that switches the
writing direction.
What the browser does with them (how wide a page gets, where text is drawn) is only visible in a
browser, so these drive Chromium; the HTML itself is checked in tests/web."""

from __future__ import annotations

from typing import Any

import pytest

from .console_server import CATALOG, Site, Tab

# 493 characters, near the catalog's limit of 500, with no space to wrap at (a catalog stored
# before that limit may hold longer ones; the console shows at most three lines of any)
LONG_NAME = "Ω" + "Verylongname" * 41
# opens a RIGHT-TO-LEFT EMBEDDING it never closes and ends in Arabic: the overrides (U+202D, U+202E)
# are refused by the catalog, an embedding is allowed and, unless the name is isolated, still pulls
# the reference after it into its right-to-left run, drawn before the name's last word
RTL_NAME = "شركة الاختبار \u202bRTL عربي"
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


def test_the_longest_name_does_not_widen_the_customers_list(tab: Tab, named: Site) -> None:
    tab.page.set_viewport_size({"width": WIDTH, "height": 900})
    tab.sign_in("viewer@example.com")
    tab.open("/console/customers")
    assert page_width(tab.page) <= WIDTH  # no sideways scrolling: every column stays on screen
    last_invoice = tab.page.locator("table[data-testid=customers] th").last.bounding_box()
    assert last_invoice is not None and last_invoice["x"] + last_invoice["width"] <= WIDTH
    row = tab.page.locator("table[data-testid=customers] tr", has_text="longname").bounding_box()
    assert row is not None and row["height"] < 120  # a few lines of the name, not hundreds
    assert tab.errors == []


def test_the_longest_name_does_not_widen_the_customer_page(tab: Tab, named: Site) -> None:
    tab.page.set_viewport_size({"width": WIDTH, "height": 900})
    tab.sign_in("viewer@example.com")
    tab.open("/console/customers/longname")
    assert page_width(tab.page) <= WIDTH
    heading = tab.page.locator("main h1").bounding_box()
    assert heading is not None and heading["height"] < 200
    # the reference stays readable beside the clipped name
    assert tab.page.locator("main h1 .mono").inner_text() == "longname"
    assert tab.page.locator("main h1 .mono").is_visible()


def test_a_name_that_switches_the_writing_direction_does_not_turn_the_reference_beside_it(
        tab: Tab, named: Site) -> None:
    tab.sign_in("viewer@example.com")
    tab.open("/console/customers/rtl")
    name, reference = tab.page.locator("main h1 > *").all()
    assert reference.inner_text() == "rtl"
    name_box, reference_box = name.bounding_box(), reference.bounding_box()
    assert name_box is not None and reference_box is not None
    assert reference_box["x"] >= name_box["x"] + name_box["width"]  # drawn after the name, as written


def text_before(cell: Any, selector: str) -> tuple[float, float]:
    """The right edge of what the cell draws before `selector`, and that element's left edge."""
    return tuple(cell.evaluate(
        """(cell, selector) => { const after = cell.querySelector(selector); const range = document.createRange();
             range.setStart(cell, 0); range.setEndBefore(after);
             return [range.getBoundingClientRect().right, after.getBoundingClientRect().left]; }""", selector))


def test_a_line_description_that_switches_the_writing_direction_leaves_the_charge_code_alone(
        tab: Tab, named: Site) -> None:
    """A charge described "Base <RIGHT-TO-LEFT EMBEDDING>fee رسوم": the embedding ends with the description,
    so the charge code after it is drawn after the description, not pulled in front of it."""
    catalog = CATALOG.replace("{code: base, model: flat", '{code: base, description: "Base \\u202bfee رسوم", model: flat')
    applied = named.api("POST", "/v1/catalog", content=catalog.encode(), headers={"content-type": "application/yaml"})
    assert applied.status_code == 201, applied.text
    assert named.api("POST", "/v1/invoice-runs", json={"until": "2026-02-01"}).status_code in (200, 201)
    draft = next(invoice["number"] for invoice in named.invoices()
                 if invoice["status"] == "draft" and any(line["code"] == "base" for line in invoice["lines"]))
    tab.sign_in("viewer@example.com")
    tab.open(f"/console/invoices/{draft}")
    cell = tab.page.locator("table[data-testid=invoice-lines] td", has_text="Base").first
    assert cell.locator("span.mono").inner_text() == "base"
    description_right, code_left = text_before(cell, "span.mono")
    assert description_right <= code_left + 0.5


def test_the_action_buttons_sit_in_their_table_row(tab: Tab, named: Site) -> None:
    """Users and API keys: the actions column is a cell of its row like the others (same top, same
    bottom), so each row's buttons line up with the person or key they act on."""
    tab.page.set_viewport_size({"width": WIDTH, "height": 900})
    tab.sign_in("admin@example.com")
    tab.open("/console/users")
    rows = tab.page.locator("tr[data-testid=user-row]")
    assert rows.count() >= 3
    for index in range(rows.count()):
        row = rows.nth(index)
        row_box, cell_box = row.bounding_box(), row.locator("td.actions").bounding_box()
        assert row_box is not None and cell_box is not None
        assert abs(cell_box["y"] - row_box["y"]) <= 1, (index, cell_box, row_box)
        assert abs(cell_box["y"] + cell_box["height"] - row_box["y"] - row_box["height"]) <= 1, (index, cell_box, row_box)


def test_an_event_with_long_id_customer_and_property_stays_within_the_page(tab: Tab, named: Site) -> None:
    """What an API client sends is shown as sent: an id of 250 characters, a customer reference of
    200 and a property of 5,000, none with a space. They wrap inside their cells (the property
    scrolls inside its own), so the explorer never scrolls sideways and a row stays a row."""
    event = {"id": "evt-" + "7" * 246, "customer": "c" * 200, "meter": "api_calls",
             "timestamp": "2026-01-20T10:00:00Z", "properties": {"endpoint": "/v1/" + "z" * 5000}}
    stored = named.api("POST", "/v1/events", json=[event])
    assert stored.status_code in (200, 201), stored.text
    tab.page.set_viewport_size({"width": WIDTH, "height": 900})
    tab.sign_in("viewer@example.com")
    tab.open("/console/events?event_id=" + event["id"])
    rows = tab.page.locator("tr[data-testid=event-row]")
    assert rows.count() == 1
    assert page_width(tab.page) <= WIDTH
    box = rows.first.bounding_box()
    assert box is not None and box["height"] < 400
    assert tab.page.locator("tr[data-testid=event-row] td.mono").inner_text().replace("\n", "") == event["id"]
