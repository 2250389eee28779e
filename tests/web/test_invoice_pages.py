"""The Invoices pages as an operator and a viewer see them: the list and its filters, an invoice's
lines and totals, and the actions behind their confirmations (finalize, void, hold, release)."""

from __future__ import annotations

import html
import re

import pytest

CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: pro
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "49.00", timing: advance, description: Pro plan}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.10", description: API calls}
customers:
  - {reference: acme, name: Acme Inc, currency: EUR, tax_rate: "21"}
  - {reference: globex, name: Globex Corporation}
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2026-10-01}
  - {reference: globex-pro, customer: globex, plan: pro, start: 2026-10-01}
"""
OCTOBER_CALLS = [{"id": f"oct-{n}", "customer": "acme", "meter": "api_calls", "timestamp": f"2026-10-1{n}T10:00:00Z"}
                 for n in range(4)]
DRAFT = re.compile(r'href="/console/invoices/(DRAFT-\d+)"')


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATECARD_NOW", "2026-11-26T12:00:00Z")


@pytest.fixture
def billed(pinned, console):
    """Drafts at 2026-10-01 and 2026-11-01 for acme and globex in live; acme's November draft bills
    October's 4 API calls."""
    console.api.apply_catalog(CATALOG)
    stored = console.api.post("/v1/events", json=OCTOBER_CALLS)
    assert stored.status_code == 200, stored.text
    run = console.api.post("/v1/invoice-runs", json={"until": "2026-11-01"})
    assert run.status_code == 200, run.text
    return console


def acme_november_draft(browser) -> str:
    """The reference of acme's draft cut on 2026-11-01 (the one with October's calls)."""
    listing = browser.get("/console/invoices", params={"customer": "acme", "status": "draft"})
    assert listing.status_code == 200, listing.text
    for reference in DRAFT.findall(listing.text):
        page = browser.get(f"/console/invoices/{reference}")
        if "API calls" in page.text and "2026-10-01 → 2026-11-01" in page.text:
            return reference
    raise AssertionError("acme's November draft is not listed")


def test_the_list_shows_every_invoice_and_filters_by_status_customer_and_hold(billed):
    everything = billed.viewer.get("/console/invoices")
    assert everything.status_code == 200, everything.text
    assert len(set(DRAFT.findall(everything.text))) == 4
    assert len(set(DRAFT.findall(billed.viewer.get("/console/invoices?customer=acme").text))) == 2
    assert DRAFT.findall(billed.viewer.get("/console/invoices?status=final").text) == []
    reference = acme_november_draft(billed.operator)
    assert billed.operator.post(f"/console/invoices/{reference}/hold").status_code == 303
    held = billed.viewer.get("/console/invoices?on_hold=yes")
    assert set(DRAFT.findall(held.text)) == {reference}
    assert reference not in DRAFT.findall(billed.viewer.get("/console/invoices?on_hold=no").text)


def test_bad_filters_and_pages_are_a_400_page(billed):
    for path in ("/console/invoices?status=paid", "/console/invoices?page=0", "/console/invoices?page=x",
                 "/console/invoices?on_hold=maybe", "/console/invoices?page=99999999999"):
        answer = billed.viewer.get(path)
        assert answer.status_code == 400, (path, answer.status_code)
        assert "<html" in answer.text.lower()
    assert "paid" in billed.viewer.get("/console/invoices?status=paid").text


def test_a_page_past_the_end_is_empty_and_the_pager_links_keep_the_filters(billed):
    beyond = billed.viewer.get("/console/invoices?page=3&customer=acme")
    assert beyond.status_code == 200
    assert DRAFT.findall(beyond.text) == []
    assert 'href="/console/invoices?page=2&amp;customer=acme"' in beyond.text


