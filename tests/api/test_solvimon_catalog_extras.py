"""Pricing plan groups, the search operations of the catalog resources, and the PUT upserts of
pricing plans, their versions and features, driven with the published SDK against a live server
on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ..solvimon_sdk import errors, m, sv
from . import test_solvimon_sdk as sdk_tests
from .test_solvimon_catalog_sdk import _draft_plan, _products, flat
from .test_solvimon_sdk import Live, V, body_of, catalog_of

server = sdk_tests.server  # the live server fixture, on both stores


def _plans(live: Live) -> None:
    """Published plan pro (from the SDK) and a draft-only plan starter."""
    _products(live)
    _, draft = _draft_plan(live)
    live.api(sv.PricingsApi).post_pricings(V, pricing_create_request=m.PricingCreateRequest(
        pricing_plan_version_id=draft.id, product_ids=["assistant"],
        items=[m.PricingItemCreateRequest(product_item_ids=["tokens"], configs=[flat("0.01")])]))
    live.api(sv.PricingPlanVersionsApi).update_pricing_plan_versions_by_resource_id(
        V, draft.id, pricing_plan_version_update_request=m.PricingPlanVersionUpdateRequest(status="ACTIVE"))
    live.api(sv.PricingPlansApi).post_pricing_plans(V, pricing_plan_create_request=m.PricingPlanCreateRequest(
        reference="starter", name="Starter", pricing_currencies=["EUR"]))


def _search(*fields: m.SearchFieldCreateRequest, filters: tuple[m.FilterFieldCreateRequest, ...] = ()
            ) -> m.SearchCreateRequest:
    return m.SearchCreateRequest(search_fields=list(fields), filter_fields=list(filters))


def test_plan_groups_are_stored_ordered_and_move_along_their_lifecycle(server: Live) -> None:
    _plans(server)
    groups = server.api(sv.PricingPlanGroupsApi)
    plans = server.api(sv.PricingPlansApi)
    pro = plans.get_pricing_plans_by_resource_id_or_reference(V, "pro")
    starter = plans.get_pricing_plans_by_resource_id_or_reference(V, "starter")
    group = groups.post_pricing_plan_groups(V, pricing_plan_group_create_request=m.PricingPlanGroupCreateRequest(
        reference="ladder", name="Ladder", upgrade_type="IMMEDIATE_PRO_RATA", downgrade_type="NEXT_BILLING_PERIOD",
        cancellation_type="NEXT_BILLING_PERIOD",
        pricing_plans=[m.PricingPlanGroupMemberCreateRequest(pricing_plan_id="pro", order=2),
                       m.PricingPlanGroupMemberCreateRequest(pricing_plan_id=starter.id, order=1)]))
    assert (group.object_type, group.reference, group.status, group.upgrade_type) == (
        "PRICING_PLAN_GROUP", "ladder", "DRAFT", "IMMEDIATE_PRO_RATA")
    # members by id, in their order (the plan named by reference shows its id)
    assert [(p.pricing_plan_id, p.order) for p in group.pricing_plans] == [(starter.id, 1), (pro.id, 2)]
    assert groups.get_pricing_plan_groups_by_resource_id_or_reference(V, group.id).reference == "ladder"
    listed = groups.get_pricing_plan_groups(V)
    assert [g.reference for g in listed.data] == ["ladder"] and listed.total_number_of_pages == 1
    # PATCH replaces the members and renames; the lifecycle moves through its own operations
    patched = groups.update_pricing_plan_groups_by_resource_id_or_reference(
        V, "ladder", pricing_plan_group_update_request=m.PricingPlanGroupUpdateRequest(
            name="Tiers", pricing_plans=[m.PricingPlanGroupMemberUpdateRequest(pricing_plan_id="pro", order=1)]))
    assert (patched.name, [p.pricing_plan_id for p in patched.pricing_plans]) == ("Tiers", [pro.id])
    assert groups.update_pricing_plan_groups_by_resource_id_or_reference_activate(V, "ladder").status == "ACTIVE"
    assert groups.update_pricing_plan_groups_by_resource_id_or_reference_deprecate(V, "ladder").status == \
        "DEPRECATED"
    assert groups.update_pricing_plan_groups_by_resource_id_or_reference_archive(V, "ladder").status == "ARCHIVED"
    with pytest.raises(errors.BadRequestException) as final:
        groups.update_pricing_plan_groups_by_resource_id_or_reference_activate(V, "ladder")
    assert body_of(final.value)["code"] == "INVALID_OPERATION"
    # a group changes nothing that bills: the catalog has the same plans as before
    assert sorted(p["code"] for p in catalog_of(server)["plans"]) == ["pro"]
    assert groups.delete_pricing_plan_groups_by_resource_id_or_reference(V, "ladder").reference == "ladder"
    with pytest.raises(errors.NotFoundException):
        groups.get_pricing_plan_groups_by_resource_id_or_reference(V, "ladder")
    assert plans.get_pricing_plans_by_resource_id_or_reference(V, "pro").reference == "pro"


def test_plan_group_input_is_checked(server: Live) -> None:
    _plans(server)
    groups = server.api(sv.PricingPlanGroupsApi)

    def member(**fields: object) -> m.PricingPlanGroupMemberCreateRequest:
        return m.PricingPlanGroupMemberCreateRequest.model_construct(**fields)

    def create(**fields: object) -> dict:
        base = {"reference": "g", "upgrade_type": "IMMEDIATE", "downgrade_type": "IMMEDIATE",
                "cancellation_type": "IMMEDIATE", **fields}
        with pytest.raises(errors.BadRequestException) as bad:
            groups.post_pricing_plan_groups(V, pricing_plan_group_create_request=(
                m.PricingPlanGroupCreateRequest.model_construct(**base)))
        return body_of(bad.value)

    assert create(pricing_plans=[member(pricing_plan_id="ghost")])["field"] == "pricing_plans.0.pricing_plan_id"
    assert create(pricing_plans=[member(pricing_plan_id="pro"), member(pricing_plan_id="pro")])["field"] == \
        "pricing_plans.1.pricing_plan_id"
    assert create(upgrade_type="SOMETIMES")["field"] == "upgrade_type"
    assert create(pricing_plans=[member(pricing_plan_id="pro", order=-1)])["field"] == "pricing_plans.0.order"
    with pytest.raises(errors.NotFoundException):
        groups.update_pricing_plan_groups_by_resource_id_or_reference_activate(V, "ghost")


def test_catalog_searches_share_one_semantics(server: Live) -> None:
    _plans(server)
    plans = server.api(sv.PricingPlansApi)
    found = plans.post_pricing_plans_search(V, search_create_request=_search(
        m.SearchFieldCreateRequest(name="name", value="st", wildcard_start=True, wildcard_end=True,
                                   ignore_case=True)))
    assert [p.reference for p in found.data] == ["starter"]
    every = plans.post_pricing_plans_search(V)  # no body: every plan
    assert sorted(p.reference for p in every.data) == ["pro", "starter"]
    products = server.api(sv.ProductsApi)
    assert [p.reference for p in products.post_products_search(V, search_create_request=_search(
        m.SearchFieldCreateRequest(name="reference", value="assist", wildcard_end=True))).data] == ["assistant"]
    assert products.post_products_search(V, search_create_request=_search(
        m.SearchFieldCreateRequest(name="reference", value="assist"))).data == []  # no wildcard: whole value
    items = server.api(sv.ProductItemsApi)
    usage = items.post_product_items_search(V, search_create_request=_search(filters=(
        m.FilterFieldCreateRequest(name="model_type", values=["usage_based"]),)))
    assert [i.reference for i in usage.data] == ["tokens"]
    categories = server.api(sv.ProductCategoriesApi)
    assert [c.reference for c in categories.post_product_categories_search(V, search_create_request=_search(
        m.SearchFieldCreateRequest(name="name", value="AI"))).data] == ["ai"]
    # an unknown field is a 400 naming the fields the resource knows
    with pytest.raises(errors.BadRequestException) as bad:
        products.post_products_search(V, search_create_request=_search(
            m.SearchFieldCreateRequest(name="colour", value="red")))
    assert body_of(bad.value)["field"] == "search_fields.0.name" and "reference" in body_of(bad.value)["message"]
    with pytest.raises(errors.BadRequestException) as bad:
        plans.post_pricing_plans_search(V, search_create_request=m.SearchCreateRequest(
            selection_rule_fields=[m.SelectionRuleFieldCreateRequest()]))
    assert body_of(bad.value)["field"] == "selection_rule_fields"


def test_put_upserts_plans_versions_and_features_by_reference(server: Live) -> None:
    _plans(server)
    plans = server.api(sv.PricingPlansApi)
    pro = plans.get_pricing_plans_by_resource_id_or_reference(V, "pro")
    # an existing plan: updated (a rename reaches the catalog plan), same id
    renamed = plans.update_pricing_plans(V, pricing_plan_create_request=m.PricingPlanCreateRequest(
        reference="pro", name="Pro 2026"))
    assert (renamed.id, renamed.name) == (pro.id, "Pro 2026")
    assert [p["name"] for p in catalog_of(server)["plans"]] == ["Pro 2026"]
    # a new one: created
    made = plans.update_pricing_plans(V, pricing_plan_create_request=m.PricingPlanCreateRequest(
        reference="team", name="Team", pricing_currencies=["EUR"]))
    assert plans.get_pricing_plans_by_resource_id_or_reference(V, "team").id == made.id
    versions = server.api(sv.PricingPlanVersionsApi)
    # a version without a number: a new DRAFT; with the number of one: an update of it (the SDK
    # never sends a request's id, so the plan and the number name the version)
    draft = versions.update_pricing_plan_versions(V, pricing_plan_version_create_request=(
        m.PricingPlanVersionCreateRequest(pricing_plan_id="team", pricing_currency_settings=(
            m.PricingCurrencySettingsCreateRequest(default_pricing_currency="EUR")))))
    assert (draft.status, draft.version) == ("DRAFT", 1)
    moved = versions.update_pricing_plan_versions(V, pricing_plan_version_create_request=(
        m.PricingPlanVersionCreateRequest(pricing_plan_id=made.id, version=1, pricing_currency_settings=(
            m.PricingCurrencySettingsCreateRequest(default_pricing_currency="USD")))))
    assert moved.id == draft.id
    assert moved.pricing_currency_settings.default_pricing_currency == "USD"
    # a raw client may name the version by id
    by_id = server.http("PUT", "/v1/pricing-plan-versions", json={
        "id": draft.id, "pricing_currency_settings": {"default_pricing_currency": "EUR"}})
    assert by_id.status_code == 201 and by_id.json()["id"] == draft.id, by_id.text
    assert by_id.json()["pricing_currency_settings"]["default_pricing_currency"] == "EUR"
    assert server.http("PUT", "/v1/pricing-plan-versions", json={"id": "ppv_ghost"}).status_code == 404
    with pytest.raises(errors.BadRequestException) as bad:  # a number ratecard has not given
        versions.update_pricing_plan_versions(V, pricing_plan_version_create_request=(
            m.PricingPlanVersionCreateRequest(pricing_plan_id="team", version=7)))
    assert body_of(bad.value)["field"] == "version"
    features = server.api(sv.FeaturesApi)
    created = features.update_features(V, feature_create_request=m.FeatureCreateRequest(
        reference="sso", name="SSO", type="SWITCH"))
    again = features.update_features(V, feature_create_request=m.FeatureCreateRequest(
        reference="sso", name="Single sign-on", type="SWITCH"))
    assert (again.id, again.name) == (created.id, "Single sign-on")
    assert [(f["code"], f.get("name")) for f in catalog_of(server)["features"]] == [("sso", "Single sign-on")]
    with pytest.raises(errors.BadRequestException) as changed:
        features.update_features(V, feature_create_request=m.FeatureCreateRequest(reference="sso", type="NUMBER"))
    assert body_of(changed.value)["field"] == "type"


def test_hostile_searches_are_a_400_naming_the_field(server: Live) -> None:
    _products(server)
    for body, field in (([], None), ({"search_fields": [{"name": "name", "value": "x"}] * 21}, "search_fields"),
                        ({"search_fields": [{"name": "name", "value": "x" * 257}]}, "search_fields.0.value"),
                        ({"search_fields": [{"name": "name", "value": "x", "ignore_case": "yes"}]},
                         "search_fields.0.ignore_case"),
                        ({"filter_fields": [{"name": "status", "values": ["A"] * 101}]}, "filter_fields.0.values"),
                        ({"filter_fields": [{"name": "status", "value": 7}]}, "filter_fields.0.values"),
                        ({"sort": "name"}, "sort")):
        response = server.http("POST", "/v1/products/search", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["field"] == field, response.text
    response = server.http("POST", "/v1/products/search", content=b'{"search_fields": [{"name": "na\\u0000me"}]}',
                           headers={"content-type": "application/json"})
    assert response.status_code == 400
