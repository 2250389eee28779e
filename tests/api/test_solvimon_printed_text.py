"""Names and descriptions the Solvimon-compatible API stores are printed later (invoices, PDFs,
e-invoices, CSV exports, the terminal), so the API refuses what the catalog refuses in printed
words: control characters (C0, DEL, C1, NUL) and the two bidi override characters. Each refusal is
a 400 in the error envelope naming the field, and nothing is stored (both stores)."""

from __future__ import annotations

from typing import Any

import pytest

ENVELOPE = {"type", "code", "field", "message"}
HOSTILE = ["Fee\x1b[31m", "Fee\x00", "Fee\x9b31m", "Fee\x7f", "Fee\nFee", "invoice\u202egnp.exe", "a\u202db"]


def _request(api: Any, method: str, path: str, body: Any) -> Any:
    return api.client.request(method, path, json=body, headers=api.headers())


def _ok(api: Any, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = _request(api, method, path, body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _setup(api: Any) -> None:
    _ok(api, "POST", "/v1/meter-values", {"reference": "tokens", "name": "Tokens", "type": "NUMBER"})
    _ok(api, "POST", "/v1/meters", {"reference": "llm", "name": "LLM", "meter_values": [{"reference": "tokens"}]})
    _ok(api, "POST", "/v1/products", {"reference": "p", "name": "P"})
    _ok(api, "POST", "/v1/product-items", {"reference": "fee", "name": "Fee", "product_id": "p",
                                           "model_type": "RECURRING"})
    _ok(api, "POST", "/v1/pricing-plans", {"reference": "pro", "name": "Pro", "pricing_currencies": ["EUR"]})
    _ok(api, "POST", "/v1/features", {"reference": "seats", "name": "Seats", "type": "NUMBER"})


# (create path, body without the hostile field, field) and (patch path, field, what GET shows before)
CREATES = [
    ("/v1/meter-values", {"reference": "v2", "type": "NUMBER"}, "name"),
    ("/v1/meter-values", {"reference": "v2", "name": "V", "type": "NUMBER"}, "description"),
    ("/v1/meters", {"reference": "m2", "meter_values": [{"reference": "tokens"}]}, "name"),
    ("/v1/meters", {"reference": "m2", "name": "M", "meter_values": [{"reference": "tokens"}]}, "description"),
    ("/v1/products", {"reference": "p2"}, "name"),
    ("/v1/products", {"reference": "p2", "name": "P2"}, "description"),
    ("/v1/product-items", {"reference": "i2", "product_id": "p", "model_type": "RECURRING"}, "name"),
    ("/v1/product-categories", {"reference": "c2"}, "name"),
    ("/v1/pricing-plans", {"reference": "basic", "pricing_currencies": ["EUR"]}, "name"),
    ("/v1/pricing-plans", {"reference": "basic", "pricing_currencies": ["EUR"]}, "description"),
    ("/v1/features", {"reference": "f2", "type": "NUMBER"}, "name"),
    ("/v1/features", {"reference": "f2", "name": "F", "type": "NUMBER"}, "description"),
]
PATCHES = [
    ("/v1/meter-values/tokens", "name", "Tokens"),
    ("/v1/meters/llm", "name", "LLM"),
    ("/v1/products/p", "name", "P"),
    ("/v1/product-items/fee", "name", "Fee"),
    ("/v1/pricing-plans/pro", "name", "Pro"),
    ("/v1/features/seats", "name", "Seats"),
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_create_with_control_characters_or_a_bidi_override_is_refused_and_stores_nothing(
        api: Any, hostile: str) -> None:
    _setup(api)
    for path, body, field in CREATES:
        response = _request(api, "POST", path, {**body, field: hostile})
        assert response.status_code == 400, (path, field, response.text)
        error = response.json()
        assert set(error) == ENVELOPE and error["field"] == field, (path, error)
        assert error["code"] == "INVALID_FIELD"
        assert api.get(f"{path}/{body['reference']}").status_code == 404, (path, field)


@pytest.mark.parametrize("hostile", ["Fee\x1b[31m", "invoice\u202egnp.exe"])
def test_a_patch_with_control_characters_or_a_bidi_override_is_refused_and_changes_nothing(
        api: Any, hostile: str) -> None:
    _setup(api)
    for path, field, before in PATCHES:
        response = _request(api, "PATCH", path, {field: hostile})
        assert response.status_code == 400, (path, response.text)
        assert response.json()["field"] == field
        assert api.get(path).json()[field] == before, path


def test_a_pricing_plan_version_cannot_publish_an_item_named_with_an_escape_sequence(api: Any) -> None:
    _setup(api)
    refused = _request(api, "POST", "/v1/product-items", {"reference": "red", "name": "Fee\x1b[31m",
                                                          "product_id": "p", "model_type": "RECURRING"})
    assert refused.status_code == 400 and refused.json()["field"] == "name"
    draft = _ok(api, "POST", "/v1/pricing-plan-versions", {"pricing_plan_id": "pro"})
    priced = _request(api, "POST", "/v1/pricings", {"pricing_plan_version_id": draft["id"], "product_ids": ["p"],
                                                    "items": [{"product_item_ids": ["red"], "configs": [
                                                        {"type": "FLAT", "bands": [
                                                            {"amount": {"quantity": "9", "currency": "EUR"}}]}]}]})
    assert priced.status_code in (400, 404), priced.text
    assert "\x1b" not in api.get("/v1/catalog").text


def test_right_to_left_names_marks_and_isolates_are_kept(api: Any) -> None:
    _setup(api)
    for index, name in enumerate(["رسوم شهرية", "עמלה חודשית", "Fee \u2067رسوم\u2069 2026", "Fee\u200f",
                                  '=HYPERLINK("x") <b>🚀</b>']):
        created = _ok(api, "POST", "/v1/product-items", {"reference": f"rtl{index}", "name": name,
                                                         "product_id": "p", "model_type": "RECURRING"})
        assert created["name"] == name
        assert api.get(f"/v1/product-items/rtl{index}").json()["name"] == name


@pytest.mark.parametrize("hostile", ["Spring\u202esale", "Spring\x9bsale", "Spring\x1b[31m"])
def test_a_coupon_whose_printed_description_holds_a_bidi_override_or_a_control_is_refused(
        api: Any, hostile: str) -> None:
    api.apply_catalog()
    for field in ("name", "description"):
        response = _request(api, "POST", "/v1/coupons", {"reference": "spring", field: hostile, "discount": {
            "type": "PERCENTAGE", "percentage": "10"}})
        assert response.status_code == 400, response.text
        assert set(response.json()) == ENVELOPE and response.json()["field"] == "description"
        assert api.get("/v1/coupons/spring").status_code == 404
