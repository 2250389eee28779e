"""`ratecard invoices generate|preview|list|show|finalize|hold|release|void|export|pdf|ubl|facturx|send|deliveries`,
and for one-off invoices `create|add-line|edit-line|delete-line`, with `refresh|archive`."""

from __future__ import annotations

import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from . import invoice_documents
from .common import ENVIRONMENT, DbOption, JsonOption, check_output, emit_json, fail, now, progress, store_for, write_file
from .console import Table, err, out, say, styled

if TYPE_CHECKING:
    from ..services.invoices import Finalization
    from ..services.preview import UpcomingInvoices

app = typer.Typer(help="Generate, review, finalize and export invoices.", no_args_is_help=True)

Status = Annotated[str | None, typer.Option("--status", help="draft | final | void")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would be finalized (drafts, customers, totals "
                                                        "and the numbers they would get); change nothing.")]


@app.command("generate")
def generate(
    until: Annotated[str, typer.Option("--until", help="Cut invoices at every boundary on or before this date.")],
    db: DbOption = None,
    json_output: JsonOption = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes sharing the run: each "
                                                                        "claims customers and bills them; a killed "
                                                                        "one's customers are taken over. SQLite: "
                                                                        "one (it has one writer).")] = 1,
    lease: Annotated[float, typer.Option("--lease", min=1, max=3600, help="With --workers: seconds a worker's "
                                                                          "claim lasts without its heartbeat before "
                                                                          "another worker takes it over.")] = 30.0,
    chunk: Annotated[int | None, typer.Option("--chunk", min=1, max=500, help="With --workers: customers claimed "
                                                                             "at once (default: about four claims "
                                                                             "per worker).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what the run would create, refresh and "
                                                            "remove; write nothing (in this process).")] = False,
) -> None:
    """Create or refresh every invoice due at boundaries <= DATE (drafts only; final ones are never changed)."""
    from ..services import invoices
    from ..services.parsing import parse_until

    limit = parse_until("until", until)
    moment = now()
    if workers > 1 and not dry_run:
        from .invoice_run import generate_shared

        _print_run(generate_shared(limit, moment, db, workers, lease, chunk, json_output), until, json_output)
        return
    if workers > 1:
        say(err, "a dry run writes nothing, so it is not shared: it runs in this process")
    with store_for(db) as store, progress(json_output) as bar:
        task = bar.add_task("pricing invoices", total=None)
        report = invoices.generate(store, limit, moment, ENVIRONMENT, on_total=lambda n: bar.update(task, total=n),
                                   on_progress=lambda n: bar.advance(task, n), dry_run=dry_run)
    _print_run(report.as_dict(), until, json_output)


def _print_run(report: dict, until: str, json_output: bool) -> None:
    """The run's report (RunReport.as_dict, with `run` for a shared run); exit 1 when a cut failed."""
    if json_output:
        emit_json(report)
    else:
        would = "dry run, nothing written: would be " if report["dry_run"] else ""
        say(out, f"invoices up to {until}: {would}{report['created']} created, {report['updated']} refreshed, "
                 f"{report['unchanged']} unchanged, {report['skipped_final']} final/void left alone "
                 f"({report['subscriptions']} subscriptions, {report['cuts']} boundaries)")
        if "run" in report:
            run = report["run"]
            say(err, f"invoice run {run['id']}: {run['done']} of {run['items']} customers billed"
                     + (f", {run['failed']} failed" if run["failed"] else ""))
        for failure in report["failures"]:
            boundary = f", boundary {failure['boundary']}" if failure["boundary"] else ""
            say(err, f"not invoiced: customer {failure['customer']}, subscription {failure['subscription']}"
                     f"{boundary}: {failure['reason']}")
    if report["failures"]:  # every other invoice was written; these need a look
        raise typer.Exit(1)


