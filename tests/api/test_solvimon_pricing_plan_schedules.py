"""Pricing plan schedules through the published Solvimon SDK against a live server, on SQLite and
PostgreSQL: the SDK's plain subscription create (which cannot carry a schedule) makes a DRAFT that
bills nothing; a schedule posted for it makes it bill (events match, an invoice run bills them,
figures worked by hand below); a second schedule is a prorated change of plan; get and list
(filtered by subscription) answer in Solvimon's shapes; hostile input is a 400/404 with the error
envelope, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from ..solvimon_sdk import errors, m, sv
from .test_solvimon_sdk import Live, V, body_of, catalog_of, create_customer, event, ref, send, server
from .test_solvimon_subscriptions import at, lines_of, pin, plans_and_customer, run_until, subscribe

__all__ = ["server"]


def test_a_schedule_makes_a_draft_bill_and_a_second_one_changes_plan(server: Live,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    customers = server.api(sv.CustomersApi)
    create_customer(customers, m.CustomerCreateRequest(type="ORGANIZATION", reference="beta",
                                                       organization=m.OrganizationCreateRequest(legal_name="Beta")))
    customers.post_customers_by_resource_id_or_reference_activate(V, "beta")
    ingest = server.api(sv.IngestApi)
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)
    schedules = server.api(sv.PricingPlanSchedulesApi)

    # the SDK's plain create: a DRAFT, and acme's events stay unbilled
    draft = subscriptions.post_pricing_plan_subscriptions(V, pricing_plan_subscription_create_request=(
        m.PricingPlanSubscriptionCreateRequest(reference="acme-main", customer_reference="acme", name="Main")))
    assert (draft.status, draft.pricing_plan_schedule_infos) == ("DRAFT", [])
    early = send(ingest, event(ref("early"), meter="calls", when=at("2026-05-05T10:00:00Z")))
    assert early.processed_details.type == "NOT_MATCHED"

    # a schedule on basic from May 1: the subscription bills
    first = schedules.post_pricing_plan_schedules(V, pricing_plan_schedule_create_request=(
        m.PricingPlanScheduleCreateRequest(pricing_plan_subscription_id=draft.id, pricing_plan_id="basic",
                                           start_at=at("2026-05-01T00:00:00Z"))))
    assert (first.pricing_plan_subscription_id, first.pricing_plan_id, first.start_at, first.end_at, first.status,
            first.type, first.pricing_currency, first.is_current) == (
        "acme-main", "basic", at("2026-05-01T00:00:00Z"), None, "ACTIVE", "DEFAULT", "EUR", True)
    assert (first.billing_period.type, first.billing_period.value) == ("MONTH", 1)
    made = subscriptions.get_pricing_plan_subscriptions_by_resource_id(V, "acme-main")
    assert (made.status, made.name, [i.id for i in made.pricing_plan_schedule_infos]) == ("ACTIVE", "Main", [first.id])
    [entry] = catalog_of(server)["subscriptions"]
    assert (entry["reference"], entry["customer"], entry["plan"]) == ("acme-main", "acme", "basic")
    calls = [send(ingest, event(ref("call"), meter="calls", when=at(moment)))
             for moment in ("2026-05-06T10:00:00Z", "2026-05-10T10:00:00Z")]
    assert [c.processed_details.type for c in calls] == ["DEFAULT", "DEFAULT"]

    # a second schedule on pro from May 15 is a change of plan (prorated)
    second = schedules.post_pricing_plan_schedules(V, set_previous_end_at=True, pricing_plan_schedule_create_request=(
        m.PricingPlanScheduleCreateRequest(pricing_plan_subscription_id="acme-main", pricing_plan_id="pro",
                                           start_at=at("2026-05-15T00:00:00Z"))))
    assert (second.pricing_plan_id, second.start_at, second.end_at, second.is_current) == (
        "pro", at("2026-05-15T00:00:00Z"), None, False)
    again = schedules.get_pricing_plan_schedules_by_resource_id(V, first.id)
    assert (again.pricing_plan_id, again.end_at) == ("basic", at("2026-05-15T00:00:00Z"))
    expanded = schedules.get_pricing_plan_schedules_by_resource_id(V, second.id,
                                                                   expand=["pricing_plan_subscription_id"])
    assert expanded.pricing_plan_id == "pro"

    # list: every schedule, or one subscription's (another customer's subscription is left out)
    subscribe(subscriptions, "beta-main", "pro", "2026-05-01T00:00:00Z", customer="beta")
    listed = schedules.get_pricing_plan_schedules(V)
    assert len(listed.data) == 3
    mine = schedules.get_pricing_plan_schedules(V, pricing_plan_subscription_id="acme-main")
    assert [(s.id, s.pricing_plan_id) for s in mine.data] == [(first.id, "basic"), (second.id, "pro")]
    assert [s.pricing_plan_subscription_id for s in schedules.get_pricing_plan_schedules(
        V, pricing_plan_subscription_id="beta-main").data] == ["beta-main"]
    assert schedules.get_pricing_plan_schedules(V, pricing_plan_subscription_id="nobody").data == []

    pin(monkeypatch, "2026-05-25T12:00:00Z")
    assert send(ingest, event(ref("call"), meter="calls", when=at("2026-05-20T10:00:00Z"))).processed_details.type \
        == "DEFAULT"
    run_until(server, "2026-06-01")
    invoices = server.api(sv.InvoicesApi)
    # May 1: basic's fee for May, in advance
    assert lines_of(invoices, "2026-05-01T00:00:00Z") == {"base": ["100.00"], "total": ["100.00"]}
    # June 1, worked by hand: the May 5 call came while the subscription was a DRAFT (unbilled);
    # calls on basic before May 15: 2 x 1.00 = 2.00; on pro after it: 1 x 0.50 = 0.50; May has
    # 31 days, 17 of them from May 15: unused basic -100.00 x 17/31 = -54.838... -> -54.84, pro
    # for those days 200.00 x 17/31 = 109.677... -> 109.68; pro's fee for June 200.00.
    # 2.00 + 0.50 - 54.84 + 109.68 + 200.00 = 257.34
    assert lines_of(invoices, "2026-06-01T00:00:00Z") == {
        "calls": ["0.50", "2.00"], "base": ["-54.84", "109.68", "200.00"], "total": ["257.34"]}


def test_hostile_schedules_are_a_400_or_404_with_the_envelope(server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)
    subscriptions.post_pricing_plan_subscriptions(V, pricing_plan_subscription_create_request=(
        m.PricingPlanSubscriptionCreateRequest(reference="acme-draft", customer_reference="acme")))
    subscribe(subscriptions, "acme-live", "basic", "2026-05-01T00:00:00Z")

    def answer(payload: Any, status: int, query: str = "") -> dict:
        response = server.http("POST", f"/v1/pricing-plan-schedules{query}", json=payload)
        assert response.status_code == status, (payload, response.text)
        return response.json()

    draft = {"pricing_plan_subscription_id": "acme-draft"}
    live = {"pricing_plan_subscription_id": "acme-live"}
    cases = [
        ({"pricing_plan_id": "basic"}, "MISSING_FIELD", "pricing_plan_subscription_id"),
        ({"pricing_plan_subscription_id": 5, "pricing_plan_id": "basic"}, "INVALID_FIELD",
         "pricing_plan_subscription_id"),
        ({**draft}, "MISSING_FIELD", "pricing_plan_id"),
        ({**draft, "pricing_plan_id": "nope"}, "INVALID_FIELD", "pricing_plan_id"),
        ({**draft, "pricing_plan_id": "basic", "start_at": "yesterday"}, "INVALID_FIELD", "start_at"),
        ({**draft, "pricing_plan_id": "basic", "start_at": "2026-05-01T00:00:00Z", "end_at": "2026-04-01T00:00:00Z"},
         "INVALID_FIELD", "end_at"),
        ({**draft, "pricing_plan_id": "basic", "pricing_currency": "USD"}, "INVALID_FIELD", "pricing_currency"),
        ({**draft, "pricing_plan_id": "basic", "type": "BOGUS"}, "INVALID_FIELD", "type"),
        ({**draft, "pricing_plan_id": "basic", "status": "PENDING"}, "INVALID_FIELD", "status"),
        ({**draft, "pricing_plan_id": "basic", "discount": {"percentage": "10"}}, "INVALID_FIELD", "discount"),
        ({**draft, "pricing_plan_id": "b\u0000asic"}, "INVALID_FIELD", None),
        ({**live, "pricing_plan_id": "basic"}, "INVALID_FIELD", "pricing_plan_id"),  # on basic already
        ({**live, "pricing_plan_id": "yearly"}, "INVALID_FIELD", "pricing_plan_id"),  # another interval
        ({**live, "pricing_plan_id": "pro", "end_at": "2026-07-01T00:00:00Z"}, "INVALID_FIELD", "end_at"),
    ]
    for payload, code, field in cases:
        error = answer(payload, 400)
        assert (error["type"], error["code"]) == ("INVALID_REQUEST", code), (payload, error)
        if field is not None:
            assert error["field"] == field, (payload, error)
    for payload in ([], "x", None):
        assert answer(payload, 400)["type"] == "INVALID_REQUEST"
    assert answer({**live, "pricing_plan_id": "pro"}, 400, "?set_next_start_at=true")["field"] == "set_next_start_at"
    assert answer({"pricing_plan_subscription_id": "nobody", "pricing_plan_id": "pro"}, 404)["code"] == \
        "RESOURCE_NOT_FOUND"
    # nothing was stored by any of them
    assert [s["reference"] for s in catalog_of(server)["subscriptions"]] == ["acme-live"]
    assert catalog_of(server)["subscriptions"][0]["plan"] == "basic"

    schedules = server.api(sv.PricingPlanSchedulesApi)
    with pytest.raises(errors.NotFoundException) as unknown:
        schedules.get_pricing_plan_schedules_by_resource_id(V, "pps_nope")
    assert body_of(unknown.value)["code"] == "RESOURCE_NOT_FOUND"
    for query in ("status=BOGUS", "expand[]=customer_id", "order_by=price", "limit=0"):
        response = server.http("GET", f"/v1/pricing-plan-schedules?{query}")
        assert response.status_code == 400 and response.json()["type"] == "INVALID_REQUEST", (query, response.text)
    # a schedule in effect is history: it is neither rewritten, deleted nor activated again (400)
    [one] = schedules.get_pricing_plan_schedules(V).data
    served = f"/v1/pricing-plan-schedules/{one.id}"
    for method, path, payload in (("PATCH", served, {"pricing_plan_id": "pro"}), ("DELETE", served, None),
                                  ("POST", f"{served}/activate", None)):
        response = server.http(method, path, json=payload)
        assert response.status_code == 400 and response.json()["code"] == "INVALID_OPERATION", (method, response.text)
    assert catalog_of(server)["subscriptions"][0]["plan"] == "basic"
