"""Payment methods, payment requests, authorize, reverse and verify-details through the published
Solvimon SDK against a live server with the local Stripe stand-in, on SQLite and PostgreSQL.

The workspace is test_solvimon_invoice_actions': customer acme (Stripe customer cus_acme, whose
default method at Stripe is pm_card_visa), two drafts up to 2026-02-01, the January one totalling
31.98 EUR. A method stored in ratecard as acme's default is what its invoices are charged with.
"""

from __future__ import annotations

import json

import pytest

from ratecard.cli import main

from ..solvimon_sdk import errors, m, sv
from ..stripe_standin import StripeStandIn
from .test_solvimon_invoice_actions import JANUARY_TOTAL, _drafts, _finalize, _january
from .test_solvimon_sdk import Live, V, body_of, server  # noqa: F401 - `server` is the live-server fixture


def _card(pm: str, **fields: object) -> m.PaymentMethodCreateRequest:
    request = {"customer_id": "acme", "type": "CARD",
               "integration_details": m.IntegrationDetails(payment_gateway_variant="STRIPE",
                                                           stripe=m.StripeIntegrationDetails(payment_method_id=pm)),
               "card": m.PaymentMethodCard(brand="VISA", last_four_digits="4242",
                                           expiry_date=m.ExpiryDate(expiry_month=12, expiry_year=2030))} | fields
    return m.PaymentMethodCreateRequest(**request)


def _authorize(invoice_id: str, **fields: object) -> m.AuthorizePaymentRequestCreateRequest:
    request = {"payment_acceptor_id": "stripe", "context": m.PaymentContextCreateRequest(
        type="PAY_INVOICE", pay_invoice=m.PayInvoicePaymentContext(invoice_id=invoice_id))} | fields
    return m.AuthorizePaymentRequestCreateRequest(**request)


