"""Pricing-plan subscription actions through the published Solvimon SDK against a live server on
SQLite and PostgreSQL: delete (a DRAFT only), void (made in error: nothing billed, refused once a
final invoice exists), copy (a DRAFT with the plan in force as a DRAFT schedule),
update-payment-method and search. The money effects are checked on the invoices an invoice run
writes, worked by hand in the comments."""

from __future__ import annotations

import pytest

from ratecard.store import open_store
from ratecard.store.invoices import change_status, list_invoices

from ..solvimon_sdk import errors, m, sv
from .test_solvimon_sdk import Live, V, body_of, catalog_of, event, ref, send, server
from .test_solvimon_subscriptions import at, pin, plans_and_customer, run_until, subscribe

__all__ = ["server"]


def totals(server: Live, subscription: str) -> dict[str, str]:
    """{invoice date: total} of the subscription's invoices (drafts and final), read with the SDK."""
    listed = server.api(sv.InvoicesApi).get_invoices(V, limit=100).data
    return {i.invoice_date.isoformat(): i.invoice_amount_including_tax.quantity for i in listed
            if subscription in (i.pricing_plan_subscription_ids or [])}


def refused(call, code: str = "INVALID_OPERATION", field: str | None = None) -> dict:
    with pytest.raises(errors.BadRequestException) as caught:
        call()
    body = body_of(caught.value)
    assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


def test_void_bills_nothing_and_is_refused_once_an_invoice_is_final(server: Live,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    ingest = server.api(sv.IngestApi)
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)
    subscribe(subscriptions, "acme-main", "basic", "2026-05-01T00:00:00Z")
    assert send(ingest, event(ref("call"), meter="calls", when=at("2026-05-05T10:00:00Z"))).processed_details.type \
        == "DEFAULT"
    run_until(server, "2026-05-01")
    assert totals(server, "acme-main") == {"2026-05-01T00:00:00+00:00": "100.00"}  # a draft, not final

    voided = subscriptions.post_pricing_plan_subscriptions_by_resource_id_void(V, "acme-main")
    assert (voided.id, voided.status, voided.customer_reference) == ("acme-main", "VOID", "acme")
    assert [(i.pricing_plan_id, i.start_at) for i in voided.pricing_plan_schedule_infos] == [
        ("basic", "2026-05-01T00:00:00Z")]
    assert catalog_of(server)["subscriptions"] == []
    assert subscriptions.get_pricing_plan_subscriptions_by_resource_id(V, "acme-main").status == "VOID"
    assert [s.id for s in subscriptions.get_pricing_plan_subscriptions(V, statuses=["VOID"]).data] == ["acme-main"]
    # nothing is billed: the next run removes the May 1 draft and writes none for June
    pin(monkeypatch, "2026-06-02T12:00:00Z")
    run_until(server, "2026-06-01")
    assert totals(server, "acme-main") == {}
    late = send(ingest, event(ref("call"), meter="calls", when=at("2026-05-20T10:00:00Z")))
    assert late.processed_details.type == "NOT_MATCHED"
    # a VOID subscription is not voided again, changed, cancelled, nor its reference reused
    refused(lambda: subscriptions.post_pricing_plan_subscriptions_by_resource_id_void(V, "acme-main"))
    refused(lambda: subscriptions.post_pricing_plan_subscriptions_by_resource_id_cancel(
        V, "acme-main", pricing_plan_subscription_cancel_create_request=m.PricingPlanSubscriptionCancelCreateRequest(
            type="NOW")))

    # once an invoice is final the subscription billed: voiding it is refused, cancelling is not
    subscribe(subscriptions, "acme-two", "basic", "2026-06-01T00:00:00Z")
    run_until(server, "2026-06-01")
    store = open_store(server.db_url)
    [draft] = [i for i in list_invoices(store, "live") if i.subscription == "acme-two" and i.status == "draft"]
    change_status(store, draft.id, "final", 1, "RC", "live")
    store.dispose()
    body = refused(lambda: subscriptions.post_pricing_plan_subscriptions_by_resource_id_void(V, "acme-two"))
    assert "final" in body["message"]
    assert [s["reference"] for s in catalog_of(server)["subscriptions"]] == ["acme-two"]


def test_delete_only_a_draft(server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)
    subscriptions.post_pricing_plan_subscriptions(V, pricing_plan_subscription_create_request=(
        m.PricingPlanSubscriptionCreateRequest(reference="acme-draft", customer_reference="acme", name="Try")))
    subscribe(subscriptions, "acme-main", "basic", "2026-05-01T00:00:00Z")
    gone = subscriptions.delete_pricing_plan_subscriptions_by_resource_id(V, "acme-draft")
    assert (gone.id, gone.status, gone.name) == ("acme-draft", "DRAFT", "Try")
    with pytest.raises(errors.NotFoundException):
        subscriptions.get_pricing_plan_subscriptions_by_resource_id(V, "acme-draft")
    refused(lambda: subscriptions.delete_pricing_plan_subscriptions_by_resource_id(V, "acme-main"))
    with pytest.raises(errors.NotFoundException):
        subscriptions.delete_pricing_plan_subscriptions_by_resource_id(V, "nobody")
    assert [s["reference"] for s in catalog_of(server)["subscriptions"]] == ["acme-main"]
    # a DRAFT is deleted, not voided
    subscriptions.post_pricing_plan_subscriptions(V, pricing_plan_subscription_create_request=(
        m.PricingPlanSubscriptionCreateRequest(reference="acme-draft2", customer_reference="acme")))
    refused(lambda: subscriptions.post_pricing_plan_subscriptions_by_resource_id_void(V, "acme-draft2"))


