"""Billing webhooks survive a process that stops right after the change it reports, on SQLite and
PostgreSQL: an invoice finalized, an invoice paid (by hand or through Stripe), a draft created (by
an invoice run, shared or not, or as a one-off), a subscription created or cancelled, a customer
created is queued for its webhooks in the transaction that makes the change, so the delivery is
there once the change is, exactly once, and sent."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import date

import orjson
import pytest
from sqlalchemy import text

from ratecard.golive.webhooks import deliver_pending
from ratecard.services import invoices, one_off_invoices, payments
from ratecard.services import subscription_changes as changes
from ratecard.services.invoice_runs import start_run, work_on_run
from ratecard.services.resources import customers, webhooks
from ratecard.store import Store
from ratecard.store.monitoring import list_deliveries

from ..stripe_standin import WEBHOOK_SECRET, StripeStandIn, event, sign
from .payments_workspace import PAYMENTS_CATALOG, final_invoice, later
from .scenario import NOW, workspace
from .test_webhooks import Receiver


class Crash(BaseException):
    """The process stopping: nothing after it runs (not an Exception, so nothing catches it)."""


@contextlib.contextmanager
def stops_once(store: Store, done: Callable[[], bool]) -> Iterator[None]:
    """The process stops right after the transaction that makes `done` true commits: every
    transaction it would begin after that one raises Crash. Then it "restarts" (the store works again)."""
    begin = store.engine.begin
    stopped: list[bool] = []

    @contextlib.contextmanager
    def crashing_begin():  # noqa: ANN202 - the engine's own signature
        if stopped:
            raise Crash
        with begin() as connection:
            yield connection
        if done():
            stopped.append(True)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store.engine, "begin", crashing_begin)
        with contextlib.suppress(Crash):
            yield
    assert stopped, "the change was never made"


def _scalar(store: Store, sql: str) -> object:
    with store.engine.connect() as connection:
        return connection.execute(text(sql)).scalar()


def _events(store: Store, action: str) -> list[dict]:
    return [orjson.loads(row.body) for row in list_deliveries(store, "live", limit=500) if row.event_type == action]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def store(db_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv(webhooks.ALLOW_PRIVATE_VARIABLE, "1")
    opened, _ = workspace(db_url, PAYMENTS_CATALOG)
    webhooks.create(opened, "live", NOW, {"url": receiver.url("/billing"), "name": "Billing", "reference": "billing"})
    try:
        yield opened
    finally:
        opened.dispose()


def test_a_crash_right_after_finalizing_keeps_the_invoice_finalized_webhook(
        store: Store, receiver: Receiver) -> None:
    invoices.generate(store, date(2026, 2, 1), NOW)
    draft = invoices.find_invoices(store, status="draft")[0]
    with stops_once(store, lambda: _scalar(store, "SELECT count(*) FROM invoices WHERE status = 'final'")):
        invoices.finalize_invoices(store, [draft.display_number], NOW)
    final = invoices.find_invoice(store, str(draft.id))
    assert final.status == "final"
    [sent] = _events(store, "invoice.finalized")
    assert sent["data"]["number"] == final.number and sent["data"]["status"] == "FINAL"
    deliver_pending(store, "live", later(0.01))
    assert [orjson.loads(r["body"])["data"]["number"] for r in receiver.on("/billing")
            if orjson.loads(r["body"])["action"] == "invoice.finalized"] == [final.number]


def test_a_crash_while_finalizing_the_due_drafts_loses_no_webhook(
        store: Store) -> None:
    invoices.generate(store, date(2026, 3, 1), NOW)
    drafts = len(invoices.find_invoices(store, status="draft"))
    assert drafts > 1
    # the process stops after the first of the drafts is final
    with stops_once(store, lambda: _scalar(store, "SELECT count(*) FROM invoices WHERE status = 'final'")):
        invoices.finalize_due_invoices(store, later(1))
    finals = [invoice.number for invoice in invoices.find_invoices(store, status="final")]
    assert len(finals) == 1
    assert [sent["data"]["number"] for sent in _events(store, "invoice.finalized")] == finals
    invoices.finalize_due_invoices(store, later(1))  # the next run finalizes the others: one event each
    finals = [invoice.number for invoice in invoices.find_invoices(store, status="final")]
    assert sorted(sent["data"]["number"] for sent in _events(store, "invoice.finalized")) == sorted(finals)
    assert len(finals) == drafts


def test_a_crash_right_after_marking_paid_keeps_payment_succeeded_and_invoice_paid(
        store: Store) -> None:
    invoice = final_invoice(store)
    with stops_once(store,
                    lambda: _scalar(store, "SELECT count(*) FROM payments WHERE status = 'succeeded'")):
        payments.mark_paid(store, invoice.display_number, "TRANSFER-1", later(2))
    assert payments.payment_of(store, invoice.display_number).status == "succeeded"
    [succeeded] = _events(store, "payment.succeeded")
    assert succeeded["data"]["reference"] == "TRANSFER-1" and succeeded["data"]["method"] == "manual"
    assert [paid["data"]["number"] for paid in _events(store, "invoice.paid")] == [invoice.number]


def test_a_crash_right_after_a_stripe_event_keeps_its_webhook_once(
        store: Store, stripe_standin: StripeStandIn) -> None:
    invoice = final_invoice(store)
    stripe_standin.script["cus_acme"] = ["authenticate"]
    assert payments.run_payments(store, NOW).payments == {"requires_action": 1}
    intent = stripe_standin.intents[payments.payment_of(store, invoice.display_number).intent_id]
    intent.update(status="succeeded", next_action=None)
    payload = event("payment_intent.succeeded", intent, livemode=True)
    with stops_once(store,
                    lambda: _scalar(store, "SELECT count(*) FROM payments WHERE status = 'succeeded'")):
        payments.handle_stripe_webhook(store, payload, sign(payload, WEBHOOK_SECRET), later(0.1))
    assert payments.payment_of(store, invoice.display_number).status == "succeeded"
    # Stripe sends the event again (no 200 came back): the payment has moved, nothing is queued twice
    assert payments.handle_stripe_webhook(store, payload, sign(payload, WEBHOOK_SECRET), later(0.2)).result \
        == "unchanged"
    assert [sent["data"]["invoice_number"] for sent in _events(store, "payment.succeeded")] == [invoice.number]
    assert [sent["data"]["number"] for sent in _events(store, "invoice.paid")] == [invoice.number]


def test_a_crash_right_after_a_one_off_invoice_keeps_invoice_created(
        store: Store) -> None:
    with stops_once(store, lambda: _scalar(store, "SELECT count(*) FROM invoices")):
        one_off_invoices.create_one_off_invoice(store, "acme", [], NOW)
    [draft] = invoices.find_invoices(store, status="draft")
    assert [sent["data"]["id"] for sent in _events(store, "invoice.created")] == [draft.id]


@pytest.mark.parametrize("write", ["create", "cancel"])
def test_a_crash_right_after_a_subscription_change_keeps_its_webhook(
        store: Store, write: str) -> None:
    before = _scalar(store, "SELECT max(version) FROM catalog_versions")
    with stops_once(store, lambda: _scalar(store, "SELECT max(version) FROM catalog_versions") != before):
        if write == "create":
            changes.create_subscription(store, NOW, reference="acme-2", customer="acme", plan="pro",
                                        requires_reference=True)
        else:
            changes.cancel_subscription(store, NOW, reference="acme-pro", at_period_end=True)
    version = _scalar(store, "SELECT max(version) FROM catalog_versions")
    assert version != before
    action = {"create": "subscription.created", "cancel": "subscription.cancelled"}[write]
    reference = {"create": "acme-2", "cancel": "acme-pro"}[write]
    [sent] = _events(store, action)
    assert sent["data"]["reference"] == reference and sent["data"]["catalog_version"] == version


def test_a_change_that_stores_nothing_queues_nothing(store: Store) -> None:
    changes.cancel_subscription(store, NOW, reference="acme-pro", at_period_end=True)
    changes.cancel_subscription(store, NOW, reference="acme-pro", at_period_end=True)  # the same end again
    assert len(_events(store, "subscription.cancelled")) == 1


def test_a_crash_right_after_an_invoice_run_wrote_its_drafts_keeps_invoice_created(store: Store) -> None:
    with stops_once(store, lambda: _scalar(store, "SELECT count(*) FROM invoices")):
        invoices.generate(store, date(2026, 3, 1), NOW)
    drafts = invoices.find_invoices(store, status="draft")
    assert len(drafts) > 1
    assert sorted(sent["data"]["id"] for sent in _events(store, "invoice.created")) == sorted(d.id for d in drafts)
    invoices.generate(store, date(2026, 3, 1), NOW)  # the run again: the drafts are refreshed, not created
    assert len(_events(store, "invoice.created")) == len(drafts)


def test_a_shared_invoice_run_queues_invoice_created_with_each_batch(store: Store) -> None:
    run = start_run(store, date(2026, 3, 1), NOW, "live", 1)
    with stops_once(store, lambda: _scalar(store, "SELECT count(*) FROM invoices")):
        work_on_run(store, run)  # stops before the run is marked finished
    drafts = invoices.find_invoices(store, status="draft")
    assert drafts
    assert sorted(sent["data"]["id"] for sent in _events(store, "invoice.created")) == sorted(d.id for d in drafts)


def test_a_crash_right_after_a_customer_is_created_keeps_customer_created(store: Store) -> None:
    before = _scalar(store, "SELECT count(*) FROM api_resources")
    with stops_once(store, lambda: _scalar(store, "SELECT count(*) FROM api_resources") != before):
        customers.create(store, "live", NOW, {"type": "ORGANIZATION", "reference": "newco",
                                              "organization": {"legal_name": "NewCo"}})
    [sent] = _events(store, "customer.created")
    assert sent["data"]["reference"] == "newco"


def test_a_charge_made_by_payments_run_sends_payment_succeeded_and_invoice_paid_once(
        store: Store, stripe_standin: StripeStandIn) -> None:
    """A charge that succeeds in `payments run` (Stripe's later event then finds it paid and
    changes nothing) is queued with the status it records, a crash right after notwithstanding."""
    invoice = final_invoice(store)
    with stops_once(store, lambda: _scalar(store, "SELECT count(*) FROM payments WHERE status = 'succeeded'")):
        payments.run_payments(store, NOW)
    assert payments.payment_of(store, invoice.display_number).status == "succeeded"
    intent = stripe_standin.intents[payments.payment_of(store, invoice.display_number).intent_id]
    payload = event("payment_intent.succeeded", intent, livemode=True)
    assert payments.handle_stripe_webhook(store, payload, sign(payload, WEBHOOK_SECRET), later(0.1)).result \
        == "unchanged"
    [succeeded] = _events(store, "payment.succeeded")
    assert (succeeded["data"]["invoice_number"], succeeded["data"]["method"]) == (invoice.number, "stripe")
    assert [paid["data"]["number"] for paid in _events(store, "invoice.paid")] == [invoice.number]


def test_a_declined_charge_sends_payment_failed_and_its_retry_payment_succeeded(
        store: Store, stripe_standin: StripeStandIn) -> None:
    invoice = final_invoice(store)
    stripe_standin.script["cus_acme"] = ["declined"]
    assert payments.run_payments(store, NOW).payments == {"failed": 1}
    assert [sent["data"]["invoice_number"] for sent in _events(store, "payment.failed")] == [invoice.number]
    assert payments.retry_payment(store, invoice.display_number, later(0.5)).status == "succeeded"
    assert [sent["data"]["invoice_number"] for sent in _events(store, "payment.succeeded")] == [invoice.number]
    assert len(_events(store, "payment.failed")) == 1 and len(_events(store, "invoice.paid")) == 1


def test_the_last_declined_charge_of_the_dunning_schedule_sends_payment_failed_too(
        store: Store, stripe_standin: StripeStandIn) -> None:
    """dunning_days [1, 3]: three declined charges, the last one leaves the invoice uncollectible;
    each is a Stripe charge attempt that failed, so each sends payment.failed once."""
    invoice = final_invoice(store)
    stripe_standin.script["cus_acme"] = ["declined", "declined", "declined"]
    assert payments.run_payments(store, NOW).payments == {"failed": 1}
    assert payments.run_payments(store, later(1.1)).payments == {"failed": 1}
    assert payments.run_payments(store, later(3.1)).payments == {"uncollectible": 1}
    assert payments.payment_of(store, invoice.display_number).status == "uncollectible"
    failed = _events(store, "payment.failed")
    assert [sent["data"]["invoice_number"] for sent in failed] == [invoice.number] * 3
    assert sorted(sent["data"]["status"] for sent in failed) == ["FAILED", "FAILED", "UNCOLLECTIBLE"]
    assert _events(store, "payment.succeeded") == [] and _events(store, "invoice.paid") == []


def test_a_charge_whose_outcome_stayed_unknown_too_long_sends_payment_failed(
        store: Store, stripe_standin: StripeStandIn) -> None:
    """A charge sent to Stripe whose answer never came (the run was killed): after 23 hours Stripe
    may have forgotten the idempotency key, so it is not sent again but failed for a person to check;
    failed like a declined charge, it sends payment.failed, naming what to look for."""
    from ratecard.domain.instants import to_micros
    from ratecard.store.payments import update_payment

    invoice = final_invoice(store)
    [payment] = payments.find_payments(store)
    assert update_payment(store, "live", payment.id, {"attempt": 1, "idempotency_key": "key-in-flight",
                                                      "attempt_started_at": to_micros(NOW), "status": "pending"})
    assert payments.run_payments(store, later(1)).payments == {"failed": 1}
    [failed] = _events(store, "payment.failed")
    assert failed["data"]["invoice_number"] == invoice.number and failed["data"]["status"] == "FAILED"
    assert stripe_standin.executed == {}  # the key was never sent again


def test_payment_succeeded_names_the_invoice_number_when_marked_paid_by_its_draft_reference(
        store: Store) -> None:
    """A final invoice can still be named by the draft reference it had; the webhook a receiver
    matches against its invoices carries the invoice's number, not what was typed."""
    invoice = final_invoice(store)
    assert invoice.number and invoice.draft_number
    payments.mark_paid(store, f"DRAFT-{invoice.draft_number}", "TRANSFER-2", later(2))
    [succeeded] = _events(store, "payment.succeeded")
    assert succeeded["data"]["invoice_number"] == invoice.number


