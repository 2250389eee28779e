"""Coupons and promotion codes changed through the published SDK on both stores: PATCH, activate,
deactivate, deprecate, archive, and new promotion codes. What a user sees: a coupon or code that is
not ACTIVE turns away a subscription that would take it from then on (the catalog write is
refused), the subscriptions that already carry it keep it, and a subscription that names a
promotion code gets its coupon's discount on the invoice."""

from __future__ import annotations

from typing import Any

import pytest

from ..solvimon_sdk import errors, m, sv
from .test_solvimon_invoice_actions import CATALOG, JANUARY_TOTAL
from .test_solvimon_sdk import Live, V, apply_catalog, body_of, catalog_of, server  # noqa: F401

WITH_COUPON = CATALOG.replace(
    "subscriptions:\n", "coupons:\n  - {code: SPRING, percent_off: \"10\", duration: once}\nsubscriptions:\n")


def _apply(live: Live, document: dict[str, Any]) -> Any:
    import yaml

    return live.http("POST", "/v1/catalog", content=yaml.safe_dump(document).encode(),
                     headers={"content-type": "application/yaml"})


def _with_subscription(live: Live, coupon: str, reference: str = "acme-next") -> Any:
    """The current catalog plus a subscription starting in 2027 that takes `coupon`."""
    document = catalog_of(live)
    first = document["subscriptions"][0]
    document["subscriptions"].append({"reference": reference, "customer": first["customer"], "plan": first["plan"],
                                      "start": "2027-03-01", "coupons": [coupon], "requires_reference": True})
    return _apply(live, document)


def _start(live: Live) -> tuple[sv.CouponsApi, sv.PromotionCodesApi]:
    response = live.http("POST", "/v1/catalog", content=WITH_COUPON.encode(),
                         headers={"content-type": "application/yaml"})
    assert response.status_code == 201, response.text
    return live.api(sv.CouponsApi), live.api(sv.PromotionCodesApi)


def test_a_coupon_that_is_not_active_cannot_be_redeemed(server: Live) -> None:  # noqa: F811
    coupons, _ = _start(server)
    # a subscription that took the coupon while it was active keeps it
    document = catalog_of(server)
    document["subscriptions"][0]["coupons"] = ["SPRING"]
    apply_catalog(server, document)
    inactive = coupons.post_coupons_by_resource_id_or_reference_deactivate(V, "SPRING")
    assert (inactive.status, inactive.number_of_redemptions) == ("INACTIVE", 1)
    refused = _with_subscription(server, "SPRING")
    assert refused.status_code >= 400 and "coupon 'SPRING' is inactive" in refused.text
    assert catalog_of(server)["subscriptions"][0]["coupons"] == ["SPRING"]
    assert [c.reference for c in coupons.get_coupons(V, statuses=["INACTIVE"]).data] == ["SPRING"]
    # active again: redeemable again
    assert coupons.post_coupons_by_resource_id_or_reference_activate(V, "cpn_SPRING").status == "ACTIVE"
    assert _with_subscription(server, "SPRING").status_code == 201
    assert coupons.get_coupons_by_resource_id_or_reference(V, "SPRING").number_of_redemptions == 2
    # deprecated: no new subscriptions either; archived is final
    assert coupons.post_coupons_by_resource_id_or_reference_deprecate(V, "SPRING").status == "DEPRECATED"
    assert "is deprecated" in _with_subscription(server, "SPRING", "acme-third").text
    assert coupons.post_coupons_by_resource_id_or_reference_archive(V, "SPRING").status == "ARCHIVED"
    with pytest.raises(errors.BadRequestException) as final:
        coupons.post_coupons_by_resource_id_or_reference_activate(V, "SPRING")
    assert body_of(final.value)["code"] == "INVALID_OPERATION"
    with pytest.raises(errors.NotFoundException):
        coupons.post_coupons_by_resource_id_or_reference_deactivate(V, "GHOST")


def test_patch_changes_a_coupon_in_a_new_catalog_version(server: Live) -> None:  # noqa: F811
    coupons, _ = _start(server)
    patched = coupons.update_coupons_by_resource_id_or_reference(V, "SPRING", coupon_update_request=(
        m.CouponUpdateRequest(description="Spring sale", maximum_redemptions=5, discount=m.CouponDiscountUpdateRequest(
            type="PERCENTAGE", percentage="15"))))
    assert (patched.description, patched.maximum_redemptions, patched.discount.percentage) == (
        "Spring sale", 5, "15")
    [coupon] = catalog_of(server)["coupons"]
    assert (coupon["percent_off"], coupon["max_redemptions"], coupon["description"]) == ("15", 5, "Spring sale")
    assert coupons.update_coupons_by_resource_id_or_reference(V, "SPRING", coupon_update_request=(
        m.CouponUpdateRequest(status="INACTIVE"))).status == "INACTIVE"
    with pytest.raises(errors.BadRequestException) as bad:
        coupons.update_coupons_by_resource_id_or_reference(V, "SPRING", coupon_update_request=(
            m.CouponUpdateRequest(reference="AUTUMN")))
    assert body_of(bad.value)["field"] == "reference"


