"""Features, entitlements and webhooks through the published Solvimon SDK against a live server, on
SQLite and PostgreSQL: an entitlements answer changes after an ingest; a webhook registered through
the SDK receives signed invoice events, retried after a failure, in order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ratecard.golive.webhooks import SIGNATURE_HEADER, deliver_pending, verify
from ratecard.services.invoices import finalize_invoices, find_invoices
from ratecard.services.subscription_changes import create_subscription
from ratecard.store import open_store

from ..http_thread import serving_thread
from ..solvimon_sdk import errors, m, sv
from .test_solvimon_sdk import (  # noqa: F401 (server is a fixture)
    WORKSPACE_NOW,
    Live,
    V,
    _customer_plan_and_subscription,
    _meter_and_calculations,
    apply_catalog,
    body_of,
    catalog_of,
    event,
    pin_now,
    send,
    server,
)

NOW = WORKSPACE_NOW


@pytest.fixture(autouse=True)
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    pin_now(monkeypatch)
    monkeypatch.setenv("RATECARD_API_WEBHOOKS_ALLOW_PRIVATE", "1")  # the receiver is on 127.0.0.1


def _entitlements_raw(live: Live, customer: str) -> dict[str, Any]:
    customers = live.api(sv.CustomersApi)
    response = customers.get_customers_by_resource_id_or_reference_entitlements_without_preload_content(V, customer)
    assert response.status == 200
    return json.loads(response.data)


def test_entitlements_answer_plan_features_and_usage_after_an_ingest(server: Live) -> None:  # noqa: F811
    _meter_and_calculations(server)
    _customer_plan_and_subscription(server)
    features = server.api(sv.FeaturesApi)
    quota = features.post_features(V, feature_create_request=m.FeatureCreateRequest(
        reference="tokens_quota", name="Tokens a month", type="NUMBER", meter_value_calculation_id="tokens_sum"))
    features.post_features(V, feature_create_request=m.FeatureCreateRequest(reference="sso", type="SWITCH"))
    features.post_features(V, feature_create_request=m.FeatureCreateRequest(
        reference="support", type="ENUM", enum_values=["basic", "priority"]))
    assert quota.type == "NUMBER" and quota.meter_value_calculation_id
    assert sorted(f.reference for f in features.get_features(V).data) == ["sso", "support", "tokens_quota"]
    assert features.get_features_by_resource_id(V, quota.id).reference == "tokens_quota"
    document = catalog_of(server)
    document["plans"][0]["features"] = {"tokens_quota": "5000", "sso": True, "support": "priority"}
    apply_catalog(server, document)

    customers = server.api(sv.CustomersApi)
    typed = customers.get_customers_by_resource_id_or_reference_entitlements(V, "acme")
    by_feature = {item.feature_reference: item for item in typed.entitlements}
    assert (by_feature["tokens_quota"].number, by_feature["sso"].switch, by_feature["support"].enums) == \
        ("5000", True, ["priority"])
    assert typed.pricing_plan_subscription_entitlements[0].pricing_plan_subscription_id == "acme-pro"
    before = _entitlements_raw(server, "acme")
    quota_before = next(i for i in before["entitlements"] if i["feature_reference"] == "tokens_quota")
    assert (quota_before["usage"], quota_before["remaining"]) == ("0", "5000")
    assert before["as_of"] == "2026-01-25T12:00:00Z"

    send(server.api(sv.IngestApi), event("entitle-event-1", values={"tokens": "1200.5", "latency_ms": "10"}))
    # the ingest has the cached answer refreshed in the background: the previous figures until then
    deadline = time.monotonic() + 10
    while True:
        after = _entitlements_raw(server, "acme")
        quota_after = next(i for i in after["entitlements"] if i["feature_reference"] == "tokens_quota")
        if quota_after["usage"] != "0" or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert (quota_after["number"], quota_after["usage"], quota_after["remaining"]) == ("5000", "1200.5", "3799.5")
    assert after["as_of"] == "2026-01-25T12:00:00Z"

    # hostile input: the error envelope the SDK parses, never a 500
    with pytest.raises(errors.NotFoundException) as missing:
        customers.get_customers_by_resource_id_or_reference_entitlements(V, "nobody")
    assert body_of(missing.value)["code"] == "RESOURCE_NOT_FOUND"
    with pytest.raises(errors.BadRequestException):
        features.post_features(V, feature_create_request=m.FeatureCreateRequest(reference="credit", type="AMOUNT"))
    with pytest.raises(errors.ApiException) as granted:
        features.delete_features_by_resource_id(V, "sso")  # the plan grants it
    assert granted.value.status in (400, 409)
    document["plans"][0]["features"] = {"support": "gold", "nope": 1}
    refused = server.http("POST", "/v1/catalog", content=json.dumps(document).encode(),
                          headers={"content-type": "application/json"})
    assert refused.status_code == 400 and "plans[0].features.support" in refused.text
    for path in ("/v1/customers/%00/entitlements", "/v1/features/%00", "/v1/webhooks/%00"):
        assert server.http("GET", path).status_code < 500


class Receiver:
    """A local webhook receiver: answers 500 to the first `fail` requests, then 200."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = 500 if len(outer.received) < outer.fail else 200
                outer.received.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = serving_thread(self.http)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/hooks"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(fail=1) as running:
        yield running


