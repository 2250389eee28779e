"""A subscription is never created for a customer archived meanwhile, on SQLite and PostgreSQL: a
create (or a DRAFT given its first schedule) that checked its customer was ACTIVE and validated its
catalog while another request archived that customer is refused, and nothing of it is stored."""

from __future__ import annotations

import pytest

from .held_writes import held_while
from .test_solvimon_sdk import Live
from .test_solvimon_subscription_atomic import CREATE, seen
from .test_solvimon_subscriptions import draft_subscription, pin, plans_and_customer, server

__all__ = ["server"]


def _archive(server: Live):  # noqa: ANN202 - the live server's response
    return server.http("POST", "/v1/customers/acme/archive")


def test_a_create_while_its_customer_is_archived_is_refused_and_stores_nothing(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    before = seen(server)
    created, archived = held_while(monkeypatch, lambda: server.http("POST", "/v1/pricing-plan-subscriptions",
                                                                    json=CREATE), lambda: _archive(server))
    assert archived.status_code == 200, archived.text
    assert created.status_code == 400, created.text
    assert created.json()["code"] == "INVALID_OPERATION" and "ARCHIVED" in created.json()["message"]
    assert seen(server) == before  # no catalog version, no subscription, no row


def test_a_draft_given_its_schedule_while_its_customer_is_archived_stays_a_draft(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    draft_subscription(server, "acme-main", "Acme main")
    before = seen(server)
    scheduled, archived = held_while(monkeypatch, lambda: server.http("POST", "/v1/pricing-plan-schedules", json={
        "pricing_plan_subscription_id": "acme-main", "pricing_plan_id": "basic",
        "start_at": "2026-05-01T00:00:00Z"}), lambda: _archive(server))
    assert archived.status_code == 200, archived.text
    assert scheduled.status_code == 400, scheduled.text
    assert scheduled.json()["code"] == "INVALID_OPERATION" and "ARCHIVED" in scheduled.json()["message"]
    assert seen(server) == before  # still the DRAFT, billing nothing
