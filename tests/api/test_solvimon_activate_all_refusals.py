"""Activating every DRAFT schedule of a subscription at once, on SQLite and PostgreSQL: a DRAFT
that is refused stays a DRAFT, the others are activated all the same, and the answer is an error
naming each refused DRAFT with its reason and the ones activated."""

from __future__ import annotations

import pytest

from .test_solvimon_sdk import Live, catalog_of
from .test_solvimon_subscription_atomic import schedules_of
from .test_solvimon_subscriptions import draft_subscription, pin, plans_and_customer, server

__all__ = ["server"]


def _draft(server: Live, plan: str, start: str, end: str | None = None) -> str:
    body = {"pricing_plan_subscription_id": "acme-main", "pricing_plan_id": plan, "start_at": start, "status": "DRAFT"}
    if end is not None:
        body["end_at"] = end
    made = server.http("POST", "/v1/pricing-plan-schedules", json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def test_activating_all_goes_past_a_refused_draft_and_names_each_refusal(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    draft_subscription(server, "acme-main", "Acme main")  # a DRAFT subscription: each DRAFT schedule may carry an end
    first = _draft(server, "basic", "2026-05-01T00:00:00Z", end="2026-09-01T00:00:00Z")
    # once the first is active the subscription bills, and a DRAFT with an end is refused: these two
    second = _draft(server, "pro", "2026-06-01T00:00:00Z", end="2026-08-01T00:00:00Z")
    fourth = _draft(server, "basic", "2026-08-01T00:00:00Z", end="2026-08-20T00:00:00Z")
    third = _draft(server, "pro", "2026-07-01T00:00:00Z")

    answer = server.http("POST", "/v1/pricing-plan-schedules/activate?pricing_plan_subscription_id=acme-main")
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["code"] == "INVALID_OPERATION"
    message = error["message"]
    assert "2 of the 4 DRAFT schedules of subscription 'acme-main' were refused" in message
    assert f"{second} (pro from 2026-06-01T00:00:00Z): end_at: this DRAFT schedule has an end_at" in message
    assert f"{fourth} (basic from 2026-08-01T00:00:00Z): end_at: this DRAFT schedule has an end_at" in message
    assert f"Activated: {first}, {third}" in message
    # the ones after the first refusal were applied all the same; the refused ones wait as DRAFTs
    [subscription] = catalog_of(server)["subscriptions"]
    assert [(c["plan"], c["at"]) for c in subscription.get("changes") or []] == [("pro", "2026-07-01T00:00:00Z")]
    assert [s for s in schedules_of(server, "acme-main") if s[0] == "DRAFT"] == [
        ("DRAFT", "basic", "2026-08-01T00:00:00Z", "2026-08-20T00:00:00Z"),
        ("DRAFT", "pro", "2026-06-01T00:00:00Z", "2026-08-01T00:00:00Z")]
    # only the refused ones are left: refused again, with their reasons, and nothing changes
    again = server.http("POST", "/v1/pricing-plan-schedules/activate?pricing_plan_subscription_id=acme-main")
    assert again.status_code == 400 and "2 of the 2 DRAFT schedules" in again.json()["message"]
    assert "Activated: none" in again.json()["message"]
    assert catalog_of(server)["subscriptions"] == [subscription]
