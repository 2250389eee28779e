"""GET /v1/customers/{reference}/upcoming-invoice: the service's document, scoped to the key's
environment, with the API's error envelope."""

from __future__ import annotations

import pytest

from ratecard.services.preview import preview_invoices
from ratecard.store import open_store

from ..integration.test_preview import AT, CATALOG, EVENTS, NOW
from .conftest import Api

PATH = "/v1/customers/acme/upcoming-invoice"


@pytest.fixture
def live(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """acme's catalog and 200 events in the live environment, "now" pinned to NOW."""
    monkeypatch.setenv("RATECARD_NOW", "2026-11-26T00:00:00Z")
    api.apply_catalog(CATALOG)
    stored = api.post("/v1/events", json=EVENTS)
    assert stored.status_code == 200 and stored.json()["stored"] == 200, stored.text
    return api


def test_the_route_answers_the_service_document(live: Api) -> None:
    response = live.get(PATH, params={"at": "2026-11-20T00:00:00Z"})
    assert response.status_code == 200, response.text
    store = open_store(live.url, migrate=False)
    try:
        assert response.json() == preview_invoices(store, "acme", AT, NOW).as_dict()
    finally:
        store.dispose()
    (subscription,) = response.json()["subscriptions"]
    assert subscription["usage"] == [{"meter": "api_calls", "quantity": "120", "events": 120}]
    assert subscription["invoices"][0]["total"] == "16.50"
    # without `at`: now, after every event (an offset other than Z reads the same instant)
    assert live.get(PATH).json()["at"] == "2026-11-26T00:00:00Z"
    same = live.get(PATH, params={"at": "2026-11-20T01:00:00+01:00"})
    assert same.json() == response.json()


def test_a_sandbox_key_cannot_see_a_live_customer(live: Api) -> None:
    sandbox_catalog = CATALOG.replace("reference: acme,", "reference: other,").replace("customer: acme,",
                                                                                       "customer: other,")
    live.apply_catalog(sandbox_catalog, env="sandbox")
    hidden = live.get(PATH, env="sandbox")
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "RESOURCE_NOT_FOUND" and "acme" in hidden.json()["message"]
    # the same customer in the sandbox's own catalog sees none of the live events
    live.apply_catalog(CATALOG, env="sandbox")
    (subscription,) = live.get(PATH, env="sandbox", params={"at": "2026-11-20T00:00:00Z"}).json()["subscriptions"]
    assert subscription["usage"] == [{"meter": "api_calls", "quantity": "0", "events": 0}]


def test_refusals_use_the_error_envelope(live: Api) -> None:
    unknown = live.get("/v1/customers/ghost/upcoming-invoice")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "RESOURCE_NOT_FOUND")
    for bad in ("2026-11-20", "2026-11-20T00:00:00", "yesterday", "2026-11-20T00:00:00 01:00"):
        refused = live.get(PATH, params={"at": bad})
        assert refused.status_code == 400, bad
        assert (refused.json()["code"], refused.json()["field"]) == ("INVALID_FIELD", "at")
    too_far = live.get(PATH, params={"at": "2028-01-01T00:00:00Z"})
    assert (too_far.status_code, too_far.json()["field"]) == (400, "at")
    idle = live.get("/v1/customers/idle/upcoming-invoice")
    assert idle.status_code == 200 and idle.json()["subscriptions"] == []
    assert live.client.get(PATH).status_code == 401  # no key


def test_the_route_is_in_the_openapi_document(live: Api) -> None:
    operation = live.client.get("/openapi.json").json()["paths"]["/v1/customers/{reference}/upcoming-invoice"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} == {"reference", "at"}
    assert operation["security"]
