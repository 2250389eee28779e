"""What the Solvimon SDK sends is kept and what it reads parses: ingest (STATIC by default,
AMOUNT currencies, cost prediction, the inline customer, the named subscription, event traces,
calculate, persist-data), customers' custom fields and parents, the invoice list's paid and
on_hold filters, alerts in Solvimon's shape, and unknown operations answered with the 404
envelope the SDK parses. Driven through solvimon-python-sdk against a live server, both stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ratecard.golive.alerts import create_rule, evaluate
from ratecard.services.invoices import finalize_invoices
from ratecard.store import open_store
from ratecard.store.invoice_states import set_hold
from ratecard.store.invoices import list_invoices

from ..solvimon_sdk import errors, m, sv
from . import test_solvimon_sdk
from .test_solvimon_sdk import (
    Live,
    V,
    _billing_setup,
    apply_catalog,
    body_of,
    catalog_of,
    create_customer,
    event,
    ref,
    setup_llm_meter,
)

server = test_solvimon_sdk.server  # the live-server fixture (uvicorn in this process, a fresh database)


def _amount_event(reference: str, quantity: str, currency: str | None) -> m.MeterDataCreateRequest:
    amount = m.Amount.model_construct(quantity=quantity) if currency is None \
        else m.Amount(quantity=quantity, currency=currency)
    return m.MeterDataCreateRequest(
        reference=reference, customer_reference="acme", meter_reference="api_spend",
        timestamp=datetime(2026, 1, 20, 10, 0, tzinfo=UTC),
        meter_values=[m.MeterDataMeterValueCreateRequest(reference="spend", amount=amount)])


def test_ingest_is_static_by_default_and_keeps_what_it_is_sent(server: Live) -> None:
    setup_llm_meter(server)
    ingest = server.api(sv.IngestApi)
    # STATIC is the default: an unknown meter is a 400 naming the event and field; nothing stored
    with pytest.raises(errors.BadRequestException) as refused:
        ingest.post_ingest_meter_datas(V, meter_datas_create_request=m.MeterDatasCreateRequest(meter_datas=[
            event(ref("ok"), meter="llm_usage", values={"tokens": "1"}),
            event(ref("typo"), meter="llm_usgae", values={"tokens": "1"})]))
    assert (refused.value.data.code, refused.value.data.var_field) == ("INVALID_FIELD", "meter_datas.1.meter_reference")
    assert ingest.get_ingest_meter_data(V).data == []
    # DYNAMIC keeps today's behaviour: the meter and an AMOUNT value are created, the event kept
    spent = ingest.post_ingest_meter_data(V, meter_data_create_request=_amount_event(ref("spend"), "3.50", "USD"),
                                          meter_validation="DYNAMIC")
    assert (spent.meter_values[0].amount.quantity, spent.meter_values[0].amount.currency) == ("3.50", "USD")
    assert spent.meter_values[0].number is None
    read = ingest.get_ingest_meter_data_by_resource_id_or_reference(V, spent.reference)
    assert (read.meter_values[0].amount.quantity, read.meter_values[0].amount.currency) == ("3.50", "USD")
    assert [p.reference for p in read.meter_properties] == []  # the currency is no property of its own
    assert server.api(sv.MeterValuesApi).get_meter_values_by_resource_id_or_reference(V, "spend").type == "AMOUNT"
    # now the meter exists, STATIC (the default) takes the same event shape; an amount needs a currency
    again = ingest.post_ingest_meter_data(V, meter_data_create_request=_amount_event(ref("spend"), "0.25", "EUR"))
    assert again.meter_values[0].amount.currency == "EUR"
    with pytest.raises(errors.BadRequestException) as no_currency:
        ingest.post_ingest_meter_data(V, meter_data_create_request=_amount_event(ref("spend"), "1", None))
    assert no_currency.value.data.var_field == "meter_values.0.amount.currency"
    # cost_prediction: ratecard prices per period, so each event says NOT_SUPPORTED
    predicted = ingest.post_ingest_meter_data(V, meter_data_create_request=_amount_event(ref("spend"), "1", "USD"),
                                              cost_prediction=True)
    assert predicted.cost_prediction.response == "NOT_SUPPORTED"


def test_ingest_inline_customer_subscription_trace_and_calculate(server: Live) -> None:
    _billing_setup(server)  # meter llm_usage, calculations tokens_sum and latency_avg, acme on plan pro
    ingest = server.api(sv.IngestApi)
    named = event(ref("sub"), values={"tokens": "10"})
    named.pricing_plan_subscription_reference = "acme-pro"
    stored = ingest.post_ingest_meter_data(V, meter_data_create_request=named)
    assert (stored.pricing_plan_subscription_reference, stored.processed_details.type) == ("acme-pro", "DEFAULT")
    wrong = event(ref("sub"), values={"tokens": "10"})
    wrong.pricing_plan_subscription_id = "someone-else"
    assert ingest.post_ingest_meter_data(V, meter_data_create_request=wrong).processed_details.type == "NOT_MATCHED"

    # the inline customer names an existing customer; it never creates one
    inline = event(ref("inline"), values={"tokens": "1"})
    inline.customer_reference = None
    inline.customer = m.CustomerCreateRequestEvent(reference="acme")
    assert ingest.post_ingest_meter_data(V, meter_data_create_request=inline).customer_reference == "acme"
    inline.reference, inline.customer = ref("inline"), m.CustomerCreateRequestEvent(reference="nobody")
    with pytest.raises(errors.BadRequestException) as unknown:
        ingest.post_ingest_meter_data(V, meter_data_create_request=inline)
    assert unknown.value.data.var_field == "customer"

    # calculate: validated and matched as ingestion would, stored nowhere
    dry = ingest.post_events_calculate(V, meter_data_create_request=event(ref("dry"), values={"tokens": "5"}))
    assert (dry.type, dry.processed_details.type, dry.meter_values[0].number) == ("CALCULATION", "DEFAULT", "5")
    with pytest.raises(errors.NotFoundException):
        ingest.get_ingest_meter_data_by_resource_id_or_reference(V, dry.reference)
    with pytest.raises(errors.BadRequestException):
        ingest.post_events_calculate(V, meter_data_create_request=event(ref("dry"), meter="nope"))

    # the trace: when, which calculations read it, which subscription and invoice bill it
    assert server.http("POST", "/v1/invoice-runs", json={"until": "2026-02-01"}).status_code == 200
    invoice = server.api(sv.InvoicesApi).get_invoices(V, customer_id="acme").data[0]
    for read in (ingest.get_ingest_meter_data_by_resource_id_or_reference_event_trace,
                 ingest.get_events_by_resource_id_or_reference_event_trace):
        trace = read(V, stored.reference)
        assert (trace.meter_data_id, trace.meter_data.reference) == (stored.reference, stored.reference)
        assert trace.ingest_time == "2026-01-20T10:00:00Z" and trace.received_time == trace.processed_time
        assert [(link.pricing_plan_subscription_id, link.invoice_id) for link in trace.links] == [
            ("acme-pro", invoice.id)]
        calculations = server.api(sv.MeterValueCalculationsApi).get_meter_value_calculations(V).data
        assert sorted(trace.links[0].meter_value_calculation_ids) == sorted(c.id for c in calculations)
    with pytest.raises(errors.NotFoundException):
        ingest.get_ingest_meter_data_by_resource_id_or_reference_event_trace(V, "never-sent-0001")

    # persist-data: usage totals ratecard does not keep, refused with the reason
    with pytest.raises(errors.BadRequestException) as persisted:
        ingest.post_ingest_persist_data(V, persist_data_create_request=m.PersistDataCreateRequest(
            customer_id="acme", pricing_id="p", pricing_item_id="pi", pricing_item_config_id="pic",
            pricing_plan_subscription_id="acme-pro", persist_usage="10"))
    assert persisted.value.data.code == "INVALID_OPERATION"


def test_customers_keep_custom_fields_and_parent(server: Live) -> None:
    customers = server.api(sv.CustomersApi)
    parent = create_customer(customers, m.CustomerCreateRequest(type="ORGANIZATION", reference="holding",
                                                                organization=m.OrganizationCreateRequest(legal_name="H")))
    child = create_customer(customers, m.CustomerCreateRequest(
        type="ORGANIZATION", reference="acme-eu", parent_customer_id="holding",
        organization=m.OrganizationCreateRequest(legal_name="Acme EU"),
        custom_fields=[m.CustomFieldValueCreateRequest(reference="region", value="eu"),
                       m.CustomFieldValueCreateRequest(reference="tags", values=["gold", "beta"])]))
    assert (child.parent_customer_id, child.parent_customer_ids) == (parent.id, [parent.id])
    read = customers.get_customers_by_resource_id_or_reference(V, "acme-eu")
    assert [(f.reference, f.value, f.values) for f in read.custom_fields] == [
        ("region", "eu", None), ("tags", None, ["gold", "beta"])]
    assert [c.reference for c in customers.get_customers(V, custom_field="region:eu").data] == ["acme-eu"]
    assert [c.reference for c in customers.get_customers(V, custom_field="gold").data] == ["acme-eu"]
    assert customers.get_customers(V, custom_field="region:us").data == []
    updated = customers.update_customers_by_resource_id_or_reference(V, "acme-eu", customer_update_request=(
        m.CustomerUpdateRequest(custom_fields=[m.CustomFieldValueUpdateRequest(reference="region", value="us")])))
    assert [(f.reference, f.value) for f in updated.custom_fields] == [("region", "us")]
    assert updated.parent_customer_id == parent.id  # untouched by an update that does not name it
    with pytest.raises(errors.BadRequestException) as loop:
        customers.update_customers_by_resource_id_or_reference(V, "holding", customer_update_request=(
            m.CustomerUpdateRequest(parent_customer_id="acme-eu")))
    assert loop.value.data.var_field == "parent_customer_id"
    with pytest.raises(errors.BadRequestException):
        create_customer(customers, m.CustomerCreateRequest(type="ORGANIZATION", reference="orphan",
                                                           parent_customer_id="nobody"))


def test_invoice_list_filters_paid_and_on_hold(server: Live) -> None:
    _billing_setup(server)
    document = catalog_of(server)  # payments collected from acme (its invoices get a payment to mark paid)
    document["billing_entity"] = {"name": "Seller BV", "country": "NL", "timezone": "UTC", "currency": "EUR",
                                  "payments": {"dunning_days": [1, 3]}}
    for customer in document["customers"]:
        if customer["reference"] == "acme":
            customer["stripe_customer_id"] = "cus_acme"
    apply_catalog(server, document)
    ingest = server.api(sv.IngestApi)
    for month in (1, 2):
        ingest.post_ingest_meter_data(V, meter_data_create_request=event(
            ref("bill"), when=datetime(2026, month, 10, tzinfo=UTC), values={"tokens": "1000", "latency_ms": "1"}))
    assert server.http("POST", "/v1/invoice-runs", json={"until": "2026-03-01"}).status_code == 200
    store = open_store(server.db_url)
    january, february = sorted(list_invoices(store, "live"), key=lambda i: i.issue_date)
    final = finalize_invoices(store, [january.display_number], datetime(2026, 3, 2, tzinfo=UTC)).finalized[0]
    set_hold(store, february.id, True, "live")
    store.dispose()
    paid = server.http("POST", f"/v1/invoices/{final.number}/mark-paid", json={"reference": "TRANSFER-1"})
    assert paid.status_code == 200, paid.text
    invoices = server.api(sv.InvoicesApi)

    def ids(**filters: str) -> list[str]:
        return [invoice.id for invoice in invoices.get_invoices(V, **filters).data]

    assert ids(paid="true") == [f"inv_{january.id}"] and ids(paid="false") == [f"inv_{february.id}"]
    assert ids(on_hold="true") == [f"inv_{february.id}"] and ids(on_hold="false") == [f"inv_{january.id}"]
    held = invoices.get_invoices_by_resource_id(V, f"inv_{february.id}")
    assert (held.on_hold, held.paid) == (True, False)
    assert invoices.get_invoices_by_resource_id(V, f"inv_{january.id}").paid is True


def test_unknown_operations_answer_the_404_envelope_and_sub_paths_are_not_references(server: Live) -> None:
    customers = server.api(sv.CustomersApi)
    create_customer(customers, m.CustomerCreateRequest(type="ORGANIZATION", reference="acme"))
    # a POST under a served path: 404 RESOURCE_NOT_FOUND "not implemented", never 405
    with pytest.raises(errors.NotFoundException) as wallets:
        customers.post_customers_by_resource_id_or_reference_wallets_balance(V, "acme")
    assert body_of(wallets.value)["code"] == "RESOURCE_NOT_FOUND"
    assert "not implemented" in body_of(wallets.value)["message"]
    # customers/acme/<sub-resource> is never the customer 'acme/<sub-resource>'
    response = server.http("GET", "/v1/customers/acme/wallets/balance")
    assert response.status_code == 404 and "not implemented" in response.json()["message"]
    assert server.http("GET", "/v1/customers/acme").status_code == 200
    with pytest.raises(errors.NotFoundException) as quotes:
        server.api(sv.QuotesApi).get_quotes(V)
    assert body_of(quotes.value)["code"] == "RESOURCE_NOT_FOUND"


def test_alerts_in_solvimon_shape_and_ratecards_own_at_its_path(server: Live) -> None:
    _billing_setup(server)  # acme on a plan that charges llm_usage: its events are matched
    acme = server.api(sv.CustomersApi).get_customers_by_resource_id_or_reference(V, "acme")
    server.api(sv.IngestApi).post_ingest_meter_data(V, meter_data_create_request=event(
        ref("alert"), values={"tokens": "1"}))
    assert server.api(sv.AlertsApi).get_alerts(V).data == []
    store = open_store(server.db_url)
    create_rule(store, "live", datetime.now(UTC), kind="silence", hours="6")
    later = datetime.now(UTC) + timedelta(hours=7)  # nothing received from acme's llm_usage for 7 hours
    assert len(evaluate(store, "live", later).opened) == 1
    store.dispose()
    alerts = server.api(sv.AlertsApi).get_alerts(V)
    assert [(a.object_type, a.type, a.customer_id, a.data_trigger_reference) for a in alerts.data] == [
        ("ALERT", None, acme.id, "llm_usage")]
    assert alerts.links is not None and alerts.page == 1
    assert server.api(sv.AlertsApi).get_alerts(V, customer_id="someone").data == []
    one = server.api(sv.AlertsApi).get_alerts_by_resource_id(V, alerts.data[0].id)
    assert one.id == alerts.data[0].id and one.created_at == alerts.data[0].created_at
    own = server.http("GET", "/v1/ingestion/alerts").json()
    assert [(a["kind"], a["customer"], a["meter"], a["status"]) for a in own["data"]] == [
        ("silence", "acme", "llm_usage", "open")]
    raw = server.http("GET", "/v1/alerts").json()
    assert json.dumps(raw["data"][0]["ratecard"]) == json.dumps(own["data"][0])