def test_payment_methods_are_stored_references_with_a_default(server: Live, stripe_standin: StripeStandIn) -> None:  # noqa: F811
    _drafts(server)
    methods = server.api(sv.PaymentMethodsApi)
    assert methods.get_payment_methods(V).data == []
    first = methods.post_payment_methods(V, payment_method_create_request=_card("pm_card_first", reference="acme-card"))
    assert (first.is_default, first.status, first.type, first.card.last_four_digits) == (True, "ACTIVE", "CARD", "4242")
    assert first.integration_details.stripe.payment_method_id == "pm_card_first" and first.customer_id.startswith("cus_")
    second = methods.post_payment_methods(V, payment_method_create_request=_card("pm_card_second"))
    assert second.is_default is False  # a customer's first method is its default
    assert methods.get_payment_methods_by_resource_id_or_reference(V, "acme-card").id == first.id
    assert [p.id for p in methods.get_payment_methods(V, customer_id="acme").data] == [second.id, first.id]  # newest first
    assert [p.id for p in methods.get_payment_methods(
        V, integration_payment_method_reference="pm_card_second").data] == [second.id]
    switched = methods.update_payment_methods_by_resource_id_or_reference(
        V, second.id, payment_method_update_request=m.PaymentMethodUpdateRequest(is_default=True))
    assert switched.is_default is True
    assert methods.get_payment_methods_by_resource_id_or_reference(V, first.id).is_default is False
    methods.update_payment_methods_by_resource_id_or_reference(
        V, first.id, payment_method_update_request=m.PaymentMethodUpdateRequest(is_default=True))
    # PUT by reference updates the method it names
    put = methods.update_payment_methods(V, payment_method_create_request=_card(
        "pm_card_first", reference="acme-card", billing_address=m.Address(city="Berlin", country="DE")))
    assert (put.id, put.billing_address.city, put.is_default) == (first.id, "Berlin", True)
    # the SDK never sends status; plain HTTP archives a method
    assert server.http("PATCH", f"/v1/payment-methods/{second.id}", json={"status": "ARCHIVED"}).status_code == 200
    assert methods.get_payment_methods_by_resource_id_or_reference(V, second.id).status == "ARCHIVED"
    # refresh registers the Stripe customer's own default (pm_card_visa at the stand-in)
    refreshed = methods.post_payment_methods_refresh(
        V, payment_method_action_refresh_create_request=m.PaymentMethodActionRefreshCreateRequest(customer_id="acme"))
    assert [(p.integration_reference, p.is_default) for p in refreshed.data] == \
        [("pm_card_visa", False), ("pm_card_second", False), ("pm_card_first", True)]  # newest first

    # refusals name the field; ratecard never takes bank details or card data
    for request, field in ((_card("pm_card_first"), "integration_reference"),
                           (_card("pm_x", customer_id="nobody"), "customer_id"),
                           (_card("pm_x", type="DIRECT_DEBIT", card=None,
                                  direct_debit=m.PaymentMethodDirectDebit(iban="NL91ABNA0417164300")),
                            "direct_debit.iban"),
                           (_card("pm_x", reference="acme-card"), "reference")):
        with pytest.raises(errors.ApiException) as refused:
            methods.post_payment_methods(V, payment_method_create_request=request)
        assert refused.value.status in (400, 409) and body_of(refused.value)["field"] == field
    with pytest.raises(errors.BadRequestException) as tokenize:
        methods.post_payment_methods_tokenize(V, payment_method_tokenization_request_create_request=
                                              m.PaymentMethodTokenizationRequestCreateRequest(
                                                  payment_acceptor_id="stripe", customer_id="acme",
                                                  payment_gateway_variant="STRIPE"))
    assert "Stripe" in body_of(tokenize.value)["message"]
    with pytest.raises(errors.NotFoundException):
        methods.get_payment_methods_by_resource_id_or_reference(V, "pmt_missing")
    # hostile bodies and keys: the error envelope, never a 500, nothing stored
    for method, path, body in (
            ("GET", "/v1/payment-methods/%00", None), ("POST", "/v1/payment-methods", []),
            ("POST", "/v1/payment-methods", {"customer_id": "acme", "integration_reference": "pm_" + "x" * 300}),
            ("POST", "/v1/payment-methods", {"customer_id": "acme", "integration_reference": "pm_ok",
                                             "card": {"last_four_digits": "4242 4242 4242 4242"}}),
            ("POST", "/v1/payment-methods", {"customer_id": "acme", "integration_reference": "pm_ok",
                                             "billing_address": {"city": "a\u0000b"}}),
            ("PATCH", "/v1/payment-methods/pmt_missing", {}), ("POST", "/v1/payments/authorize", {}),
            ("POST", "/v1/payments/authorize", {"payment_acceptor_id": "stripe", "context": {
                "type": "PAY_INVOICE", "pay_invoice": {"invoice_id": "inv_%00"}}}),
            ("GET", "/v1/payment-requests/preq_99999999999999999999", None),
            ("POST", "/v1/payments/pay_x/reverse", None)):
        answer = server.http(method, path, json=body) if body is not None else server.http(method, path)
        assert 400 <= answer.status_code < 500, (path, answer.text)
        assert "code" in answer.json()
    assert len(methods.get_payment_methods(V).data) == 3


