"""Solvimon's catalog resources (product categories, products, product items, pricing plans, their
versions, pricings and pricing groups) driven with the published SDK against a live server, on
SQLite and PostgreSQL: a plan drafted and published through the SDK is a catalog plan, and an
invoice run prices with it."""

from __future__ import annotations

from typing import Any

import pytest

from ..solvimon_sdk import errors, m, sv
from . import test_solvimon_sdk as sdk_tests
from .test_solvimon_sdk import (
    Live,
    V,
    body_of,
    catalog_of,
    create_calculation,
    create_customer,
    event,
    send_many,
    setup_llm_meter,
)
from .test_solvimon_subscriptions import subscribe

server = sdk_tests.server  # the live server fixture, on both stores


def amount(quantity: str, currency: str = "EUR") -> m.Amount:
    return m.Amount(quantity=quantity, currency=currency)


def flat(quantity: str, **band: Any) -> m.PricingItemConfig:
    return m.PricingItemConfig(type="FLAT", bands=[m.PricingItemConfigBand(amount=amount(quantity), **band)])


def tiered(*bands: tuple[str | None, str], kind: str = "TIERED") -> m.PricingItemConfig:
    return m.PricingItemConfig(type=kind, bands=[
        m.PricingItemConfigBand(amount=amount(price),
                                tier_top_bound=m.PricingItemConfigMeterValue(number=top) if top else None)
        for top, price in bands])


def _products(live: Live) -> dict[str, Any]:
    """Meter llm_usage with calculation tokens_sum; a category, a product and two items (usage, fee)."""
    setup_llm_meter(live)
    create_calculation(live.api(sv.MeterValueCalculationsApi), reference="tokens_sum", calculation_type="SUM",
                       meter_id="llm_usage", meter_value_id="tokens")
    categories = live.api(sv.ProductCategoriesApi)
    category = categories.post_product_categories(V, product_category_create_request=m.ProductCategoryCreateRequest(
        name="AI", reference="ai"))
    products = live.api(sv.ProductsApi)
    product = products.post_products(V, product_create_request=m.ProductCreateRequest(
        name="Assistant", reference="assistant", category_id=category.id))
    items = live.api(sv.ProductItemsApi)
    tokens = items.post_product_items(V, product_item_create_request=m.ProductItemCreateRequest(
        product_id=product.id, name="Tokens", reference="tokens", model_type="USAGE_BASED",
        usage_based=m.ProductItemUsageBasedCreateRequest(meter_value_calculation_id="tokens_sum")))
    seat = items.post_product_items(V, product_item_create_request=m.ProductItemCreateRequest(
        product_id="assistant", name="Platform fee", reference="platform", model_type="RECURRING"))
    return {"category": category, "product": product, "tokens": tokens, "seat": seat}


def test_products_and_items_round_trip(server: Live) -> None:
    made = _products(server)
    product, tokens = made["product"], made["tokens"]
    assert (product.object_type, product.reference, product.status, product.category_id) == (
        "PRODUCT", "assistant", "DRAFT", made["category"].id)
    assert tokens.product_id == product.id and tokens.model_type == "USAGE_BASED"
    calculation = server.api(sv.MeterValueCalculationsApi).get_meter_value_calculations_by_resource_id(
        V, "tokens_sum")
    assert tokens.usage_based.meter_value_calculation_id == calculation.id
    products = server.api(sv.ProductsApi)
    assert products.post_products_by_resource_id_or_reference_activate(V, "assistant").status == "ACTIVE"
    got = products.get_products_by_resource_id_or_reference(V, product.id, expand=["category"])
    assert got.category.reference == "ai" and got.status == "ACTIVE"
    assert [p.reference for p in products.get_products(V, statuses=["ACTIVE"]).data] == ["assistant"]
    items = server.api(sv.ProductItemsApi)
    assert sorted(i.reference for i in items.get_product_items(V, product_id="assistant").data) == ["platform",
                                                                                                     "tokens"]
    renamed = items.update_product_items_by_resource_id_or_reference(V, "platform", product_item_update_request=(
        m.ProductItemUpdateRequest(name="Platform")))
    assert renamed.name == "Platform" and renamed.model_type == "RECURRING"
    # a product with items cannot go; an item can
    with pytest.raises(errors.BadRequestException) as refused:
        products.delete_products_by_resource_id_or_reference(V, "assistant")
    assert body_of(refused.value)["code"] == "INVALID_OPERATION"
    assert items.delete_product_items_by_resource_id_or_reference(V, "platform").reference == "platform"
    with pytest.raises(errors.NotFoundException):
        items.get_product_items_by_resource_id_or_reference(V, "platform")
    categories = server.api(sv.ProductCategoriesApi)
    assert [c.reference for c in categories.get_product_categories(V).data] == ["ai"]
    # PUT upserts by reference: an update of "ai", a new "ops"
    renamed = categories.update_product_categories(V, product_category_create_request=m.ProductCategoryCreateRequest(
        name="Artificial intelligence", reference="ai"))
    assert (renamed.id, renamed.name) == (made["category"].id, "Artificial intelligence")
    categories.update_product_categories(V, product_category_create_request=m.ProductCategoryCreateRequest(
        name="Ops", reference="ops"))
    assert sorted(c.reference for c in categories.get_product_categories(V).data) == ["ai", "ops"]


