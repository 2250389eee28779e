"""Hostile requests on the money-affecting writes of the Solvimon-compatible API: coupons and
promotion codes, payments, and the catalog numbers they ride on. What a caller sees: a 400 that
names the field (never a 500), nothing stored by a refused request, and a payment recorded only for
the amount the invoice asks.

Each test runs on SQLite and PostgreSQL (the `api` fixture of tests/api)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ..api.conftest import Api
from ..api.test_solvimon_invoice_actions import CATALOG, JANUARY_TOTAL

SPRING = {"reference": "SPRING", "discount": {"type": "PERCENTAGE", "percentage": "10"}}
# a whole number no JSON integer of 64 bits holds (stored catalogs are JSON)
HUGE = 10**30
JUST_OVER_64_BITS = 19_999_999_999_999_999_999  # inside the event bound (< 1e20), beyond 2**64


def _catalog_version(api: Api) -> int:
    return api.get("/v1/catalog").json()["version"]


def _refused(response, field: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == field, body
    assert "Error" not in body["message"] and "Traceback" not in body["message"], body


@pytest.mark.parametrize("kind", [{"a": 1}, ["ONE_TIME"]])
def test_a_coupon_duration_type_that_is_not_text_is_refused_naming_it(api: Api, kind: object) -> None:
    api.apply_catalog(CATALOG)
    before = _catalog_version(api)
    _refused(api.post("/v1/coupons", json={**SPRING, "duration": {"type": kind}}), "duration.type")
    assert api.post("/v1/coupons", json=SPRING).status_code == 201
    _refused(api.client.patch("/v1/coupons/SPRING", json={"duration": {"type": kind}}, headers=api.headers()),
             "duration.type")
    assert _catalog_version(api) == before + 1  # only the valid coupon was written


@pytest.mark.parametrize("status", [{"a": 1}, ["ACTIVE"], 7])
def test_a_coupon_or_promotion_code_status_that_is_not_text_is_refused_naming_it(api: Api, status: object) -> None:
    api.apply_catalog(CATALOG)
    assert api.post("/v1/coupons", json=SPRING).status_code == 201
    before = _catalog_version(api)
    _refused(api.post("/v1/coupons", json={**SPRING, "reference": "OTHER", "status": status}), "status")
    _refused(api.client.patch("/v1/coupons/SPRING", json={"status": status}, headers=api.headers()), "status")
    _refused(api.post("/v1/promotion-codes", json={"coupon_id": "SPRING", "code": "P1", "status": status}), "status")
    assert _catalog_version(api) == before
    assert api.get("/v1/coupons/SPRING").json()["status"] == "ACTIVE"


@pytest.mark.parametrize("maximum", [HUGE, JUST_OVER_64_BITS, 2**63])
def test_a_maximum_of_redemptions_beyond_64_bits_is_refused_naming_it(api: Api, maximum: int) -> None:
    api.apply_catalog(CATALOG)
    before = _catalog_version(api)
    _refused(api.post("/v1/coupons", json={**SPRING, "maximum_redemptions": maximum}), "maximum_redemptions")
    assert api.post("/v1/coupons", json=SPRING).status_code == 201
    _refused(api.client.patch("/v1/coupons/SPRING", json={"maximum_redemptions": maximum}, headers=api.headers()),
             "maximum_redemptions")
    _refused(api.post("/v1/promotion-codes", json={"coupon_id": "SPRING", "code": "P1",
                                                   "maximum_redemptions": maximum}), "maximum_redemptions")
    assert _catalog_version(api) == before + 1
    # the largest one is taken, and read back as written
    largest = api.client.patch("/v1/coupons/SPRING", json={"maximum_redemptions": 2**63 - 1}, headers=api.headers())
    assert largest.status_code == 200 and largest.json()["maximum_redemptions"] == 2**63 - 1, largest.text


@pytest.mark.parametrize("old, new, path", [
    ('features: {quota: "5000"}', f"features: {{quota: {JUST_OVER_64_BITS}}}", "plans[0].features.quota"),
    ("filters: {model: [gpt-4o]}", f"filters: {{model: [{JUST_OVER_64_BITS}]}}", "meters[4].filters.model[0]"),
    ("max_redemptions: 3", f"max_redemptions: {HUGE}", "coupons[0].max_redemptions"),
])
def test_a_catalog_whole_number_beyond_64_bits_is_refused_with_its_path(api: Api, old: str, new: str,
                                                                           path: str) -> None:
    document = CATALOG.replace(
        "plans:\n", "features:\n  - {code: quota, type: number, meter: gpt4_tokens}\nplans:\n", 1).replace(
        "    currency: EUR\n    minimum:", '    currency: EUR\n    features: {quota: "5000"}\n    minimum:', 1).replace(
        "subscriptions:\n", "coupons:\n  - {code: SPRING, percent_off: \"10\", duration: once, max_redemptions: 3}\n"
                            "subscriptions:\n", 1)
    api.apply_catalog(document)  # as written, it applies
    assert old in document
    response = api.post("/v1/catalog", content=document.replace(old, new).encode(),
                        headers={"content-type": "application/yaml"})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == path, response.text
    assert _catalog_version(api) == 1


def _final_january(api: Api) -> str:
    api.apply_catalog(CATALOG)
    assert api.post("/v1/invoice-runs", json={"until": "2026-02-01"}).status_code == 200
    [draft] = [i["id"] for i in api.get("/v1/invoices").json()["data"]
               if i["invoice_amount_including_tax"]["quantity"] == JANUARY_TOTAL]
    final = api.client.patch(f"/v1/invoices/{draft}", json={"status": "FINAL"}, headers=api.headers())
    assert final.status_code == 200, final.text
    return draft


@pytest.mark.parametrize("quantity", [f"-{JANUARY_TOTAL}", "-0", "31.979", "31.99"])
def test_a_transfer_of_another_amount_than_the_total_is_refused_and_records_nothing(api: Api, quantity: str) -> None:
    invoice = _final_january(api)
    transfer = {"invoice_id": invoice, "external_reference": "TRANSFER-1", "result": "AUTHORIZED",
                "amount": {"quantity": quantity, "currency": "EUR"}}
    _refused(api.post("/v1/payments", json=transfer), "amount.quantity")
    [charge] = api.get("/v1/payments").json()["data"]
    assert charge["result"] == "PENDING" and charge.get("reference") is None, charge
    # the total, written with more zeros, pays it: 31.98 EUR recorded
    paid = api.post("/v1/payments", json={**transfer, "amount": {"quantity": f"{JANUARY_TOTAL}00", "currency": "EUR"}})
    assert paid.status_code == 200, paid.text
    assert (paid.json()["result"], paid.json()["amount"]) == ("AUTHORIZED", {"quantity": JANUARY_TOTAL,
                                                                              "currency": "EUR"})


def _one_off_draft(api: Api) -> str:
    api.apply_catalog(CATALOG)
    draft = api.post("/v1/invoices", json={"type": "ONE_OFF", "customer_reference": "acme"})
    assert draft.status_code == 200, draft.text
    return draft.json()["id"]


@pytest.mark.parametrize("line, field", [
    ({"pricing_type": "FLAT", "volume": {"number": "-3"}, "pricing_band": {"amount": {"quantity": "10"}}},
     "volume.number"),
    ({"pricing_type": "FLAT", "volume": {"number": "3"}, "pricing_band": {"amount": {"quantity": "-10"}}},
     "pricing_band.amount.quantity"),
    ({"pricing_type": "FLAT", "pricing_band": {"amount": {"quantity": "1e400"}}}, "pricing_band.amount.quantity"),
    # each factor below 10^12, their product (about 1e24) past the bound of every price
    ({"pricing_type": "FLAT", "volume": {"number": "999999999999"},
      "pricing_band": {"amount": {"quantity": "999999999999"}}}, "volume.number"),
    ({"pricing_type": "FIXED", "pricing_band": {"fixed_amount": {"quantity": "NaN"}}},
     "pricing_band.fixed_amount.quantity"),
    ({"pricing_type": "FIXED", "pricing_band": {"amount": {"quantity": {"a": 1}}}}, "pricing_band.amount.quantity"),
    ({"pricing_type": "FIXED", "pricing_name": "=cmd|' /C calc'!A0\n", "pricing_band": {"amount": {"quantity": "1"}}},
     "pricing_name"),
    ({"pricing_type": "FIXED", "product_item_id": "x" * 300, "pricing_band": {"amount": {"quantity": "1"}}},
     "product_item_id"),
    ({"pricing_type": "FIXED", "product_item_type": "", "pricing_band": {"amount": {"quantity": "1"}}},
     "product_item_type"),
    ({"pricing_type": "FIXED", "product_item_type": [], "pricing_band": {"amount": {"quantity": "1"}}},
     "product_item_type"),
])
def test_a_refused_one_off_line_names_the_field_it_was_sent_in(api: Api, line: dict, field: str) -> None:
    draft = _one_off_draft(api)
    for path in (f"/v1/invoices/{draft}/lines", f"/v1/invoices/{draft}/add-line"):
        _refused(api.post(path, json=line), field)
    assert api.get(f"/v1/invoices/{draft}").json()["invoice_amount_including_tax"]["quantity"] == "0.00"


def test_a_refused_line_written_with_the_invoice_names_its_field(api: Api) -> None:
    api.apply_catalog(CATALOG)
    where = "periods.0.groups.0.lines.1"
    for line, field in (({"amount_excluding_tax": {"quantity": "-1"}}, f"{where}.amount_excluding_tax.quantity"),
                        ({"description": "a\u0007b", "amount_excluding_tax": {"quantity": "1"}},
                         f"{where}.description")):
        body = {"type": "ONE_OFF", "customer_reference": "acme", "periods": [{"groups": [{"lines": [
            {"description": "fine", "amount_excluding_tax": {"quantity": "1"}}, line]}]}]}
        _refused(api.post("/v1/invoices", json=body), field)
    assert api.get("/v1/invoices").json()["data"] == []  # nothing written


def test_a_refused_on_demand_item_names_its_field(api: Api) -> None:
    api.apply_catalog(CATALOG)
    schedule = api.get("/v1/pricing-plan-schedules").json()["data"][0]["id"]
    where = "pricing_items.0"
    for item, field in (({"flexible_amount": {"quantity": "-5"}}, f"{where}.flexible_amount.quantity"),
                        ({"flexible_amount": {"quantity": "5"}, "units": {"number": "-1"}}, f"{where}.units.number"),
                        ({"flexible_amount": {"quantity": "5"}, "units": {"number": "0"}}, f"{where}.units.number"),
                        ({"flexible_amount": {"quantity": "5"}, "pricing_item_id": "x" * 300},
                         f"{where}.pricing_item_id"),
                        ({"flexible_amount": {"quantity": "5"}, "units": {"numbr": "3"}}, f"{where}.units.numbr")):
        _refused(api.post("/v1/invoices/charge-on-demand-pricing-items", json={
            "pricing_plan_schedule_id": schedule, "pricing_items": [item]}), field)
    assert api.get("/v1/invoices").json()["data"] == []


@pytest.mark.parametrize("period, group, line, field", [
    (0, 0, True, "periods.0.groups.0.lines.0.line_order"),
    (0, 0, 1.0, "periods.0.groups.0.lines.0.line_order"),
    (0, 0, "1", "periods.0.groups.0.lines.0.line_order"),
    (False, 0, 1, "periods.0.period_order"),
    (0, False, 1, "periods.0.groups.0.group_order"),
    (0, 0.0, 1, "periods.0.groups.0.group_order"),
])
def test_delete_line_takes_whole_numbers_only(api: Api, period: object, group: object, line: object,
                                              field: str) -> None:
    """JSON true is not line 1: a boolean or a fraction where a line's order goes removes nothing."""
    draft = _one_off_draft(api)
    for name in ("A", "B", "C"):
        added = api.post(f"/v1/invoices/{draft}/lines", json={"pricing_type": "FIXED", "pricing_name": name,
                                                               "pricing_band": {"fixed_amount": {"quantity": "1"}}})
        assert added.status_code == 200, added.text
    _refused(api.post(f"/v1/invoices/{draft}/delete-line", json={"periods": [
        {"period_order": period, "groups": [{"group_order": group, "lines": [{"line_order": line}]}]}]}), field)
    shown = api.get(f"/v1/invoices/{draft}").json()
    assert [li["description"] for p in shown["periods"] for g in p["groups"] for li in g["lines"]] == ["A", "B", "C"]
    assert shown["invoice_amount_including_tax"]["quantity"] == "3.57"  # 3.00 + 19 % tax