@app.command("preview")
def preview(
    customer: Annotated[str, typer.Argument(help="The customer's reference in the catalog.")],
    at: Annotated[str | None, typer.Option("--at", help="RFC 3339 instant with its offset (default: now); usage "
                                                        "before it counts.")] = None,
    env: Annotated[str, typer.Option("--env", help="live | sandbox")] = ENVIRONMENT,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """The upcoming invoice: what each subscription's current period would bill if it closed with the usage
    so far. Computed, never written. Exit 1 for a customer the catalog does not know."""
    from ..services.parsing import parse_rfc3339
    from ..services.preview import UnknownCustomer, preview_invoices

    moment = parse_rfc3339("at", at) if at is not None else None
    with store_for(db) as store:
        try:
            upcoming = preview_invoices(store, customer, moment, now(), env)
        except UnknownCustomer as exc:
            fail(str(exc), code=1)
    if json_output:
        emit_json(upcoming.as_dict())
    else:
        _print_upcoming(upcoming)
    if upcoming.failed:  # the other subscriptions were previewed; these need a look
        raise typer.Exit(1)


def _print_upcoming(upcoming: UpcomingInvoices) -> None:
    document = upcoming.as_dict()
    if not document["subscriptions"]:
        say(out, f"customer {upcoming.customer} has no subscription active at {document['at']}: nothing upcoming")
        return
    for preview in document["subscriptions"]:
        say(out, f"subscription {preview['subscription']}: period {preview['period_start']} → "
                 f"{preview['period_end']}; usage before {document['at']}")
        usage = Table()
        for column in ("meter", "quantity", "events"):
            usage.add_column(column, justify="left" if column == "meter" else "right")
        for row in preview["usage"]:
            usage.add_row(row["meter"], row["quantity"], str(row["events"]))
        out.print(usage)
        if preview["failure"] is not None:
            say(err, f"not priced: subscription {preview['subscription']}: {preview['failure']['reason']}")
        if not preview["invoices"]:
            say(out, f"no invoice would be cut at {preview['period_end']} (no lines)")
        for invoice in preview["invoices"]:
            shadow = " (shadow: the legacy system bills these lines)" if invoice["mode"] == "shadow" else ""
            lines = Table(title=f"upcoming invoice of {invoice['issue_date']} ({invoice['currency']}){shadow}")
            for column in ("code", "description", "service period", "quantity", "unit amount", "amount"):
                lines.add_column(column, justify="right" if column in ("quantity", "unit amount", "amount") else "left")
            for line in invoice["lines"]:
                lines.add_row(line["code"], line["description"], f"{line['service_start']} → {line['service_end']}",
                              line["quantity"], line["unit_amount"], line["amount"])
            lines.add_section()
            lines.add_row("", "subtotal", "", "", "", invoice["subtotal"])
            lines.add_row("", f"tax ({invoice['tax_rate']}%)", "", "", "", invoice["tax"])
            lines.add_row("", styled("total", "bold"), "", "", "", styled(invoice["total"], "bold"))
            out.print(lines)


IncludeArchived = Annotated[bool, typer.Option("--include-archived", help="List archived invoices too (left out "
                                                                          "by default, as the API's list does).")]


@app.command("list")
def list_(status: Status = None, include_archived: IncludeArchived = False, db: DbOption = None,
          json_output: JsonOption = False) -> None:
    """List invoices with their totals (archived ones only with --include-archived)."""
    from ..services import invoices
    from ..services.invoices import invoices_json

    invoices.check_invoice_status(status)
    with store_for(db, existing=True) as store:
        found = invoices.find_invoices(store, ENVIRONMENT, status, include_archived=include_archived)
    if json_output:
        emit_json(invoices_json(found))
        return
    table = Table(title=f"{len(found)} invoice(s)")
    numbers = {invoice.id: invoice.display_number for invoice in found}
    for column in ("number", "kind", "customer", "subscription", "status", "issue date", "currency", "subtotal",
                   "tax", "total", "corrects"):
        table.add_column(column, justify="right" if column in ("subtotal", "tax", "total") else "left",
                         no_wrap=column in ("number", "kind", "issue date", "status", "corrects"))
    for invoice in found:
        corrects = numbers.get(invoice.corrects, str(invoice.corrects)) if invoice.corrects is not None else ""
        table.add_row(invoice.display_number, invoice.kind.replace("_", " "), invoice.customer,
                      invoice.subscription or "(one-off)",
                      _listed_status(invoice),
                      invoice.issue_date, invoice.currency,
                      f"{invoice.subtotal:f}", f"{invoice.tax:f}", f"{invoice.total:f}", corrects)
    out.print(table)


def _listed_status(invoice) -> str:  # noqa: ANN001 - an InvoiceRecord
    status = invoice.status if invoice.mode == "live" else f"{invoice.status} (shadow)"
    return status if invoice.archived_at is None else f"{status} (archived)"


@app.command("show")
def show(number: str, db: DbOption = None, json_output: JsonOption = False) -> None:
    """One invoice with its lines (by number, DRAFT-n or id)."""
    from ..domain.money import display_price_in
    from ..services.invoices import show_invoice

    with store_for(db, existing=True) as store:
        detail = show_invoice(store, number, ENVIRONMENT)
    if json_output:
        emit_json(detail.as_dict())
        return
    invoice, corrected = detail.invoice, detail.corrected
    kind = "credit note" if invoice.kind == "credit_note" else "invoice"
    billed = "one-off" if invoice.is_one_off else f"subscription {invoice.subscription}"
    out.print(Text.assemble(styled(invoice.display_number, "bold"),
                            f" {kind}, {invoice.status} — customer {invoice.customer}, {billed}, "
                            f"issued {invoice.issue_date}, {invoice.currency}"))
    if corrected is not None:
        verb = "credits" if invoice.kind == "credit_note" else "replaces"
        say(out, f"{verb} {corrected.display_number} (correction {invoice.revision})")
    table = Table()
    for column in ("#", "code", "description", "service period", "quantity", "unit amount", "amount"):
        table.add_column(column, justify="right" if column in ("#", "quantity", "unit amount", "amount") else "left")
    for index, line in enumerate(invoice.lines):  # `#`: the number edit-line and delete-line take
        table.add_row(str(invoice.line_number(index) + 1), line.code, line.description,
                      f"{line.service_start} → {line.service_end}", _quantity(line.quantity),
                      f"{display_price_in(line.unit_amount, invoice.currency):f}",
                      f"{line.amount:f}")
    table.add_section()
    table.add_row("", "", "subtotal", "", "", "", f"{invoice.subtotal:f}")
    table.add_row("", "", f"tax ({invoice.tax_rate:f}%)", "", "", "", f"{invoice.tax:f}")
    table.add_row("", "", styled("total", "bold"), "", "", "", styled(f"{invoice.total:f}", "bold"))
    out.print(table)


def _quantity(value: Decimal) -> str:
    """A line's quantity as the documents show it: every digit it has, no trailing zeros (a
    time-weighted meter's quantities are kept to 12 decimals: 5.000000000000 reads 5); --json
    keeps the stored figure."""
    from ..domain.money import significant_decimals

    return f"{value:.{significant_decimals(value)}f}"


@app.command("finalize")
def finalize(
    numbers: Annotated[list[str] | None, typer.Argument(help="Drafts to finalize (DRAFT-n or id).")] = None,
    due: Annotated[bool, typer.Option("--due", help="Finalize every draft past its grace period, not on hold.")] = False,
    grace: Annotated[float, typer.Option("--grace", min=0, help="Grace period in hours (with --due).")] = 8.0,
    dry_run: DryRun = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Finalize drafts: they get a gapless number and never change again. Drafts on hold are never finalized.

    `--due` is safe from cron and when two run at once: an invoice is finalized once, with one number."""
    from ..services import invoices
    from ..services.invoices import invoices_json

    if due == bool(numbers):
        fail("give either invoice numbers or --due")
    moment = now()
    with store_for(db) as store:
        if numbers:
            result = invoices.finalize_invoices(store, numbers, moment, ENVIRONMENT, dry_run=dry_run)
        else:
            result = invoices.finalize_due_invoices(store, moment, timedelta(hours=grace), ENVIRONMENT,
                                                    dry_run=dry_run)
    if json_output:
        if not numbers:
            emit_json(result.as_dict())
        elif dry_run:
            emit_json({"dry_run": True, "would_finalize": result.planned_json()})
        else:
            emit_json(invoices_json(result.finalized))
        return
    _print_finalization(result, due)


def _print_finalization(result: Finalization, due: bool) -> None:
    if result.dry_run:
        if result.planned:
            table = Table(title=f"dry run: {len(result.planned)} draft(s) would be finalized; nothing was changed")
            for column in ("draft", "would be numbered", "customer", "issue date", "total"):
                table.add_column(column, justify="right" if column == "total" else "left", no_wrap=True)
            for invoice, number in result.planned:
                table.add_row(invoice.display_number, number, invoice.customer, invoice.issue_date,
                              f"{invoice.total:f} {invoice.currency}")
            out.print(table)
        else:
            say(out, "dry run: no draft would be finalized; nothing was changed")
    for invoice in result.finalized:
        say(out, f"{invoice.display_number}: final ({invoice.customer}, {invoice.total:f} {invoice.currency})")
    if due:
        done = f"{len(result.planned)} would be finalized" if result.dry_run else f"{len(result.finalized)} finalized"
        others = "" if result.dry_run else f"; {result.skipped_by_other_process} finalized by another process"
        say(out, f"{done}; {result.on_hold} on hold; {result.within_grace} within their grace period{others}")
    elif not result.dry_run:
        say(out, f"{len(result.finalized)} finalized")


def _hold(number: str, hold: bool, db: str | None) -> None:
    from ..services.invoices import hold_invoice

    with store_for(db) as store:
        invoice = hold_invoice(store, number, hold, ENVIRONMENT)
    say(out, f"{invoice.display_number}: {'on hold: it will not be finalized' if hold else 'released'}")


@app.command("hold")
def hold(number: str, db: DbOption = None) -> None:
    """Put a draft on hold: it is still refreshed but never finalized until released."""
    _hold(number, True, db)


@app.command("release")
def release(number: str, db: DbOption = None) -> None:
    """Release a held draft."""
    _hold(number, False, db)


@app.command("void")
def void(numbers: list[str], db: DbOption = None, json_output: JsonOption = False) -> None:
    """Void drafts (a final invoice is never voided: it is corrected by a credit note)."""
    from ..services.invoices import invoices_json, void_invoices

    with store_for(db) as store:
        done = void_invoices(store, numbers, now(), ENVIRONMENT)
    if json_output:
        emit_json(invoices_json(done))
    else:
        for invoice in done:
            say(out, f"{invoice.display_number}: {invoice.status}")


@app.command("export")
def export(
    status: Status = None,
    export_format: Annotated[str, typer.Option("--format", help="json | csv")] = "json",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
    db: DbOption = None,
) -> None:
    """Every invoice with its lines: JSON (one document per invoice, as `invoices show --json` prints it)
    or CSV (one row per line, the invoice's fields repeated on each)."""
    from ..services.invoices import check_export_format, check_invoice_status, export_invoices

    check_invoice_status(status)  # all checked before the database is opened
    check_export_format(export_format)
    if out_file is not None:
        check_output("--out", out_file, db)
    with store_for(db, existing=True) as store:
        exported = export_invoices(store, export_format, ENVIRONMENT, status)
    if out_file is None:
        sys.stdout.write(exported.text)
        return
    write_file("--out", out_file, exported.text)
    say(err, f"wrote {exported.count} invoice(s) to {out_file}")


# the documents of an invoice (cli/invoice_documents.py)
app.command("pdf")(invoice_documents.pdf)
app.command("ubl")(invoice_documents.ubl)
app.command("facturx")(invoice_documents.facturx)


@app.command("send")
def send(
    number: str,
    to: Annotated[str | None, typer.Option("--to", help="Send here instead of the customer's email.")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Email a final invoice to its customer now (SMTP from RATECARD_SMTP_*); the try is logged.
    Exit 1 when the server does not take it."""
    from ..services.invoice_delivery import delivery_document, send_invoice

    with store_for(db) as store:
        delivery = send_invoice(store, number, now(), ENVIRONMENT, to)
    if json_output:
        emit_json(delivery_document(delivery))
    elif delivery.status == "sent":
        say(out, f"{number}: sent to {delivery.recipient}")
    else:
        say(err, f"error: {number}: not sent to {delivery.recipient}: {delivery.detail}")
    raise typer.Exit(0 if delivery.status == "sent" else 1)


@app.command("deliveries")
def deliveries(
    number: Annotated[str | None, typer.Argument(help="Only this invoice's emails.")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """The invoice email log: each email sent, queued or failed, with its recipient and why."""
    from ..services.invoice_delivery import delivery_document, find_deliveries

    with store_for(db) as store:
        found = [delivery_document(d) for d in find_deliveries(store, ENVIRONMENT, number)]
    if json_output:
        emit_json(found)
        return
    table = Table(title=f"{len(found)} email(s)")
    for column in ("invoice", "recipient", "status", "at", "detail"):
        table.add_column(column, no_wrap=column in ("invoice", "status", "at"))
    for d in found:
        table.add_row(d["invoice"] or str(d["invoice_id"]), d["recipient"] or "", d["status"],
                      d["sent_at"] or d["created_at"], d["detail"] or "")
    out.print(table)


# ------------------------------------------------------------------ one-off invoices and upkeep

LineOption = Annotated[list[str] | None, typer.Option(
    "--line", help="A line: 'DESCRIPTION|UNIT_AMOUNT[|QUANTITY]' (quantity 1 when left out); repeatable.")]
Description = Annotated[str, typer.Option("--description", help="What the line bills, as printed on the invoice.")]
UnitAmount = Annotated[str, typer.Option("--unit-amount", help="Price of one unit, a decimal (e.g. 120.00).")]
Quantity = Annotated[str, typer.Option("--quantity", help="Units billed, a decimal above 0.")]
Code = Annotated[str, typer.Option("--code", help="The line's code (default: one_off).")]
Deduction = Annotated[bool, typer.Option("--deduction", help="Bill the line negative (a deduction).")]
Position = Annotated[int, typer.Argument(help="The line's number, the `#` that `invoices show` lists (the first "
                                              "line written is 1; a line keeps its number when another is "
                                              "deleted).", min=1, max=1_000_000)]


# what each field of a --line is called in the refusal (its place in DESCRIPTION|UNIT_AMOUNT|QUANTITY)
_LINE_PARTS = {"description": "DESCRIPTION", "unit_amount": "UNIT_AMOUNT", "quantity": "QUANTITY", "code": "code"}


def _line_from_text(position: int, text: str):  # noqa: ANN202 - a services.one_off_invoices.LineInput
    from ..services.errors import InvalidInput
    from ..services.one_off_invoices import line_input

    shown = text if len(text) <= 80 else text[:80] + "…"
    parts = text.split("|")
    if len(parts) not in (2, 3):
        fail(f"--line {position} ({shown!r}): give 'DESCRIPTION|UNIT_AMOUNT' or 'DESCRIPTION|UNIT_AMOUNT|QUANTITY'")
    try:
        return line_input(description=parts[0], unit_amount=parts[1], quantity=parts[2] if len(parts) == 3 else "1")
    except InvalidInput as refused:  # named as the user wrote it: the line's place and its part, not an option
        part = _LINE_PARTS.get(refused.field or "", refused.field)
        fail(f"--line {position} ({shown!r}): {part}: {refused.message}" if part else
             f"--line {position} ({shown!r}): {refused.message}")


def _print_one_off(invoice, json_output: bool, what: str) -> None:  # noqa: ANN001 - an InvoiceRecord
    from ..services.invoices import invoices_json

    if json_output:
        emit_json(invoices_json([invoice])[0])
        return
    say(out, f"{invoice.display_number}: {what} — {len(invoice.lines)} line(s), subtotal {invoice.subtotal:f}, "
             f"tax {invoice.tax:f}, total {invoice.total:f} {invoice.currency}")


@app.command("create")
def create(
    customer: Annotated[str, typer.Argument(help="The customer's reference in the catalog.")],
    lines: LineOption = None,
    currency: Annotated[str | None, typer.Option("--currency", help="Default: the customer's currency.")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write a one-off draft invoice for a customer (no subscription), with its lines; finalize it when done."""
    from ..services.one_off_invoices import create_one_off_invoice

    given = [_line_from_text(position, text) for position, text in enumerate(lines or [], start=1)]
    with store_for(db) as store:
        invoice = create_one_off_invoice(store, customer, given, now(), ENVIRONMENT, currency=currency)
    _print_one_off(invoice, json_output, f"one-off draft for {customer}")


@app.command("add-line")
def add_line(number: str, description: Description, unit_amount: UnitAmount, quantity: Quantity = "1",
             code: Code = "one_off", deduction: Deduction = False, db: DbOption = None,
             json_output: JsonOption = False) -> None:
    """Add a line to a one-off draft (quantity x unit amount, rounded once)."""
    from ..services.one_off_invoices import add_line as add
    from ..services.one_off_invoices import line_input

    line = line_input(description=description, unit_amount=unit_amount, quantity=quantity, code=code,
                      deduction=deduction)
    with store_for(db) as store:
        invoice = add(store, number, line, now(), ENVIRONMENT)
    _print_one_off(invoice, json_output, "line added")


@app.command("edit-line")
def edit_line(number: str, position: Position, description: Description, unit_amount: UnitAmount,
              quantity: Quantity = "1", code: Code = "one_off", deduction: Deduction = False, db: DbOption = None,
              json_output: JsonOption = False) -> None:
    """Replace a line of a one-off draft."""
    from ..services.one_off_invoices import edit_line as edit
    from ..services.one_off_invoices import line_input

    line = line_input(description=description, unit_amount=unit_amount, quantity=quantity, code=code,
                      deduction=deduction)
    with store_for(db) as store:
        invoice = edit(store, number, position - 1, line, now(), ENVIRONMENT)
    _print_one_off(invoice, json_output, f"line {position} replaced")


@app.command("delete-line")
def delete_line(number: str, position: Position, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Remove a line from a one-off draft."""
    from ..services.one_off_invoices import delete_line as delete

    with store_for(db) as store:
        invoice = delete(store, number, position - 1, now(), ENVIRONMENT)
    _print_one_off(invoice, json_output, f"line {position} removed")


@app.command("refresh")
def refresh(number: str, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Recompute one draft now: a subscription's from usage and the catalog, a one-off's at today's tax rate."""
    from ..services.invoice_upkeep import refresh_draft

    with store_for(db) as store:
        invoice = refresh_draft(store, number, now(), ENVIRONMENT)
    _print_one_off(invoice, json_output, "refreshed")


@app.command("archive")
def archive(number: str, db: DbOption = None) -> None:
    """Archive a void invoice: left out of the lists of the API and the console, still found by its number."""
    from ..services.invoice_upkeep import archive_invoice

    with store_for(db) as store:
        invoice = archive_invoice(store, number, now(), ENVIRONMENT)
    say(out, f"{invoice.display_number}: archived")
