"""Pricing plan schedules beyond create/get/list, through the published Solvimon SDK against a live
server on SQLite and PostgreSQL: DRAFT schedules (kept until activated), PATCH, DELETE, activate
(one and all), copy, migrate and the on-demand pricing items. Each money effect is checked on the
invoice an invoice run writes, with the figures worked by hand in the comments."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..solvimon_sdk import errors, m, sv
from .test_solvimon_sdk import Live, V, body_of, catalog_of, event, ref, send, server
from .test_solvimon_subscriptions import at, lines_of, pin, plans_and_customer, run_until, subscribe

__all__ = ["server"]


def refused(call, code: str = "INVALID_OPERATION", field: str | None = None) -> dict:
    with pytest.raises(errors.BadRequestException) as caught:
        call()
    body = body_of(caught.value)
    assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


def test_draft_schedule_patched_activated_a_later_one_deleted_and_one_offs_listed(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    ingest = server.api(sv.IngestApi)
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)
    schedules = server.api(sv.PricingPlanSchedulesApi)
    subscribe(subscriptions, "acme-main", "basic", "2026-05-01T00:00:00Z")
    [first] = schedules.get_pricing_plan_schedules(V, pricing_plan_subscription_id="acme-main").data

    # a DRAFT schedule bills nothing: the catalog is unchanged until it is activated
    draft = schedules.post_pricing_plan_schedules(V, pricing_plan_schedule_create_request=(
        m.PricingPlanScheduleCreateRequest(pricing_plan_subscription_id="acme-main", pricing_plan_id="pro",
                                           start_at=at("2026-05-14T00:00:00Z"), status="DRAFT")))
    assert (draft.status, draft.pricing_plan_id, draft.start_at, draft.is_current) == (
        "DRAFT", "pro", at("2026-05-14T00:00:00Z"), False)
    assert catalog_of(server)["subscriptions"][0].get("changes") in (None, [])
    listed = schedules.get_pricing_plan_schedules(V, pricing_plan_subscription_id="acme-main", status="DRAFT").data
    assert [s.id for s in listed] == [draft.id]
    infos = subscriptions.get_pricing_plan_subscriptions_by_resource_id(V, "acme-main").pricing_plan_schedule_infos
    assert [(i.id, i.status) for i in infos] == [(first.id, "ACTIVE"), (draft.id, "DRAFT")]

    # PATCH a DRAFT: any field; then activate it: a change of plan from May 15
    moved = schedules.update_pricing_plan_schedules_by_resource_id(V, draft.id, pricing_plan_schedule_update_request=(
        m.PricingPlanScheduleUpdateRequest(start_at=at("2026-05-15T00:00:00Z"))))
    assert (moved.status, moved.start_at) == ("DRAFT", at("2026-05-15T00:00:00Z"))
    active = schedules.post_pricing_plan_schedules_by_resource_id_activate(V, draft.id)
    assert (active.status, active.pricing_plan_id, active.start_at) == ("ACTIVE", "pro", at("2026-05-15T00:00:00Z"))
    [change] = catalog_of(server)["subscriptions"][0]["changes"]
    assert (change["plan"], change["at"]) == ("pro", "2026-05-15T00:00:00Z")
    refused(lambda: schedules.post_pricing_plan_schedules_by_resource_id_activate(V, active.id))

    # a schedule still to come (basic again from May 28) is deleted: the catalog is as before it
    later = schedules.post_pricing_plan_schedules(V, pricing_plan_schedule_create_request=(
        m.PricingPlanScheduleCreateRequest(pricing_plan_subscription_id="acme-main", pricing_plan_id="basic",
                                           start_at=at("2026-05-28T00:00:00Z"))))
    assert len(catalog_of(server)["subscriptions"][0]["changes"]) == 2
    gone = schedules.delete_pricing_plan_schedules_by_resource_id(V, later.id)
    assert (gone.id, gone.pricing_plan_id) == (later.id, "basic")
    assert [c["plan"] for c in catalog_of(server)["subscriptions"][0]["changes"]] == ["pro"]
    # the first schedule is in effect: neither deleted nor rewritten; its version label may change
    refused(lambda: schedules.delete_pricing_plan_schedules_by_resource_id(V, first.id))
    refused(lambda: schedules.update_pricing_plan_schedules_by_resource_id(
        V, first.id, pricing_plan_schedule_update_request=m.PricingPlanScheduleUpdateRequest(pricing_plan_id="pro")))
    labelled = schedules.update_pricing_plan_schedules_by_resource_id(V, first.id, pricing_plan_schedule_update_request=(
        m.PricingPlanScheduleUpdateRequest(pricing_plan_version_id="ppv_label", pricing_plan_id="basic")))
    assert (labelled.pricing_plan_version_id, labelled.pricing_plan_id) == ("ppv_label", "basic")

    # a one-off charge due on May 20 belongs to the pro schedule's on-demand items
    response = server.http("POST", "/v1/subscriptions/acme-main/charges",
                           json={"code": "setup", "amount": "50.00", "at": "2026-05-20T00:00:00Z",
                                 "description": "Set-up"})
    assert response.status_code == 200, response.text
    items = schedules.get_pricing_plan_schedules_by_resource_id_on_demand_pricing_items(V, active.id)
    assert (items.pricing_plan_subscription_id, items.pricing_plan_schedule_id) == ("acme-main", active.id)
    [pricing] = items.pricing_categories[0].pricings
    [config] = pricing.items[0].configs
    assert (pricing.name, config.type, config.bands[0].amount.quantity, config.bands[0].amount.currency,
            config.default_units.number) == ("Set-up", "FLAT", "50.00", "EUR", "1")
    assert schedules.get_pricing_plan_schedules_by_resource_id_on_demand_pricing_items(
        V, first.id).pricing_categories == []

    calls = [send(ingest, event(ref("call"), meter="calls", when=at(moment)))
             for moment in ("2026-05-06T10:00:00Z", "2026-05-10T10:00:00Z")]
    assert {c.processed_details.type for c in calls} == {"DEFAULT"}
    pin(monkeypatch, "2026-05-25T12:00:00Z")
    send(ingest, event(ref("call"), meter="calls", when=at("2026-05-20T10:00:00Z")))
    run_until(server, "2026-06-01")
    invoices = server.api(sv.InvoicesApi)
    assert lines_of(invoices, "2026-05-01T00:00:00Z") == {"base": ["100.00"], "total": ["100.00"]}
    # June 1, by hand: calls 2 x 1.00 on basic and 1 x 0.50 on pro; May has 31 days, 17 from May 15:
    # unused basic -100.00 x 17/31 = -54.84, pro for them 200.00 x 17/31 = 109.68; pro for June
    # 200.00; the set-up fee 50.00 (due May 20, on the first invoice cut after it); the deleted
    # May 28 schedule bills nothing. 2.00 + 0.50 - 54.84 + 109.68 + 200.00 + 50.00 = 307.34
    assert lines_of(invoices, "2026-06-01T00:00:00Z") == {
        "calls": ["0.50", "2.00"], "base": ["-54.84", "109.68", "200.00"], "setup": ["50.00"], "total": ["307.34"]}


def test_migrate_to_an_active_version_is_a_prorated_change_and_copy_and_bulk_activate(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    ingest = server.api(sv.IngestApi)
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)
    schedules = server.api(sv.PricingPlanSchedulesApi)
    plans = server.api(sv.PricingPlansApi)
    subscribe(subscriptions, "acme-main", "basic", "2026-05-01T00:00:00Z")
    [first] = schedules.get_pricing_plan_schedules(V, pricing_plan_subscription_id="acme-main").data
    pro_version = plans.get_pricing_plans_by_resource_id_or_reference(V, "pro").pricing_plan_version_infos[0].id
    basic_version = plans.get_pricing_plans_by_resource_id_or_reference(V, "basic").pricing_plan_version_infos[0].id

    def migrate(key: str, **fields) -> m.PricingPlanSchedule:
        return schedules.post_pricing_plan_schedules_by_resource_id_migrate(
            V, key, pricing_plan_schedule_migrate_create_request=m.PricingPlanScheduleMigrateCreateRequest(**fields))

    # refused: the version billed already, a DRAFT version, an unknown one; nothing stored
    refused(lambda: migrate(first.id, pricing_plan_version_id=basic_version))
    draft_version = server.api(sv.PricingPlanVersionsApi).post_pricing_plan_versions(
        V, pricing_plan_version_create_request=m.PricingPlanVersionCreateRequest(
            pricing_plan_id="pro", pricing_currency_settings=m.PricingCurrencySettingsCreateRequest(
                default_pricing_currency="EUR")))
    assert draft_version.status == "DRAFT"
    refused(lambda: migrate(first.id, pricing_plan_version_id=draft_version.id), "INVALID_FIELD",
            "pricing_plan_version_id")
    refused(lambda: migrate(first.id, pricing_plan_version_id="ppv_nope"), "INVALID_FIELD", "pricing_plan_version_id")
    refused(lambda: migrate(first.id), "MISSING_FIELD", "pricing_plan_version_id")
    assert catalog_of(server)["subscriptions"][0].get("changes") in (None, [])

    migrated = migrate(first.id, pricing_plan_version_id=pro_version, start_at=at("2026-05-15T00:00:00Z"))
    assert (migrated.pricing_plan_id, migrated.pricing_plan_version_id, migrated.start_at, migrated.status) == (
        "pro", pro_version, at("2026-05-15T00:00:00Z"), "ACTIVE")
    [change] = catalog_of(server)["subscriptions"][0]["changes"]
    assert (change["plan"], change["at"], change["proration"]) == ("pro", "2026-05-15T00:00:00Z", "prorate")

    # copy: the first schedule (basic) as a DRAFT from June 10, then every DRAFT activated at once
    copied = schedules.post_pricing_plan_schedules_by_resource_id_copy(
        V, first.id, pricing_plan_schedule_copy_create_request=m.PricingPlanScheduleCopyCreateRequest(
            start_at=at("2026-06-10T00:00:00Z"), status="DRAFT"))
    assert (copied.status, copied.pricing_plan_id, copied.start_at) == ("DRAFT", "basic", at("2026-06-10T00:00:00Z"))
    refused(lambda: schedules.post_pricing_plan_schedules_by_resource_id_copy(
        V, first.id, pricing_plan_schedule_copy_create_request=m.PricingPlanScheduleCopyCreateRequest(
            indexing_settings=m.IndexingSettingsCreateRequest())), "INVALID_FIELD", "indexing_settings")
    done = schedules.post_pricing_plan_schedules_activate(V, pricing_plan_subscription_id="acme-main")
    assert [(s.pricing_plan_id, s.start_at, s.status) for s in done.data] == [
        ("basic", at("2026-06-10T00:00:00Z"), "ACTIVE")]
    assert schedules.post_pricing_plan_schedules_activate(V, pricing_plan_subscription_id="acme-main").data == []
    assert [c["plan"] for c in catalog_of(server)["subscriptions"][0]["changes"]] == ["pro", "basic"]
    # the June 10 schedule is still to come: PATCH moves it to July 1 (a period boundary)
    later = schedules.get_pricing_plan_schedules(V, pricing_plan_subscription_id="acme-main").data[-1]
    schedules.update_pricing_plan_schedules_by_resource_id(V, later.id, pricing_plan_schedule_update_request=(
        m.PricingPlanScheduleUpdateRequest(start_at=at("2026-07-01T00:00:00Z"))))
    assert [(c["plan"], c["at"]) for c in catalog_of(server)["subscriptions"][0]["changes"]] == [
        ("pro", "2026-05-15T00:00:00Z"), ("basic", "2026-07-01T00:00:00Z")]

    calls = [send(ingest, event(ref("call"), meter="calls", when=at(moment)))
             for moment in ("2026-05-06T10:00:00Z", "2026-05-10T10:00:00Z")]
    assert {c.processed_details.type for c in calls} == {"DEFAULT"}
    pin(monkeypatch, "2026-05-25T12:00:00Z")
    send(ingest, event(ref("call"), meter="calls", when=at("2026-05-20T10:00:00Z")))
    run_until(server, "2026-06-01")
    # the migration bills what a change of plan on May 15 bills (the worked example of the change
    # of plan): 2 x 1.00 + 1 x 0.50 - 100.00 x 17/31 (-54.84) + 200.00 x 17/31 (109.68) + 200.00
    assert lines_of(server.api(sv.InvoicesApi), "2026-06-01T00:00:00Z") == {
        "calls": ["0.50", "2.00"], "base": ["-54.84", "109.68", "200.00"], "total": ["257.34"]}


def test_hostile_schedule_actions_are_a_400_or_404(server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)
    subscribe(subscriptions, "acme-main", "basic", "2026-05-01T00:00:00Z")
    [first] = server.api(sv.PricingPlanSchedulesApi).get_pricing_plan_schedules(V).data
    served = f"/v1/pricing-plan-schedules/{first.id}"
    cases = [
        ("PATCH", served, {"discount": {"percentage": "10"}}, 400, "discount"),
        ("PATCH", served, {"status": "DRAFT"}, 400, "status"),
        ("PATCH", served, {"end_at": "not a date"}, 400, "end_at"),
        ("PATCH", served, {"seats_values": [{"number": "1.5"}]}, 400, None),
        ("PATCH", served, [], 400, None),
        ("PATCH", served, {"billing_period": {"type": "YEAR", "value": 1}}, 400, "billing_period"),
        ("POST", f"{served}/copy", {"start_at": "2026-06-01T00:00:00Z", "end_at": "2026-07-01T00:00:00Z"}, 400,
         "end_at"),
        ("POST", f"{served}/copy", {"coupon_discount_behaviour": "CARRY_OVER"}, 400, "coupon_discount_behaviour"),
        ("POST", f"{served}/migrate", {"pricing_plan_version_id": 7}, 400, "pricing_plan_version_id"),
        ("POST", f"{served}/migrate", {"pricing_plan_version_selector": {}}, 400, None),
        ("POST", "/v1/pricing-plan-schedules/activate", None, 400, "pricing_plan_subscription_id"),
        ("POST", "/v1/pricing-plan-schedules/activate?pricing_plan_subscription_id=nobody", None, 404, None),
        ("PATCH", "/v1/pricing-plan-schedules/pps_nope", {}, 404, None),
        ("DELETE", "/v1/pricing-plan-schedules/pps_nope", None, 404, None),
        ("POST", "/v1/pricing-plan-schedules/pps_nope/activate", None, 404, None),
        ("GET", "/v1/pricing-plan-schedules/pps_nope/on-demand-pricing-items", None, 404, None),
        ("POST", "/v1/pricing-plan-schedules", {"pricing_plan_subscription_id": "acme-main", "pricing_plan_id": "pro",
                                                "status": "DRAFT", "end_at": "2026-07-01T00:00:00Z"}, 400, "end_at"),
    ]
    for method, path, payload, status, field in cases:
        response = server.http(method, path, json=payload)
        assert response.status_code == status, (method, path, payload, response.text)
        assert response.json()["type"] in ("INVALID_REQUEST", "RESOURCE_NOT_FOUND") or status == 404, response.text
        if field is not None:
            assert response.json()["field"] == field, (payload, response.text)
    # a DRAFT is checked again on PATCH, and deleted once
    draft = server.http("POST", "/v1/pricing-plan-schedules", json={
        "pricing_plan_subscription_id": "acme-main", "pricing_plan_id": "pro", "status": "DRAFT"}).json()
    path = f"/v1/pricing-plan-schedules/{draft['id']}"
    for payload, field in (({"billing_period": {"type": "YEAR", "value": 1}}, "billing_period"),
                           ({"pricing_plan_id": "nope"}, "pricing_plan_id"), ({"start_at": "soon"}, "start_at"),
                           ({"status": "ACTIVE"}, "status")):
        response = server.http("PATCH", path, json=payload)
        assert (response.status_code, response.json()["field"]) == (400, field), (payload, response.text)
    assert server.http("DELETE", path).json()["status"] == "DRAFT"
    assert server.http("DELETE", path).status_code == 404
    [entry] = catalog_of(server)["subscriptions"]
    assert (entry["plan"], entry.get("changes") in (None, [])) == ("basic", True)


FIELDS = ["pricing_plan_id", "pricing_plan_version_id", "start_at", "end_at", "seats_values", "status", "type",
          "billing_period", "pricing_currency", "reference", "payment_method_id", "cancel_dunning_actions",
          "search_fields", "filter_fields", "indexing_settings", "coupon_discount_behaviour", "id"]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
                   st.sampled_from(["basic", "pro", "yearly", "2026-06-01T00:00:00Z", "2026-05-01T00:00:00Z",
                                    "DRAFT", "ACTIVE", "9" * 40, "pm_x"]),
                   st.lists(st.dictionaries(st.sampled_from(["name", "value", "values", "number", "reference"]),
                                            st.one_of(st.text(max_size=10), st.integers()), max_size=3), max_size=3),
                   st.dictionaries(st.sampled_from(["type", "value"]), st.one_of(st.text(max_size=6), st.integers()),
                                   max_size=2))


def test_random_bodies_on_every_new_action_never_get_a_500(server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever object lands on PATCH, copy, migrate or create of a schedule, payment method, copy or search of
    real schedules and subscriptions, the answer is a 2xx or a 4xx in the error envelope."""
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    subscribe(server.api(sv.PricingPlanSubscriptionsApi), "acme-main", "basic", "2026-05-01T00:00:00Z")
    [first] = server.api(sv.PricingPlanSchedulesApi).get_pricing_plan_schedules(V).data
    targets = [("PATCH", f"/v1/pricing-plan-schedules/{first.id}"),
               ("POST", f"/v1/pricing-plan-schedules/{first.id}/copy"),
               ("POST", f"/v1/pricing-plan-schedules/{first.id}/migrate"), ("POST", "/v1/pricing-plan-schedules"),
               ("POST", "/v1/pricing-plan-subscriptions/acme-main/update-payment-method"),
               ("POST", "/v1/pricing-plan-subscriptions/acme-main/copy"),
               ("POST", "/v1/pricing-plan-subscriptions/search")]

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(targets), st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=5))
    def check(target: tuple[str, str], body: dict) -> None:
        method, path = target
        if path.endswith("/pricing-plan-schedules"):
            body = {**body, "pricing_plan_subscription_id": "acme-main"}
        response = server.http(method, path, json=body)
        assert response.status_code < 500, (method, path, body, response.text)
        if response.status_code >= 400:
            assert {"type", "code", "message"} <= set(response.json()), response.text

    check()