def test_the_invoice_page_shows_lines_service_periods_and_totals(billed):
    reference = acme_november_draft(billed.viewer)
    page = billed.viewer.get(f"/console/invoices/{reference}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "API calls" in text and "Pro plan" in text
    assert "2026-10-01 → 2026-11-01" in text  # the calls' service period (arrears)
    assert "2026-11-01 → 2026-12-01" in text  # November's base fee (advance)
    assert re.search(r'data-testid="subtotal">49\.40<', page.text)
    assert re.search(r'data-testid="tax">10\.37<', page.text)
    assert re.search(r'data-testid="total">59\.77 EUR<', page.text)
    assert "tax (21" in text
    assert "created 2026-11-26 12:00 UTC" in text


def test_an_operator_finalizes_a_draft_through_its_confirmation(billed):
    reference = acme_november_draft(billed.operator)
    page = billed.operator.get(f"/console/invoices/{reference}")
    assert 'data-testid="finalize"' in page.text and 'data-testid="finalize-confirm"' in page.text
    assert f"Finalizing gives {reference} its number RC-000001" in html.unescape(page.text)
    done = billed.operator.post(f"/console/invoices/{reference}/finalize")
    assert done.status_code == 303
    assert done.headers["location"] == "/console/invoices/RC-000001?done=finalized"
    final = billed.operator.get(done.headers["location"])
    assert final.status_code == 200
    assert 'data-testid="invoice-number">RC-000001<' in final.text
    assert "Finalized: the invoice has its number" in final.text
    assert 'data-testid="finalize"' not in final.text  # a final invoice has no actions
    assert "finalized 2026-11-26 12:00 UTC as RC-000001" in html.unescape(final.text)
    # the draft reference still finds it, and the list shows it as final
    assert 'data-testid="invoice-number">RC-000001<' in billed.viewer.get(f"/console/invoices/{reference}").text
    assert "RC-000001" in billed.viewer.get("/console/invoices?status=final").text


def test_finalizing_a_final_invoice_is_refused_on_the_page_with_the_services_sentence(billed):
    reference = acme_november_draft(billed.operator)
    assert billed.operator.post(f"/console/invoices/{reference}/finalize").status_code == 303
    again = billed.operator.post("/console/invoices/RC-000001/finalize")
    assert again.status_code == 400
    assert 'data-testid="refusal"' in again.text and "nothing was changed" in again.text
    assert 'data-testid="invoice-number">RC-000001<' in again.text
    voided = billed.operator.post("/console/invoices/RC-000001/void")
    assert voided.status_code == 400 and "nothing was changed" in voided.text


def test_hold_blocks_finalizing_until_release_and_void_cancels(billed):
    reference = acme_november_draft(billed.operator)
    held = billed.operator.post(f"/console/invoices/{reference}/hold")
    assert held.headers["location"] == f"/console/invoices/{reference}?done=held"
    page = billed.operator.get(held.headers["location"])
    assert 'data-testid="release"' in page.text and 'data-testid="finalize"' not in page.text
    assert "on hold" in page.text
    refused = billed.operator.post(f"/console/invoices/{reference}/finalize")
    assert refused.status_code == 400 and "is on hold" in refused.text
    released = billed.operator.post(f"/console/invoices/{reference}/release")
    assert released.headers["location"] == f"/console/invoices/{reference}?done=released"
    assert 'data-testid="finalize"' in billed.operator.get(f"/console/invoices/{reference}").text
    voided = billed.operator.post(f"/console/invoices/{reference}/void")
    assert voided.headers["location"] == f"/console/invoices/{reference}?done=voided"
    page = billed.operator.get(voided.headers["location"])
    assert "Voided: this draft is cancelled" in page.text and "voided 2026-11-26 12:00 UTC" in page.text
    assert 'data-testid="finalize"' not in page.text and 'data-testid="void"' not in page.text


def test_a_viewer_sees_no_actions_and_cannot_post_one(billed):
    reference = acme_november_draft(billed.viewer)
    page = billed.viewer.get(f"/console/invoices/{reference}")
    assert page.status_code == 200
    assert "<form method=\"post\" action=\"/console/invoices/" not in page.text
    for testid in ("finalize", "void", "hold", "release"):
        assert f'data-testid="{testid}"' not in page.text
    refused = billed.viewer.post(f"/console/invoices/{reference}/finalize")
    assert refused.status_code == 403
    after = billed.viewer.get(f"/console/invoices/{reference}")
    assert f'data-testid="invoice-number">{reference}<' in after.text
    assert DRAFT.findall(billed.viewer.get("/console/invoices?status=final").text) == []
    assert "RC-" not in billed.viewer.get("/console/invoices?status=final").text


def test_an_action_without_its_csrf_token_is_refused(billed):
    reference = acme_november_draft(billed.operator)
    refused = billed.operator.post(f"/console/invoices/{reference}/finalize", csrf=False)
    assert refused.status_code == 403
    assert "security token" in refused.text
    assert "RC-" not in billed.operator.get("/console/invoices?status=final").text


def test_sandbox_invoices_are_not_on_live_pages(billed):
    billed.api.apply_catalog(CATALOG.replace("Acme Inc", "Sandbox Acme"), env="sandbox")
    billed.api.post("/v1/events", env="sandbox", json=OCTOBER_CALLS)
    billed.api.post("/v1/invoice-runs", env="sandbox", json={"until": "2026-11-01"})
    # live has DRAFT-1..4; the sandbox numbers its own from 1: finalize one there and look for its number
    sandbox_operator = billed.operator
    switched = sandbox_operator.post("/console/environment", {"environment": "sandbox", "back": "/console/invoices"})
    assert switched.status_code == 303
    sandbox_reference = acme_november_draft(sandbox_operator)
    assert sandbox_operator.post(f"/console/invoices/{sandbox_reference}/finalize").status_code == 303
    assert "RC-000001" in sandbox_operator.get("/console/invoices/RC-000001").text
    # back on live: the sandbox's final invoice does not exist here
    missing = billed.viewer.get("/console/invoices/RC-000001")
    assert missing.status_code == 404
    assert "RC-" not in billed.viewer.get("/console/invoices").text
    assert "Sandbox Acme" not in billed.viewer.get("/console/customers").text


def test_a_corrected_invoice_links_its_correction(billed):
    reference = acme_november_draft(billed.operator)
    assert billed.operator.post(f"/console/invoices/{reference}/finalize").status_code == 303
    # a late October call: the final RC-000001 is corrected (here on an invoice of its own: the
    # catalog corrects on the next invoice, and none is due yet)
    late = {"id": "late-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-10-20T10:00:00Z"}
    assert billed.api.post("/v1/events", json=[late]).status_code == 200
    run = billed.api.post("/v1/invoice-runs", json={"until": "2026-11-01"})
    (correction,) = run.json()["corrections"]
    original = billed.viewer.get("/console/invoices/RC-000001")
    corrections = re.search(r'data-testid="corrections">(.*?)</table>', original.text, re.S)
    assert corrections, original.text
    assert f'href="/console/invoices/{correction["document"]}"' in corrections.group(1)
    assert "0.12 EUR" in corrections.group(1)
    corrective = billed.viewer.get(f"/console/invoices/{correction['document']}")
    assert corrective.status_code == 200
    assert "Corrects" in corrective.text and 'href="/console/invoices/RC-000001"' in corrective.text


def test_an_unknown_notice_is_a_400_not_echoed(billed):
    reference = acme_november_draft(billed.viewer)
    answer = billed.viewer.get(f"/console/invoices/{reference}?done=%3Cb%3Ehi%3C%2Fb%3E")
    assert answer.status_code == 400
    assert "<b>hi</b>" not in answer.text


GRADUATED = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
plans:
  - code: usage
    currency: EUR
    charges:
      - code: tokens
        meter: tokens
        model: graduated
        description: Tokens
        tiers: [{up_to: 1000, unit_amount: "0"}, {up_to: null, unit_amount: "0.002", flat_amount: "5"}]
customers:
  - {reference: acme, name: Acme Inc, currency: EUR, tax_rate: "0"}
subscriptions:
  - {reference: acme-usage, customer: acme, plan: usage, start: 2026-10-01}
"""


def test_a_graduated_line_shows_its_tiers_under_it(pinned, console):
    console.api.apply_catalog(GRADUATED)
    event = {"id": "t1", "customer": "acme", "meter": "tokens", "timestamp": "2026-10-10T10:00:00Z",
             "properties": {"tokens": 3500}}
    assert console.api.post("/v1/events", json=[event]).status_code in (200, 201, 202)
    assert console.api.post("/v1/invoice-runs", json={"until": "2026-11-01"}).status_code == 200
    listing = console.viewer.get("/console/invoices?status=draft").text
    (draft,) = set(DRAFT.findall(listing))
    page = html.unescape(console.viewer.get(f"/console/invoices/{draft}").text)
    # hand-computed: 1,000 tokens free, then 2,500 at 0.002 = 5.00 plus the tier's 5.00 flat: 10.00
    rows = re.findall(r'<tr class="tier-row" data-testid="tier-row">(.*?)</tr>', page, re.S)
    assert len(rows) == 2
    cells = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " | ", row)).strip() for row in rows]
    assert "tier 1: units 1–1000" in cells[0] and "| 1,000 |" in cells[0]
    assert "tier 2: units 1001–3500, plus 5.00 flat" in cells[1] and "| 2,500 |" in cells[1]
    assert "10.00" in cells[1] and "10.00 EUR" in page


PACKAGES = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: gb, aggregation: sum, field: gb}
plans:
  - code: store
    currency: EUR
    charges:
      - {code: storage, meter: gb, model: package, package_size: 25, package_amount: "5.00", description: Storage}
customers:
  - {reference: acme, name: Acme Inc, currency: EUR, tax_rate: "0"}
subscriptions:
  - {reference: acme-store, customer: acme, plan: store, start: 2026-10-01}
"""


def test_an_average_unit_price_shows_as_the_documents_show_it(pinned, console):
    """142.1 GB billed as 6 packages of 25 GB at 5.00 = 30.00: the stored unit amount is the exact
    average 30.00 / 142.1 = 0.211118930331; the page shows 0.211119, as the PDF does."""
    console.api.apply_catalog(PACKAGES)
    event = {"id": "g1", "customer": "acme", "meter": "gb", "timestamp": "2026-10-10T10:00:00Z",
             "properties": {"gb": 142.1}}
    assert console.api.post("/v1/events", json=[event]).status_code == 200
    assert console.api.post("/v1/invoice-runs", json={"until": "2026-11-01"}).status_code == 200
    (draft,) = set(DRAFT.findall(console.viewer.get("/console/invoices?status=draft").text))
    page = html.unescape(console.viewer.get(f"/console/invoices/{draft}").text)
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", page, re.S) if "Storage" in r)
    cells = [c.strip() for c in re.findall(r'<td class="num">(.*?)</td>', row, re.S)]
    assert cells == ["142.1", "0.211119", "30.00"]
    assert "0.211118930331" not in page


def test_a_quantity_shows_as_the_documents_show_it(pinned, console):
    """1,200.25 GB and 1,300.75 GB: 2,501 GB, grouped by thousands and without trailing zeros, as the
    PDF shows it (a time-weighted meter stores its quantities to 12 decimals: 5.000000000000)."""
    console.api.apply_catalog(PACKAGES)
    events = [{"id": f"g{n}", "customer": "acme", "meter": "gb", "timestamp": "2026-10-10T10:00:00Z",
               "properties": {"gb": gb}} for n, gb in enumerate(("1200.250", "1300.750"))]
    assert console.api.post("/v1/events", json=events).status_code == 200
    assert console.api.post("/v1/invoice-runs", json={"until": "2026-11-01"}).status_code == 200
    (draft,) = set(DRAFT.findall(console.viewer.get("/console/invoices?status=draft").text))
    page = html.unescape(console.viewer.get(f"/console/invoices/{draft}").text)
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", page, re.S) if "Storage" in r)
    cells = [c.strip() for c in re.findall(r'<td class="num">(.*?)</td>', row, re.S)]
    assert cells[0] == "2,501"


@pytest.mark.parametrize(("stored", "shown"), [
    ("5.000000000000", "5"), ("2501.000", "2,501"), ("1234567.5", "1,234,567.5"), ("0.000120", "0.00012"),
    ("0", "0"), ("100", "100"), (None, "—"),
])
def test_the_quantity_filter_drops_trailing_zeros_and_groups_thousands(stored, shown):
    from ratecard.web.render import quantity

    assert quantity(stored) == shown


def test_anyone_signed_in_downloads_an_invoice_as_pdf_from_its_page(billed):
    """The PDF `ratecard invoices pdf` writes, from the invoice page: a draft's (watermarked DRAFT)
    and, once finalized, the final one under its number. Each environment's own only."""
    reference = acme_november_draft(billed.viewer)
    page = billed.viewer.get(f"/console/invoices/{reference}")
    assert f'href="/console/invoices/{reference}/pdf"' in page.text and 'data-testid="invoice-pdf"' in page.text
    draft = billed.viewer.get(f"/console/invoices/{reference}/pdf")
    assert draft.status_code == 200, draft.text
    assert draft.headers["content-type"] == "application/pdf" and draft.content.startswith(b"%PDF")
    assert draft.headers["content-disposition"] == f'attachment; filename="{reference}.pdf"'
    assert billed.operator.post(f"/console/invoices/{reference}/finalize").status_code == 303
    final = billed.viewer.get("/console/invoices/RC-000001/pdf")
    assert final.status_code == 200 and final.content.startswith(b"%PDF")
    assert final.headers["content-disposition"] == 'attachment; filename="RC-000001.pdf"'
    assert billed.viewer.get("/console/invoices/RC-999999/pdf").status_code == 404
    assert billed.anonymous().get("/console/invoices/RC-000001/pdf").status_code in (302, 303)