def test_an_archived_coupon_keeps_its_discount_for_the_subscriptions_that_kept_it(server: Live) -> None:  # noqa: F811
    coupons, _ = _start(server)
    document = catalog_of(server)
    document["subscriptions"][0]["coupons"] = ["SPRING"]
    apply_catalog(server, document)
    assert coupons.post_coupons_by_resource_id_or_reference_archive(V, "SPRING").status == "ARCHIVED"
    with pytest.raises(errors.BadRequestException) as final:
        coupons.update_coupons_by_resource_id_or_reference(V, "SPRING", coupon_update_request=(
            m.CouponUpdateRequest(discount=m.CouponDiscountUpdateRequest(type="PERCENTAGE", percentage="90"))))
    assert (body_of(final.value)["code"], body_of(final.value)["field"]) == ("INVALID_OPERATION", "discount")
    [coupon] = catalog_of(server)["coupons"]
    assert (coupon["percent_off"], coupon["status"]) == ("10", "archived")
    renamed = coupons.update_coupons_by_resource_id_or_reference(V, "SPRING", coupon_update_request=(
        m.CouponUpdateRequest(description="Spring sale (ended)")))
    assert (renamed.description, renamed.discount.percentage, renamed.status) == ("Spring sale (ended)", "10", "ARCHIVED")


def test_a_promotion_code_takes_its_coupon_within_its_own_limits(server: Live) -> None:  # noqa: F811
    coupons, codes = _start(server)
    friends = codes.post_promotion_codes(V, promotion_code_create_request=m.PromotionCodeCreateRequest(
        coupon_id="cpn_SPRING", code="FRIENDS", maximum_redemptions=1))
    assert (friends.id, friends.code, friends.coupon_id, friends.status) == (
        "promo_FRIENDS", "FRIENDS", "cpn_SPRING", "ACTIVE")
    assert sorted(p.code for p in codes.get_promotion_codes(V, coupon_id="cpn_SPRING").data) == ["FRIENDS", "SPRING"]
    # a subscription naming the code gets the coupon's 10 % off the January invoice
    document = catalog_of(server)
    document["subscriptions"][0]["coupons"] = ["FRIENDS"]
    apply_catalog(server, document)
    run = server.http("POST", "/v1/invoice-runs", json={"until": "2026-02-01"})
    assert run.status_code == 200, run.text
    drafts = server.api(sv.InvoicesApi).get_invoices(V, statuses=["DRAFT"]).data
    january = min(drafts, key=lambda draft: draft.invoice_date)  # the cut at the start, 2026-01-15
    # 49 × 17/31 = 26.87, 10 % off: 24.18; 19 % tax: 4.59; total 28.77 (not 31.98 without it)
    assert (JANUARY_TOTAL, january.invoice_amount_including_tax.quantity) == ("31.98", "28.77")
    assert codes.get_promotion_codes_by_resource_id_or_reference(V, "FRIENDS").number_of_redemptions == 1
    assert coupons.get_coupons_by_resource_id_or_reference(V, "SPRING").number_of_redemptions == 1
    # its own maximum (1) is reached
    assert "can be redeemed 1 time(s)" in _with_subscription(server, "FRIENDS").text
    # deactivated: refused as such, while the coupon's own code still works
    assert codes.post_promotion_codes_by_resource_id_or_reference_deactivate(V, "promo_FRIENDS").status == "INACTIVE"
    assert "promotion code 'FRIENDS' is inactive" in _with_subscription(server, "FRIENDS").text
    assert _with_subscription(server, "SPRING").status_code == 201
    assert codes.post_promotion_codes_by_resource_id_or_reference_activate(V, "FRIENDS").status == "ACTIVE"
    assert codes.post_promotion_codes_by_resource_id_or_reference_deprecate(V, "FRIENDS").status == "DEPRECATED"
    assert codes.post_promotion_codes_by_resource_id_or_reference_archive(V, "FRIENDS").status == "ARCHIVED"
    # the coupon's own code follows the coupon; a code is unique among coupons and codes
    with pytest.raises(errors.BadRequestException) as own:
        codes.post_promotion_codes_by_resource_id_or_reference_deactivate(V, "SPRING")
    assert body_of(own.value)["code"] == "INVALID_OPERATION"
    for code in ("SPRING", "FRIENDS"):
        with pytest.raises(Exception) as taken:  # noqa: PT011 - 409 (ConflictException) in the SDK
            codes.post_promotion_codes(V, promotion_code_create_request=m.PromotionCodeCreateRequest(
                coupon_id="SPRING", code=code))
        assert taken.value.status == 409
    with pytest.raises(errors.BadRequestException) as bad:
        codes.post_promotion_codes(V, promotion_code_create_request=m.PromotionCodeCreateRequest(
            coupon_id="GHOST", code="NEW"))
    assert body_of(bad.value)["field"] == "coupon_id"
