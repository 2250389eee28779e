"""The Customers pages: the list (search, paging in the database, figures per customer) and one
customer's subscriptions with their changes, usage this period, upcoming invoice and invoices."""

from __future__ import annotations

import html
import re

import pytest

CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
  - {code: tokens, aggregation: sum, field: tokens}
plans:
  - code: pro
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "49.00", timing: advance, description: Pro plan}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.10", description: API calls}
      - {code: tokens, meter: tokens, model: per_unit, unit_amount: "0.001", description: Tokens}
  - code: basic
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "9.00", timing: advance, description: Basic plan}
customers:
  - {reference: acme, name: Acme Inc, currency: EUR, tax_rate: "21"}
  - {reference: globex, name: Globex Corporation}
  - {reference: xss, name: "<script>alert(1)</script>"}
  - {reference: initech, name: Initech}
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2026-10-01}
  - reference: globex-pro
    customer: globex
    plan: pro
    start: 2026-10-01
    end: 2027-01-01
    changes: [{at: 2026-11-01, plan: basic}]
  - {reference: xss-pro, customer: xss, plan: pro, start: 2026-10-01}
"""
EVENTS = (
    [{"id": f"oct-{n}", "customer": "acme", "meter": "api_calls", "timestamp": f"2026-10-1{n}T10:00:00Z"}
     for n in range(4)]
    + [{"id": f"nov-a{n}", "customer": "acme", "meter": "api_calls", "timestamp": "2026-11-20T10:00:00Z"}
       for n in range(3)]
    + [{"id": "nov-b", "customer": "acme", "meter": "api_calls", "timestamp": "2026-11-22T09:00:00Z"},
       {"id": "nov-t", "customer": "acme", "meter": "tokens", "timestamp": "2026-11-22T10:00:00Z",
        "properties": {"tokens": 1500}}]
)
CUSTOMER_LINK = re.compile(r'href="/console/customers/([^"?]+)"')
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATECARD_NOW", "2026-11-26T12:00:00Z")


@pytest.fixture
def billed(pinned, console):
    console.api.apply_catalog(CATALOG)
    stored = console.api.post("/v1/events", json=EVENTS)
    assert stored.status_code == 200 and stored.json()["stored"] == len(EVENTS), stored.text
    run = console.api.post("/v1/invoice-runs", json={"until": "2026-11-01"})
    assert run.status_code == 200, run.text
    return console


def rows(page) -> list[str]:
    return CUSTOMER_LINK.findall(page.text)


def row_of(page, reference: str) -> str:
    match = re.search(rf'<tr>\s*<td><a class="mono" href="/console/customers/{reference}">.*?</tr>', page.text, re.S)
    assert match, reference
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", match.group(0))))


def test_the_list_shows_each_customer_with_plans_open_drafts_and_last_invoice(billed):
    page = billed.viewer.get("/console/customers")
    assert page.status_code == 200, page.text
    assert rows(page) == ["acme", "globex", "initech", "xss"]
    assert row_of(page, "acme").split() == ["acme", "Acme", "Inc", "EUR", "pro", "2", "—"]
    # globex moved to basic on 2026-11-01; its currency comes from its plan
    assert row_of(page, "globex").split()[-4:] == ["EUR", "basic", "2", "—"]
    assert row_of(page, "initech").split() == ["initech", "Initech", "—", "—", "0", "—"]
    # once acme's November invoice is final, it is acme's last invoice
    drafts = billed.viewer.get("/console/invoices?customer=acme&status=draft")
    for reference in re.findall(r'href="/console/invoices/(DRAFT-\d+)"', drafts.text):
        billed.operator.post(f"/console/invoices/{reference}/finalize")
    after = billed.viewer.get("/console/customers")
    acme = row_of(after, "acme").split()
    assert acme[-3:-1] == ["0", "59.77"] and acme[-1] == "EUR"


def test_search_matches_reference_or_name_anywhere_whatever_the_case(billed):
    assert rows(billed.viewer.get("/console/customers?q=GLOBEX")) == ["globex"]
    assert rows(billed.viewer.get("/console/customers?q=corp")) == ["globex"]
    assert rows(billed.viewer.get("/console/customers?q=in")) == ["acme", "initech"]
    assert rows(billed.viewer.get("/console/customers?q=%25")) == []  # a wildcard is taken literally
    nothing = billed.viewer.get("/console/customers?q=nobody")
    assert rows(nothing) == [] and "No customer" in nothing.text


def test_the_list_is_paged_50_at_a_time(pinned, console):
    many = "\n".join(f"  - {{reference: c{n:03d}, name: Customer {n}}}" for n in range(120))
    console.api.apply_catalog("plans: []\ncustomers:\n" + many + "\n")
    first = console.viewer.get("/console/customers")
    assert rows(first) == [f"c{n:03d}" for n in range(50)]
    assert 'href="/console/customers?page=2"' in first.text
    third = console.viewer.get("/console/customers?page=3")
    assert rows(third) == [f"c{n:03d}" for n in range(100, 120)]
    assert 'rel="next"' not in third.text
    searched = console.viewer.get("/console/customers?q=customer%201&page=1")
    # "Customer 1", "Customer 10".."19", "Customer 100".."119"
    assert rows(searched) == ["c001", *(f"c{n:03d}" for n in range(10, 20)), *(f"c{n:03d}" for n in range(100, 120))]
    assert 'rel="next"' not in searched.text
    last = console.viewer.get("/console/customers?q=CUSTOMER&page=3")
    assert rows(last) == [f"c{n:03d}" for n in range(100, 120)]
    assert 'href="/console/customers?page=2&amp;q=CUSTOMER"' in last.text


def test_bad_page_parameters_are_a_400_page(billed):
    for path in ("/console/customers?page=0", "/console/customers?page=two", "/console/customers/acme?page=-1",
                 "/console/customers?q=" + "x" * 201):
        answer = billed.viewer.get(path)
        assert answer.status_code == 400, (path, answer.status_code)


def test_a_hostile_name_is_shown_as_text(billed):
    listing = billed.viewer.get("/console/customers?q=xss")
    assert SCRIPT not in listing.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing.text
    page = billed.viewer.get("/console/customers/xss")
    assert page.status_code == 200
    assert SCRIPT not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_the_customer_page_shows_subscriptions_and_their_changes(billed):
    page = billed.viewer.get("/console/customers/globex")
    assert page.status_code == 200, page.text
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))
    assert "2026-10-01: starts on plan pro" in text
    assert "2026-11-01: plan basic (proration prorate)" in text
    assert "2027-01-01: cancelled, ends" in text
    versions = billed.viewer.get("/console/customers/globex?history=globex-pro", headers={"HX-Request": "true"})
    assert versions.status_code == 200
    assert "<html" not in versions.text and "version 1" in versions.text and "created" in versions.text
    whole = billed.viewer.get("/console/customers/globex?history=globex-pro")  # without JavaScript: the page
    assert "<html" in whole.text and "globex-pro: catalog versions" in whole.text
    assert billed.viewer.get("/console/customers/globex?history=acme-pro").status_code == 404


def test_the_customer_page_shows_usage_this_period_and_the_upcoming_invoice(billed):
    page = billed.viewer.get("/console/customers/acme")
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))
    assert "acme-pro api_calls 4 4" in text  # 4 calls in November so far (October's are on the draft)
    assert "acme-pro tokens 1,500 1" in text
    chart = re.search(r'data-testid="usage-chart">(.*?)</div>', page.text, re.S).group(1)
    assert chart.startswith("<svg") and "<script" not in chart
    assert "2026-11-20: api_calls: 3, tokens: 0" in chart and "2026-11-22: api_calls: 1, tokens: 1" in chart
    # upcoming: December's base fee, November's 4 calls and 1,500 tokens: 49 + 0.40 + 1.50 = 50.90, 21 % tax
    upcoming = re.search(r'data-testid="upcoming">(.*?)</section>', page.text, re.S).group(1)
    assert "61.59 EUR" in upcoming
    assert "API calls" in upcoming


def test_a_customer_with_nothing_to_preview_says_so(billed):
    page = billed.viewer.get("/console/customers/initech")
    assert page.status_code == 200
    assert 'data-testid="upcoming-none"' in page.text
    assert "nothing to preview" in page.text


def test_the_customer_page_lists_its_invoices_with_links(billed):
    page = billed.viewer.get("/console/customers/acme")
    references = re.findall(r'href="/console/invoices/(DRAFT-\d+)"', page.text)
    assert len(references) == 2
    for reference in references:
        assert billed.viewer.get(f"/console/invoices/{reference}").status_code == 200
    assert billed.viewer.get("/console/customers/nobody").status_code == 404


def test_the_sandbox_catalog_and_its_customers_are_not_on_live_pages(billed):
    billed.api.apply_catalog(CATALOG.replace("Acme Inc", "Sandbox Only Ltd").replace("reference: initech",
                                                                                     "reference: sandboxer"),
                             env="sandbox")
    live = billed.viewer.get("/console/customers")
    assert "Sandbox Only" not in live.text and "sandboxer" not in live.text
    assert billed.viewer.get("/console/customers/sandboxer").status_code == 404
    switched = billed.viewer.post("/console/environment", {"environment": "sandbox", "back": "/console/customers"})
    assert switched.status_code == 303
    sandbox = billed.viewer.get("/console/customers")
    assert "Sandbox Only Ltd" in html.unescape(sandbox.text) and "sandboxer" in sandbox.text
    assert re.search(r"<td class=\"num\">0</td>", sandbox.text)  # the sandbox has no drafts yet


def test_periods_in_a_customers_own_timezone_are_shown_in_utc(pinned, console):
    """A Berlin customer's November starts at midnight in Berlin, 23:00 UTC the day before: the page
    labels its times UTC, so it shows them in UTC (as `ratecard invoices preview --json` does)."""
    berlin = CATALOG.replace(
        "  - {reference: initech, name: Initech}\n",
        "  - {reference: initech, name: Initech}\n"
        "  - {reference: berlin, name: Berlin GmbH, currency: EUR, tax_rate: '19', timezone: Europe/Berlin}\n",
    ) + "  - {reference: berlin-pro, customer: berlin, plan: pro, start: 2026-10-01}\n"
    console.api.apply_catalog(berlin)
    page = console.viewer.get("/console/customers/berlin")
    assert page.status_code == 200, page.text
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))
    assert "period 2026-10-31 23:00 UTC → 2026-11-30 23:00 UTC" in text
    assert "2026-11-01 00:00 UTC" not in text  # Berlin's midnight is not midnight UTC
