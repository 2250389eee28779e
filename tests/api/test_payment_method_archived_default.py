"""An ARCHIVED payment method is nobody's default. Archiving the customer's default clears its flag,
and the customer then has no default until another method is made the default; a request that
archives a method and makes it the default at once is refused naming is_default, and nothing
changes. What the API answers, on SQLite and PostgreSQL (the `api` fixture)."""

from __future__ import annotations

from .conftest import Api
from .test_solvimon_invoice_actions import CATALOG


def _card(api: Api, pm: str, **fields: object) -> dict:
    response = api.post("/v1/payment-methods", json={"customer_id": "acme", "type": "CARD",
                                                     "integration_reference": pm, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def _defaults(api: Api) -> dict[str, bool]:
    listed = api.get("/v1/payment-methods", params={"customer_id": "acme"})
    assert listed.status_code == 200, listed.text
    return {method["id"]: method["is_default"] for method in listed.json()["data"]}


def _patch(api: Api, key: str, body: dict):
    return api.client.patch(f"/v1/payment-methods/{key}", json=body, headers=api.headers())


def test_archiving_the_default_clears_its_flag_and_leaves_no_default(api: Api) -> None:
    api.apply_catalog(CATALOG)
    first = _card(api, "pm_card_first")
    second = _card(api, "pm_card_second")
    assert (first["is_default"], second["is_default"]) == (True, False)

    archived = _patch(api, first["id"], {"status": "ARCHIVED"})
    assert archived.status_code == 200, archived.text
    assert (archived.json()["status"], archived.json()["is_default"]) == ("ARCHIVED", False)
    assert api.get(f"/v1/payment-methods/{first['id']}").json()["is_default"] is False
    assert _defaults(api) == {first["id"]: False, second["id"]: False}  # no default until one is chosen

    chosen = _patch(api, second["id"], {"is_default": True})
    assert chosen.status_code == 200, chosen.text
    assert _defaults(api) == {first["id"]: False, second["id"]: True}


def test_archiving_a_method_and_making_it_the_default_at_once_is_refused(api: Api) -> None:
    api.apply_catalog(CATALOG)
    first = _card(api, "pm_card_first")
    second = _card(api, "pm_card_second")
    refused = _patch(api, second["id"], {"status": "ARCHIVED", "is_default": True})
    assert refused.status_code == 400, refused.text
    assert (refused.json()["code"], refused.json()["field"]) == ("INVALID_OPERATION", "is_default")
    assert api.get(f"/v1/payment-methods/{second['id']}").json()["status"] == "ACTIVE"
    assert _defaults(api) == {first["id"]: True, second["id"]: False}
    put = api.client.put("/v1/payment-methods", headers=api.headers(),
                         json={"integration_reference": "pm_card_first", "status": "ARCHIVED", "is_default": True})
    assert (put.status_code, put.json()["field"]) == (400, "is_default")
    assert _defaults(api) == {first["id"]: True, second["id"]: False}


def test_a_method_registered_archived_is_not_the_default(api: Api) -> None:
    api.apply_catalog(CATALOG)
    retired = _card(api, "pm_card_retired", status="ARCHIVED")  # the customer's first method
    assert (retired["status"], retired["is_default"]) == ("ARCHIVED", False)
    refused = api.post("/v1/payment-methods", json={"customer_id": "acme", "integration_reference": "pm_card_other",
                                                    "status": "ARCHIVED", "is_default": True})
    assert (refused.status_code, refused.json()["field"]) == (400, "is_default")
    active = _card(api, "pm_card_active", is_default=True)
    assert _defaults(api) == {retired["id"]: False, active["id"]: True}