def test_hostile_product_input_is_a_400_or_404(server: Live) -> None:
    _products(server)
    items = server.api(sv.ProductItemsApi)
    # a usage item naming a calculation that does not exist
    with pytest.raises(errors.BadRequestException) as bad:
        items.post_product_items(V, product_item_create_request=m.ProductItemCreateRequest(
            product_id="assistant", name="X", reference="x", model_type="USAGE_BASED",
            usage_based=m.ProductItemUsageBasedCreateRequest(meter_value_calculation_id="nope")))
    assert body_of(bad.value)["field"] == "usage_based.meter_value_calculation_id"
    with pytest.raises(errors.BadRequestException) as bad:
        items.post_product_items(V, product_item_create_request=m.ProductItemCreateRequest(
            product_id="ghost", name="X", reference="x", model_type="RECURRING"))
    assert body_of(bad.value)["field"] == "product_id"
    # a name beyond 256 characters, a reference with whitespace (sent past the SDK's own checks)
    for request in (m.ProductCreateRequest.model_construct(reference="long", name="n" * 300),
                    m.ProductCreateRequest.model_construct(reference="has space", name="ok")):
        with pytest.raises(errors.BadRequestException) as bad:
            server.api(sv.ProductsApi).post_products(V, product_create_request=request)
        assert body_of(bad.value)["code"] == "INVALID_FIELD"
    with pytest.raises(errors.NotFoundException) as missing_:
        server.api(sv.ProductCategoriesApi).get_product_categories_by_resource_id_or_reference(V, "ghost")
    assert body_of(missing_.value)["code"] == "RESOURCE_NOT_FOUND"
    with pytest.raises(errors.ApiException) as conflict:
        server.api(sv.ProductsApi).post_products(V, product_create_request=m.ProductCreateRequest(
            reference="assistant", name="again"))
    assert conflict.value.status == 409


def _draft_plan(live: Live) -> tuple[m.PricingPlan, m.PricingPlanVersion]:
    plans = live.api(sv.PricingPlansApi)
    plan = plans.post_pricing_plans(V, pricing_plan_create_request=m.PricingPlanCreateRequest(
        reference="pro", name="Pro", pricing_currencies=["EUR"]))
    versions = live.api(sv.PricingPlanVersionsApi)
    draft = versions.post_pricing_plan_versions(V, pricing_plan_version_create_request=(
        m.PricingPlanVersionCreateRequest(pricing_plan_id=plan.id, pricing_currency_settings=(
            m.PricingCurrencySettingsCreateRequest(default_pricing_currency="EUR")))))
    return plan, draft