def test_authorize_charges_the_stored_method_and_reverse_undoes_it(server: Live, stripe_standin: StripeStandIn) -> None:  # noqa: F811
    invoices = _drafts(server)
    january = _finalize(invoices, _january(invoices).id)
    other = _finalize(invoices, invoices.get_invoices(V, statuses=["DRAFT"]).data[0].id)
    methods = server.api(sv.PaymentMethodsApi)
    default = methods.post_payment_methods(V, payment_method_create_request=_card("pm_card_default"))
    spare = methods.post_payment_methods(V, payment_method_create_request=_card("pm_card_spare"))
    payments = server.api(sv.PaymentsApi)

    requests = payments.get_payment_requests(V).data
    assert {(r.status, r.index) for r in requests} == {("SCHEDULED", 0)}
    [scheduled] = [r for r in requests if r.amount.quantity == JANUARY_TOTAL]
    assert payments.get_payment_requests_by_resource_id(V, scheduled.id).customer_id == "acme"

    # without payment_method_id: the customer's stored default is charged, not Stripe's own default
    paid = payments.post_payments_authorize(V, authorize_payment_request_create_request=_authorize(january.id))
    assert (paid.status, paid.payment.result, paid.payment_method.id) == ("SUCCESS", "AUTHORIZED", default.id)
    assert [i["payment_method"] for i in stripe_standin.succeeded_charges()] == ["pm_card_default"]
    assert payments.get_payment_requests_by_resource_id(V, scheduled.id).status == "DONE"
    # a named method of the customer is charged instead; a declined card answers FAILURE
    stripe_standin.script["cus_acme"] = ["declined"]
    failed = payments.post_payments_authorize(V, authorize_payment_request_create_request=_authorize(
        other.id, payment_method_id=spare.id))
    assert (failed.status, failed.payment.result, failed.payment_method.id) == ("FAILURE", "REFUSED", spare.id)
    assert list(stripe_standin.intents.values())[-1]["payment_method"] == "pm_card_spare"

    # reverse: a collected charge is refunded; one not collected is canceled by crediting its invoice
    refunded = payments.post_payments_by_resource_id_reverse(V, paid.payment.id)
    assert (refunded.status, refunded.payment.result, refunded.payment.amount.quantity) == \
        ("SUCCESS", "REFUNDED", f"-{JANUARY_TOTAL}")
    canceled = payments.post_payments_by_resource_id_reverse(V, failed.payment.id)
    assert (canceled.status, canceled.payment.result) == ("SUCCESS", "CANCELLED")
    with pytest.raises(errors.BadRequestException):  # canceled already
        payments.post_payments_by_resource_id_reverse(V, failed.payment.id)
    assert {r.status for r in payments.get_payment_requests(V, statuses=["SKIPPED"]).data} == {"SKIPPED"}

    # what does not map is refused, naming the field
    for request, field in ((_authorize(january.id, payment_acceptor_id="adyen-eu"), "payment_acceptor_id"),
                           (_authorize(january.id, context=m.PaymentContextCreateRequest(type="DIRECT")),
                            "context.type"),
                           (_authorize(other.id, payment_method_id="pmt_missing"), "payment_method_id")):
        with pytest.raises(errors.BadRequestException) as refused:
            payments.post_payments_authorize(V, authorize_payment_request_create_request=request)
        assert body_of(refused.value)["field"] == field
    with pytest.raises(errors.BadRequestException):
        payments.post_payments_verify_details(V, payment_verify_detail_create_request=m.PaymentVerifyDetailCreateRequest(
            payment_gateway_variant="STRIPE"))
    with pytest.raises(errors.BadRequestException):
        payments.get_payment_requests(V, payment_schedule_id="ps_1")
    with pytest.raises(errors.NotFoundException):
        payments.get_payment_requests_by_resource_id(V, "preq_999")
    with pytest.raises(errors.NotFoundException):
        payments.post_payments_by_resource_id_reverse(V, "pay_999")


def test_payments_run_charges_the_stored_default(server: Live, stripe_standin: StripeStandIn) -> None:  # noqa: F811
    invoices = _drafts(server)
    final = _finalize(invoices, _january(invoices).id)
    methods = server.api(sv.PaymentMethodsApi)
    stored = methods.post_payment_methods(V, payment_method_create_request=_card("pm_card_stored"))
    assert main(["payments", "run", "--db", server.db_url]) == 0  # the CLI's collection, from cron
    assert [i["payment_method"] for i in stripe_standin.succeeded_charges()] == ["pm_card_stored"]
    assert invoices.get_invoices_by_resource_id(V, final.id).paid is True
    # no default any more: the next invoice goes to the Stripe customer's own default
    methods.update_payment_methods_by_resource_id_or_reference(
        V, stored.id, payment_method_update_request=m.PaymentMethodUpdateRequest(is_default=False))
    _finalize(invoices, invoices.get_invoices(V, statuses=["DRAFT"]).data[0].id)
    assert main(["payments", "run", "--db", server.db_url]) == 0
    assert [i["payment_method"] for i in stripe_standin.succeeded_charges()] == ["pm_card_stored", "pm_card_visa"]


def test_a_method_registered_archived_is_nobodys_default(server: Live, stripe_standin: StripeStandIn) -> None:  # noqa: F811
    """A method registered ARCHIVED (a card the customer has retired already) is not made the
    default: asked for (`is_default: true`) it is refused 400 INVALID_OPERATION naming
    is_default, nothing registered, as a PATCH of an ARCHIVED method is; as the customer's first
    method it is registered, not the default, and the first ACTIVE one registered after it is."""
    _drafts(server)
    refused = server.http("POST", "/v1/payment-methods", json={
        "customer_id": "acme", "integration_reference": "pm_card_old", "status": "ARCHIVED", "is_default": True})
    assert refused.status_code == 400, refused.text
    assert (refused.json()["code"], refused.json()["field"]) == ("INVALID_OPERATION", "is_default")
    assert server.http("GET", "/v1/payment-methods").json()["data"] == []
    old = server.http("POST", "/v1/payment-methods", json={
        "customer_id": "acme", "integration_reference": "pm_card_old", "status": "ARCHIVED"})
    assert (old.status_code, old.json()["status"], old.json()["is_default"]) == (201, "ARCHIVED", False), old.text
    new = server.api(sv.PaymentMethodsApi).post_payment_methods(V, payment_method_create_request=_card("pm_card_new"))
    assert (new.status, new.is_default) == ("ACTIVE", True)


