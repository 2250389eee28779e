"""Usage limits and per-customer entitlement overrides through the published Solvimon SDK against a
live server, on SQLite and PostgreSQL.

The workspace (test_solvimon_sdk helpers): meter llm_usage with calculation tokens_sum, customer
acme on plan pro, which grants the NUMBER feature tokens_quota = 5000, limited on tokens_sum. A
usage limit of 1000 for acme on tokens_sum overrides that number; after 1200.5 tokens are
ingested, the status reads consumed 1200.5 of 1000 = 120.05 %, reached.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from ratecard.cli import main

from ..solvimon_sdk import errors, m, sv
from .test_solvimon_sdk import (  # noqa: F401 (server is a fixture)
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


@pytest.fixture(autouse=True)
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    pin_now(monkeypatch)


def _workspace(live: Live) -> None:
    _meter_and_calculations(live)
    _customer_plan_and_subscription(live)
    features = live.api(sv.FeaturesApi)
    features.post_features(V, feature_create_request=m.FeatureCreateRequest(
        reference="tokens_quota", type="NUMBER", meter_value_calculation_id="tokens_sum"))
    features.post_features(V, feature_create_request=m.FeatureCreateRequest(
        reference="support", type="ENUM", enum_values=["basic", "priority"]))
    document = catalog_of(live)
    document["plans"][0]["features"] = {"tokens_quota": "5000", "support": "basic"}
    apply_catalog(live, document)


def _quota(live: Live, customer: str = "acme") -> dict[str, Any]:
    response = live.api(sv.CustomersApi). \
        get_customers_by_resource_id_or_reference_entitlements_without_preload_content(V, customer)
    assert response.status == 200
    return next(i for i in json.loads(response.data)["entitlements"] if i["feature_reference"] == "tokens_quota")


def test_a_usage_limit_overrides_the_feature_and_reports_its_status(server: Live) -> None:  # noqa: F811
    _workspace(server)
    limits = server.api(sv.UsageLimitsApi)
    assert limits.get_usage_limits(V).data == []
    assert _quota(server)["number"] == "5000" and "override" not in _quota(server)
    created = limits.post_usage_limits(V, usage_limit_create_request=m.UsageLimitCreateRequest(
        customer_id="acme", meter_value_calculation_id="tokens_sum", scope="SELF",
        limit=m.UsageLimitValueCreateRequest(number="1000")))
    assert (created.status, created.scope, created.limit.number) == ("ACTIVE", "SELF", "1000")
    assert created.id.startswith("ul_") and created.customer_id.startswith("cus_")
    # the customer's entitlements show the limit at once, marked as the customer's own value
    typed = server.api(sv.CustomersApi).get_customers_by_resource_id_or_reference_entitlements(V, "acme")
    [quota] = [i for i in typed.entitlements if i.feature_reference == "tokens_quota"]
    assert (quota.number, quota.override) == ("1000", True)
    assert (_quota(server)["usage"], _quota(server)["remaining"]) == ("0", "1000")

    status = limits.get_usage_limits_status(V, "acme")
    [item] = status.data
    assert (item.limit.number, item.consumed.number, item.percentage) == ("1000", "0", "0.00")
    assert (status.period_start, status.period_end) == ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")

    send(server.api(sv.IngestApi), event("limit-event-1", values={"tokens": "1200.5", "latency_ms": "10"}))
    deadline = time.monotonic() + 10
    while limits.get_usage_limits_status(V, "acme").data[0].consumed.number == "0" and time.monotonic() < deadline:
        time.sleep(0.01)
    [item] = limits.get_usage_limits_status(V, "acme").data
    assert (item.consumed.number, item.percentage) == ("1200.5", "120.05")
    raw = json.loads(limits.get_usage_limits_status_without_preload_content(V, "acme").data)
    assert raw["data"][0]["ratecard"]["reached"] is True
    assert _quota(server)["remaining"] == "0"

    # get, list (customer filter), patch, status, delete
    assert limits.get_usage_limits_by_resource_id(V, created.id).limit.number == "1000"
    assert [u.id for u in limits.get_usage_limits(V, customer_id="acme").data] == [created.id]
    raised = limits.update_usage_limits_by_resource_id(V, created.id, usage_limit_update_request=m.UsageLimitUpdateRequest(
        limit=m.UsageLimitValueUpdateRequest(number="2500")))
    assert raised.limit.number == "2500" and _quota(server)["number"] == "2500"
    assert limits.get_usage_limits_status(V, "acme").data[0].percentage == "48.02"  # 1200.5 / 2500
    archived = limits.post_usage_limits_by_resource_id_status(
        V, created.id, usage_limit_status_update_create_request=m.UsageLimitStatusUpdateCreateRequest(status="ARCHIVED"))
    assert archived.status == "ARCHIVED"
    assert _quota(server)["number"] == "5000" and limits.get_usage_limits_status(V, "acme").data == []
    deleted = limits.delete_usage_limits_by_resource_id(V, created.id)
    assert deleted.id == created.id
    with pytest.raises(errors.NotFoundException):
        limits.get_usage_limits_by_resource_id(V, created.id)


def test_usage_limits_refuse_what_ratecard_cannot_hold(server: Live) -> None:  # noqa: F811
    _workspace(server)
    limits = server.api(sv.UsageLimitsApi)

    def create(**fields: Any) -> m.UsageLimit:
        request = {"customer_id": "acme", "meter_value_calculation_id": "tokens_sum", "scope": "SELF",
                   "limit": m.UsageLimitValueCreateRequest(number="10")} | fields
        return limits.post_usage_limits(V, usage_limit_create_request=m.UsageLimitCreateRequest(**request))

    for fields, field in (({"meter_value_calculation_id": "latency_avg"}, "meter_value_calculation_id"),
                          ({"customer_id": "nobody"}, "customer_id"),
                          ({"scope": "CHILDREN"}, "scope"),
                          ({"limit": m.UsageLimitValueCreateRequest(number="-1")}, "limit.number"),
                          ({"limit": m.UsageLimitValueCreateRequest(
                              amount=m.Amount(quantity="5", currency="EUR"))}, "limit.amount")):
        with pytest.raises(errors.BadRequestException) as refused:
            create(**fields)
        assert body_of(refused.value)["field"] == field
    # a status outside the four (the SDK's model refuses it before sending: sent as raw JSON)
    paused = server.http("POST", "/v1/usage-limits", json={
        "customer_id": "acme", "meter_value_calculation_id": "tokens_sum", "scope": "SELF",
        "limit": {"number": "10"}, "status": "PAUSED"})
    assert paused.status_code == 400 and paused.json()["field"] == "status", paused.text
    first = create()
    with pytest.raises(errors.BadRequestException) as twice:  # one ACTIVE limit per customer and meter
        create()
    assert body_of(twice.value)["field"] == "meter_value_calculation_id"
    assert _quota(server)["number"] == "10"
    limits.post_usage_limits_by_resource_id_status(V, first.id, usage_limit_status_update_create_request=
                                                   m.UsageLimitStatusUpdateCreateRequest(status="ARCHIVED"))
    create(limit=m.UsageLimitValueCreateRequest(number="20"))  # an archived one applies nothing
    assert _quota(server)["number"] == "20"
    with pytest.raises(errors.BadRequestException):  # reactivating the first would make two
        limits.post_usage_limits_by_resource_id_status(V, first.id, usage_limit_status_update_create_request=
                                                       m.UsageLimitStatusUpdateCreateRequest(status="ACTIVE"))
    with pytest.raises(errors.BadRequestException):
        limits.get_usage_limits_status(V, "acme", include_children=True)
    with pytest.raises(errors.BadRequestException):
        limits.get_usage_limits_status(V, "nobody")
    for call in (lambda: limits.get_usage_limits_by_resource_id(V, "ul_missing"),
                 lambda: limits.delete_usage_limits_by_resource_id(V, "ul_missing")):
        with pytest.raises(errors.ApiException) as missing:
            call()
        assert missing.value.status == 404 and body_of(missing.value)["code"] == "RESOURCE_NOT_FOUND"
    for path in ("/v1/usage-limits/%00", "/v1/usage-limits/status?customer_id=%00"):
        assert server.http("GET", path).status_code < 500
    # an unknown key is echoed back bounded (80 characters), as every stored resource's 404 is
    for path in ("/v1/usage-limits/", "/v1/payment-methods/"):
        answer = server.http("GET", path + "k" * 2000)
        assert answer.status_code == 404 and answer.json()["code"] == "RESOURCE_NOT_FOUND", answer.text
        assert "k" * 80 in answer.json()["message"] and len(answer.json()["message"]) < 200


def test_a_customer_override_set_from_the_cli_shows_in_entitlements(server: Live, db_url: str) -> None:  # noqa: F811
    _workspace(server)

    def support() -> m.EntitlementSummaryItem:
        typed = server.api(sv.CustomersApi).get_customers_by_resource_id_or_reference_entitlements(V, "acme")
        return next(i for i in typed.entitlements if i.feature_reference == "support")

    assert (support().enums, support().override) == (["basic"], None)
    assert main(["entitlements", "override", "acme", "support", "basic,priority", "--db", db_url]) == 0
    # the server runs in this process: the change dropped its cached answer
    assert (support().enums, support().override) == (["basic", "priority"], True)
    assert main(["entitlements", "override", "acme", "support", "gold", "--db", db_url]) == 2  # not a value
    assert main(["entitlements", "override", "acme", "nope", "1", "--db", db_url]) == 2
    assert main(["entitlements", "clear", "acme", "support", "--db", db_url]) == 0
    assert (support().enums, support().override) == (["basic"], None)
    assert main(["entitlements", "clear", "acme", "support", "--db", db_url]) == 1