def test_a_published_version_is_a_catalog_plan_that_bills(server: Live) -> None:
    _products(server)
    plan, draft = _draft_plan(server)
    assert (draft.status, draft.version, draft.pricing_plan_id) == ("DRAFT", 1, plan.id)
    pricings = server.api(sv.PricingsApi)
    # usage: 1000 tokens free at 0.002, then 0.001 per token; a monthly fee of 20.00
    pricings.post_pricings(V, pricing_create_request=m.PricingCreateRequest(
        pricing_plan_version_id=draft.id, product_ids=["assistant"], name="Tokens",
        items=[m.PricingItemCreateRequest(product_item_ids=["tokens"],
                                          configs=[tiered(("1000", "0.002"), (None, "0.001"))])]))
    group = server.api(sv.PricingGroupsApi).post_pricing_groups(V, pricing_group_create_request=(
        m.PricingGroupCreateRequest(pricing_plan_version_id=draft.id, name="Fees", pricings=[
            m.PricingCreateRequest(product_ids=["assistant"], items=[
                m.PricingItemCreateRequest(product_item_ids=["platform"], configs=[flat("20.00")])])])))
    assert group.pricings[0].items[0].configs[0].bands[0].amount.quantity == "20.00"
    # drafts are outside the catalog: no plan yet
    assert catalog_of(server).get("plans", []) == []
    assert server.api(sv.PricingPlansApi).get_pricing_plans_by_resource_id_or_reference(V, "pro").id == plan.id

    versions = server.api(sv.PricingPlanVersionsApi)
    published = versions.update_pricing_plan_versions_by_resource_id(V, draft.id, pricing_plan_version_update_request=(
        m.PricingPlanVersionUpdateRequest(status="ACTIVE")))
    assert published.status == "ACTIVE"
    pro = {p["code"]: p for p in catalog_of(server)["plans"]}["pro"]
    assert (pro["name"], pro["currency"], pro["interval"]) == ("Pro", "EUR", "month")
    assert [{k: v for k, v in charge.items() if v is not None} for charge in pro["charges"]] == [
        {"code": "tokens", "model": "graduated", "meter": "tokens_sum", "description": "Tokens",
         "tiers": [{"up_to": "1000", "unit_amount": "0.002", "flat_amount": "0", "rate": None},
                   {"up_to": None, "unit_amount": "0.001", "flat_amount": "0", "rate": None}]},
        {"code": "platform", "model": "flat", "amount": "20.00", "description": "Platform fee"}]
    got = server.api(sv.PricingPlansApi).get_pricing_plans_by_resource_id_or_reference(V, plan.id)
    assert (got.reference, got.pricing_currencies) == ("pro", ["EUR"])
    assert [(i.version, i.status) for i in got.pricing_plan_version_infos] == [(1, "ACTIVE")]
    # a published version does not change
    with pytest.raises(errors.BadRequestException) as frozen:
        pricings.post_pricings(V, pricing_create_request=m.PricingCreateRequest(
            pricing_plan_version_id=draft.id, product_ids=["assistant"],
            items=[m.PricingItemCreateRequest(product_item_ids=["tokens"], configs=[flat("1")])]))
    assert body_of(frozen.value)["code"] == "INVALID_OPERATION"

    # a subscription on it, events, an invoice run: 1500 tokens = 1000 x 0.002 + 500 x 0.001 = 2.50, + 20.00
    create_customer(server.api(sv.CustomersApi), m.CustomerCreateRequest(
        type="ORGANIZATION", reference="acme", organization=m.OrganizationCreateRequest(legal_name="Acme")))
    server.api(sv.CustomersApi).post_customers_by_resource_id_or_reference_activate(V, "acme")
    # with the SDK alone: init names the pricing plan by the id its create answered
    subscribe(server.api(sv.PricingPlanSubscriptionsApi), "acme-pro", plan.id, "2026-01-01")
    assert [s["plan"] for s in catalog_of(server)["subscriptions"]] == ["pro"]
    send_many(server.api(sv.IngestApi), [event("event-0001", values={"tokens": "1200"}),
                                         event("event-0002", values={"tokens": "300"})])
    run = server.http("POST", "/v1/invoice-runs", json={"until": "2026-02-01"})
    assert run.status_code == 200, run.text
    invoice = server.api(sv.InvoicesApi).get_invoices(V, customer_id="acme", include_lines=True).data[0]
    assert invoice.invoice_amount_including_tax.quantity == "22.50"  # no tax rate: tax is 0

    # version 2, copied from 1, changes the fee; publishing it archives version 1
    second = versions.post_pricing_plan_versions(V, pricing_plan_version_create_request=(
        m.PricingPlanVersionCreateRequest(pricing_plan_id="pro", copied_from_pricing_plan_version_id=draft.id)))
    assert second.version == 2 and second.status == "DRAFT"
    fee = second.pricing_categories[0].pricing_groups[0].pricings[0]
    pricings.update_pricings_by_resource_id(V, fee.id, pricing_update_request=m.PricingUpdateRequest(
        items=[m.PricingItemUpdateRequest(product_item_ids=["platform"], configs=[flat("25.00")])]))
    versions.update_pricing_plan_versions_by_resource_id(V, second.id, pricing_plan_version_update_request=(
        m.PricingPlanVersionUpdateRequest(status="ACTIVE")))
    fees = [c for p in catalog_of(server)["plans"] for c in p["charges"] if c["code"] == "platform"]
    assert [c["amount"] for c in fees] == ["25.00"]
    infos = server.api(sv.PricingPlansApi).get_pricing_plans_by_resource_id_or_reference(V, "pro")
    assert [(i.version, i.status) for i in infos.pricing_plan_version_infos] == [(1, "ARCHIVED"), (2, "ACTIVE")]
    assert versions.get_pricing_plan_versions_by_resource_id(V, draft.id).status == "ARCHIVED"
    # the plan has a subscription: it cannot be deleted
    with pytest.raises(errors.BadRequestException):
        server.api(sv.PricingPlansApi).delete_pricing_plans_by_resource_id_or_reference(V, "pro")