def test_an_archived_method_stays_archived_and_is_never_charged(server: Live, stripe_standin: StripeStandIn,  # noqa: F811
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """ARCHIVED is final (as a method detached at Stripe cannot be attached again): a PATCH or PUT
    back to ACTIVE, INACTIVE or SETUP, or making it the default, answers 400 INVALID_OPERATION
    naming the field, and it stays ARCHIVED; its Stripe id cannot be registered again (409). No
    charge uses it, not even when it is the Stripe customer's own default (pm_card_visa at the
    stand-in): the charge fails with the reason and is made with the customer's new method."""
    invoices = _drafts(server)
    final = _finalize(invoices, _january(invoices).id)
    methods = server.api(sv.PaymentMethodsApi)
    # the Stripe customer's own default, registered in ratecard (its default), then archived
    old = methods.post_payment_methods(V, payment_method_create_request=_card("pm_card_visa", reference="old-card"))
    assert old.is_default is True
    archived = server.http("PATCH", f"/v1/payment-methods/{old.id}", json={"status": "ARCHIVED"})
    assert (archived.status_code, archived.json()["status"]) == (200, "ARCHIVED")
    for body, field in (({"status": "ACTIVE"}, "status"), ({"status": "INACTIVE"}, "status"),
                        ({"status": "SETUP"}, "status"), ({"is_default": True}, "is_default"),
                        ({"status": "ACTIVE", "is_default": True}, "status")):
        refused = server.http("PATCH", f"/v1/payment-methods/{old.id}", json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert (refused.json()["code"], refused.json()["field"]) == ("INVALID_OPERATION", field)
    put = server.http("PUT", "/v1/payment-methods", json={"reference": "old-card", "status": "ACTIVE"})
    assert (put.status_code, put.json()["code"], put.json()["field"]) == (400, "INVALID_OPERATION", "status")
    again = server.http("POST", "/v1/payment-methods", json={"customer_id": "acme",
                                                              "integration_reference": "pm_card_visa"})
    assert (again.status_code, again.json()["field"]) == (409, "integration_reference")
    # what may still change of it does (its address), and it stays ARCHIVED
    kept = server.http("PATCH", f"/v1/payment-methods/{old.id}", json={"billing_address": {"city": "Utrecht"}})
    assert (kept.status_code, kept.json()["status"], kept.json()["billing_address"]) == \
        (200, "ARCHIVED", {"city": "Utrecht"})
    assert methods.get_payment_methods_by_resource_id_or_reference(V, old.id).status == "ARCHIVED"

    # the run: no ACTIVE default, and Stripe's own default is the archived method: nothing is charged
    assert main(["payments", "run", "--db", server.db_url]) == 0
    assert stripe_standin.succeeded_charges() == [] and stripe_standin.intents == {}
    assert invoices.get_invoices_by_resource_id(V, final.id).paid is False
    capsys.readouterr()
    assert main(["payments", "list", "--json", "--db", server.db_url]) == 0
    [payment] = json.loads(capsys.readouterr().out)
    assert payment["status"] == "failed" and "pm_card_visa is ARCHIVED" in payment["failure"]
    # the customer's new method is its default; the retry charges it
    new = methods.post_payment_methods(V, payment_method_create_request=_card("pm_card_new", is_default=True))
    assert new.is_default is True
    number = invoices.get_invoices_by_resource_id(V, final.id).invoice_number
    assert main(["payments", "retry", number, "--db", server.db_url]) == 0
    assert [i["payment_method"] for i in stripe_standin.succeeded_charges()] == ["pm_card_new"]
    assert invoices.get_invoices_by_resource_id(V, final.id).paid is True