def test_webhook_receives_signed_invoice_events_retried_and_in_order(
        server: Live, receiver: Receiver) -> None:  # noqa: F811
    hooks = server.api(sv.WebhooksApi)
    created = hooks.post_webhooks(V, webhook_create_request=m.WebhookCreateRequest(
        url=receiver.url, name="Billing", reference="billing",
        included_actions=["invoice.created", "invoice.finalized"]))
    secret = created.secret_key
    assert secret and created.active and created.id
    assert [h.reference for h in hooks.get_webhooks(V).data] == ["billing"]
    assert hooks.get_webhooks_by_resource_id(V, created.id).secret_key is None  # shown once
    assert "invoice.finalized" in hooks.get_webhooks_actions(V).data[0].actions
    everything = Receiver(fail=0).__enter__()  # a second webhook taking every action
    hooks.post_webhooks(V, webhook_create_request=m.WebhookCreateRequest(url=everything.url, name="All",
                                                                         reference="all"))

    _meter_and_calculations(server)
    _customer_plan_and_subscription(server)
    send(server.api(sv.IngestApi), event("webhook-event-1", values={"tokens": "1000", "latency_ms": "2"}))
    assert server.http("POST", "/v1/invoice-runs", json={"until": "2026-02-01"}).status_code == 200
    store = open_store(server.db_url)
    try:
        draft = find_invoices(store, "live", status="draft")[0]
        finalize_invoices(store, [draft.display_number], NOW, "live")
        first = deliver_pending(store, "live", NOW)
        # billing: 500, the rest wait behind it; all: every event delivered at once
        assert (first.retrying, first.delivered) == (1, len(everything.received))
        events = server.api(sv.WebhookEventsApi).get_webhook_events(V, webhook_id=created.id).data
        assert sorted(e.status for e in events) == ["PENDING", "PENDING"]
        later = deliver_pending(store, "live", NOW + timedelta(seconds=31))
        assert (later.delivered, later.retrying) == (2, 0)
    finally:
        store.dispose()
        everything.__exit__()
    # every action, in the order the changes happened (the subscription came with a catalog apply: no event)
    assert [json.loads(body)["action"] for _, body, _ in everything.received] == [
        "customer.created", "invoice.created", "invoice.finalized"]

    actions = [json.loads(body)["action"] for _, body, _ in receiver.received]
    assert actions == ["invoice.created", "invoice.created", "invoice.finalized"]  # the retry, then in order
    assert [status for _, _, status in receiver.received] == [500, 200, 200]
    for headers, body, _ in receiver.received:
        signature = headers[SIGNATURE_HEADER]
        timestamp = int(signature.split(",")[0][2:])
        assert verify(secret, signature, body, timestamp)
        assert not verify("whsec_" + "x" * 30, signature, body, timestamp)
    finalized = json.loads(receiver.received[-1][1])
    assert finalized["data"]["customer_reference"] == "acme" and finalized["data"]["status"] == "FINAL"
    events = server.api(sv.WebhookEventsApi).get_webhook_events(V, webhook_id=created.id).data
    assert sorted(e.status for e in events) == ["SUCCEEDED", "SUCCEEDED"]

    # hostile input and the rest of the resource
    with pytest.raises(errors.BadRequestException):
        hooks.post_webhooks(V, webhook_create_request=m.WebhookCreateRequest(url="ftp://x", name="n", reference="r"))
    with pytest.raises(errors.BadRequestException):
        hooks.post_webhooks(V, webhook_create_request=m.WebhookCreateRequest(
            url=receiver.url, name="n", reference="r2", included_actions=["nope"]))
    with pytest.raises(errors.NotFoundException):
        hooks.get_webhooks_by_resource_id(V, "whk_missing")
    rolled = hooks.update_webhooks_by_resource_id_secret_key(V, created.id)
    assert rolled.secret_key and rolled.secret_key != secret
    hooks.delete_webhooks_by_resource_id(V, created.id)
    assert [h.reference for h in hooks.get_webhooks(V).data] == ["all"]

    # a subscription created through ratecard's subscription service is an event too (queued)
    store = open_store(server.db_url)
    try:
        create_subscription(store, NOW, "live", reference="acme-extra", customer="acme", plan="pro",
                            start="2026-02-01", requires_reference=True)
    finally:
        store.dispose()
    queued = server.api(sv.WebhookEventsApi).get_webhook_events(V, status="PENDING").data
    assert [(e.action, json.loads(e.request_payload)["data"]["reference"]) for e in queued] == \
        [("subscription.created", "acme-extra")]


HOSTILE = [None, 1, [], {"a": 1}, "\u0000", "x" * 5000]


def test_hostile_bodies_get_the_error_envelope_never_a_500(server: Live) -> None:  # noqa: F811
    for path, base, fields in (
            ("/v1/features", {"reference": "f1", "type": "NUMBER"},
             ("reference", "type", "name", "enum_values", "meter_value_calculation_id")),
            ("/v1/webhooks", {"reference": "w1", "name": "n", "url": "https://example.com/h"},
             ("reference", "url", "included_actions", "active", "secret_key", "authentication_type"))):
        for field in fields:
            for value in HOSTILE:
                response = server.http("POST", path, json={**base, field: value})
                assert response.status_code < 500, (path, field, value, response.text)
                if response.status_code >= 400:
                    assert {"type", "code", "message"} <= set(response.json()), response.text
    for path in ("/v1/customers/%00/entitlements", "/v1/customers/" + "a" * 3000 + "/entitlements",
                 "/v1/webhook-events/whe_99999999999999999999", "/v1/webhook-events?status=bogus",
                 "/v1/features/nope", "/v1/webhooks/nope"):
        response = server.http("GET", path)
        assert 400 <= response.status_code < 500 and "code" in response.json(), (path, response.text)