def test_yaml_plans_read_as_pricing_plans(server: Live) -> None:
    setup_llm_meter(server)
    create_calculation(server.api(sv.MeterValueCalculationsApi), reference="tokens_sum", calculation_type="SUM",
                       meter_id="llm_usage", meter_value_id="tokens")
    document = catalog_of(server)
    document["plans"] = [{"code": "basic", "name": "Basic", "currency": "USD", "interval": "year", "charges": [
        {"code": "base", "model": "flat", "amount": "100"},
        {"code": "tok", "model": "package", "meter": "tokens_sum", "package_size": "1000", "package_amount": "1.5"}]}]
    response = server.http("POST", "/v1/catalog", content=__import__("yaml").safe_dump(document).encode(),
                           headers={"content-type": "application/yaml"})
    assert response.status_code == 201, response.text
    plans = server.api(sv.PricingPlansApi)
    listed = plans.get_pricing_plans(V)
    assert [(p.reference, p.pricing_currencies) for p in listed.data] == [("basic", ["USD"])]
    plan = plans.get_pricing_plans_by_resource_id_or_reference(V, "basic")
    assert plans.get_pricing_plans_by_resource_id_or_reference(V, plan.id).reference == "basic"
    info = plan.pricing_plan_version_infos[0]
    version = server.api(sv.PricingPlanVersionsApi).get_pricing_plan_versions_by_resource_id(
        V, info.id, expand=["pricing_plan"])
    assert (version.pricing_plan_id, version.pricing_plan.reference) == (plan.id, "basic")
    assert version.billing_period_settings.billing_periods[0].period.type == "YEAR"
    configs = [p.items[0].configs[0] for p in version.pricing_categories[0].pricings]
    assert configs[0].bands[0].amount.quantity == "100"
    assert (configs[1].bands[0].block_size.number, configs[1].bands[0].amount.quantity) == ("1000", "1.5")


