"""Acting on invoices through the published Solvimon SDK against a live server, on both stores:
PATCH (finalize, hold, void), credit and credit_and_copy, UBL 2.1 / e-invoice / PDF bytes,
send_by_email, pay / refund and the invoice's payments, search and preview; hostile input answers
the error envelope (400/404), never a 500.

The workspace is tests/integration/payments_workspace.py's: customer acme (Stripe customer
cus_acme, 19 % tax), plan pro with a 49.00 base fee billed in advance from 2026-01-15; the
January invoice bills 17/31 of it: 49 × 17/31 = 26.870… → 26.87, tax 19 % = 5.1053 → 5.11,
total 31.98.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from ..integration.payments_workspace import PAYMENTS_CATALOG
from ..smtp_inbox import local_smtp
from ..solvimon_sdk import errors, m, sv
from ..stripe_standin import StripeStandIn
from .test_solvimon_sdk import Live, V, body_of, server  # noqa: F401 - `server` is the live-server fixture

JANUARY_TOTAL = "31.98"
# the seller's and the buyer's tax ids and addresses, which an EN 16931 e-invoice requires
CATALOG = PAYMENTS_CATALOG.replace(
    "billing_entity: {name: Acme Cloud BV,",
    "billing_entity: {name: Acme Cloud BV, tax_id: NL123456789B01, address: {lines: [Keizersgracht 1], "
    "city: Amsterdam, postal_code: 1015 CJ, country: NL},",
).replace(
    "email: ap@acme.example,",
    "email: ap@acme.example, tax_id: DE987654321, address: {lines: [Unter den Linden 1], city: Berlin, "
    "postal_code: \"10117\", country: DE},",
)
assert CATALOG.count("tax_id") == 2


def _drafts(live: Live) -> sv.InvoicesApi:
    """The catalog applied and the invoices up to 2026-02-01 generated (drafts)."""
    response = live.http("POST", "/v1/catalog", content=CATALOG.encode(),
                         headers={"content-type": "application/yaml"})
    assert response.status_code == 201, response.text
    run = live.http("POST", "/v1/invoice-runs", json={"until": "2026-02-01"})
    assert run.status_code == 200, run.text
    return live.api(sv.InvoicesApi)


def _january(invoices: sv.InvoicesApi) -> m.Invoice:
    [draft] = [i for i in invoices.get_invoices(V, statuses=["DRAFT"]).data
               if i.invoice_amount_including_tax.quantity == JANUARY_TOTAL]
    return draft


def _finalize(invoices: sv.InvoicesApi, invoice_id: str) -> m.Invoice:
    return invoices.update_invoices_by_resource_id(V, invoice_id, invoice_update_request=m.InvoiceUpdateRequest(
        status="FINAL"))


def test_patch_holds_releases_and_finalizes_with_a_number(server: Live) -> None:  # noqa: F811
    invoices = _drafts(server)
    draft = _january(invoices)
    assert draft.status == "DRAFT" and draft.invoice_number.startswith("DRAFT-") and draft.on_hold is False
    held = invoices.update_invoices_by_resource_id(V, draft.id, invoice_update_request=m.InvoiceUpdateRequest(
        on_hold=True))
    assert (held.status, held.on_hold) == ("DRAFT", True)
    assert invoices.get_invoices_by_resource_id(V, draft.id).status == "DRAFT"
    with pytest.raises(errors.BadRequestException) as refused:  # a held draft is not finalized
        _finalize(invoices, draft.id)
    assert body_of(refused.value)["code"] == "INVALID_OPERATION"
    final = invoices.update_invoices_by_resource_id(V, draft.id, invoice_update_request=m.InvoiceUpdateRequest(
        on_hold=False, status="FINAL"))
    assert (final.status, final.on_hold, final.invoice_number) == ("FINAL", False, "RC-000001")
    assert final.invoice_amount_including_tax.quantity == JANUARY_TOTAL and final.updated_to_final_at
    with pytest.raises(errors.BadRequestException) as again:  # a final invoice never goes back, nor is voided
        invoices.update_invoices_by_resource_id(V, draft.id, invoice_update_request=m.InvoiceUpdateRequest(
            status="VOID"))
    assert body_of(again.value)["code"] == "INVALID_OPERATION"
    # the other draft is voided
    other = [i for i in invoices.get_invoices(V, statuses=["DRAFT"]).data][0]
    voided = invoices.update_invoices_by_resource_id(V, other.id, invoice_update_request=m.InvoiceUpdateRequest(
        status="VOID"))
    assert voided.status == "VOID"
    # hostile input: unknown field, wrong types, unknown invoice -> the envelope, never a 500
    for payload, field in (({"invoice_number": "X-1"}, "invoice_number"), ({"status": "PAID"}, "status"),
                           ({"on_hold": "yes"}, "on_hold"), ({"status": 7}, "status")):
        response = server.http("PATCH", f"/v1/invoices/{draft.id}", json=payload)
        assert response.status_code == 400 and response.json()["field"] == field, response.text
    for raw in (b"[]", b"{", b"\x00"):
        assert server.http("PATCH", f"/v1/invoices/{draft.id}", content=raw).status_code == 400
    with pytest.raises(errors.NotFoundException):
        _finalize(invoices, "inv_999999")


def test_credit_and_credit_and_copy_write_numbered_documents(server: Live) -> None:  # noqa: F811
    invoices = _drafts(server)
    draft = _january(invoices)
    with pytest.raises(errors.BadRequestException) as refused:  # a draft is voided, not credited
        invoices.post_invoices_by_resource_id_credit(V, draft.id)
    assert body_of(refused.value)["code"] == "INVALID_OPERATION"
    final = _finalize(invoices, draft.id)
    note = invoices.post_invoices_by_resource_id_credit(V, final.id)
    assert (note.type, note.status, note.invoice_number) == ("CREDIT", "FINAL", "CN-000001")
    assert note.invoice_amount_including_tax.quantity == "-31.98"
    assert (note.tax_summary.base_amount.quantity, note.tax_summary.tax_amount.quantity) == ("-26.87", "-5.11")
    lines = [line for period in note.periods for group in period.groups for line in group.lines]
    assert [line.amount_excluding_tax.quantity for line in lines] == ["-26.87"]
    shown = json.loads(server.http("GET", f"/v1/invoices/{note.id}").text)
    assert shown["type"] == "CREDIT"
    # the credited invoice's charge, not collected yet, is never made
    [charge] = invoices.get_invoices_by_resource_id_payments(V, final.id).data
    assert (charge.result, charge.amount.quantity) == ("CANCELLED", JANUARY_TOTAL)
    with pytest.raises(errors.BadRequestException):
        invoices.post_invoices_by_resource_id_pay(V, final.id)
    with pytest.raises(errors.BadRequestException):  # credited once only; a credit note is never credited
        invoices.post_invoices_by_resource_id_credit(V, final.id)
    with pytest.raises(errors.BadRequestException):
        invoices.post_invoices_by_resource_id_credit(V, note.id)
    for body, field in (({"groups": [{"id": "x"}]}, "groups"), ({"note": "goodwill"}, "note"),
                        ({"credit_details_source": "CURRENT"}, "credit_details_source")):
        response = server.http("POST", f"/v1/invoices/{final.id}/credit", json=body)
        assert response.status_code == 400 and response.json()["field"] == field, response.text

    # credit_and_copy: on the other invoice, after finalizing it
    other = _finalize(invoices, invoices.get_invoices(V, statuses=["DRAFT"]).data[0].id)
    done = invoices.post_invoices_by_resource_id_credit_and_copy(
        V, other.id, credit_and_copy_invoice_request_create_request=m.CreditAndCopyInvoiceRequestCreateRequest(
            update_new_invoice_to_final=True))
    assert done.original_invoice_id == other.id
    credit_note = invoices.get_invoices_by_resource_id(V, done.credit_invoice_id)
    copy = invoices.get_invoices_by_resource_id(V, done.new_invoice_id)
    total = other.invoice_amount_including_tax.quantity
    assert (credit_note.type, credit_note.invoice_number, credit_note.invoice_amount_including_tax.quantity) == \
        ("CREDIT", "CN-000002", f"-{total}")
    assert (copy.type, copy.status, copy.invoice_number, copy.invoice_amount_including_tax.quantity) == \
        ("STANDARD", "FINAL", "RC-000003", total)
    with pytest.raises(errors.BadRequestException) as explicit:
        invoices.post_invoices_by_resource_id_credit_and_copy(
            V, copy.id, credit_and_copy_invoice_request_create_request=m.CreditAndCopyInvoiceRequestCreateRequest(
                update_credit_invoice_to_final=False))
    assert body_of(explicit.value)["field"] == "update_credit_invoice_to_final"
    with pytest.raises(errors.NotFoundException):
        invoices.post_invoices_by_resource_id_credit(V, "inv_424242")


def test_documents_email_search_and_preview(server: Live, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    invoices = _drafts(server)
    draft = _january(invoices)
    pdf = invoices.get_invoices_by_resource_id_pdf(V, draft.id)
    assert bytes(pdf).startswith(b"%PDF-")
    with pytest.raises(errors.BadRequestException):  # e-invoices are for final invoices only
        invoices.get_invoices_by_resource_id_ubl21(V, draft.id)
    final = _finalize(invoices, draft.id)
    ubl = bytes(invoices.get_invoices_by_resource_id_ubl21(V, final.id))
    root = ET.fromstring(ubl)
    ns = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
          "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
    assert root.tag.endswith("}Invoice") and root.findtext("cbc:ID", namespaces=ns) == "RC-000001"
    assert root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=ns) == JANUARY_TOTAL
    e_invoice = bytes(invoices.get_invoices_by_resource_id_download_e_invoice(V, final.id, "", "UBL"))
    assert e_invoice == ubl
    facturx = bytes(invoices.get_invoices_by_resource_id_download_e_invoice(V, final.id, "", "FACTUR_X"))
    assert facturx.startswith(b"%PDF-")
    with pytest.raises(errors.BadRequestException):
        invoices.get_invoices_by_resource_id_download_e_invoice(V, final.id, "", "XRECHNUNG_CII_TYPO")
    with pytest.raises(errors.BadRequestException):
        invoices.get_invoices_by_resource_id_ubl21(V, final.id, include_invoice_pdf=True)

    with local_smtp(monkeypatch) as inbox:
        sent = invoices.post_invoices_by_resource_id_send_by_email(V, final.id)
        assert sent.id == final.id
        [(sender, recipients, message)] = inbox.messages
        assert (sender, recipients) == ("billing@acme.example", ["ap@acme.example"])
        assert "RC-000001" in message["Subject"]
        with pytest.raises(errors.BadRequestException):
            invoices.post_invoices_by_resource_id_send_by_email(V, final.id, body={"to": "not an address\r\nBcc: x"})

    search = invoices.post_invoices_search(V, search_create_request=m.SearchCreateRequest(
        search_fields=[m.SearchFieldCreateRequest(name="invoice_number", value="rc-", wildcard_end=True,
                                                  ignore_case=True)]))
    assert [i.invoice_number for i in search.data] == ["RC-000001"]
    drafts = invoices.post_invoices_search(V, search_create_request=m.SearchCreateRequest(
        filter_fields=[m.FilterFieldCreateRequest(name="status", values=["DRAFT"])]))
    assert drafts.data and all(i.status == "DRAFT" for i in drafts.data)
    with pytest.raises(errors.BadRequestException):
        invoices.post_invoices_search(V, search_create_request=m.SearchCreateRequest(
            search_fields=[m.SearchFieldCreateRequest(name="total; drop table", value="1")]))

    preview = invoices.post_invoices_preview(V, invoice_preview_action_create_request=m.InvoicePreviewActionCreateRequest(
        pricing_plan_subscription_id="acme-pro"))
    assert preview.invoice.status == "DRAFT" and preview.invoice.customer_reference == "acme"
    assert preview.invoice.id is None and preview.invoice_infos[0].invoices
    with pytest.raises(errors.NotFoundException):
        invoices.post_invoices_preview(V, invoice_preview_action_create_request=m.InvoicePreviewActionCreateRequest(
            pricing_plan_subscription_id="nobody"))


def test_pay_refund_and_the_invoice_payments(server: Live, stripe_standin: StripeStandIn) -> None:  # noqa: F811
    invoices = _drafts(server)
    draft = _january(invoices)
    assert invoices.get_invoices_by_resource_id_payments(V, draft.id).data == []  # a draft has no payment
    with pytest.raises(errors.NotFoundException):
        invoices.post_invoices_by_resource_id_pay(V, draft.id)
    final = _finalize(invoices, draft.id)
    [pending] = invoices.get_invoices_by_resource_id_payments(V, final.id).data
    assert (pending.result, pending.amount.quantity, pending.amount.currency) == ("PENDING", JANUARY_TOTAL, "EUR")
    with pytest.raises(errors.BadRequestException):  # nothing paid yet: nothing to refund
        invoices.post_invoices_by_resource_id_refund(V, final.id)
    paid = invoices.post_invoices_by_resource_id_pay(V, final.id)
    assert paid.paid is True
    [attempt] = invoices.get_invoices_by_resource_id_payment_attempts(V, final.id).data
    assert attempt.result == "AUTHORIZED" and attempt.external_reference.startswith("pi_")
    assert [c["amount"] for c in stripe_standin.succeeded_charges()] == [3198]
    with pytest.raises(errors.BadRequestException):
        invoices.post_invoices_by_resource_id_pay(V, final.id)  # paid already
    refunded = invoices.post_invoices_by_resource_id_refund(V, final.id)
    assert refunded.id == final.id
    [note] = [i for i in invoices.get_invoices(V, statuses=["FINAL"]).data if i.type == "CREDIT"]
    assert note.invoice_amount_including_tax.quantity == "-31.98"
    [refund] = invoices.get_invoices_by_resource_id_payments(V, note.id).data
    assert (refund.result, refund.amount.quantity) == ("REFUNDED", "-31.98")
    assert sum(r["amount"] for r in stripe_standin.refunds.values()) == 3198
    with pytest.raises(errors.BadRequestException):
        invoices.post_invoices_by_resource_id_refund(V, final.id)  # refunded in full already


def test_unknown_invoices_answer_404_everywhere(server: Live) -> None:  # noqa: F811
    invoices = _drafts(server)
    for call in (lambda: invoices.post_invoices_by_resource_id_pay(V, "inv_0"),
                 lambda: invoices.post_invoices_by_resource_id_refund(V, "nope"),
                 lambda: invoices.get_invoices_by_resource_id_payments(V, "inv_77"),
                 lambda: invoices.get_invoices_by_resource_id_ubl21(V, "RC-999999"),
                 lambda: invoices.post_invoices_by_resource_id_credit_and_copy(V, "inv_5")):
        with pytest.raises(errors.ApiException) as missing:
            call()
        assert missing.value.status == 404 and body_of(missing.value)["code"] == "RESOURCE_NOT_FOUND"


def test_payments_in_solvimon_shape_transfer_and_refund(server: Live, stripe_standin: StripeStandIn) -> None:  # noqa: F811
    invoices = _drafts(server)
    payments = server.api(sv.PaymentsApi)
    final = _finalize(invoices, _january(invoices).id)
    [pending] = payments.get_payments(V).data
    assert (pending.invoice_id, pending.result, pending.amount.quantity) == (final.id, "PENDING", JANUARY_TOTAL)
    assert payments.get_payments_by_resource_id(V, pending.id).id == pending.id
    assert [p.id for p in payments.get_payments(V, invoice_id=final.id).data] == [pending.id]
    assert payments.get_payments(V, customer_id="nobody").data == []
    # a bank transfer of the whole invoice is recorded (`ratecard payments mark-paid`)
    for amount, result, field in (("10.00", "AUTHORIZED", "amount.quantity"), (JANUARY_TOTAL, "REFUSED", "result")):
        with pytest.raises(errors.BadRequestException) as refused:
            payments.post_payments(V, payment_create_request_transaction=m.PaymentCreateRequestTransaction(
                external_reference="NL-TRANSFER-1", result=result, invoice_id=final.id,
                amount=m.AmountCreateRequest(quantity=amount, currency="EUR")))
        assert body_of(refused.value)["field"] == field
    with pytest.raises(errors.NotFoundException):
        payments.post_payments(V, payment_create_request_transaction=m.PaymentCreateRequestTransaction(
            external_reference="NL-TRANSFER-1", result="AUTHORIZED", invoice_id="inv_31337"))
    paid = payments.post_payments(V, payment_create_request_transaction=m.PaymentCreateRequestTransaction(
        external_reference="NL-TRANSFER-1", result="AUTHORIZED", invoice_id=final.id,
        amount=m.AmountCreateRequest(quantity=JANUARY_TOTAL, currency="EUR")))
    assert (paid.result, paid.reference) == ("AUTHORIZED", "NL-TRANSFER-1")
    assert invoices.get_invoices_by_resource_id(V, final.id).paid is True
    with pytest.raises(errors.BadRequestException):  # paid by transfer: paid back by transfer
        payments.post_payments_by_resource_id_refund(V, paid.id)
    # the other invoice, paid through Stripe, is refunded through the payment
    other = _finalize(invoices, invoices.get_invoices(V, statuses=["DRAFT"]).data[0].id)
    invoices.post_invoices_by_resource_id_pay(V, other.id)
    [charge] = payments.get_payments(V, invoice_id=other.id).data
    assert charge.result == "AUTHORIZED"
    done = payments.post_payments_by_resource_id_refund(V, charge.id)
    assert (done.status, done.payment.result) == ("SUCCESS", "REFUNDED")
    assert done.payment.amount.quantity == f"-{other.invoice_amount_including_tax.quantity}"
    with pytest.raises(errors.NotFoundException):
        payments.get_payments_by_resource_id(V, "pay_999")
    assert payments.get_payments(V, limit=1).data[0].id == done.payment.id  # newest first


def test_billing_entities_coupons_and_promotion_codes_come_from_the_catalog(server: Live) -> None:  # noqa: F811
    entities = server.api(sv.BillingEntitiesApi)
    coupons = server.api(sv.CouponsApi)
    codes = server.api(sv.PromotionCodesApi)
    assert entities.get_billing_entities(V).data == [] and coupons.get_coupons(V).data == []
    text = CATALOG.replace(
        "subscriptions:\n",
        "coupons:\n"
        "  - {code: WELCOME10, percent_off: \"10\", duration: repeating, periods: 3, description: Welcome,"
        " max_redemptions: 100}\n"
        "  - {code: FLAT5, amount_off: \"5\", currency: EUR, duration: once, redeem_by: 2026-03-01}\n"
        "billing_entities:\n"
        "  - {code: us, name: Acme US, legal_name: Acme US Inc, currency: USD, timezone: America/New_York,"
        " invoice_prefix: US}\n"
        "subscriptions:\n",
    ).replace("billing_anchor: 1}", "billing_anchor: 1, coupons: [WELCOME10]}")
    response = server.http("POST", "/v1/catalog", content=text.encode(), headers={"content-type": "application/yaml"})
    assert response.status_code == 201, response.text
    listed = entities.get_billing_entities(V).data
    assert [(e.id, e.reference, e.legal_name) for e in listed] == [("ben_default", "default", "Acme Cloud BV"),
                                                                   ("ben_us", "us", "Acme US Inc")]
    default = entities.get_billing_entities_by_resource_id_or_reference(V, "default")
    assert (default.tax_id, default.registered_address.city, default.email) == \
        ("NL123456789B01", "Amsterdam", "billing@acme.example")
    assert entities.get_billing_entities_by_resource_id_or_reference(V, "ben_us").timezone == "America/New_York"
    with pytest.raises(errors.NotFoundException):
        entities.get_billing_entities_by_resource_id_or_reference(V, "eu")

    welcome = coupons.get_coupons_by_resource_id_or_reference(V, "WELCOME10")
    assert (welcome.status, welcome.discount.type, welcome.discount.percentage, welcome.duration.type) == \
        ("ACTIVE", "PERCENTAGE", "10", "PERIOD")
    assert (welcome.maximum_redemptions, welcome.number_of_redemptions) == (100, 1)
    flat = coupons.get_coupons_by_resource_id_or_reference(V, "cpn_FLAT5")
    assert (flat.status, flat.discount.amount.quantity, flat.duration.type, flat.end_at) == \
        ("INACTIVE", "5", "ONE_TIME", "2026-03-01T00:00:00Z")  # redeemable until 2026-03-01 only
    assert [c.reference for c in coupons.get_coupons(V, statuses=["ACTIVE"]).data] == ["WELCOME10"]
    [redemption] = coupons.get_coupons_by_resource_id_or_reference_redemptions(V, "WELCOME10").data
    assert (redemption.pricing_plan_subscription_id, redemption.redeemed_at) == ("acme-pro", "2026-01-15T00:00:00Z")
    promo = codes.get_promotion_codes_by_resource_id_or_reference(V, "WELCOME10")
    assert (promo.id, promo.code, promo.coupon_id) == ("promo_WELCOME10", "WELCOME10", welcome.id)
    assert [p.code for p in codes.get_promotion_codes(V, coupon_id=flat.id).data] == ["FLAT5"]
    assert codes.get_promotion_codes_by_resource_id_or_reference_redemptions(V, promo.id).data[0]. \
        promotion_code_details.code == "WELCOME10"
    for call in (lambda: coupons.get_coupons_by_resource_id_or_reference(V, "NOPE"),
                 lambda: codes.get_promotion_codes_by_resource_id_or_reference(V, "promo_NOPE")):
        with pytest.raises(errors.NotFoundException):
            call()
    with pytest.raises(errors.BadRequestException):
        coupons.get_coupons(V, statuses=["EXPIRED"])


def test_hostile_bodies_and_keys_answer_the_envelope_never_a_500(server: Live) -> None:  # noqa: F811
    invoices = _drafts(server)
    draft = _january(invoices)
    final = _finalize(invoices, draft.id)
    bodies = [b"[]", b"\"x\"", b"{", b"{\"a\":\"\\u0000\"}", b"{\"to\": 5}", b"{\"search_fields\": {\"name\": 1}}",
              b"{\"search_fields\": [{\"name\": \"id\", \"value\": [1]}]}", b"{\"amount\": \"1e999\"}",
              b"{\"filter_fields\": [{\"name\": \"status\", \"values\": []}]}", b"{\"start_at\": \"9999-99-99\"}",
              b"{\"pricing_plan_subscription_id\": \"acme-pro\", \"start_at\": \"2999-01-01T00:00:00Z\"}",
              b"{\"invoice_id\": \"" + final.id.encode() + b"\", \"external_reference\": \"x\", \"result\": "
              b"\"AUTHORIZED\", \"amount\": {\"quantity\": \"NaN\"}}", b"{" * 5000 + b"}" * 5000]
    paths = [f"/v1/invoices/{final.id}/credit", f"/v1/invoices/{final.id}/credit_and_copy",
             f"/v1/invoices/{final.id}/send_by_email", "/v1/invoices/search", "/v1/invoices/preview", "/v1/payments",
             "/v1/payments/pay_1/refund"]
    for path in paths:
        for raw in bodies:
            response = server.http("POST", path, content=raw, headers={"content-type": "application/json"})
            assert response.status_code in (400, 404, 409), (path, raw[:60], response.status_code, response.text)
            assert set(response.json()) == {"type", "code", "field", "message"}
    for method, path in (("PATCH", "/v1/invoices/inv_%00"), ("GET", "/v1/invoices/inv_1%00/ubl21"),
                         ("GET", "/v1/payments/pay_99999999999999999999999"), ("GET", "/v1/coupons/%00"),
                         ("GET", "/v1/billing-entities/" + "x" * 5000), ("GET", "/v1/payments?invoice_id=%00")):
        response = server.http(method, path, json={})
        assert response.status_code in (400, 404), (method, path, response.status_code, response.text)
    assert invoices.get_invoices_by_resource_id(V, final.id).status == "FINAL"  # nothing was credited
    assert [i.type for i in invoices.get_invoices(V).data].count("CREDIT") == 0


def test_a_coupon_created_through_the_sdk_is_a_new_catalog_version(server: Live) -> None:  # noqa: F811
    coupons = server.api(sv.CouponsApi)
    response = server.http("POST", "/v1/catalog", content=CATALOG.encode(), headers={"content-type": "application/yaml"})
    assert response.status_code == 201, response.text
    before = server.http("GET", "/v1/catalog").json()["version"]

    def create(**fields: object) -> m.Coupon:
        return coupons.post_coupons(V, coupon_create_request=m.CouponCreateRequest(**fields))

    spring = create(reference="SPRING25", name="Spring sale", description="25 % off", discount=m.CouponDiscountCreateRequest(
        type="PERCENTAGE", percentage="25"), duration=m.CouponDurationCreateRequest(
        type="PERIOD", period=m.Period(type="MONTH", value=3)), maximum_redemptions=50)
    assert (spring.id, spring.name, spring.description, spring.status, spring.discount.percentage,
            spring.duration.type) == ("cpn_SPRING25", "SPRING25", "Spring sale: 25 % off", "ACTIVE", "25", "PERIOD")
    catalog = server.http("GET", "/v1/catalog").json()
    assert catalog["version"] == before + 1
    [stored] = [c for c in catalog["catalog"]["coupons"] if c["code"] == "SPRING25"]
    assert (stored["percent_off"], stored["duration"], stored["periods"], stored["max_redemptions"]) == \
        ("25", "repeating", 3, 50)
    assert coupons.get_coupons_by_resource_id_or_reference(V, "SPRING25").maximum_redemptions == 50
    flat = create(reference="FLAT20", name="FLAT20", discount=m.CouponDiscountCreateRequest(
        type="AMOUNT", amount=m.Amount(quantity="20.00", currency="EUR")),
        duration=m.CouponDurationCreateRequest(type="ONE_TIME"))
    assert (flat.discount.amount.quantity, flat.duration.type) == ("20.00", "ONE_TIME")
    with pytest.raises(errors.ApiException) as duplicate:
        create(reference="SPRING25", name="again", discount=m.CouponDiscountCreateRequest(
            type="PERCENTAGE", percentage="5"), duration=m.CouponDurationCreateRequest(type="FOREVER"))
    assert duplicate.value.status == 409 and body_of(duplicate.value)["code"] == "RESOURCE_ALREADY_EXISTS"
    for fields, field in (
            ({"reference": "BAD", "discount": {"type": "PERCENTAGE", "percentage": "250"}}, "discount.percentage"),
            ({"reference": "BAD", "discount": {"type": "AMOUNT", "amount": {"quantity": "5"}}}, None),
            ({"reference": "BAD", "discount": {"type": "USAGE"}}, "discount.type"),
            ({"discount": {"type": "PERCENTAGE", "percentage": "5"}}, "reference"),
            ({"reference": "BAD", "discount": {"type": "PERCENTAGE", "percentage": "5"}, "start_at": "2026-01-01"},
             "start_at"),
            ({"reference": "BAD", "discount": {"type": "PERCENTAGE", "percentage": "5"},
              "duration": {"type": "PERIOD"}}, "duration.period")):
        response = server.http("POST", "/v1/coupons", json=fields)
        assert response.status_code == 400, (fields, response.text)
        assert response.json()["field"] == field, response.text
    assert server.http("GET", "/v1/catalog").json()["version"] == before + 2  # refusals wrote nothing
