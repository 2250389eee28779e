"""Payments over HTTP: the list, mark-paid and retry, Stripe's signed webhooks (no API key), and
the Solvimon-shaped invoice reporting `paid`. Both stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ratecard.services import invoices
from ratecard.services.payments import run_payments
from ratecard.store import open_store

from ..integration.payments_workspace import PAYMENTS_CATALOG
from ..smtp_inbox import local_smtp
from ..stripe_standin import WEBHOOK_SECRET, StripeStandIn, event, sign
from .conftest import Api

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def _final_invoice(api: Api) -> str:
    """Apply the catalog, generate and finalize the January invoice; its number."""
    api.apply_catalog(PAYMENTS_CATALOG)
    assert api.post("/v1/invoice-runs", json={"until": "2026-02-01"}).status_code == 200
    store = open_store(api.url)
    try:
        draft = invoices.find_invoices(store, status="draft")[0]
        return invoices.finalize_invoices(store, [draft.display_number], NOW).finalized[0].number
    finally:
        store.dispose()


def _run(api: Api) -> dict:
    store = open_store(api.url)
    try:
        return run_payments(store, NOW).as_dict()
    finally:
        store.dispose()


def _webhook(api: Api, payload: bytes, secret: str = WEBHOOK_SECRET):
    return api.client.post("/v1/psp/stripe/webhooks", content=payload,
                           headers={"Stripe-Signature": sign(payload, secret), "content-type": "application/json"})


def test_payments_are_listed_and_the_solvimon_invoice_reports_paid(api: Api, stripe_standin: StripeStandIn) -> None:
    number = _final_invoice(api)
    listed = api.get("/v1/payments").json()
    # Solvimon's Payment, ratecard's own payment document in `ratecard`
    assert [(p["ratecard"]["invoice"], p["ratecard"]["status"], p["amount"]["quantity"], p["result"])
            for p in listed["data"]] == [(number, "pending", "31.98", "PENDING")]
    assert api.get(f"/v1/invoices/{number}").json()["paid"] is False
    assert _run(api)["payments"] == {"succeeded": 1}
    shown = api.get(f"/v1/invoices/{number}").json()
    assert shown["paid"] is True and shown["ratecard"]["payment_status"] == "succeeded"
    assert [i["invoice_number"] for i in api.get("/v1/invoices", params={"paid": "true"}).json()["data"]] == [number]
    unpaid = api.get("/v1/invoices", params={"paid": "false"}).json()["data"]
    assert unpaid and number not in [i["invoice_number"] for i in unpaid]  # the drafts are not paid
    assert api.get(f"/v1/invoices/{number}/payment").json()["status"] == "succeeded"
    assert api.get("/v1/payments", "sandbox").json()["data"] == []  # a sandbox key sees its own only


def test_signed_webhooks_move_the_payment_and_bad_ones_change_nothing(api: Api, stripe_standin: StripeStandIn) -> None:
    number = _final_invoice(api)
    stripe_standin.script["cus_acme"] = ["authenticate"]
    _run(api)
    waiting = api.get(f"/v1/invoices/{number}/payment").json()
    assert waiting["status"] == "requires_action" and waiting["action_url"].startswith("https://hooks.stripe.com/")
    succeeded = event("payment_intent.succeeded", {**stripe_standin.intents[waiting["stripe_id"]],
                                                   "status": "succeeded"})
    refused = _webhook(api, succeeded, secret="whsec_not_the_one")
    assert refused.status_code == 400 and refused.json()["field"] == "Stripe-Signature"
    unsigned = api.client.post("/v1/psp/stripe/webhooks", content=succeeded)
    assert unsigned.status_code == 400
    assert api.get(f"/v1/invoices/{number}/payment").json()["status"] == "requires_action"
    accepted = _webhook(api, succeeded)  # no API key: Stripe signs instead
    assert accepted.status_code == 200 and accepted.json()["result"] == "succeeded"
    assert _webhook(api, succeeded).json()["result"] == "unchanged"  # a duplicate is harmless
    unknown = _webhook(api, event("payment_intent.succeeded", {"id": "pi_elsewhere", "status": "succeeded"}))
    assert unknown.status_code == 200 and unknown.json()["result"] == "ignored"
    assert api.get(f"/v1/invoices/{number}").json()["paid"] is True


def test_mark_paid_and_retry_follow_the_cli(api: Api, stripe_standin: StripeStandIn) -> None:
    number = _final_invoice(api)
    stripe_standin.script["cus_acme"] = ["declined"]
    _run(api)
    assert api.get(f"/v1/invoices/{number}/payment").json()["status"] == "failed"
    hostile = api.post(f"/v1/invoices/{number}/mark-paid", json={"reference": "x\r\nBcc: all@example.com"})
    assert hostile.status_code == 400 and hostile.json()["field"] == "reference"
    retried = api.post(f"/v1/invoices/{number}/payments/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "succeeded"
    again = api.post(f"/v1/invoices/{number}/payments/retry")
    assert again.status_code == 400 and again.json()["code"] == "INVALID_OPERATION"
    paid_twice = api.post(f"/v1/invoices/{number}/mark-paid", json={"reference": "TRANSFER-7"})
    assert paid_twice.status_code == 400 and "paid already" in paid_twice.json()["message"]
    assert api.post("/v1/invoices/RC-999999/mark-paid", json={"reference": "T"}).status_code == 404


@pytest.mark.parametrize("path", ["/v1/invoices/RC-000001/mark-paid", "/v1/invoices/RC-000001/payments/retry"])
def test_payment_actions_need_a_key(api: Api, path: str) -> None:
    assert api.client.post(path, json={"reference": "T"}).status_code == 401


def test_an_invoice_is_emailed_over_http_and_its_log_read(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    number = _final_invoice(api)
    with local_smtp(monkeypatch) as inbox:
        sent = api.post(f"/v1/invoices/{number}/send", json={})
        assert sent.status_code == 200 and (sent.json()["status"], sent.json()["recipient"]) == ("sent",
                                                                                                 "ap@acme.example")
        hostile = api.post(f"/v1/invoices/{number}/send", json={"to": "a@b.example\r\nBcc: c@d.example"})
        assert hostile.status_code == 400 and hostile.json()["field"] == "to"
        assert len(inbox.messages) == 1
    log = api.get(f"/v1/invoices/{number}/deliveries").json()
    assert [(d["status"], d["recipient"]) for d in log] == [("sent", "ap@acme.example"), ("failed", None)]
    assert api.get(f"/v1/invoices/{number}/deliveries", "sandbox").status_code == 404  # not the sandbox's invoice
