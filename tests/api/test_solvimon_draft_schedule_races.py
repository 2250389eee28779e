"""A DRAFT schedule is never applied after it was deleted or changed, on SQLite and PostgreSQL: an
activation that validated its catalog while another request deleted the same DRAFT is refused
(the DRAFT is gone), one that read it before a PATCH is refused too (it would apply the DRAFT as it
was), and nothing of either is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ..solvimon_sdk import sv
from .held_writes import held_while
from .test_solvimon_sdk import Live, catalog_of
from .test_solvimon_subscription_atomic import schedules_of
from .test_solvimon_subscriptions import pin, plans_and_customer, server, subscribe

__all__ = ["server"]


def _with_draft(server: Live, monkeypatch: pytest.MonkeyPatch) -> str:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    subscribe(server.api(sv.PricingPlanSubscriptionsApi), "acme-main", "basic", "2026-05-01T00:00:00Z")
    draft = server.http("POST", "/v1/pricing-plan-schedules", json={
        "pricing_plan_subscription_id": "acme-main", "pricing_plan_id": "pro", "start_at": "2026-06-01T00:00:00Z",
        "status": "DRAFT"})
    assert draft.status_code == 201, draft.text
    return str(draft.json()["id"])


def _activation_held_while(server: Live, monkeypatch: pytest.MonkeyPatch, draft: str,
                           meanwhile: Callable[[], Any]) -> tuple[Any, Any]:
    """The activation of `draft` is held once it validated its catalog (nothing stored yet) while
    `meanwhile` runs; returns (the held activation's answer, what `meanwhile` returned)."""
    return held_while(monkeypatch, lambda: server.http("POST", f"/v1/pricing-plan-schedules/{draft}/activate"),
                      meanwhile)


def test_a_draft_schedule_deleted_while_it_is_activated_is_not_applied(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    draft = _with_draft(server, monkeypatch)
    activated, deleted = _activation_held_while(
        server, monkeypatch, draft, lambda: server.http("DELETE", f"/v1/pricing-plan-schedules/{draft}"))
    assert deleted.status_code == 200, deleted.text
    assert activated.status_code == 404, activated.text  # the DRAFT it names is gone
    assert schedules_of(server, "acme-main") == [("ACTIVE", "basic", "2026-05-01T00:00:00Z", None)]
    assert catalog_of(server)["subscriptions"][0].get("changes") in (None, [])



def test_a_draft_schedule_changed_while_it_is_activated_is_kept_as_changed(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    draft = _with_draft(server, monkeypatch)
    activated, moved = _activation_held_while(
        server, monkeypatch, draft,
        lambda: server.http("PATCH", f"/v1/pricing-plan-schedules/{draft}", json={"start_at": "2026-07-01T00:00:00Z"}))
    assert moved.status_code == 200, moved.text
    assert activated.status_code == 400, activated.text  # it would apply the DRAFT as it was before the PATCH
    assert activated.json()["code"] == "INVALID_OPERATION"
    assert schedules_of(server, "acme-main") == [("ACTIVE", "basic", "2026-05-01T00:00:00Z", None),
                                                 ("DRAFT", "pro", "2026-07-01T00:00:00Z", None)]
    assert catalog_of(server)["subscriptions"][0].get("changes") in (None, [])
    again = server.http("POST", f"/v1/pricing-plan-schedules/{draft}/activate")
    assert again.status_code == 200, again.text
    assert [(c["plan"], c["at"]) for c in catalog_of(server)["subscriptions"][0]["changes"]] == [
        ("pro", "2026-07-01T00:00:00Z")]
