"""Billing entity writes, webhook test deliveries and the refused alert and penalty-box writes through
the published Solvimon SDK against a live server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest

from ratecard.golive.webhooks import SIGNATURE_HEADER, verify

from ..solvimon_sdk import errors, m, sv
from .test_solvimon_entitlements_webhooks import Receiver, pinned  # noqa: F401 - pinned: now and private receivers
from .test_solvimon_invoice_actions import CATALOG
from .test_solvimon_sdk import Live, V, body_of, server  # noqa: F401 - `server` is the live-server fixture


def _catalog_version(live: Live) -> int:
    return int(live.http("GET", "/v1/catalog").json()["version"])


def test_billing_entities_are_created_replaced_and_changed_as_catalog_versions(server: Live) -> None:  # noqa: F811
    assert server.http("POST", "/v1/catalog", content=CATALOG.encode(),
                       headers={"content-type": "application/yaml"}).status_code == 201
    entities = server.api(sv.BillingEntitiesApi)
    before = _catalog_version(server)
    created = entities.post_billing_entities(V, billing_entity_create_request=m.BillingEntityCreateRequest(
        reference="us", legal_name="Acme US Inc", tax_id="US123456789", email="billing@us.acme.example",
        timezone="America/New_York", default_billing_currency_selector=["USD"],
        registered_address=m.AddressCreateRequest(line1="1 Main St", state="NY", city="New York",
                                                  postal_code="10001", country="US")))
    assert (created.id, created.reference, created.legal_name, created.timezone) == \
        ("ben_us", "us", "Acme US Inc", "America/New_York")
    assert (created.registered_address.line2, created.email) == ("NY", "billing@us.acme.example")
    assert _catalog_version(server) == before + 1
    raw = json.loads(entities.get_billing_entities_by_resource_id_or_reference_without_preload_content(V, "us").data)
    assert (raw["ratecard"]["currency"], raw["ratecard"]["invoice_prefix"], raw["ratecard"]["default"]) == \
        ("USD", "US", False)

    patched = entities.update_billing_entities_by_resource_id_or_reference(
        V, "ben_us", billing_entity_update_request=m.BillingEntityUpdateRequest(legal_name="Acme Americas Inc"))
    assert (patched.legal_name, patched.tax_id) == ("Acme Americas Inc", "US123456789")  # the rest is kept
    default = entities.update_billing_entities_by_resource_id_or_reference(
        V, "default", billing_entity_update_request=m.BillingEntityUpdateRequest(email="invoices@acme.example"))
    assert default.email == "invoices@acme.example" and default.legal_name == "Acme Cloud BV"
    # PUT replaces the named entity's details (what is left out is cleared), or creates one
    replaced = entities.update_billing_entities(V, billing_entity_create_request=m.BillingEntityCreateRequest(
        reference="us", legal_name="Acme US Inc"))
    assert (replaced.legal_name, replaced.tax_id, replaced.registered_address) == ("Acme US Inc", None, None)
    fresh = entities.update_billing_entities(V, billing_entity_create_request=m.BillingEntityCreateRequest(
        reference="uk", legal_name="Acme UK Ltd", default_billing_currency_selector=["GBP"]))
    assert fresh.id == "ben_uk"
    assert [e.reference for e in entities.get_billing_entities(V).data] == ["default", "us", "uk"]

    # refusals name the field and write nothing
    version = _catalog_version(server)
    for call, field in (
            (lambda: entities.post_billing_entities(V, billing_entity_create_request=m.BillingEntityCreateRequest(
                reference="us")), "reference"),
            (lambda: entities.post_billing_entities(V, billing_entity_create_request=m.BillingEntityCreateRequest(
                reference="de", registration_number="HRB 1")), "registration_number"),
            (lambda: entities.post_billing_entities(V, billing_entity_create_request=m.BillingEntityCreateRequest(
                reference="de", email="one@a.example,two@b.example")), "email"),
            (lambda: entities.update_billing_entities_by_resource_id_or_reference(
                V, "us", billing_entity_update_request=m.BillingEntityUpdateRequest(timezone="Europe/Paris")),
             "timezone"),
            (lambda: entities.update_billing_entities_by_resource_id_or_reference(
                V, "us", billing_entity_update_request=m.BillingEntityUpdateRequest(
                    default_billing_currency_selector=["EUR"])), "default_billing_currency_selector")):
        with pytest.raises(errors.ApiException) as refused:
            call()
        assert refused.value.status in (400, 409) and body_of(refused.value)["field"] == field
    assert _catalog_version(server) == version
    with pytest.raises(errors.NotFoundException):
        entities.update_billing_entities_by_resource_id_or_reference(
            V, "eu", billing_entity_update_request=m.BillingEntityUpdateRequest(legal_name="Acme EU"))


def test_send_test_delivers_a_signed_event_and_test_connection_posts_one(server: Live) -> None:  # noqa: F811
    hooks = server.api(sv.WebhooksApi)
    with Receiver(fail=0) as good, Receiver(fail=1) as flaky:
        created = hooks.post_webhooks(V, webhook_create_request=m.WebhookCreateRequest(
            url=good.url, name="Billing", reference="billing", included_actions=["invoice.paid"]))
        sent = hooks.post_webhooks_by_resource_id_send_test(V, created.id)
        assert sent.successful is True and "HTTP 200" in sent.message
        [(headers, body, status)] = good.received
        assert status == 200 and headers["Ratecard-Event"] == "webhook.test"
        assert verify(created.secret_key, headers[SIGNATURE_HEADER], body, int(time.time()), tolerance=10**9)
        assert json.loads(body)["data"]["reference"] == "billing"
        [logged] = server.api(sv.WebhookEventsApi).get_webhook_events(V, webhook_id=created.id).data
        assert (logged.action, logged.status) == ("webhook.test", "SUCCEEDED")

        # a receiver that fails: not delivered, retried like any event
        failing = hooks.post_webhooks(V, webhook_create_request=m.WebhookCreateRequest(
            url=flaky.url, name="Flaky", reference="flaky"))
        first = hooks.post_webhooks_by_resource_id_send_test(V, failing.id)
        assert first.successful is False and "HTTP 500" in first.message
        second = hooks.post_webhooks_by_resource_id_send_test(V, failing.id)  # waits behind the first's retry
        assert second.successful is False and "queued" in second.message

        ok = hooks.post_webhooks_test_connection(V, webhook_create_request=m.WebhookCreateRequest(
            url=good.url, name="Probe", reference="probe"))
        assert (ok.successful, ok.message) == (True, "HTTP 200")
        assert good.received[-1][0]["Ratecard-Event"] == "webhook.test"
        # the SDK never sends a secret_key; given one (plain HTTP), the test is signed with it
        signed = server.http("POST", "/v1/webhooks/test-connection",
                             json={"url": good.url, "name": "Probe", "reference": "probe", "secret_key": "s" * 20})
        assert signed.json() == {"successful": True, "message": "HTTP 200"}
        headers, body, _ = good.received[-1]
        assert verify("s" * 20, headers[SIGNATURE_HEADER], body, int(time.time()), tolerance=10**9)
        assert "probe" not in [h.reference for h in hooks.get_webhooks(V).data]  # nothing was stored
    down = hooks.post_webhooks_test_connection(V, webhook_create_request=m.WebhookCreateRequest(
        url=good.url, name="Probe", reference="probe"))
    assert down.successful is False and down.message
    with pytest.raises(errors.BadRequestException) as authentication:
        hooks.post_webhooks_test_connection(V, webhook_create_request=m.WebhookCreateRequest(
            url=good.url, name="Probe", reference="probe", authentication_type="PASSWORD", username="u", password="p"))
    assert body_of(authentication.value)["field"] == "authentication_type"
    with pytest.raises(errors.NotFoundException):
        hooks.post_webhooks_by_resource_id_send_test(V, "whk_missing")

    # no penalty box, no posted alerts: refused with where to look instead
    with pytest.raises(errors.BadRequestException) as penalty:
        hooks.post_webhooks_by_resource_id_send_penalty_box_payload(V, created.id)
    assert "resend" in body_of(penalty.value)["message"]
    with pytest.raises(errors.NotFoundException):
        hooks.post_webhooks_by_resource_id_send_penalty_box_payload(V, "whk_missing")
    with pytest.raises(errors.BadRequestException) as alert:
        server.api(sv.AlertsApi).post_alerts(V, alert_create_request=m.AlertCreateRequest(
            platform_id="p", alert_rule_id="rule_1", customer_id="acme", type="ENTITLEMENT",
            alert_data=m.AlertDataCreateRequest()))
    assert body_of(alert.value)["code"] == "INVALID_OPERATION"
