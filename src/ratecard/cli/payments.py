"""`ratecard payments list|run|retry|mark-paid`."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import ENVIRONMENT, DbOption, JsonOption, counts_text, emit_json, now, store_for
from .console import Table, err, out, say

app = typer.Typer(help="Collect final invoices: Stripe charges, retries, bank transfers, refunds.",
                  no_args_is_help=True)


@app.command("list")
def list_(
    status: Annotated[str | None, typer.Option("--status", help="pending | succeeded | failed | requires_action | "
                                                                "uncollectible | canceled")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Every payment (charges of final invoices, refunds of credit notes) with its status."""
    from ..services import payments

    payments.check_payment_status(status)
    with store_for(db) as store:
        found = [payments.payment_document(p) for p in payments.find_payments(store, ENVIRONMENT, status)]
    if json_output:
        emit_json(found)
        return
    table = Table(title=f"{len(found)} payment(s)")
    for column in ("invoice", "kind", "customer", "method", "status", "amount", "attempts", "next attempt", "detail"):
        table.add_column(column, justify="right" if column in ("amount", "attempts") else "left",
                         no_wrap=column in ("invoice", "status", "amount"))
    for p in found:
        detail = p["action_url"] or p["failure"] or p["reference"] or p["stripe_id"] or ""
        table.add_row(p["invoice"] or str(p["invoice_id"]), p["kind"], p["customer"], p["method"], p["status"],
                      f"{p['amount']} {p['currency']}", str(p["attempts"]), p["next_attempt_at"] or "", detail)
    out.print(table)


@app.command("run")
def run(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Charge every due payment through Stripe, refund credit notes of paid invoices, send the queued
    invoice emails. Safe from cron and when two run at once (no invoice is charged twice).
    Exit 1 when something could not be done (no Stripe key, an email refused)."""
    from ..services import payments

    with store_for(db) as store:
        result = payments.run_payments(store, now(), ENVIRONMENT)
    if json_output:
        emit_json(result.as_dict())
    else:
        say(out, f"{result.enqueued} enqueued, {result.canceled} canceled (credited), {result.refunds_enqueued} "
                 f"refund(s) enqueued; payments: "
                 f"{counts_text(result.payments)}; emails: {counts_text(result.emails)}")
        for problem in result.problems:
            say(err, f"error: {problem}")
    raise typer.Exit(1 if result.problems or result.emails.get("failed") else 0)


@app.command("retry")
def retry(number: str, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Charge a failed or uncollectible invoice again now (exit 1 when the charge does not succeed)."""
    from ..services import payments

    with store_for(db) as store:
        payment = payments.retry_payment(store, number, now(), ENVIRONMENT)
    document = payments.payment_document(payment)
    if json_output:
        emit_json(document)
    else:
        extra = document["action_url"] or document["failure"] or ""
        say(out, f"{number}: {payment.status}{' — ' + extra if extra else ''}")
    raise typer.Exit(0 if payment.status in ("succeeded", "pending") else 1)


@app.command("mark-paid")
def mark_paid(
    number: str,
    reference: Annotated[str, typer.Option("--reference", help="The bank transfer's reference.")],
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Record that an invoice was paid outside Stripe (a bank transfer), with its reference."""
    from ..services import payments

    with store_for(db) as store:
        payment = payments.mark_paid(store, number, reference, now(), ENVIRONMENT)
    if json_output:
        emit_json(payments.payment_document(payment))
    else:
        say(out, f"{payment.invoice_number or number}: paid ({payment.reference})")