def test_copy_payment_method_and_search(server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)
    schedules = server.api(sv.PricingPlanSchedulesApi)
    subscribe(subscriptions, "acme-main", "basic", "2026-05-01T00:00:00Z", name="Main",
              purchase_order_number="PO-7")
    subscriptions.post_pricing_plan_subscriptions_by_resource_id_cancel(
        V, "acme-main", pricing_plan_subscription_cancel_create_request=m.PricingPlanSubscriptionCancelCreateRequest(
            type="DATE", cancel_at=at("2026-06-01T00:00:00Z")))

    # payment method: kept and shown; dunning stays the billing entity's
    paid = subscriptions.post_pricing_plan_subscriptions_by_resource_id_update_payment_method(
        V, "acme-main", pricing_plan_subscription_payment_method_update_create_request=(
            m.PricingPlanSubscriptionPaymentMethodUpdateCreateRequest(payment_method_id="pm_card_visa")))
    assert paid.payment_method_id == "pm_card_visa"
    refused(lambda: subscriptions.post_pricing_plan_subscriptions_by_resource_id_update_payment_method(
        V, "acme-main", pricing_plan_subscription_payment_method_update_create_request=(
            m.PricingPlanSubscriptionPaymentMethodUpdateCreateRequest(payment_method_id="pm_x",
                                                                      cancel_dunning_actions=True))),
            "INVALID_FIELD", "cancel_dunning_actions")
    refused(lambda: subscriptions.post_pricing_plan_subscriptions_by_resource_id_update_payment_method(
        V, "acme-main", pricing_plan_subscription_payment_method_update_create_request=(
            m.PricingPlanSubscriptionPaymentMethodUpdateCreateRequest())), "MISSING_FIELD", "payment_method_id")

    # copy: a DRAFT with the row's fields and the plan in force as a DRAFT schedule; nothing billed
    copy = subscriptions.post_pricing_plan_subscriptions_by_resource_id_copy(
        V, "acme-main", pricing_plan_subscription_copy_create_request=m.PricingPlanSubscriptionCopyCreateRequest(
            reference="acme-next"))
    assert (copy.id, copy.status, copy.name, copy.purchase_order_number, copy.payment_method_id) == (
        "acme-next", "DRAFT", "Main", "PO-7", "pm_card_visa")
    [info] = copy.pricing_plan_schedule_infos
    assert (info.pricing_plan_id, info.status, info.start_at) == ("basic", "DRAFT", None)
    assert [s["reference"] for s in catalog_of(server)["subscriptions"]] == ["acme-main"]
    response = server.http("POST", "/v1/pricing-plan-subscriptions/acme-main/copy", json={"reference": "acme-next"})
    assert (response.status_code, response.json()["code"]) == (409, "RESOURCE_ALREADY_EXISTS")

    # search before the copy bills: by reference prefix, by status
    def search(search_fields=None, filter_fields=None) -> list[str]:
        found = subscriptions.post_pricing_plan_subscriptions_search(V, search_create_request=m.SearchCreateRequest(
            search_fields=search_fields, filter_fields=filter_fields))
        return sorted(s.id for s in found.data)

    assert search([m.SearchFieldCreateRequest(name="reference", value="ACME-", wildcard_end=True,
                                              ignore_case=True)]) == ["acme-main", "acme-next"]
    assert search(filter_fields=[m.FilterFieldCreateRequest(name="status", value="DRAFT")]) == ["acme-next"]
    assert search([m.SearchFieldCreateRequest(name="name", value="Main")],
                  [m.FilterFieldCreateRequest(name="status", values=["ACTIVE", "CANCELLED"])]) == ["acme-main"]
    assert search(filter_fields=[m.FilterFieldCreateRequest(name="pricing_plan_id", value="basic")]) == ["acme-main"]
    refused(lambda: search([m.SearchFieldCreateRequest(name="price", value="1")]), "INVALID_FIELD",
            "search_fields.0.name")

    # the copy's DRAFT schedule starts June 1, where acme-main ends, then it is activated: it bills
    [draft] = schedules.get_pricing_plan_schedules(V, pricing_plan_subscription_id="acme-next").data
    schedules.update_pricing_plan_schedules_by_resource_id(V, draft.id, pricing_plan_schedule_update_request=(
        m.PricingPlanScheduleUpdateRequest(start_at=at("2026-06-01T00:00:00Z"))))
    done = schedules.post_pricing_plan_schedules_activate(V, pricing_plan_subscription_id="acme-next")
    assert [(s.pricing_plan_id, s.start_at) for s in done.data] == [("basic", at("2026-06-01T00:00:00Z"))]
    assert subscriptions.get_pricing_plan_subscriptions_by_resource_id(V, "acme-next").status == "ACTIVE"
    send(server.api(sv.IngestApi), event(ref("call"), meter="calls", when=at("2026-05-05T10:00:00Z")))
    pin(monkeypatch, "2026-06-02T12:00:00Z")
    run_until(server, "2026-06-01")
    # acme-main: May's fee 100.00 in advance on May 1, the May call 1.00 on June 1 (it ended);
    # acme-next: June's fee 100.00 on June 1, as a new subscription on basic
    assert totals(server, "acme-main") == {"2026-05-01T00:00:00+00:00": "100.00", "2026-06-01T00:00:00+00:00": "1.00"}
    assert totals(server, "acme-next") == {"2026-06-01T00:00:00+00:00": "100.00"}
