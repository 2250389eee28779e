"""A voided subscription (made in error) never gets a final document, on SQLite and PostgreSQL.

A void is refused once a final invoice names the subscription; the drafts an invoice run made for
it before the void must not become final afterwards either (by hand, or by a finalization that
ran while the void was being stored), or the customer holds a numbered invoice of a subscription
the catalog no longer has."""

from __future__ import annotations

import pytest

from ..solvimon_sdk import sv
from .held_writes import held_while
from .test_solvimon_sdk import Live
from .test_solvimon_subscriptions import pin, plans_and_customer, server, subscribe

__all__ = ["server"]


def test_the_drafts_of_a_voided_subscription_are_never_finalized(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-06-10T12:00:00Z")
    plans_and_customer(server)
    subscribe(server.api(sv.PricingPlanSubscriptionsApi), "acme-main", "basic", "2026-05-01T00:00:00Z")
    ran = server.http("POST", "/v1/invoice-runs", json={"until": "2026-06-01"})
    assert ran.status_code == 200, ran.text
    drafts = server.http("GET", "/v1/invoices", params={"customer_id": "acme"}).json()["data"]
    assert drafts and {d["status"] for d in drafts} == {"DRAFT"}, drafts

    voided = server.http("POST", "/v1/pricing-plan-subscriptions/acme-main/void")
    assert voided.status_code == 200, voided.text
    for draft in drafts:
        server.http("PATCH", f"/v1/invoices/{draft['id']}", json={"status": "FINAL"})
    listed = server.http("GET", "/v1/invoices", params={"customer_id": "acme"}).json()["data"]
    assert [(i["invoice_date"], i["status"]) for i in listed if i["status"] == "FINAL"] == []


def test_a_void_held_while_the_plan_changes_keeps_the_schedules_it_voided(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """The void is computed again on the catalog version the change of plan stored, and what the
    VOID subscription lists as its schedules is what that version held, the change included."""
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    subscribe(server.api(sv.PricingPlanSubscriptionsApi), "acme-main", "basic", "2026-05-01T00:00:00Z")
    voided, changed = held_while(
        monkeypatch,
        lambda: server.http("POST", "/v1/pricing-plan-subscriptions/acme-main/void"),
        lambda: server.http("POST", "/v1/pricing-plan-subscriptions/acme-main/change-plan",
                              json={"pricing_plan_id": "pro", "start_at": "2026-06-01T00:00:00Z"}))
    assert changed.status_code in (200, 201), changed.text
    assert voided.status_code == 200, voided.text
    shown = server.http("GET", "/v1/pricing-plan-subscriptions/acme-main").json()
    assert shown["status"] == "VOID"
    assert [(i["pricing_plan_id"], i["start_at"]) for i in shown["pricing_plan_schedule_infos"]] == [
        ("basic", "2026-05-01T00:00:00Z"), ("pro", "2026-06-01T00:00:00Z")]