def test_end_at_of_the_last_schedule_is_a_prorated_cancellation(server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    subscribe(server.api(sv.PricingPlanSubscriptionsApi), "acme-main", "basic", "2026-05-01T00:00:00Z")
    schedules = server.api(sv.PricingPlanSchedulesApi)
    [first] = schedules.get_pricing_plan_schedules(V).data
    send(server.api(sv.IngestApi), event(ref("call"), meter="calls", when=at("2026-05-06T10:00:00Z")))
    ended = schedules.update_pricing_plan_schedules_by_resource_id(V, first.id, pricing_plan_schedule_update_request=(
        m.PricingPlanScheduleUpdateRequest(end_at=at("2026-05-16T00:00:00Z"))))
    assert (ended.end_at, ended.is_current) == (at("2026-05-16T00:00:00Z"), True)
    [entry] = catalog_of(server)["subscriptions"]
    assert (entry["end"], entry["end_proration"]) == ("2026-05-16T00:00:00Z", "prorate")
    pin(monkeypatch, "2026-06-02T12:00:00Z")
    run_until(server, "2026-06-01")
    invoices = server.api(sv.InvoicesApi)
    # by hand: May 1's invoice was a draft when the end came (drafts mirror the catalog), so it
    # bills May's fee for the 15 days of 31 it runs: 100.00 x 15/31 = 48.387... -> 48.39; the
    # invoice where it ends, May 16, bills the call 1 x 1.00 and has nothing left to credit
    assert lines_of(invoices, "2026-05-01T00:00:00Z") == {"base": ["48.39"], "total": ["48.39"]}
    assert lines_of(invoices, "2026-05-16T00:00:00Z") == {"calls": ["1.00"], "total": ["1.00"]}


def test_deleting_a_middle_schedule_keeps_each_later_ones_version_label(server: Live,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    subscribe(server.api(sv.PricingPlanSubscriptionsApi), "acme-main", "basic", "2026-05-01T00:00:00Z")
    schedules = server.api(sv.PricingPlanSchedulesApi)
    made = [schedules.post_pricing_plan_schedules(V, pricing_plan_schedule_create_request=(
        m.PricingPlanScheduleCreateRequest(pricing_plan_subscription_id="acme-main", pricing_plan_id=plan,
                                           start_at=at(start), pricing_plan_version_id=label)))
            for plan, start, label in (("pro", "2026-06-01T00:00:00Z", "v-pro"),
                                       ("basic", "2026-07-01T00:00:00Z", "v-basic"))]
    schedules.delete_pricing_plan_schedules_by_resource_id(V, made[0].id)
    listed = schedules.get_pricing_plan_schedules(V, pricing_plan_subscription_id="acme-main").data
    assert [(s.pricing_plan_id, s.start_at, s.pricing_plan_version_id) for s in listed] == [
        ("basic", at("2026-05-01T00:00:00Z"), None), ("basic", at("2026-07-01T00:00:00Z"), "v-basic")]