def test_hostile_pricing_input_is_a_400_or_404(server: Live) -> None:
    _products(server)
    _, draft = _draft_plan(server)
    pricings = server.api(sv.PricingsApi)

    def refused(items: list[Any], **fields: Any) -> dict:
        request = m.PricingCreateRequest.model_construct(pricing_plan_version_id=draft.id, product_ids=["assistant"],
                                                         items=items, **fields)
        with pytest.raises(errors.BadRequestException) as bad:
            pricings.post_pricings(V, pricing_create_request=request)
        return body_of(bad.value)

    item = m.PricingItemCreateRequest
    assert refused([item(product_item_ids=["ghost"], configs=[flat("1")])])["field"] == "items.0.product_item_ids.0"
    assert refused([item(product_item_ids=["tokens"], configs=[flat("-1")])])["field"] == \
        "items.0.configs.0.bands.0.amount.quantity"
    assert refused([item(product_item_ids=["tokens"], configs=[flat("1", maximum_amount=amount("5"))])])["field"] == \
        "items.0.configs.0.bands.0.maximum_amount"
    usd = m.PricingItemConfig(type="FLAT", bands=[m.PricingItemConfigBand(amount=amount("1", "USD"))])
    assert refused([item(product_item_ids=["tokens"], configs=[usd])])["field"] == \
        "items.0.configs.0.bands.0.amount.currency"
    assert refused([item(product_item_ids=["tokens"], configs=[m.PricingItemConfig(type="PASS_THROUGH", bands=[])])]
                   )["field"] == "items.0.configs.0.pricing_type"
    assert refused([item(product_item_ids=["tokens"], configs=[tiered(("10", "1"), ("5", "1"), (None, "0"))])]
                   )["message"]
    with pytest.raises(errors.NotFoundException):
        server.api(sv.PricingPlanVersionsApi).get_pricing_plan_versions_by_resource_id(V, "ppv_ghost")
    with pytest.raises(errors.NotFoundException):
        server.api(sv.PricingPlansApi).get_pricing_plans_by_resource_id_or_reference(V, "ghost")
    with pytest.raises(errors.BadRequestException) as bad:
        server.api(sv.PricingPlanVersionsApi).post_pricing_plan_versions(V, pricing_plan_version_create_request=(
            m.PricingPlanVersionCreateRequest(pricing_plan_id="ghost")))
    assert body_of(bad.value)["field"] == "pricing_plan_id"
    # nothing was saved: still no plan in the catalog, the draft has no pricing
    assert catalog_of(server).get("plans", []) == []
    version = server.api(sv.PricingPlanVersionsApi).get_pricing_plan_versions_by_resource_id(V, draft.id)
    assert version.pricing_categories[0].pricings == []


def test_drafts_groups_and_plans_are_edited_and_deleted(server: Live) -> None:
    _products(server)
    plan, draft = _draft_plan(server)
    groups = server.api(sv.PricingGroupsApi)
    group = groups.post_pricing_groups(V, pricing_group_create_request=m.PricingGroupCreateRequest(
        pricing_plan_version_id=draft.id, name="Usage"))
    pricings = server.api(sv.PricingsApi)
    pricing = pricings.post_pricings(V, pricing_create_request=m.PricingCreateRequest(
        pricing_plan_version_id=draft.id, pricing_group_id=group.id, product_ids=["assistant"],
        items=[m.PricingItemCreateRequest(product_item_ids=["tokens"], configs=[flat("0.01")])]))
    renamed = groups.update_pricing_groups_by_resource_id(V, group.id, pricing_group_update_request=(
        m.PricingGroupUpdateRequest(name="Metered")))
    assert (renamed.name, [p.id for p in renamed.pricings]) == ("Metered", [pricing.id])
    # a group holding pricings stays; emptied, it goes
    with pytest.raises(errors.BadRequestException):
        groups.delete_pricing_groups_by_resource_id(V, group.id)
    assert pricings.delete_pricings_by_resource_id(V, pricing.id).id == pricing.id
    assert groups.delete_pricing_groups_by_resource_id(V, group.id).id == group.id
    with pytest.raises(errors.NotFoundException):
        groups.get_pricing_groups_by_resource_id(V, group.id)
    versions = server.api(sv.PricingPlanVersionsApi)
    assert versions.delete_pricing_plan_versions_by_resource_id(V, draft.id).status == "DRAFT"
    with pytest.raises(errors.NotFoundException):
        versions.get_pricing_plan_versions_by_resource_id(V, draft.id)
    plans = server.api(sv.PricingPlansApi)
    patched = plans.update_pricing_plans_by_resource_id_or_reference(V, "pro", pricing_plan_update_request=(
        m.PricingPlanUpdateRequest(description="For teams")))
    assert (patched.id, patched.description, patched.pricing_plan_version_infos) == (plan.id, "For teams", [])
    assert [p.reference for p in plans.get_pricing_plans(V).data] == ["pro"]
    assert plans.delete_pricing_plans_by_resource_id_or_reference(V, plan.id).reference == "pro"
    assert plans.get_pricing_plans(V).data == []
    items = server.api(sv.ProductItemsApi)
    assert items.post_product_items_by_resource_id_or_reference_deprecate(V, "tokens").status == "DEPRECATED"
    assert items.post_product_items_by_resource_id_or_reference_archive(V, "tokens").status == "ARCHIVED"
    with pytest.raises(errors.BadRequestException):  # archived is final
        items.post_product_items_by_resource_id_or_reference_activate(V, "tokens")
