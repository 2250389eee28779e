"""The overview: money invoiced per currency, drafts waiting, the last day's events chart and the
open alerts, of the session's environment only."""

from __future__ import annotations

import re

from ratecard.clock import now
from ratecard.services.invoices import finalize_invoices, find_invoices, hold_invoice
from ratecard.store import open_store

from ..integration.scenario import EVENTS


def _card(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">(.*?)</(div|a)>\s*(?=<(div|a) class="card"|</div>)', html, re.S)
    assert found, f"no card {testid}"
    return found.group(1)


def _bill(console, env: str = "live") -> list[str]:
    """Two drafts for acme (EUR) from the scenario's events; their references."""
    console.api.apply_catalog(env=env)
    assert console.api.post("/v1/events", env=env, json=EVENTS).status_code == 200
    assert console.api.post("/v1/invoice-runs", env=env, json={"until": "2026-02-01"}).status_code < 300
    store = open_store(console.url)
    try:
        return [invoice.display_number for invoice in find_invoices(store, env, "draft")]
    finally:
        store.dispose()


def test_invoiced_this_month_per_currency_after_a_finalization(console):
    before = console.viewer.get("/console/")
    assert before.status_code == 200
    assert "nothing finalized" in _card(before.text, "invoiced-this-month")
    assert "finalized (UTC)" in before.text  # the help line says which month counts
    drafts = _bill(console)
    store = open_store(console.url)
    try:
        finalized = finalize_invoices(store, [drafts[-1]], now(), "live").finalized
        total = finalized[0].total
    finally:
        store.dispose()
    page = console.viewer.get("/console/").text
    this_month = _card(page, "invoiced-this-month")
    assert f"{total:,.2f} EUR" in this_month
    assert now().strftime("%Y-%m") in this_month
    assert "nothing finalized" in _card(page, "invoiced-last-month")


def test_drafts_due_and_on_hold_are_counted(console):
    drafts = _bill(console)
    assert len(drafts) == 2
    page = console.viewer.get("/console/").text
    assert re.search(r'class="figure">2<', _card(page, "drafts-due"))
    assert re.search(r'class="figure">0<', _card(page, "drafts-on-hold"))
    store = open_store(console.url)
    try:
        hold_invoice(store, drafts[0], True, "live")
    finally:
        store.dispose()
    page = console.viewer.get("/console/").text
    assert re.search(r'class="figure">1<', _card(page, "drafts-due"))
    assert re.search(r'class="figure">1<', _card(page, "drafts-on-hold"))


def test_the_events_chart_stacks_the_last_day_from_the_counters(console):
    empty = console.viewer.get("/console/").text
    assert 'data-testid="events-chart"><svg' in empty
    assert "nothing in this period" in empty
    console.api.apply_catalog()
    body = [*EVENTS, {"id": "stray", "customer": "nobody", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"},
            {"id": "bad", "customer": "acme", "meter": "tokens"}]
    assert console.api.post("/v1/events", json=body).status_code == 200
    page = console.viewer.get("/console/").text
    chart = page.split('data-testid="events-chart">', 1)[1].split("</svg>", 1)[0]
    assert "nothing in this period" not in chart and "<rect" in chart
    assert "accepted: 6, rejected: 1, unmatched: 1, late: 0" in chart  # one bar's hover text
    assert "per 15 minutes" in page and "missing_field 1" in page


def test_sandbox_figures_never_reach_the_live_overview(console):
    drafts = _bill(console, env="sandbox")
    store = open_store(console.url)
    try:
        finalize_invoices(store, [drafts[-1]], now(), "sandbox")
    finally:
        store.dispose()
    live = console.viewer.get("/console/").text
    assert "nothing finalized" in _card(live, "invoiced-this-month")
    assert re.search(r'class="figure">0<', _card(live, "drafts-due"))
    assert "nothing in this period" in live
    switched = console.viewer.post("/console/environment", {"environment": "sandbox", "back": "/console/"})
    assert switched.status_code == 303
    sandbox = console.viewer.get("/console/").text
    assert "EUR" in _card(sandbox, "invoiced-this-month")
    assert re.search(r'class="figure">1<', _card(sandbox, "drafts-due"))


def test_open_alerts_are_listed(console):
    from ratecard.services import monitoring

    console.api.apply_catalog()
    console.api.post("/v1/events", json=EVENTS)
    store = open_store(console.url)
    try:
        monitoring.add_rule(store, now(), "live", kind="silence", hours="1")
        monitoring.run(store, now(), "live")
    finally:
        store.dispose()
    page = console.viewer.get("/console/").text
    assert "Open alerts (" in page and 'data-testid="open-alerts"' in page
    assert "acme" in page.split('data-testid="open-alerts"', 1)[1]


def test_an_invoice_counts_in_the_month_it_was_finalized(console):
    from datetime import timedelta

    drafts = _bill(console)
    last_month = now().replace(day=1) - timedelta(days=1)
    store = open_store(console.url)
    try:
        total = finalize_invoices(store, [drafts[-1]], last_month, "live").finalized[0].total
    finally:
        store.dispose()
    page = console.viewer.get("/console/").text
    assert "nothing finalized" in _card(page, "invoiced-this-month")
    earlier = _card(page, "invoiced-last-month")
    assert f"{total:,.2f} EUR" in earlier and last_month.strftime("%Y-%m") in earlier
