"""Pricing-plan subscriptions and subscription groups through the published Solvimon SDK against a
live server, on SQLite and PostgreSQL: a customer created with the SDK gets a subscription with
the SDK, its events then match, and an invoice run bills them; a change of plan is prorated by
the billing-under-change rules (figures worked by hand below); cancellation maps onto `end` and
`end_proration`; hostile input is a 400/404 with Solvimon's error envelope, never a 500.

Plans are put in the catalog as a file (POST /v1/catalog), as the other API tests do."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from ratecard.store import open_store
from ratecard.store.invoices import change_status, list_invoices

from ..solvimon_sdk import errors, m, sv
from .test_solvimon_sdk import Live, V, apply_catalog, body_of, catalog_of, create_customer, event, ref, send, server

__all__ = ["server"]

PLANS = [
    {"code": "basic", "name": "Basic", "currency": "EUR", "charges": [
        {"code": "base", "model": "flat", "amount": "100.00", "timing": "advance"},
        {"code": "calls", "meter": "calls", "model": "per_unit", "unit_amount": "1.00"}]},
    {"code": "pro", "name": "Pro", "currency": "EUR", "charges": [
        {"code": "base", "model": "flat", "amount": "200.00", "timing": "advance"},
        {"code": "calls", "meter": "calls", "model": "per_unit", "unit_amount": "0.50"}]},
    {"code": "yearly", "currency": "EUR", "interval": "year", "charges": [
        {"code": "base", "model": "flat", "amount": "1000.00", "timing": "advance"}]},
    {"code": "usd", "currency": "USD", "charges": [{"code": "base", "model": "flat", "amount": "1.00"}]},
]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def pin(monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    """The server reads "now" from RATECARD_NOW on every request (it runs in this process)."""
    monkeypatch.setenv("RATECARD_NOW", moment)


def plans_and_customer(server: Live, reference: str = "acme", activate: bool = True) -> None:
    apply_catalog(server, {"meters": [{"code": "calls", "aggregation": "count"}], "plans": PLANS})
    customers = server.api(sv.CustomersApi)
    create_customer(customers, m.CustomerCreateRequest(type="ORGANIZATION", reference=reference,
                                                       organization=m.OrganizationCreateRequest(legal_name="Acme")))
    if activate:
        customers.post_customers_by_resource_id_or_reference_activate(V, reference)


def draft_subscription(server: Live, reference: str, name: str, customer: str = "acme") -> None:
    """A DRAFT subscription (no schedule yet), made over HTTP."""
    made = server.http("POST", "/v1/pricing-plan-subscriptions", json={
        "reference": reference, "customer_reference": customer, "name": name})
    assert made.status_code == 201, made.text


def subscribe(api: sv.PricingPlanSubscriptionsApi, reference: str, plan: str, start: str,
              customer: str = "acme", **fields: Any) -> m.PricingPlanSubscription:
    """Solvimon's init with an existing customer: the subscription and its first schedule in one
    call (the SDK's plain create request cannot carry a schedule: its schedule infos are read-only)."""
    request = m.PricingPlanSubscriptionInitCreateRequest(
        pricing_plan_subscription=m.PricingPlanSubscriptionCreateRequest(reference=reference,
                                                                         customer_reference=customer, **fields),
        pricing_plan_schedules=[m.PricingPlanScheduleCreateRequest(pricing_plan_id=plan, start_at=at(start))])
    made = api.post_pricing_plan_subscriptions_init(V, pricing_plan_subscription_init_create_request=request)
    assert made.pricing_plan_subscription is not None
    return made.pricing_plan_subscription


def lines_of(invoices: sv.InvoicesApi, boundary: str) -> dict[str, list[str]]:
    """{charge code: [amounts]} of the customer's invoice dated `boundary`, read through the SDK."""
    listed = invoices.get_invoices(V, customer_id="acme", include_lines=True, limit=100).data
    mine = [i for i in listed if i.invoice_date == at(boundary)]
    assert len(mine) == 1, [(i.invoice_date, i.id) for i in listed]
    found: dict[str, list[str]] = {}
    for period in mine[0].periods or []:
        for group in period.groups or []:
            for line in group.lines or []:
                found.setdefault(line.meter_value.reference, []).append(line.amount_excluding_tax.quantity)
    return {code: sorted(amounts) for code, amounts in found.items()} | {
        "total": [mine[0].invoice_amount_including_tax.quantity]}


def run_until(server: Live, day: str) -> None:
    response = server.http("POST", "/v1/invoice-runs", json={"until": day})
    assert response.status_code == 200, response.text


def test_subscribe_match_bill_change_and_cancel_through_the_sdk(server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    ingest = server.api(sv.IngestApi)
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)

    # before any subscription, acme's events are kept unbilled
    early = send(ingest, event(ref("early"), meter="calls", when=at("2026-05-03T10:00:00Z")))
    assert (early.processed_details.type, early.processed_details.not_matched.variant) == (
        "NOT_MATCHED", "NO_SUBSCRIPTION")

    created = subscribe(subscriptions, "acme-main", "basic", "2026-05-01T00:00:00Z", name="Acme main",
                        billing_period=m.Period(type="MONTH", value=1), billing_currency="EUR")
    assert (created.id, created.reference, created.status, created.customer_reference) == (
        "acme-main", "acme-main", "ACTIVE", "acme")
    assert created.customer_id == server.api(sv.CustomersApi).get_customers_by_resource_id_or_reference(V, "acme").id
    assert (created.billing_period.type, created.billing_period.value, created.billing_currency) == ("MONTH", 1, "EUR")
    [info] = created.pricing_plan_schedule_infos
    assert (info.pricing_plan_id, info.start_at, info.end_at) == ("basic", "2026-05-01T00:00:00Z", None)
    # it is a catalog subscription now (a new catalog version)
    [entry] = catalog_of(server)["subscriptions"]
    assert (entry["reference"], entry["customer"], entry["plan"]) == ("acme-main", "acme", "basic")

    # events now match; the early one matches once reprocessed
    calls = [send(ingest, event(ref("call"), meter="calls", when=at(moment)))
             for moment in ("2026-05-05T10:00:00Z", "2026-05-10T10:00:00Z")]
    assert {c.processed_details.type for c in calls} == {"DEFAULT"}
    job = server.api(sv.ReprocessApi).post_reprocess(V, reprocess_create_request=m.ReprocessCreateRequest(
        type="NOT_MATCHED", not_matched=m.ReprocessNotMatchedCreateRequest()))
    from .test_solvimon_sdk import wait_for_job

    assert wait_for_job(server.api(sv.ReprocessApi), job.id).status == "DONE"
    assert ingest.get_ingest_meter_data_by_resource_id_or_reference(V, early.reference).processed_details.type \
        == "DEFAULT"

    # change to pro from May 15 (IMMEDIATE_PRO_RATA: ratecard's prorate); the answer is the new schedule
    schedule = subscriptions.post_pricing_plan_subscriptions_by_resource_id_change_plan(
        V, "acme-main", pricing_plan_subscription_change_plan_create_request=(
            m.PricingPlanSubscriptionChangePlanCreateRequest(pricing_plan_id="pro", start_at=at("2026-05-15T00:00:00Z"))))
    assert (schedule.pricing_plan_id, schedule.start_at, schedule.pricing_plan_subscription_id) == (
        "pro", at("2026-05-15T00:00:00Z"), "acme-main")
    infos = subscriptions.get_pricing_plan_subscriptions_by_resource_id(V, "acme-main").pricing_plan_schedule_infos
    assert [(i.pricing_plan_id, i.start_at, i.end_at) for i in infos] == [
        ("basic", "2026-05-01T00:00:00Z", "2026-05-15T00:00:00Z"), ("pro", "2026-05-15T00:00:00Z", None)]

    pin(monkeypatch, "2026-05-25T12:00:00Z")
    assert send(ingest, event(ref("call"), meter="calls", when=at("2026-05-20T10:00:00Z"))).processed_details.type \
        == "DEFAULT"
    run_until(server, "2026-06-01")
    invoices = server.api(sv.InvoicesApi)
    # May 1: basic's fee for May, in advance
    assert lines_of(invoices, "2026-05-01T00:00:00Z") == {"base": ["100.00"], "total": ["100.00"]}
    # June 1, worked by hand: calls before May 15 on basic 3 x 1.00 = 3.00 (the reprocessed one too),
    # after it on pro 1 x 0.50 = 0.50; May has 31 days, 17 of them from May 15: unused basic
    # -100.00 x 17/31 = -54.84, pro for those days 200.00 x 17/31 = 109.68; pro's fee for June 200.00.
    # 3.00 + 0.50 - 54.84 + 109.68 + 200.00 = 258.34
    june = lines_of(invoices, "2026-06-01T00:00:00Z")
    assert june == {"calls": ["0.50", "3.00"], "base": ["-54.84", "109.68", "200.00"], "total": ["258.34"]}

    # cancellation: NEXT_BILLING_PERIOD ends at the period's end; UNDO takes the end away again
    cancel = subscriptions.post_pricing_plan_subscriptions_by_resource_id_cancel
    ended = cancel(V, "acme-main", pricing_plan_subscription_cancel_create_request=(
        m.PricingPlanSubscriptionCancelCreateRequest(type="NEXT_BILLING_PERIOD", reason="budget")))
    assert ended.pricing_plan_schedule_infos[-1].end_at == "2026-06-01T00:00:00Z" and ended.status == "ACTIVE"
    resumed = cancel(V, "acme-main", pricing_plan_subscription_cancel_create_request=(
        m.PricingPlanSubscriptionCancelCreateRequest(type="UNDO")))
    assert resumed.pricing_plan_schedule_infos[-1].end_at is None
    # the June 1 invoice is finalized (sent); then DATE ends the subscription on June 15: the fee it
    # billed in advance for June is credited for the 16 unused days of 30 on the invoice cut at the
    # end: -200.00 x 16/30 = -106.666... -> -106.67 (end_proration prorate, the default)
    store = open_store(server.db_url)
    june_draft = [i for i in list_invoices(store, "live") if i.issue_date == "2026-06-01"][0]
    change_status(store, june_draft.id, "final", 1, "RC", "live")
    store.dispose()
    dated = cancel(V, "acme-main", pricing_plan_subscription_cancel_create_request=(
        m.PricingPlanSubscriptionCancelCreateRequest(type="DATE", cancel_at=at("2026-06-15T00:00:00Z"))))
    assert dated.pricing_plan_schedule_infos[-1].end_at == "2026-06-15T00:00:00Z"
    assert catalog_of(server)["subscriptions"][0]["end_proration"] == "prorate"
    pin(monkeypatch, "2026-06-20T00:00:00Z")
    run_until(server, "2026-06-15")
    assert lines_of(invoices, "2026-06-15T00:00:00Z") == {"base": ["-106.67"], "calls": ["0.00"],
                                                          "total": ["-106.67"]}
    assert lines_of(invoices, "2026-06-01T00:00:00Z")["total"] == ["258.34"]  # final: never changed
    assert subscriptions.get_pricing_plan_subscriptions_by_resource_id(V, "acme-main").status == "CANCELLED"
    # an ended subscription cannot be resumed
    with pytest.raises(errors.BadRequestException) as refused:
        cancel(V, "acme-main", pricing_plan_subscription_cancel_create_request=(
            m.PricingPlanSubscriptionCancelCreateRequest(type="UNDO")))
    assert refused.value.data.code == "INVALID_OPERATION"
    archived = subscriptions.post_pricing_plan_subscriptions_by_resource_id_archive(V, "acme-main")
    assert archived.status == "ARCHIVED"
    assert [s.reference for s in subscriptions.get_pricing_plan_subscriptions(V, statuses=["ARCHIVED"]).data] == [
        "acme-main"]


def test_init_trial_seats_list_filters_expand_and_groups(server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-03-01T00:00:00Z")
    plans_and_customer(server)
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)
    # init: a new customer, its subscription and a TRIAL schedule then a DEFAULT one, with 3 seats
    made = subscriptions.post_pricing_plan_subscriptions_init(V, pricing_plan_subscription_init_create_request=(
        m.PricingPlanSubscriptionInitCreateRequest(
            customer=m.CustomerCreateRequest(type="INDIVIDUAL", reference="globex",
                                             individual=m.IndividualCreateRequest(
                                                 name=m.Name(first_name="Gina"))),
            pricing_plan_subscription=m.PricingPlanSubscriptionCreateRequest(reference="globex-1", name="Globex"),
            pricing_plan_schedules=[
                m.PricingPlanScheduleCreateRequest(type="TRIAL", start_at=at("2026-03-01T00:00:00Z"),
                                                   end_at=at("2026-03-15T00:00:00Z")),
                m.PricingPlanScheduleCreateRequest(type="DEFAULT", pricing_plan_id="basic",
                                                   pricing_plan_version_id="basic-v2",
                                                   start_at=at("2026-03-15T00:00:00Z"),
                                                   seats_values=[m.ConfiguredMeterValue(number="3")])])))
    assert (made.customer.reference, made.customer.status) == ("globex", "ACTIVE")
    assert (made.pricing_plan_subscription.reference, made.pricing_plan_subscription.customer_reference) == (
        "globex-1", "globex")
    [schedule] = made.pricing_plan_schedules
    assert (schedule.pricing_plan_id, schedule.pricing_plan_version_id, schedule.seats_values[0].number) == (
        "basic", "basic-v2", "3")
    entry = next(s for s in catalog_of(server)["subscriptions"] if s["reference"] == "globex-1")
    assert (entry["trial_days"], entry["quantity"], entry["start"]) == (14, 3, "2026-03-01T00:00:00Z")

    subscribe(subscriptions, "acme-a", "basic", "2026-02-01T00:00:00Z")
    subscribe(subscriptions, "acme-y", "yearly", "2026-01-01T00:00:00Z",
              initial_term=m.Period(type="MONTH", value=12))
    # list: Solvimon's envelope, filters, expand
    page = subscriptions.get_pricing_plan_subscriptions(V, limit=2, order_by="reference", order_direction="asc")
    assert [s.reference for s in page.data] == ["acme-a", "acme-y"] and page.total_number_of_pages == 2
    assert page.links.next is not None
    acme_id = server.api(sv.CustomersApi).get_customers_by_resource_id_or_reference(V, "acme").id
    mine = subscriptions.get_pricing_plan_subscriptions(V, customer_id=acme_id, expand=["customer_id"])
    assert sorted(s.reference for s in mine.data) == ["acme-a", "acme-y"]
    assert {s.customer.reference for s in mine.data} == {"acme"}
    assert [s.reference for s in subscriptions.get_pricing_plan_subscriptions(
        V, start_at="[2026-01-15T00:00:00Z,2026-03-01T00:00:00Z]", order_by="start_at").data] == ["globex-1", "acme-a"]
    assert subscriptions.get_pricing_plan_subscriptions(V, type="QUOTE").data == []
    # AFTER_INITIAL_TERM: 12 months from January 1
    ended = subscriptions.post_pricing_plan_subscriptions_by_resource_id_cancel(
        V, "acme-y", pricing_plan_subscription_cancel_create_request=m.PricingPlanSubscriptionCancelCreateRequest(
            type="AFTER_INITIAL_TERM"))
    assert ended.pricing_plan_schedule_infos[-1].end_at == "2027-01-01T00:00:00Z"

    # a create without a schedule (the SDK cannot send one there) is a DRAFT that bills nothing
    draft = subscriptions.post_pricing_plan_subscriptions(V, pricing_plan_subscription_create_request=(
        m.PricingPlanSubscriptionCreateRequest(reference="acme-later", customer_id=acme_id, name="Later")))
    assert (draft.status, draft.pricing_plan_schedule_infos, draft.customer_reference) == ("DRAFT", [], "acme")
    assert "acme-later" not in {s["reference"] for s in catalog_of(server)["subscriptions"]}
    assert [s.reference for s in subscriptions.get_pricing_plan_subscriptions(V, statuses=["DRAFT"]).data] == [
        "acme-later"]
    with pytest.raises(errors.BadRequestException) as no_plan:
        subscriptions.post_pricing_plan_subscriptions_by_resource_id_cancel(
            V, "acme-later", pricing_plan_subscription_cancel_create_request=(
                m.PricingPlanSubscriptionCancelCreateRequest(type="NOW")))
    assert no_plan.value.data.code == "INVALID_OPERATION"

    # groups: a label over subscriptions; a subscription joins one with pricing_plan_subscription_group_id
    # (the SDK does not send a group's pricing_plan_subscription_ids: read-only there)
    groups = server.api(sv.PricingPlanSubscriptionGroupsApi)
    group = groups.post_pricing_plan_subscription_groups(V, pricing_plan_subscription_group_create_request=(
        m.PricingPlanSubscriptionGroupCreateRequest(reference="acme-all", name="All of Acme", owner_customer_id="acme")))
    assert group.id.startswith("ppsg_") and group.pricing_plan_subscription_ids == []
    assert group.owner_customer_id == acme_id
    for member in ("acme-a", "acme-y", "acme-later"):
        joined = subscriptions.update_pricing_plan_subscriptions_by_resource_id(
            V, member, pricing_plan_subscription_update_request=m.PricingPlanSubscriptionUpdateRequest(
                pricing_plan_subscription_group_id=group.id))
        assert joined.pricing_plan_subscription_group_id == group.id
    assert sorted(groups.get_pricing_plan_subscription_groups_by_resource_id(V, "acme-all")
                  .pricing_plan_subscription_ids) == ["acme-a", "acme-later", "acme-y"]
    grouped = subscriptions.get_pricing_plan_subscriptions(V, pricing_plan_subscription_group_id=group.id,
                                                           expand=["pricing_plan_subscription_group_id"])
    assert sorted(s.reference for s in grouped.data) == ["acme-a", "acme-later", "acme-y"]
    assert {s.pricing_plan_subscription_group.reference for s in grouped.data} == {"acme-all"}
    with pytest.raises(errors.BadRequestException) as foreign:  # globex-1 is not the owner's
        subscriptions.update_pricing_plan_subscriptions_by_resource_id(
            V, "globex-1", pricing_plan_subscription_update_request=m.PricingPlanSubscriptionUpdateRequest(
                pricing_plan_subscription_group_id=group.id))
    assert foreign.value.data.var_field == "pricing_plan_subscription_group_id"
    with pytest.raises(errors.BadRequestException) as not_empty:
        groups.delete_pricing_plan_subscription_groups_by_resource_id(V, group.id)
    assert not_empty.value.data.code == "INVALID_OPERATION"
    # raw clients may set the members on the group itself; [] empties it
    emptied = server.http("PATCH", "/v1/pricing-plan-subscription-groups/acme-all",
                          json={"name": "Acme", "pricing_plan_subscription_ids": []})
    assert emptied.status_code == 200 and emptied.json()["pricing_plan_subscription_ids"] == []
    assert groups.delete_pricing_plan_subscription_groups_by_resource_id(V, group.id).reference == "acme-all"
    assert groups.get_pricing_plan_subscription_groups(V).data == []

    # PATCH: the descriptive fields; the plan goes through change-plan
    patched = subscriptions.update_pricing_plan_subscriptions_by_resource_id(
        V, "acme-a", pricing_plan_subscription_update_request=m.PricingPlanSubscriptionUpdateRequest(
            description="main account", purchase_order_number="PO-7",
            custom_fields=[m.CustomFieldValueUpdateRequest(reference="crm", value="A-1")]))
    assert (patched.description, patched.purchase_order_number) == ("main account", "PO-7")
    assert [s.reference for s in subscriptions.get_pricing_plan_subscriptions(V, custom_field="crm:A-1").data] == [
        "acme-a"]


def test_hostile_input_is_a_400_or_404_with_the_envelope(server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    plans_and_customer_draft = server.api(sv.CustomersApi)
    create_customer(plans_and_customer_draft, m.CustomerCreateRequest(type="ORGANIZATION", reference="drafty"))
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)

    def refused(payload: dict) -> dict:
        response = server.http("POST", "/v1/pricing-plan-subscriptions", json=payload)
        assert response.status_code == 400, response.text
        return response.json()

    def schedule(plan: str = "basic", **fields: Any) -> list[dict]:
        return [{"pricing_plan_id": plan, **fields}]

    acme = {"customer_reference": "acme"}
    cases = [
        ({"pricing_plan_schedule_infos": schedule()}, "MISSING_FIELD", "customer_id"),
        ({"customer_reference": "nobody", "pricing_plan_schedule_infos": schedule()}, "INVALID_FIELD", "customer_id"),
        ({"customer_reference": "drafty", "pricing_plan_schedule_infos": schedule()}, "INVALID_OPERATION",
         "customer_id"),
        ({**acme, "pricing_plan_schedule_infos": schedule("nope")}, "INVALID_FIELD",
         "pricing_plan_schedule_infos.0.pricing_plan_id"),
        ({**acme, "pricing_plan_schedule_infos": [{}]}, "MISSING_FIELD",
         "pricing_plan_schedule_infos.0.pricing_plan_id"),
        ({**acme, "pricing_plan_schedule_infos": schedule(), "billing_period": {"type": "YEAR", "value": 1}},
         "INVALID_FIELD", "billing_period"),
        ({**acme, "pricing_plan_schedule_infos": schedule(), "billing_currency": "USD"}, "INVALID_FIELD",
         "billing_currency"),
        ({**acme, "pricing_plan_schedule_infos": schedule(), "type": "QUOTE"}, "INVALID_FIELD", "type"),
        ({**acme, "pricing_plan_schedule_infos": schedule(), "status": "DRAFT"}, "INVALID_FIELD", "status"),
        ({**acme, "reference": "x" * 201, "pricing_plan_schedule_infos": schedule()}, "INVALID_FIELD", "reference"),
        ({**acme, "reference": "two words"}, "INVALID_FIELD", "reference"),
        ({**acme, "pricing_plan_schedule_infos": schedule(start_at="yesterday")}, "INVALID_FIELD",
         "pricing_plan_schedule_infos.0.start_at"),
        ({**acme, "pricing_plan_schedule_infos": schedule(start_at="2026-05-01T00:00:00Z",
                                                          end_at="2026-04-01T00:00:00Z")}, "INVALID_FIELD",
         "pricing_plan_schedule_infos.0.end_at"),
        ({**acme, "pricing_plan_schedule_infos": schedule(), "quantity": 0}, "INVALID_FIELD", "quantity"),
        ({**acme, "pricing_plan_schedule_infos": "basic"}, "INVALID_FIELD", "pricing_plan_schedule_infos"),
        ({**acme, "initial_term": {"type": "DECADE", "value": 1}}, "INVALID_FIELD", "initial_term.type"),
        ({"customer_reference": "ac\u0000me"}, "INVALID_FIELD", "customer_reference"),
    ]
    for payload, code, field in cases:
        error = refused(payload)
        assert (error["type"], error["code"], error["field"]) == ("INVALID_REQUEST", code, field), (payload, error)
    assert catalog_of(server)["subscriptions"] == []  # nothing was stored

    subscribe(subscriptions, "acme-main", "basic", "2026-05-01T00:00:00Z")
    with pytest.raises(errors.ConflictException) as twice:  # 409 is in the create's map: the SDK parses it
        subscriptions.post_pricing_plan_subscriptions(V, pricing_plan_subscription_create_request=(
            m.PricingPlanSubscriptionCreateRequest(reference="acme-main", customer_reference="acme")))
    assert twice.value.data.code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(errors.NotFoundException) as unknown:
        subscriptions.get_pricing_plan_subscriptions_by_resource_id(V, "nope")
    assert body_of(unknown.value)["code"] == "RESOURCE_NOT_FOUND"
    change = subscriptions.post_pricing_plan_subscriptions_by_resource_id_change_plan
    with pytest.raises(errors.BadRequestException) as same:
        change(V, "acme-main", pricing_plan_subscription_change_plan_create_request=(
            m.PricingPlanSubscriptionChangePlanCreateRequest(pricing_plan_id="basic")))
    assert same.value.data.var_field == "pricing_plan_id"
    with pytest.raises(errors.BadRequestException) as yearly:  # a change keeps the interval
        change(V, "acme-main", pricing_plan_subscription_change_plan_create_request=(
            m.PricingPlanSubscriptionChangePlanCreateRequest(pricing_plan_id="yearly")))
    assert yearly.value.data.code == "INVALID_FIELD"
    with pytest.raises(errors.NotFoundException):
        change(V, "nope", pricing_plan_subscription_change_plan_create_request=(
            m.PricingPlanSubscriptionChangePlanCreateRequest(pricing_plan_id="pro")))
    cancel = subscriptions.post_pricing_plan_subscriptions_by_resource_id_cancel
    with pytest.raises(errors.BadRequestException) as no_date:
        cancel(V, "acme-main", pricing_plan_subscription_cancel_create_request=(
            m.PricingPlanSubscriptionCancelCreateRequest(type="DATE")))
    assert (no_date.value.data.code, no_date.value.data.var_field) == ("MISSING_FIELD", "cancel_at")
    with pytest.raises(errors.BadRequestException) as no_term:
        cancel(V, "acme-main", pricing_plan_subscription_cancel_create_request=(
            m.PricingPlanSubscriptionCancelCreateRequest(type="AFTER_INITIAL_TERM")))
    assert no_term.value.data.code == "INVALID_OPERATION"
    with pytest.raises(errors.BadRequestException) as dunning:
        cancel(V, "acme-main", pricing_plan_subscription_cancel_create_request=(
            m.PricingPlanSubscriptionCancelCreateRequest(type="DATE", cancel_at=at("2026-06-01T00:00:00Z"),
                                                         cancel_dunning_actions=True)))
    assert dunning.value.data.var_field == "cancel_dunning_actions"
    # what the typed SDK refuses to send, sent raw: every answer is a 400 envelope, never a 500
    raw = [("POST", "/v1/pricing-plan-subscriptions/acme-main/cancel", {"type": "LATER"}, "type"),
           ("POST", "/v1/pricing-plan-subscriptions/acme-main/cancel", {"type": "NOW", "end_proration": "half"},
            "end_proration"),
           ("POST", "/v1/pricing-plan-subscriptions/acme-main/change-plan",
            {"pricing_plan_id": "pro", "proration": "sometimes"}, "proration"),
           ("POST", "/v1/pricing-plan-subscriptions/acme-main/change-plan",
            {"pricing_plan_id": "pro", "timing": "NEXT_BILLING_PERIOD", "start_at": "2026-05-20T00:00:00Z"},
            "start_at"),
           ("POST", "/v1/pricing-plan-subscriptions/init", {"pricing_plan_subscription": {"customer_reference": "acme"},
                                                             "pricing_plan_schedules": [{"type": "TRIAL"}]},
            "pricing_plan_schedules.0.type"),
           ("POST", "/v1/pricing-plan-subscriptions/init", {"pricing_plan_subscription": {},
                                                             "pricing_plan_schedules": [{"pricing_plan_id": "basic"}]},
            "pricing_plan_subscription.customer_id"),
           ("POST", "/v1/pricing-plan-subscriptions/init", {"customer": {"type": "ORGANIZATION", "reference": "newco"},
                                                             "pricing_plan_schedules": [{"pricing_plan_id": "nope"}]},
            "pricing_plan_schedules.0.pricing_plan_id"),
           ("PATCH", "/v1/pricing-plan-subscriptions/acme-main", {"reference": "other"}, "reference"),
           ("PATCH", "/v1/pricing-plan-subscriptions/acme-main", {"pricing_plan_subscription_group_id": "nope"},
            "pricing_plan_subscription_group_id"),
           ("POST", "/v1/pricing-plan-subscriptions/acme-main/archive", None, "status"),  # not ended
           ("GET", "/v1/pricing-plan-subscriptions?statuses[]=ALIVE", None, "statuses"),
           ("GET", "/v1/pricing-plan-subscriptions?expand[]=everything", None, "expand"),
           ("GET", "/v1/pricing-plan-subscriptions?limit=1000", None, "limit"),
           ("GET", "/v1/pricing-plan-subscriptions?created_at=[soon,later]", None, "created_at")]
    for method, path, payload, field in raw:
        response = server.http(method, path, json=payload) if payload is not None else server.http(method, path)
        assert response.status_code == 400, (path, payload, response.text)
        body = response.json()
        assert body["type"] == "INVALID_REQUEST" and body["field"] == field, (path, payload, body)
    with pytest.raises(errors.NotFoundException):  # the customer init made for a refused subscription is gone again
        server.api(sv.CustomersApi).get_customers_by_resource_id_or_reference(V, "newco")
    not_json = server.http("POST", "/v1/pricing-plan-subscriptions", content=b"{oops",
                           headers={"content-type": "application/json"})
    assert (not_json.status_code, not_json.json()["code"]) == (400, "UNABLE_TO_PROCESS_INSTRUCTIONS")
    assert server.http("GET", "/v1/pricing-plan-subscription-groups/nope").status_code == 404
    # the sandbox key sees none of the live environment's subscriptions
    with pytest.raises(errors.NotFoundException):
        server.api(sv.PricingPlanSubscriptionsApi, "sandbox").get_pricing_plan_subscriptions_by_resource_id(
            V, "acme-main")
    assert json.loads(server.http("GET", "/v1/pricing-plan-subscriptions", "sandbox").text)["data"] == []