IMPORTED = """id,Customer ID,Customer Name,Plan,Start Date (UTC),Current Period End (UTC),Currency
sub_one,cus_one,One GmbH,pro,2026-01-01 00:00,2026-03-01 00:00,EUR
sub_two,cus_two,Two SA,pro,2026-01-01 00:00,2026-03-01 00:00,EUR
"""


def test_a_crash_right_after_a_subscriptions_import_keeps_subscription_created_for_each(
        store: Store, tmp_path, receiver: Receiver) -> None:
    from ratecard.services.subscriptions import import_subscriptions

    export = tmp_path / "subscriptions.csv"
    export.write_text(IMPORTED)
    import_subscriptions(store, export, NOW, mapping="stripe-subscriptions", dry_run=True)
    assert _events(store, "subscription.created") == []  # a dry run stores nothing, sends nothing
    before = _scalar(store, "SELECT max(version) FROM catalog_versions")
    with stops_once(store, lambda: _scalar(store, "SELECT max(version) FROM catalog_versions") != before):
        import_subscriptions(store, export, NOW, mapping="stripe-subscriptions")
    version = _scalar(store, "SELECT max(version) FROM catalog_versions")
    sent = _events(store, "subscription.created")
    assert sorted(event["data"]["reference"] for event in sent) == ["sub_one", "sub_two"]
    assert {event["data"]["catalog_version"] for event in sent} == {version}
    deliver_pending(store, "live", later(0.01))
    assert sorted(orjson.loads(r["body"])["data"]["reference"] for r in receiver.on("/billing")
                  if orjson.loads(r["body"])["action"] == "subscription.created") == ["sub_one", "sub_two"]
