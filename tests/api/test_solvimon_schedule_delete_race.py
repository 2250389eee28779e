"""Two schedules still to come deleted at once keep the version labels on the schedules they
belong to, on SQLite and PostgreSQL: each label follows its schedule, whichever delete stores
first."""

from __future__ import annotations

from typing import Any

import pytest

from ..solvimon_sdk import sv
from .held_writes import held_while
from .test_solvimon_sdk import Live
from .test_solvimon_subscriptions import pin, plans_and_customer, server, subscribe

__all__ = ["server"]


def _infos(server: Live) -> list[dict[str, Any]]:
    found = server.http("GET", "/v1/pricing-plan-subscriptions/acme-main")
    assert found.status_code == 200, found.text
    return list(found.json()["pricing_plan_schedule_infos"])


def test_two_deletes_at_once_keep_each_label_on_its_schedule(server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    subscribe(server.api(sv.PricingPlanSubscriptionsApi), "acme-main", "basic", "2026-05-01T00:00:00Z")
    for plan, start, label in (("pro", "2026-06-01", "pro-v1"), ("basic", "2026-07-01", "basic-v2"),
                               ("pro", "2026-08-01", "pro-v3")):
        made = server.http("POST", "/v1/pricing-plan-subscriptions/acme-main/change-plan", json={
            "pricing_plan_id": plan, "start_at": f"{start}T00:00:00Z", "pricing_plan_version_id": label})
        assert made.status_code in (200, 201), made.text
    infos = _infos(server)
    assert [(i["pricing_plan_id"], i.get("pricing_plan_version_id")) for i in infos] == [
        ("basic", None), ("pro", "pro-v1"), ("basic", "basic-v2"), ("pro", "pro-v3")]

    july, june = held_while(
        monkeypatch,
        lambda: server.http("DELETE", f"/v1/pricing-plan-schedules/{infos[2]['id']}"),
        lambda: server.http("DELETE", f"/v1/pricing-plan-schedules/{infos[1]['id']}"))
    assert june.status_code == 200, june.text
    assert july.status_code == 200, july.text
    assert [(i["pricing_plan_id"], i["start_at"], i.get("pricing_plan_version_id")) for i in _infos(server)] == [
        ("basic", "2026-05-01T00:00:00Z", None), ("pro", "2026-08-01T00:00:00Z", "pro-v3")]


def test_a_label_patched_while_an_earlier_schedule_is_deleted_lands_on_its_schedule(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    subscribe(server.api(sv.PricingPlanSubscriptionsApi), "acme-main", "basic", "2026-05-01T00:00:00Z")
    for plan, start in (("pro", "2026-06-01"), ("basic", "2026-07-01"), ("pro", "2026-08-01")):
        made = server.http("POST", "/v1/pricing-plan-subscriptions/acme-main/change-plan", json={
            "pricing_plan_id": plan, "start_at": f"{start}T00:00:00Z"})
        assert made.status_code in (200, 201), made.text
    infos = _infos(server)

    august, june = held_while(  # new seats (a catalog edit, held) and a label
        monkeypatch,
        lambda: server.http("PATCH", f"/v1/pricing-plan-schedules/{infos[3]['id']}", json={
            "seats_values": [{"number": "2"}], "pricing_plan_version_id": "pro-v3"}),
        lambda: server.http("DELETE", f"/v1/pricing-plan-schedules/{infos[1]['id']}"))
    assert june.status_code == 200, june.text
    assert august.status_code == 200, august.text
    assert [(i["pricing_plan_id"], i["start_at"], i.get("pricing_plan_version_id")) for i in _infos(server)] == [
        ("basic", "2026-05-01T00:00:00Z", None), ("basic", "2026-07-01T00:00:00Z", None),
        ("pro", "2026-08-01T00:00:00Z", "pro-v3")]
