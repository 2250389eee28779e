"""Hostile input on the Solvimon catalog resources (in-process client, both stores): random JSON
and valid bodies with one field replaced by something hostile, on every write; each answer is a
success or a 4xx in the error envelope, never a 500, and a refused write changes nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratecard.services.resources.model import View
from ratecard.services.resources.pricing_plans import plan_code_of
from ratecard.store import open_store
from ratecard.store.catalogs import load_version
from ratecard.store.resources import load_resources

ENVELOPE = {"type", "code", "field", "message"}
HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["x" * 10_000, "1e999999", "NaN", "-1", "\x00", "a b", "'; DROP TABLE api_resources; --",
                     "ppv_ghost", "../../etc", "EUR", "USD"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _setup(api: Any) -> dict[str, str]:
    def ok(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = api.post(path, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    ok("/v1/meter-values", {"reference": "tokens", "name": "Tokens", "type": "NUMBER"})
    ok("/v1/meters", {"reference": "llm", "name": "LLM", "meter_values": [{"reference": "tokens"}]})
    ok("/v1/meter-value-calculations", {"reference": "tokens_sum", "calculation_type": "SUM", "meter_id": "llm",
                                        "meter_value_id": "tokens"})
    ok("/v1/products", {"reference": "p", "name": "P"})
    ok("/v1/product-items", {"reference": "t", "name": "T", "product_id": "p", "model_type": "USAGE_BASED",
                             "meter_value_calculation_id": "tokens_sum"})
    plan = ok("/v1/pricing-plans", {"reference": "pro", "pricing_currencies": ["EUR"]})
    draft = ok("/v1/pricing-plan-versions", {"pricing_plan_id": plan["id"]})
    ok("/v1/product-items", {"reference": "fee", "name": "Fee", "product_id": "p", "model_type": "RECURRING"})
    priced = ok("/v1/pricings", {"pricing_plan_version_id": draft["id"], "product_ids": ["p"], "items": [
        {"product_item_ids": ["fee"], "configs": [{"type": "FLAT", "bands": [
            {"amount": {"quantity": "9", "currency": "EUR"}}]}]}]})
    group = ok("/v1/pricing-groups", {"pricing_plan_version_id": draft["id"], "name": "G"})
    return {"draft": draft["id"], "pricing": priced["id"], "group": group["id"]}


def _valid_bodies(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    config = {"type": "TIERED", "bands": [{"amount": {"quantity": "0.1", "currency": "EUR"},
                                           "tier_top_bound": {"number": "10"}},
                                          {"amount": {"quantity": "0.05", "currency": "EUR"}}]}
    pricing = {"pricing_plan_version_id": ids["draft"], "product_ids": ["p"],
               "items": [{"product_item_ids": ["t"], "configs": [config]}]}
    return [
        ("POST", "/v1/product-categories", {"reference": "c2", "name": "C"}),
        ("POST", "/v1/products", {"reference": "p2", "name": "P2", "status": "ACTIVE"}),
        ("PATCH", "/v1/products/p", {"name": "P", "product_type": "DEFAULT"}),
        ("POST", "/v1/product-items", {"reference": "f", "name": "F", "product_id": "p", "model_type": "RECURRING"}),
        ("POST", "/v1/pricing-plans", {"reference": "basic", "pricing_currencies": ["EUR"], "type": "STANDARD"}),
        ("PATCH", "/v1/pricing-plans/pro", {"name": "Pro"}),
        ("POST", "/v1/pricing-plan-versions", {"pricing_plan_id": "pro", "billing_period_settings": {
            "billing_periods": [{"period": {"type": "MONTH", "value": 1}}]}}),
        ("PATCH", f"/v1/pricing-plan-versions/{ids['draft']}", {"billing_period_settings": {
            "billing_periods": [{"period": {"type": "YEAR", "value": 1}}]}}),
        ("POST", "/v1/pricings", pricing),
        ("POST", "/v1/pricing-groups", {"pricing_plan_version_id": ids["draft"], "name": "G", "pricings": [pricing]}),
        ("PATCH", f"/v1/pricings/{ids['pricing']}", {"name": "Fee", "pricing_group_id": ids["group"], "items": [
            {"product_item_ids": ["fee"], "configs": [{"type": "FLAT", "bands": [
                {"amount": {"quantity": "9", "currency": "EUR"}}]}]}]}),
        ("PATCH", f"/v1/pricing-groups/{ids['group']}", {"name": "G", "selection_constraint": "ANY",
                                                          "display_order": 1}),
    ]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(copy[path[0]], path[1:], new)  # type: ignore[index]
    return copy


def _request(api: Any, method: str, path: str, body: Any) -> Any:
    return api.client.request(method, path, json=body, headers=api.headers())


def test_hostile_bodies_get_a_4xx_envelope_and_change_nothing(api: Any) -> None:
    ids = _setup(api)
    valid = _valid_bodies(ids)
    catalog_before = api.get("/v1/catalog").json()["catalog"].get("plans")

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.data())
    def one(data: st.DataObject) -> None:
        method, path, body = data.draw(st.sampled_from(valid))
        if data.draw(st.booleans()):
            where = data.draw(st.sampled_from(_paths(body)))
            body = _replace(body, where, data.draw(HOSTILE))
        else:
            body = data.draw(st.one_of(HOSTILE, st.dictionaries(st.sampled_from(list(body)), HOSTILE, max_size=4)))
        response = _request(api, method, path, body)
        assert response.status_code < 500, (method, path, body, response.text)
        if response.status_code >= 400:
            assert response.status_code in (400, 404, 409, 413), response.text
            assert set(response.json()) == ENVELOPE
        elif method == "POST" and path != "/v1/pricings" and path != "/v1/pricing-groups":
            # a valid create: undo it so the next example meets the same state
            created = response.json()
            kind = path.rsplit("/", 1)[1]
            undone = api.client.request("DELETE", f"/v1/{kind}/{created['id']}", headers=api.headers())
            assert undone.status_code == 200, undone.text

    one()
    # drafts never reach the catalog
    assert api.get("/v1/catalog").json()["catalog"].get("plans") == catalog_before


def test_unknown_references_are_404_or_400(api: Any) -> None:
    _setup(api)
    for path in ("/v1/products/ghost", "/v1/product-items/ghost", "/v1/product-categories/ghost",
                 "/v1/pricing-plans/ghost", "/v1/pricing-plan-versions/ghost", "/v1/pricing-groups/ghost"):
        response = api.get(path)
        assert response.status_code == 404 and response.json()["code"] == "RESOURCE_NOT_FOUND", path
    for method, path in (("PATCH", "/v1/pricings/ghost"), ("DELETE", "/v1/pricings/ghost"),
                         ("DELETE", "/v1/pricing-plans/ghost"), ("POST", "/v1/products/ghost/activate")):
        response = api.client.request(method, path, json={}, headers=api.headers())
        assert response.status_code == 404 and set(response.json()) == ENVELOPE, (method, path, response.text)


def test_other_currencies_and_periods_publish_into_the_plan(api: Any) -> None:
    """A version priced in EUR and USD, billed quarterly: the plan's currency, its USD prices and
    its interval come from the version; a config's period must be the version's."""
    _setup(api)
    plan = api.post("/v1/pricing-plans", json={"reference": "multi", "pricing_currencies": ["EUR", "USD"]}).json()
    quarterly = {"billing_periods": [{"period": {"type": "MONTH", "value": 3}}]}
    draft = api.post("/v1/pricing-plan-versions", json={"pricing_plan_id": plan["id"],
                                                        "billing_period_settings": quarterly}).json()
    assert draft["pricing_currency_settings"] == {"default_pricing_currency": "EUR", "pricing_currencies": ["EUR", "USD"]}

    def config(price: str, currency: str, period: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "FLAT", "bands": [{"amount": {"quantity": price, "currency": currency}}]}
        if period is not None:
            out["billing_period"] = period
        return out

    monthly = {"type": "MONTH", "value": 1}
    wrong = api.post("/v1/pricings", json={"pricing_plan_version_id": draft["id"], "product_ids": ["p"], "items": [
        {"product_item_ids": ["t"], "configs": [config("0.10", "EUR", monthly)]}]})
    assert (wrong.status_code, wrong.json()["field"]) == (400, "items.0.configs.0.billing_period")
    made = api.post("/v1/pricings", json={"pricing_plan_version_id": draft["id"], "product_ids": ["p"], "items": [
        {"product_item_ids": ["t"], "configs": [config("0.10", "EUR", {"type": "MONTH", "value": 3})],
         "pricing_currency_configs": [{"currency": "USD", "configs": [config("0.12", "USD")]}]}]})
    assert made.status_code == 201, made.text
    usd = made.json()["items"][0]["pricing_currency_configs"][0]
    assert (usd["currency"], usd["configs"][0]["bands"][0]["amount"]) == ("USD", {"quantity": "0.12",
                                                                                 "currency": "USD"})
    published = api.client.patch(f"/v1/pricing-plan-versions/{draft['id']}", json={"status": "ACTIVE"},
                                 headers=api.headers())
    assert published.status_code == 200, published.text
    multi = {p["code"]: p for p in api.get("/v1/catalog").json()["catalog"]["plans"]}["multi"]
    assert (multi["currency"], multi["interval"]) == ("EUR", "quarter")
    assert multi["charges"][0]["unit_amount"] == "0.10"
    assert multi["currencies"]["USD"]["charges"] == {"t": {"unit_amount": "0.12"}}


def test_a_yaml_plan_gets_a_new_version_and_keeps_what_solvimon_cannot_say(api: Any) -> None:
    """Version 2 of a plan applied as YAML: its minimum and trial days stay, its charges are the
    version's pricings; version 1 (the catalog's) is no longer the ACTIVE one."""
    _setup(api)
    document = api.get("/v1/catalog").json()["catalog"]
    document["plans"] = [{"code": "basic", "currency": "EUR", "minimum": "10.00", "trial_days": 14,
                          "charges": [{"code": "old", "model": "flat", "amount": "5"}]}]
    assert api.post("/v1/catalog", json=document).status_code == 201
    plan = api.get("/v1/pricing-plans/basic").json()
    assert [(i["version"], i["status"]) for i in plan["pricing_plan_version_infos"]] == [(1, "ACTIVE")]
    draft = api.post("/v1/pricing-plan-versions", json={"pricing_plan_id": "basic"}).json()
    assert (draft["version"], draft["pricing_currency_settings"]["default_pricing_currency"]) == (2, "EUR")
    made = api.post("/v1/pricings", json={"pricing_plan_version_id": draft["id"], "product_ids": ["p"], "items": [
        {"product_item_ids": ["t"], "configs": [{"type": "TOP_TIERED", "bands": [
            {"amount": {"quantity": "0.02", "currency": "EUR"}, "tier_top_bound": {"number": "100"}},
            {"amount": {"quantity": "0.01", "currency": "EUR"}}]}]}]})
    assert made.status_code == 201, made.text
    assert api.client.patch(f"/v1/pricing-plan-versions/{draft['id']}", json={"status": "ACTIVE"},
                            headers=api.headers()).status_code == 200
    basic = {p["code"]: p for p in api.get("/v1/catalog").json()["catalog"]["plans"]}["basic"]
    assert (basic["minimum"], basic["trial_days"]) == ("10.00", 14)
    assert [(c["code"], c["model"]) for c in basic["charges"]] == [("t", "volume")]
    plan = api.get(f"/v1/pricing-plans/{plan['id']}").json()
    assert [(i["version"], i["status"]) for i in plan["pricing_plan_version_infos"]] == [(2, "ACTIVE")]


def _publish_version(api: Any, plan: str, settings: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """Version 2 of `plan` with `items`, published: the catalog plan it makes."""
    draft = api.post("/v1/pricing-plan-versions", json={"pricing_plan_id": plan, **settings}).json()
    made = api.post("/v1/pricings", json={"pricing_plan_version_id": draft["id"], "product_ids": ["p"],
                                          "items": items})
    assert made.status_code == 201, made.text
    published = api.client.patch(f"/v1/pricing-plan-versions/{draft['id']}", json={"status": "ACTIVE"},
                                 headers=api.headers())
    assert published.status_code == 200, published.text
    return {p["code"]: p for p in api.get("/v1/catalog").json()["catalog"]["plans"]}[plan]


def test_a_new_version_keeps_what_the_file_set_on_a_charge_solvimon_cannot_say(api: Any) -> None:
    """A charge's cap (`maximum`) and `group_by` are set in the catalog file only: version 2 pricing
    the same product item on the same meter keeps them (its price is the version's); a fee gets
    none. A percentage keeps its per-event rules while it stays a percentage without conditional
    prices. Amounts are never reused in another currency or over another period: a version in JPY,
    billed yearly, or also priced in USD keeps group_by but no cap (nor the plan's minimum)."""
    _setup(api)
    assert api.post("/v1/product-items", json={"reference": "pay", "name": "Pay", "product_id": "p",
                                                "model_type": "USAGE_BASED",
                                                "meter_value_calculation_id": "tokens_sum"}).status_code == 201
    document = api.get("/v1/catalog").json()["catalog"]
    [meter] = [m["code"] for m in document["meters"]]
    charges = [{"code": "t", "model": "per_unit", "meter": meter, "unit_amount": "0.02", "maximum": "50.00",
                "group_by": ["model"]},
               {"code": "pay", "model": "percentage", "meter": meter, "rate": "1.5", "free_units_per_events": 3,
                "per_transaction_max_amount": "2.00"},
               {"code": "fee", "model": "flat", "amount": "5"}]
    document["plans"] = [{"code": code, "currency": "EUR", "minimum": "10.00", "charges": charges}
                         for code in ("same", "yen", "yearly", "dollars", "premium")]
    applied = api.post("/v1/catalog", json=document)
    assert applied.status_code == 201, applied.text

    def flat(amount: str, currency: str = "EUR") -> dict[str, Any]:
        return {"type": "FLAT", "bands": [{"amount": {"quantity": amount, "currency": currency}}]}

    items = [{"product_item_ids": ["t"], "configs": [flat("0.03")]},
             {"product_item_ids": ["pay"], "configs": [{"type": "FLAT", "bands": [{"percentage": "2"}]}]},
             {"product_item_ids": ["fee"], "configs": [flat("7")]}]
    same = _publish_version(api, "same", {}, items)
    kept = {c["code"]: c for c in same["charges"]}
    assert (kept["t"]["unit_amount"], kept["t"]["maximum"], kept["t"]["group_by"]) == ("0.03", "50.00", ["model"])
    assert (kept["pay"]["model"], kept["pay"]["rate"], kept["pay"]["free_units_per_events"],
            kept["pay"]["per_transaction_max_amount"]) == ("percentage", "2", 3, "2.00")
    assert (kept["fee"]["amount"], kept["fee"].get("maximum"), kept["fee"].get("group_by")) == ("7", None, None)
    assert same["minimum"] == "10.00"

    yen = _publish_version(api, "yen", {"pricing_currency_settings": {"default_pricing_currency": "JPY"}},
                           [{"product_item_ids": ["t"], "configs": [flat("3", "JPY")]}])
    yearly = _publish_version(api, "yearly", {"billing_period_settings": {"billing_periods": [
        {"period": {"type": "YEAR", "value": 1}}]}}, [{"product_item_ids": ["t"], "configs": [flat("0.03")]}])
    dollars = _publish_version(api, "dollars", {"pricing_currency_settings": {
        "default_pricing_currency": "EUR", "pricing_currencies": ["EUR", "USD"]}}, [
        {"product_item_ids": ["t"], "configs": [flat("0.03")],
         "pricing_currency_configs": [{"currency": "USD", "configs": [flat("0.04", "USD")]}]}])
    for plan, currency, interval in ((yen, "JPY", "month"), (yearly, "EUR", "year"), (dollars, "EUR", "month")):
        [t] = plan["charges"]
        assert (plan["currency"], plan["interval"], t["group_by"], t.get("maximum")) == (
            currency, interval, ["model"], None), plan
    assert (yen.get("minimum"), yearly.get("minimum"), dollars.get("minimum")) == (None, None, None)

    premium = {"name": "premium", "meter_properties": [{"reference": "model", "comparator": "IN", "values": ["o1"]}]}
    conditional = _publish_version(api, "premium", {}, [{"product_item_ids": ["pay"], "configs": [
        {"type": "FLAT", "bands": [{"percentage": "2"}]},
        {"type": "FLAT", "bands": [{"percentage": "3"}], "conditions": premium}]}])
    [pay] = conditional["charges"]
    assert (len(pay["filters"]), pay.get("free_units_per_events"), pay.get("per_transaction_max_amount")) == (
        1, None, None)


def test_conditional_configs_are_charge_filters(api: Any) -> None:
    """Tokens at 0.10, those of events whose property model is gpt-4o or o1 at 0.30: one charge
    with a filter; a comparator ratecard cannot match is refused naming it."""
    ids = _setup(api)

    def config(price: str, **more: Any) -> dict[str, Any]:
        return {"type": "FLAT", "bands": [{"amount": {"quantity": price, "currency": "EUR"}}], **more}

    premium = {"name": "premium", "meter_properties": [{"reference": "model", "comparator": "IN",
                                                        "values": ["gpt-4o", "o1"]}]}
    greater = {"name": "big", "meter_properties": [{"reference": "size", "comparator": "GREATER_THAN",
                                                    "value": "10"}]}
    refused = api.post("/v1/pricings", json={"pricing_plan_version_id": ids["draft"], "product_ids": ["p"], "items": [
        {"product_item_ids": ["t"], "configs": [config("0.10"), config("0.30", conditions=greater)]}]})
    assert (refused.status_code, refused.json()["field"]) == (400, "items.0.configs.1.conditions.meter_properties.0"
                                                                    ".comparator")
    made = api.post("/v1/pricings", json={"pricing_plan_version_id": ids["draft"], "product_ids": ["p"], "items": [
        {"product_item_ids": ["t"], "configs": [config("0.10"), config("0.30", conditions=premium)]}]})
    assert made.status_code == 201, made.text
    shown = made.json()["items"][0]["configs"]
    assert [c["bands"][0]["amount"]["quantity"] for c in shown] == ["0.10", "0.30"]
    assert shown[1]["conditions"] == premium
    assert api.client.patch(f"/v1/pricing-plan-versions/{ids['draft']}", json={"status": "ACTIVE"},
                            headers=api.headers()).status_code == 200
    charges = {p["code"]: p for p in api.get("/v1/catalog").json()["catalog"]["plans"]}["pro"]["charges"]
    charge = {c["code"]: c for c in charges}["t"]
    assert (charge["model"], charge["unit_amount"]) == ("per_unit", "0.10")
    assert [(f["code"], f["match"], f["unit_amount"]) for f in charge["filters"]] == [
        ("premium", {"model": ["gpt-4o", "o1"]}, "0.30")]


def test_subscriptions_resolve_a_plan_code_from_any_of_its_keys(api: Any) -> None:
    """What a subscription names (plan id or reference, or a version id) -> the plan code it bills."""
    ids = _setup(api)
    plan = api.get("/v1/pricing-plans/pro").json()
    store = open_store(api.url)
    try:
        def code_of(key: str) -> str | None:
            found = load_version(store, "live")  # the current catalog document
            return plan_code_of(View("live", load_resources(store, "live")[1], found[1] if found else None), key)

        assert code_of("pro") is None and code_of(ids["draft"]) is None  # nothing published yet
        api.client.patch(f"/v1/pricing-plan-versions/{ids['draft']}", json={"status": "ACTIVE"},
                         headers=api.headers())
        assert [code_of(key) for key in ("pro", plan["id"], ids["draft"], "ghost")] == ["pro", "pro", "pro", None]
    finally:
        store.dispose()
