"""Collecting final invoices through Stripe (the real client against a local stand-in), on both
stores: success, decline then retry, dunning, 3-D Secure, webhooks, a crash between the charge
and the status write, refunds."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest

from ratecard.payments import collect
from ratecard.services import payments
from ratecard.services.errors import Conflict, InvalidInput
from ratecard.store.corrections import credit_note_for, save_correction

from ..stripe_standin import WEBHOOK_SECRET, StripeStandIn, event, sign
from .payments_workspace import Billed, billed_workspace, later
from .scenario import NOW


@pytest.fixture
def billed(db_url: str) -> Iterator[Billed]:
    workspace = billed_workspace(db_url)
    try:
        yield workspace
    finally:
        workspace.store.dispose()


def status_of(billed: Billed) -> dict:
    return payments.payment_document(payments.payment_of(billed.store, billed.invoice.display_number))


def test_finalizing_enqueues_the_charge_and_calls_no_one(billed: Billed, stripe_standin: StripeStandIn) -> None:
    document = status_of(billed)
    assert document["status"] == "pending" and document["method"] == "stripe"
    assert document["amount"] == f"{billed.invoice.total:f}" and document["currency"] == "EUR"
    assert stripe_standin.intents == {}  # finalization never waits for Stripe


def test_a_due_invoice_is_charged_once_in_minor_units(billed: Billed, stripe_standin: StripeStandIn) -> None:
    run = payments.run_payments(billed.store, NOW)
    assert run.payments == {"succeeded": 1}
    (intent,) = stripe_standin.intents.values()
    # hand-computed: the base fee of 49.00 for 15-31 January in advance is 49 x 17/31 = 26.87, plus
    # 19% tax 5.11 = 31.98 EUR -> 3198 cents
    assert billed.invoice.total == Decimal("31.98")
    assert (intent["amount"], intent["currency"], intent["customer"]) == (3198, "eur", "cus_acme")
    assert intent["payment_method"] == "pm_card_visa"
    assert intent["metadata"]["ratecard_invoice_number"] == billed.invoice.number
    assert status_of(billed)["status"] == "succeeded"
    assert payments.run_payments(billed.store, later(1)).payments == {}  # nothing more is due
    assert len(stripe_standin.succeeded_charges()) == 1


def test_a_declined_card_is_retried_on_the_schedule_then_succeeds(billed: Billed,
                                                                   stripe_standin: StripeStandIn) -> None:
    stripe_standin.script["cus_acme"] = ["declined"]
    assert payments.run_payments(billed.store, NOW).payments == {"failed": 1}
    failed = status_of(billed)
    assert failed["status"] == "failed" and "insufficient funds" in failed["failure"]
    assert failed["next_attempt_at"] == "2026-11-27T00:00:00Z"  # dunning_days [1, 3]: one day after the failure
    assert payments.run_payments(billed.store, later(0.5)).payments == {}  # not due yet
    assert payments.run_payments(billed.store, later(1)).payments == {"succeeded": 1}
    assert status_of(billed)["status"] == "succeeded" and status_of(billed)["attempts"] == 2
    assert sorted(stripe_standin.executed.values()) == [1, 1]  # two attempts, two keys, each run once
    assert len(stripe_standin.succeeded_charges()) == 1


def test_after_the_last_retry_the_invoice_is_uncollectible_and_a_manual_retry_charges(
        billed: Billed, stripe_standin: StripeStandIn) -> None:
    stripe_standin.script["cus_acme"] = ["declined", "declined", "declined"]
    payments.run_payments(billed.store, NOW)
    payments.run_payments(billed.store, later(1))
    assert payments.run_payments(billed.store, later(3)).payments == {"uncollectible": 1}
    assert status_of(billed)["next_attempt_at"] is None
    assert payments.run_payments(billed.store, later(30)).payments == {}
    stripe_standin.script["cus_acme"] = []  # the customer updated the card
    retried = payments.retry_payment(billed.store, billed.invoice.display_number, later(31))
    assert retried.status == "succeeded" and retried.attempt == 4
    with pytest.raises(Conflict, match="succeeded"):
        payments.retry_payment(billed.store, billed.invoice.display_number, later(31))


def _post_webhook(billed: Billed, kind: str, intent: dict, secret: str = WEBHOOK_SECRET):
    payload = event(kind, intent, livemode=True)
    return payments.handle_stripe_webhook(billed.store, payload, sign(payload, secret), later(0.1))


def test_three_d_secure_keeps_the_link_and_the_webhook_settles_it(billed: Billed,
                                                                  stripe_standin: StripeStandIn) -> None:
    stripe_standin.script["cus_acme"] = ["authenticate"]
    assert payments.run_payments(billed.store, NOW).payments == {"requires_action": 1}
    waiting = status_of(billed)
    assert waiting["action_url"].startswith("https://hooks.stripe.com/3d_secure_2/hosted")
    assert payments.run_payments(billed.store, later(2)).payments == {}  # never charged again meanwhile
    intent = stripe_standin.intents[waiting["stripe_id"]]
    intent.update(status="succeeded", next_action=None)  # the customer authenticated
    assert _post_webhook(billed, "payment_intent.succeeded", intent).result == "succeeded"
    assert status_of(billed)["status"] == "succeeded" and status_of(billed)["action_url"] is None
    # the same event again (Stripe retries deliveries) changes nothing
    assert _post_webhook(billed, "payment_intent.succeeded", intent).result == "unchanged"
    # a late failure event cannot take a paid invoice back
    assert _post_webhook(billed, "payment_intent.payment_failed", {**intent, "status": "requires_payment_method"}
                         ).result == "unchanged"
    assert status_of(billed)["status"] == "succeeded"


def test_a_webhook_with_a_bad_signature_changes_nothing(billed: Billed, stripe_standin: StripeStandIn) -> None:
    stripe_standin.script["cus_acme"] = ["authenticate"]
    payments.run_payments(billed.store, NOW)
    intent = {**stripe_standin.intents[status_of(billed)["stripe_id"]], "status": "succeeded"}
    with pytest.raises(ValueError, match="does not verify"):
        _post_webhook(billed, "payment_intent.succeeded", intent, secret="whsec_someone_else")
    payload = event("payment_intent.succeeded", intent)
    tampered = payload.replace(b'"succeeded"', b'"succeeded" ')
    with pytest.raises(ValueError):
        payments.handle_stripe_webhook(billed.store, tampered, sign(payload, WEBHOOK_SECRET), later(0.1))
    assert status_of(billed)["status"] == "requires_action"


def test_a_webhook_for_an_unknown_intent_is_ignored(billed: Billed, stripe_standin: StripeStandIn) -> None:
    applied = _post_webhook(billed, "payment_intent.succeeded", {"id": "pi_not_ours", "status": "succeeded"})
    assert applied.result == "ignored"
    assert status_of(billed)["status"] == "pending"


def test_an_event_of_the_other_mode_never_touches_this_environment(billed: Billed,
                                                                   stripe_standin: StripeStandIn) -> None:
    stripe_standin.script["cus_acme"] = ["authenticate"]
    payments.run_payments(billed.store, NOW)
    intent = {**stripe_standin.intents[status_of(billed)["stripe_id"]], "status": "succeeded"}
    payload = event("payment_intent.succeeded", intent, livemode=False)  # a test-mode event: sandbox
    applied = payments.handle_stripe_webhook(billed.store, payload, sign(payload, WEBHOOK_SECRET), later(0.1))
    assert applied.result == "ignored" and status_of(billed)["status"] == "requires_action"


def test_two_runs_at_once_charge_once(billed: Billed, stripe_standin: StripeStandIn) -> None:
    results: list[dict] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(payments.run_payments(billed.store, NOW).payments)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(stripe_standin.executed.values()) == [1]  # one attempt, one key, run once
    assert len(stripe_standin.succeeded_charges()) == 1
    assert status_of(billed)["status"] == "succeeded"


def test_a_run_killed_between_the_charge_and_the_status_write_never_charges_twice(
        billed: Billed, stripe_standin: StripeStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args, **kwargs):
        raise SystemExit("killed after Stripe answered, before the outcome was written")

    with monkeypatch.context() as patched:
        patched.setattr(collect, "_record", crash)
        with pytest.raises(SystemExit):
            payments.run_payments(billed.store, NOW)
    in_flight = status_of(billed)
    assert in_flight["in_flight"] and in_flight["status"] == "pending" and in_flight["stripe_id"] is None
    assert len(stripe_standin.succeeded_charges()) == 1  # the customer was charged
    # the restart asks Stripe again with the same key: Stripe answers the first outcome
    assert payments.run_payments(billed.store, later(0.01)).payments == {"succeeded": 1}
    (key,) = stripe_standin.executed
    assert stripe_standin.executed[key] == 1 and stripe_standin.requests[key] == 2
    assert len(stripe_standin.succeeded_charges()) == 1
    assert status_of(billed)["status"] == "succeeded" and not status_of(billed)["in_flight"]
    with pytest.raises(Conflict, match="paid already"):
        payments.mark_paid(billed.store, billed.invoice.display_number, "TRANSFER-1", later(1))


def test_a_credit_note_of_a_paid_invoice_is_refunded_once(billed: Billed, stripe_standin: StripeStandIn) -> None:
    payments.run_payments(billed.store, NOW)
    note = credit_note_for(billed.invoice, "2026-02-10")
    save_correction(billed.store, "live", billed.invoice, note, None, 0, "RC", "CN")
    run = payments.run_payments(billed.store, later(1))
    assert run.refunds_enqueued == 1 and run.payments == {"succeeded": 1}
    (refund,) = stripe_standin.refunds.values()
    assert refund["amount"] == 3198 and refund["payment_intent"] == status_of(billed)["stripe_id"]
    again = payments.run_payments(billed.store, later(2))
    assert again.refunds_enqueued == 0 and len(stripe_standin.refunds) == 1
    refunds = [p for p in payments.find_payments(billed.store) if p.kind == "refund"]
    assert [(p.status, p.amount_minor) for p in refunds] == [("succeeded", 3198)]


def test_a_refused_refund_is_listed_and_sent_again_by_retry(billed: Billed, stripe_standin: StripeStandIn) -> None:
    payments.run_payments(billed.store, NOW)
    note = credit_note_for(billed.invoice, "2026-02-10")
    save_correction(billed.store, "live", billed.invoice, note, None, 0, "RC", "CN")
    stripe_standin.refuse_refunds = True
    assert payments.run_payments(billed.store, later(1)).payments == {"failed": 1}
    (refund,) = [p for p in payments.find_payments(billed.store) if p.kind == "refund"]
    assert refund.status == "failed" and "disputed" in (refund.failure or "")
    assert payments.run_payments(billed.store, later(5)).payments == {}  # a refund is not retried by itself
    stripe_standin.refuse_refunds = False
    retried = payments.retry_payment(billed.store, refund.invoice_number or "", later(6))
    assert (retried.kind, retried.status, retried.attempt) == ("refund", "succeeded", 2)
    assert len(stripe_standin.refunds) == 1
    with pytest.raises(Conflict, match="credit note"):
        payments.mark_paid(billed.store, refund.invoice_number or "", "T-1", later(6))


def test_an_invoice_credited_before_it_is_collected_is_never_charged(billed: Billed,
                                                                      stripe_standin: StripeStandIn) -> None:
    stripe_standin.script["cus_acme"] = ["declined"]
    payments.run_payments(billed.store, NOW)
    note = credit_note_for(billed.invoice, "2026-02-10")
    save_correction(billed.store, "live", billed.invoice, note, None, 0, "RC", "CN")
    run = payments.run_payments(billed.store, later(1))  # the retry would be due now
    assert run.canceled == 1 and run.payments == {} and run.refunds_enqueued == 0
    canceled = status_of(billed)
    assert canceled["status"] == "canceled" and canceled["failure"] == "credited by CN-000001: nothing to collect"
    assert payments.run_payments(billed.store, later(10)).payments == {}
    assert len(stripe_standin.intents) == 1 and stripe_standin.succeeded_charges() == []


def test_a_bank_transfer_is_marked_paid_with_its_reference(billed: Billed) -> None:
    with pytest.raises(InvalidInput, match="reference"):
        payments.mark_paid(billed.store, billed.invoice.display_number, "line\r\nInjected: yes", NOW)
    paid = payments.mark_paid(billed.store, billed.invoice.display_number, "NL-TRANSFER-0042", NOW)
    assert (paid.status, paid.method, paid.reference) == ("succeeded", "manual", "NL-TRANSFER-0042")
    assert json.loads(json.dumps(payments.payment_document(paid)))["reference"] == "NL-TRANSFER-0042"


def test_without_an_api_key_nothing_is_charged_and_the_run_says_why(billed: Billed,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RATECARD_STRIPE_API_KEY", raising=False)
    run = payments.run_payments(billed.store, NOW)
    assert run.problems and "RATECARD_STRIPE_API_KEY" in run.problems[0]
    assert status_of(billed)["status"] == "pending"


def test_payments_belong_to_their_environment(billed: Billed) -> None:
    assert payments.find_payments(billed.store, "sandbox") == []
    assert len(payments.find_payments(billed.store, "live")) == 1


def test_the_dunning_schedule_is_the_one_of_the_entity_that_bills_the_customer(
        db_url: str, stripe_standin: StripeStandIn) -> None:
    from .payments_workspace import PAYMENTS_CATALOG, final_invoice
    from .scenario import workspace

    # acme is billed by a second entity whose schedule is [2]: its first retry is two days after
    # the failure, where the default entity's [1, 3] would say one
    catalog = PAYMENTS_CATALOG.replace(
        "\nmeters:",
        "\nbilling_entities:\n  - {code: fr, name: Acme France SAS, country: FR, timezone: UTC, currency: EUR,"
        " invoice_prefix: FR, payments: {dunning_days: [2]}}\nmeters:", 1,
    ).replace("stripe_customer_id: cus_acme}", "stripe_customer_id: cus_acme, billing_entity: fr}")
    assert "billing_entity: fr" in catalog and "code: fr" in catalog
    store, _ = workspace(db_url, catalog)
    try:
        invoice = final_invoice(store)
        assert invoice.number.startswith("FR-")
        stripe_standin.script["cus_acme"] = ["declined"]
        assert payments.run_payments(store, NOW).payments == {"failed": 1}
        failed = payments.payment_document(payments.payment_of(store, invoice.display_number))
        assert failed["next_attempt_at"] == "2026-11-28T00:00:00Z"
    finally:
        store.dispose()