@pytest.mark.parametrize("target", ["FINAL", "VOID"])
def test_a_status_patch_that_loses_a_race_to_the_same_status_answers_the_invoice(
        api: Api, monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """Two identical PATCH status requests at once: the one that finds the other's work done
    answers the invoice, as a PATCH repeated later does, not 400 "final cannot become final"."""
    from ratecard.api.solvimon import invoice_actions

    api.apply_catalog(CATALOG)
    assert api.post("/v1/invoice-runs", json={"until": "2026-02-01"}).status_code == 200
    [draft] = [i["id"] for i in api.get("/v1/invoices").json()["data"]
               if i["invoice_amount_including_tax"]["quantity"] == JANUARY_TOTAL]
    name = "finalize_invoices" if target == "FINAL" else "void_invoices"
    real = getattr(invoice_actions, name)

    def other_request_first(*args, **kwargs):
        real(*args, **kwargs)  # the other request, between this one's read and its write
        return real(*args, **kwargs)

    monkeypatch.setattr(invoice_actions, name, other_request_first)
    answer = api.client.patch(f"/v1/invoices/{draft}", json={"status": target}, headers=api.headers())
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == target
    if target == "FINAL":
        assert answer.json()["invoice_number"] == "RC-000001"
    # a PATCH that asks for another status than the one the race left is still refused
    monkeypatch.setattr(invoice_actions, name, real)
    other = "VOID" if target == "FINAL" else "FINAL"
    refused = api.client.patch(f"/v1/invoices/{draft}", json={"status": other}, headers=api.headers())
    assert refused.status_code == 400 and refused.json()["code"] == "INVALID_OPERATION", refused.text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(quantity=st.one_of(
    st.decimals(min_value=Decimal("-100000"), max_value=Decimal("100000"), places=4),
    st.builds(lambda sign, zeros: Decimal(f"{sign}{JANUARY_TOTAL}{'0' * zeros}"), st.just("-"), st.integers(0, 6))))
def test_property_a_transfer_of_any_other_amount_than_the_total_records_nothing(api: Api, quantity: Decimal) -> None:
    """Any amount but the invoice's total (31.98 EUR, tested paying above) is refused and the
    charge stays pending, the total written negative included."""
    assume(quantity != Decimal(JANUARY_TOTAL))
    if not api.get("/v1/invoices").json()["data"]:
        _final_january(api)
    [invoice] = [i["id"] for i in api.get("/v1/invoices").json()["data"] if i["status"] == "FINAL"]
    _refused(api.post("/v1/payments", json={"invoice_id": invoice, "external_reference": "T", "result": "AUTHORIZED",
                                            "amount": {"quantity": str(quantity), "currency": "EUR"}}),
             "amount.quantity")
    assert [p["result"] for p in api.get("/v1/payments").json()["data"]] == ["PENDING"]


@pytest.mark.parametrize("discount, field", [
    ({"type": "AMOUNT", "amount": {"quantity": "1e400", "currency": "EUR"}}, "discount.amount.quantity"),
    ({"type": "AMOUNT", "amount": {"quantity": "1e-400", "currency": "EUR"}}, "discount.amount.quantity"),
    ({"type": "AMOUNT", "amount": {"quantity": 10**40, "currency": "EUR"}}, "discount.amount.quantity"),
    ({"type": "PERCENTAGE", "percentage": "1e-400"}, "discount.percentage"),
    ({"type": "PERCENTAGE", "percentage": "0.00000000000000000001"}, "discount.percentage"),
])
def test_a_coupon_discount_outside_the_number_bound_is_refused_naming_its_field(api: Api, discount: dict,
                                                                                 field: str) -> None:
    """The bound every catalog number is held to (38 digits, 1e-19 <= |x| < 1e20), for a coupon's
    percentage too (1e-400 % was stored with 400 decimals)."""
    api.apply_catalog(CATALOG)
    before = _catalog_version(api)
    _refused(api.post("/v1/coupons", json={"reference": "ODD", "discount": discount}), field)
    assert api.post("/v1/coupons", json=SPRING).status_code == 201
    _refused(api.client.patch("/v1/coupons/SPRING", json={"discount": discount}, headers=api.headers()), field)
    assert _catalog_version(api) == before + 1


@pytest.mark.parametrize("section", ["coupon", "plan discount"])
def test_a_catalog_percentage_off_outside_the_number_bound_is_refused_with_its_path(api: Api, section: str) -> None:
    if section == "coupon":
        document = CATALOG.replace("subscriptions:\n", "coupons:\n  - {code: TINY, percent_off: \"1e-400\", "
                                                       "duration: once}\nsubscriptions:\n", 1)
        path = "coupons[0].percent_off"
    else:
        document = CATALOG.replace("    currency: EUR\n    minimum:", "    currency: EUR\n    discounts: [{code: TINY, "
                                   "percent_off: \"1e-400\"}]\n    minimum:", 1)
        path = "plans[0].discounts[0].percent_off"
    response = api.post("/v1/catalog", content=document.encode(), headers={"content-type": "application/yaml"})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == path, response.text


@pytest.mark.parametrize("body, field", [({"type": {"a": 1}}, "type"), ({"type": "SOON"}, "type"),
                                         ({"types": [["FULL"]]}, "types"), ({"types": "FULL"}, "types")])
def test_a_refused_refresh_names_the_field_it_was_sent_in(api: Api, body: dict, field: str) -> None:
    draft = _one_off_draft(api)
    _refused(api.post(f"/v1/invoices/{draft}/refresh", json=body), field)


LIMITED = CATALOG.replace(
    "plans:\n", "features:\n  - {code: quota, type: number, meter: gpt4_tokens}\nplans:\n", 1).replace(
    "    currency: EUR\n    minimum:", '    currency: EUR\n    features: {quota: "5000"}\n    minimum:', 1)


@pytest.mark.parametrize("written, shown", [("-0", "0"), ("-0.000", "0"), ("0", "0"), ("5.50", "5.50")])
def test_a_usage_limit_number_is_stored_in_its_plain_form(api: Api, written: str, shown: str) -> None:
    """A limit of -0 is the limit 0: shown and applied as 0 (it was shown as "-0")."""
    api.apply_catalog(LIMITED)
    meter = api.get("/v1/meter-value-calculations").json()["data"][0]["id"]
    created = api.post("/v1/usage-limits", json={"customer_id": "acme", "meter_value_calculation_id": meter,
                                                 "scope": "SELF", "limit": {"number": written}})
    assert created.status_code == 201, created.text
    assert created.json()["limit"] == {"number": shown}
    assert api.get(f"/v1/usage-limits/{created.json()['id']}").json()["limit"] == {"number": shown}
    patched = api.client.patch(f"/v1/usage-limits/{created.json()['id']}", json={"limit": {"number": written}},
                               headers=api.headers())
    assert patched.status_code == 200 and patched.json()["limit"] == {"number": shown}, patched.text


@pytest.mark.parametrize("patch, field", [({"discount": ""}, "discount"), ({"discount": {}}, "discount.type"),
                                          ({"discount": []}, "discount"), ({"duration": ""}, "duration"),
                                          ({"duration": 0}, "duration"), ({"duration": {}}, "duration.type")])
def test_a_coupon_patch_with_an_empty_discount_or_duration_is_refused_not_ignored(api: Api, patch: dict,
                                                                                   field: str) -> None:
    api.apply_catalog(CATALOG)
    assert api.post("/v1/coupons", json=SPRING).status_code == 201
    before = _catalog_version(api)
    _refused(api.client.patch("/v1/coupons/SPRING", json=patch, headers=api.headers()), field)
    assert _catalog_version(api) == before


@pytest.mark.parametrize("periods, field", [([{"groups": ""}], "periods.0.groups"),
                                            ([{"groups": 0}], "periods.0.groups"),
                                            ([{"groups": [{"lines": ""}]}], "periods.0.groups.0.lines"),
                                            ([{"groups": [{"lines": False}]}], "periods.0.groups.0.lines")])
def test_a_one_off_invoice_whose_lines_are_not_a_list_is_refused_not_written_empty(api: Api, periods: list,
                                                                                   field: str) -> None:
    api.apply_catalog(CATALOG)
    _refused(api.post("/v1/invoices", json={"type": "ONE_OFF", "customer_reference": "acme", "periods": periods}),
             field)
    assert api.get("/v1/invoices").json()["data"] == []
