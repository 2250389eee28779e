"""Alerts and webhooks: rules, open and resolved alerts, endpoints, the delivery log, and retrying
a failed delivery (operators only; the same use case as `ratecard webhooks retry`)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from ratecard.cli import app as cli_app
from ratecard.clock import now
from ratecard.services import monitoring
from ratecard.store import open_store

from ..integration.scenario import EVENTS

HOSTILE = "<script>alert(1)</script>"
RECEIVER = "http://127.0.0.1:9/hooks"  # the discard port: nothing listens, so every attempt fails


def _failed_delivery(console, env: str = "live", url: str = RECEIVER) -> int:
    """A silence alert for acme's meters (their events are months old), delivered once to a
    receiver that refuses: one failed delivery per alert. Returns the newest delivery's id."""
    console.api.apply_catalog(env=env)
    assert console.api.post("/v1/events", env=env, json=EVENTS).status_code == 200
    store = open_store(console.url)
    try:
        monitoring.add_webhook(store, url, now(), env, allow_private=True)
        monitoring.add_rule(store, now(), env, kind="silence", hours="1", customer="acme")
        run = monitoring.run(store, now(), env, max_attempts=1)
        assert run.evaluation.opened and run.deliveries.failed
        return monitoring.deliveries(store, env, "failed", limit=1)[0]["id"]
    finally:
        store.dispose()


def _delivery_status(console, delivery_id: int, env: str = "live") -> str:
    store = open_store(console.url)
    try:
        return next(d["status"] for d in monitoring.deliveries(store, env, limit=None) if d["id"] == delivery_id)
    finally:
        store.dispose()


def test_the_page_lists_rules_alerts_endpoints_and_deliveries(console):
    empty = console.viewer.get("/console/alerts")
    assert empty.status_code == 200 and "No open alerts." in empty.text and "No webhook endpoints." in empty.text
    _failed_delivery(console)
    page = console.viewer.get("/console/alerts").text
    rules = page.split('data-testid="rules"', 1)[1].split("</table>", 1)[0]
    assert "silence" in rules and "acme" in rules and "every meter" in rules
    assert re.search(r"Open alerts \([1-9]\d*\)", page)
    assert RECEIVER in page.split('data-testid="endpoints"', 1)[1]
    deliveries = page.split('data-testid="deliveries"', 1)[1].split("</table>", 1)[0]
    assert "badge-failed" in deliveries and "alert.opened" in deliveries
    last_error = re.search(r'<td class="small">([^<]+)</td>', deliveries)
    assert last_error and last_error.group(1).strip()  # why it failed, as the log recorded it


def test_resolved_alerts_are_listed_apart(console):
    _failed_delivery(console)
    store = open_store(console.url)
    try:
        rule = monitoring.rules(store, "live")[0]
        monitoring.remove(store, rule.id, now(), "live")  # resolves its open alerts
    finally:
        store.dispose()
    page = console.viewer.get("/console/alerts").text
    assert "No open alerts." in page
    resolved = page.split("Recently resolved", 1)[1]
    assert "badge-resolved" in resolved
    listed = console.viewer.get("/console/alerts/list?status=resolved").text
    assert "badge-resolved" in listed and "Resolved alerts (" in listed


def test_an_operator_retries_a_failed_delivery(console):
    delivery = _failed_delivery(console)
    log = console.operator.get("/console/alerts/deliveries?status=failed").text
    assert f'data-testid="retry-{delivery}"' in log and "goes back to pending with its attempts reset" in log
    answer = console.operator.post(f"/console/alerts/deliveries/{delivery}/retry")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/alerts/deliveries?done=retried"
    assert "pending again" in console.operator.get(answer.headers["location"]).text
    assert _delivery_status(console, delivery) == "pending"
    again = console.operator.post(f"/console/alerts/deliveries/{delivery}/retry")
    assert again.status_code == 400 and "only a failed delivery is retried" in again.text
    assert console.operator.post("/console/alerts/deliveries/999999/retry").status_code == 404


def test_the_cli_retries_through_the_same_use_case(console):
    delivery = _failed_delivery(console)
    result = CliRunner().invoke(cli_app, ["webhooks", "retry", str(delivery), "--db", console.url, "--json"])
    assert result.exit_code == 0, result.output
    assert '"status": "pending"' in result.output
    assert _delivery_status(console, delivery) == "pending"


def test_viewers_see_no_retry_and_get_403_posting(console):
    delivery = _failed_delivery(console)
    for path in ("/console/alerts", "/console/alerts/deliveries"):
        assert "data-testid=\"retry-" not in console.viewer.get(path).text
    refused = console.viewer.post(f"/console/alerts/deliveries/{delivery}/retry")
    assert refused.status_code == 403 and "operator role" in refused.text
    assert _delivery_status(console, delivery) == "failed"


def test_retry_without_the_csrf_token_is_refused(console):
    delivery = _failed_delivery(console)
    refused = console.operator.post(f"/console/alerts/deliveries/{delivery}/retry", csrf=False)
    assert refused.status_code == 403
    assert _delivery_status(console, delivery) == "failed"


def test_sandbox_alerts_and_webhooks_never_appear_on_live_pages(console):
    sandbox_url = "http://127.0.0.1:9/sandbox-receiver"
    delivery = _failed_delivery(console, env="sandbox", url=sandbox_url)
    for path in ("/console/alerts", "/console/alerts/deliveries", "/console/alerts/list?status=open"):
        page = console.operator.get(path).text
        assert sandbox_url not in page and 'data-testid="alert-row"' not in page
        assert 'data-testid="delivery-row"' not in page
    # a live session cannot retry the sandbox's delivery either
    assert console.operator.post(f"/console/alerts/deliveries/{delivery}/retry").status_code == 404
    console.operator.post("/console/environment", {"environment": "sandbox", "back": "/console/alerts"})
    assert sandbox_url in console.operator.get("/console/alerts").text


def test_hostile_names_in_alerts_render_as_text(console):
    console.api.apply_catalog()
    store = open_store(console.url)
    try:
        monitoring.add_rule(store, now(), "live", kind="silence", hours="1", customer=HOSTILE)
    finally:
        store.dispose()
    page = console.viewer.get("/console/alerts").text
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("path", ["/console/alerts/deliveries?page=-1", "/console/alerts/deliveries?page=x",
                                  "/console/alerts/deliveries?status=lost", "/console/alerts/list?status=sleeping",
                                  "/console/alerts/list?page=0"])
def test_bad_query_parameters_get_a_400_page(console, path):
    answer = console.viewer.get(path)
    assert answer.status_code == 400, answer.text
    assert "<html" in answer.text.lower()
