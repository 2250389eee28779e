"""The `ratecard` command line. Each verb parses its options and calls the layers below.

Exit codes: 0 success, 1 ran and found problems, 2 usage or input errors (one sentence on
stderr naming the file, line and field; never a traceback for bad input).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import msgspec
import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .billing.export import invoice_document, invoices_csv, invoices_json
from .billing.finalize import finalize_due, set_hold
from .billing.run import HorizonError, check_horizon, generate_invoices
from .catalog import CatalogFileError, build_catalog, check_document, load_document
from .clock import now as clock_now
from .domain.invoice import InvoiceStateError, check_transition
from .ingest.importer import import_file
from .ingest.readers import ReaderError
from .ingest.reprocess import reprocess
from .ingest.validate import from_micros, to_micros
from .store import Store, open_store
from .store.backfills import BackfillError
from .store.catalogs import save_version
from .store.db import StoreError
from .store.events import list_events
from .store.invoices import InvoiceNotFound, change_status, get_invoice, list_invoices
from .store.keys import ENVIRONMENTS, create_key, list_keys, revoke_key
from .workspace import NoCatalog, current_catalog, optional_catalog

app = typer.Typer(help="ratecard: usage-based billing with the go-live toolkit built in.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
catalog_app = typer.Typer(help="Validate and apply the catalog.", no_args_is_help=True)
events_app = typer.Typer(help="Import and reprocess usage events.", no_args_is_help=True)
invoices_app = typer.Typer(help="Generate, review, finalize and export invoices.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(events_app, name="events")
app.add_typer(invoices_app, name="invoices")
keys_app = typer.Typer(help="API keys, one environment each (sandbox or live).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

# A pipe gets wide tables (nothing cut short for scripts and logs); a terminal gets its own width.
out = Console() if Console().is_terminal else Console(width=240)
# soft_wrap: an error is one line on stderr, never broken at 80 columns (scripts read it line by line)
err = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (else RATECARD_DATABASE_URL, "
                                                             "else sqlite:///ratecard.db).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


def current_catalog_or_fail(store: Store) -> tuple[int, Any]:
    """(version, catalog) of the applied catalog; none applied yet is one clear error, exit 2."""
    try:
        return current_catalog(store)
    except NoCatalog as exc:
        fail(str(exc))


def emit_json(document: Any) -> None:
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


@contextmanager
def store_for(db: str | None) -> Iterator[Store]:
    try:
        store = open_store(db)
    except StoreError as exc:
        fail(str(exc))
    try:
        yield store
    finally:
        store.dispose()


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, disable=not enabled, transient=True)


def _wants_progress(json_output: bool) -> bool:
    return not json_output and err.is_terminal


def _now() -> datetime:
    try:
        return clock_now()
    except ValueError as exc:
        fail(str(exc))


# ---------------------------------------------------------------- catalog


def _checked_document(path: Path) -> tuple[Any, list]:
    try:
        raw = load_document(path)
    except CatalogFileError as exc:
        fail(str(exc))
    return check_document(raw)


@catalog_app.command("check")
def catalog_check(file: Path, json_output: JsonOption = False) -> None:
    """Validate a catalog file and list every problem with its path (exit 1 if any)."""
    document, problems = _checked_document(file)
    if json_output:
        emit_json({"file": str(file), "valid": not problems,
                   "problems": [{"path": p.path, "message": p.message} for p in problems]})
    elif problems:
        table = Table(title=f"{file}: {len(problems)} problem(s)")
        table.add_column("path", style="cyan", no_wrap=True)
        table.add_column("problem")
        for problem in problems:
            table.add_row(problem.path, problem.message)
        out.print(table)
    else:
        summary = build_catalog(document)
        out.print(f"{file}: valid — {len(summary.meters)} meters, {len(summary.plans)} plans, "
                  f"{len(summary.customers)} customers, {len(summary.subscriptions)} subscriptions")
    raise typer.Exit(1 if problems else 0)


@catalog_app.command("apply")
def catalog_apply(file: Path, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Store the catalog as a new version (all or nothing; history is never overwritten)."""
    document, problems = _checked_document(file)
    if problems:
        for problem in problems:
            err.print(f"error: {file}: {problem}", markup=False, highlight=False)
        fail(f"{file}: {len(problems)} problem(s); nothing was applied (see `ratecard catalog check`)")
    with store_for(db) as store:
        version, created = save_version(store, document, to_micros(_now()))
    result = {"file": str(file), "version": version, "created": created}
    if json_output:
        emit_json(result)
    else:
        verb = "stored as version" if created else "unchanged; still version"
        out.print(f"{file}: {verb} {version}")


# ---------------------------------------------------------------- events


@events_app.command("import")
def events_import(
    file: Path,
    db: DbOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report; write nothing.")] = False,
    file_format: Annotated[str | None, typer.Option(
        "--format", help="jsonl | json | csv | solvimon-csv | parquet (default: from the extension; a CSV in "
                         "Solvimon's upload template is recognised by its header)")] = None,
    rejects: Annotated[Path | None, typer.Option("--rejects", help="Write every rejected row here (JSONL).")] = None,
    backfill: Annotated[str | None, typer.Option(
        "--backfill", help="Put the events into this pending backfill (billed once it is closed).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Import events (JSONL, CSV, Solvimon's CSV upload template or Parquet). Exit 1 when any event was rejected."""
    with store_for(db) as store:
        _, catalog = optional_catalog(store)
        target: dict[str, Any] = {}
        if backfill is not None:
            from .golive.backfill_commands import backfill_import_target

            target = backfill_import_target(store, catalog, _now(), backfill)
        try:
            rejects_handle = rejects.open("w", encoding="utf-8") if rejects else None
        except OSError as exc:
            fail(f"--rejects {rejects}: cannot be written: {exc.strerror}")

        def write_reject(rejection: Any) -> None:
            if rejects_handle is not None:
                rejects_handle.write(orjson.dumps({"line": rejection.line, "reason": rejection.reason,
                                                   "message": rejection.message, "id": rejection.event_id,
                                                   "raw": rejection.raw}).decode() + "\n")
        try:
            with _progress(_wants_progress(json_output)) as progress:
                task = progress.add_task(f"{'checking' if dry_run else 'importing'} {file.name}", total=None)
                report = import_file(store, catalog, file, _now(), dry_run=dry_run, file_format=file_format,
                                     on_progress=lambda n: progress.advance(task, n),
                                     on_total=lambda n: progress.update(task, total=n), on_rejection=write_reject,
                                     **target)
        except ReaderError as exc:
            fail(str(exc))
        except BackfillError as exc:  # the backfill was closed or reverted while importing
            fail(f"--backfill: {exc}; the batches stored before stay in it")
        finally:
            if rejects_handle is not None:
                rejects_handle.close()
    document = report.as_dict()
    if backfill is not None:
        document["backfill"] = backfill
    if catalog is None:
        document["warning"] = "no catalog applied: every event is stored as unknown_customer"
    if json_output:
        emit_json(document)
    else:
        _print_import(report, catalog is None)
    raise typer.Exit(1 if report.rejected else 0)


def _print_import(report: Any, no_catalog: bool) -> None:
    table = Table(title=f"{report.source}{' (dry run: nothing written)' if report.dry_run else ''}")
    table.add_column("outcome")
    table.add_column("events", justify="right")
    table.add_row("read", str(report.read))
    table.add_row("accepted", str(report.accepted))
    if not report.dry_run:
        table.add_row("stored (new)", str(report.stored))
    for flag, count in sorted(report.flags.items()):
        table.add_row(f"flag: {flag}", str(count))
    for reason, count in sorted(report.rejected.items()):
        table.add_row(f"rejected: {reason}", str(count), style="red")
    out.print(table)
    for row in report.outside_by_customer()[:20]:
        times = ", ".join(f"{row[k]} {k.replace('_', ' ')}" for k in ("before_start", "after_end",
                                                                       "between_subscriptions") if row[k])
        err.print(f"no subscription: {row['customer']}: {times}", markup=False, highlight=False)
    for rejection in report.rejections[:20]:
        err.print(f"rejected: {report.source}: {rejection.message} [{rejection.reason}]", markup=False,
                  highlight=False)
    if len(report.rejections) > 20:
        err.print(f"… and {sum(report.rejected.values()) - 20} more rejected (use --json or --rejects FILE)")
    if no_catalog:
        err.print("warning: no catalog applied: events are stored as unmatched (unknown_customer)")


EVENT_STATUSES = ("matched", "unmatched", "unknown_customer", "unknown_meter", "no_subscription", "invalid_value")


@events_app.command("list")
def events_list(
    late: Annotated[bool, typer.Option("--late", help="Only late events: stored for a period whose invoice is "
                                                      "already final (never billed on it).")] = False,
    status: Annotated[str | None, typer.Option("--status", help="matched | unmatched (any flag) | unknown_customer "
                                                                "| unknown_meter | no_subscription | invalid_value")]
    = None,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's events.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="At most this many, newest first (0: all).")] = 100,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """List stored events, newest first (--late: the events flagged late)."""
    if status is not None and status not in EVENT_STATUSES:
        fail(f"--status: {status!r} is not one of {', '.join(EVENT_STATUSES)}")
    with store_for(db) as store:
        found = list_events(store, late=True if late else None, status=status, customer=customer,
                            limit=limit or None)
    if json_output:
        documents = [{"id": e.id, "customer": e.customer, "meter": e.meter, "timestamp": _rfc3339(e.ts),
                      "properties": msgspec.Raw(e.properties.encode()), "status": e.status, "late": e.late,
                      "received_at": _rfc3339(e.received_at)} for e in found]
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(documents), indent=2).decode() + "\n")
        return
    title = f"{len(found)} {'late event(s)' if late else 'event(s)'}, newest first"
    if limit and len(found) == limit:
        title += f" (the first {limit}; --limit N for more)"
    table = Table(title=title)
    for column in ("id", "customer", "meter", "timestamp", "status", "late", "properties"):
        table.add_column(column, no_wrap=column in ("timestamp", "status", "late"))
    for event in found:
        # Text(): ids and properties are data, never Rich markup
        table.add_row(Text(event.id), Text(event.customer), Text(event.meter), _rfc3339(event.ts), event.status,
                      "late" if event.late else "", Text(event.properties), style="yellow" if event.late else None)
    out.print(table)


def _rfc3339(micros: int) -> str:
    return from_micros(micros).isoformat().replace("+00:00", "Z")


@events_app.command("reprocess")
def events_reprocess(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Re-match unmatched events against the current catalog."""
    with store_for(db) as store:
        _, catalog = current_catalog_or_fail(store)
        result = reprocess(store, catalog, _now())
    if json_output:
        emit_json(result)
    else:
        late = f" ({result['late']} late: their period's invoice is final)" if result["late"] else ""
        out.print(f"checked {result['checked']} unmatched event(s): {result['matched']} now matched{late}; "
                  f"still unmatched: {result['still_unmatched'] or 'none'}")


# ---------------------------------------------------------------- invoices


def _parse_until(value: str) -> date | datetime:
    try:
        if len(value.strip()) == 10:
            return date.fromisoformat(value.strip())
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"--until: {value!r} is not a date (2026-11-01) or RFC 3339 datetime")
    if moment.tzinfo is None:
        fail(f"--until: {value!r} has no timezone offset")
    return moment


@invoices_app.command("generate")
def invoices_generate(
    until: Annotated[str, typer.Option("--until", help="Cut invoices at every boundary on or before this date.")],
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create or refresh every invoice due at boundaries <= DATE (drafts only; final ones are never changed)."""
    limit = _parse_until(until)
    try:
        check_horizon(limit, _now())
    except HorizonError as exc:
        fail(str(exc))
    with store_for(db) as store:
        version, catalog = current_catalog_or_fail(store)
        with _progress(_wants_progress(json_output)) as progress:
            task = progress.add_task("pricing invoices", total=None)
            report = generate_invoices(store, catalog, version, limit, _now(),
                                       on_total=lambda n: progress.update(task, total=n),
                                       on_progress=lambda n: progress.advance(task, n))
    if json_output:
        emit_json(report.as_dict())
    else:
        out.print(f"invoices up to {until}: {report.created} created, {report.updated} refreshed, "
                  f"{report.unchanged} unchanged, {report.skipped_final} final/void left alone "
                  f"({report.subscriptions} subscriptions, {report.cuts} boundaries)")


Status = Annotated[str | None, typer.Option("--status", help="draft | final | void")]


def _check_status(status: str | None) -> None:
    if status is not None and status not in ("draft", "final", "void"):
        fail(f"--status: {status!r} is not one of draft, final, void")


@invoices_app.command("list")
def invoices_list(status: Status = None, db: DbOption = None, json_output: JsonOption = False) -> None:
    """List invoices with their totals."""
    _check_status(status)
    with store_for(db) as store:
        invoices = list_invoices(store, status=status)
    if json_output:
        emit_json(invoices_json(invoices))
        return
    table = Table(title=f"{len(invoices)} invoice(s)")
    numbers = {invoice.id: invoice.display_number for invoice in invoices}
    for column in ("number", "kind", "customer", "subscription", "status", "issue date", "currency", "subtotal",
                   "tax", "total", "corrects"):
        table.add_column(column, justify="right" if column in ("subtotal", "tax", "total") else "left",
                         no_wrap=column in ("number", "kind", "issue date", "status", "corrects"))
    for invoice in invoices:
        corrects = numbers.get(invoice.corrects, str(invoice.corrects)) if invoice.corrects is not None else ""
        table.add_row(invoice.display_number, invoice.kind.replace("_", " "), invoice.customer,
                      invoice.subscription, invoice.status if invoice.mode == "live" else f"{invoice.status} (shadow)",
                      invoice.issue_date, invoice.currency,
                      f"{invoice.subtotal:f}", f"{invoice.tax:f}", f"{invoice.total:f}", corrects)
    out.print(table)


def _find(store: Store, reference: str) -> Any:
    try:
        return get_invoice(store, reference)
    except InvoiceNotFound as exc:
        fail(str(exc))


@invoices_app.command("show")
def invoices_show(number: str, db: DbOption = None, json_output: JsonOption = False) -> None:
    """One invoice with its lines (by number, DRAFT-id or id)."""
    with store_for(db) as store:
        invoice = _find(store, number)
        corrected = get_invoice(store, str(invoice.corrects)) if invoice.corrects is not None else None
    if json_output:
        emit_json(invoice_document(invoice))
        return
    kind = "credit note" if invoice.kind == "credit_note" else "invoice"
    out.print(f"[bold]{invoice.display_number}[/] {kind}, {invoice.status} — customer {invoice.customer}, "
              f"subscription {invoice.subscription}, issued {invoice.issue_date}, {invoice.currency}",
              highlight=False)
    if corrected is not None:
        verb = "credits" if invoice.kind == "credit_note" else "replaces"
        out.print(f"{verb} {corrected.display_number} (correction {invoice.revision})", highlight=False)
    table = Table()
    for column in ("code", "description", "service period", "quantity", "unit amount", "amount"):
        table.add_column(column, justify="right" if column in ("quantity", "unit amount", "amount") else "left")
    for line in invoice.lines:
        table.add_row(line.code, line.description, f"{line.service_start} → {line.service_end}",
                      f"{line.quantity:f}", f"{line.unit_amount:f}", f"{line.amount:f}")
    table.add_section()
    table.add_row("", "subtotal", "", "", "", f"{invoice.subtotal:f}")
    table.add_row("", f"tax ({invoice.tax_rate:f}%)", "", "", "", f"{invoice.tax:f}")
    table.add_row("", "[bold]total[/]", "", "", "", f"[bold]{invoice.total:f}[/]")
    out.print(table)


def _transition(numbers: list[str], target: str, db: str | None, json_output: bool) -> None:
    """Check every reference and its state first, so a typo changes nothing; then apply each."""
    with store_for(db) as store:
        _, catalog = optional_catalog(store)
        prefix = catalog.invoice_prefix if catalog else "RC"
        invoices = [_find(store, reference) for reference in numbers]
        for reference, invoice in zip(numbers, invoices, strict=True):
            try:
                check_transition(invoice.status, target)
            except InvoiceStateError as exc:
                fail(f"invoice {reference}: {exc}; nothing was changed")
            if target == "final" and invoice.mode == "shadow":
                fail(f"invoice {reference} is a shadow invoice (the legacy system bills its periods): it is never "
                     "finalized; nothing was changed")
        done = []
        for reference, invoice in zip(numbers, invoices, strict=True):
            try:
                done.append(change_status(store, invoice.id, target, to_micros(_now()), prefix))
            except (InvoiceStateError, RuntimeError) as exc:
                for finished in done:
                    err.print(f"{finished.display_number}: {finished.status}", markup=False, highlight=False)
                fail(f"invoice {reference}: {exc}; the invoices listed above were changed")
    if json_output:
        emit_json(invoices_json(done))
    else:
        for invoice in done:
            out.print(f"{invoice.display_number}: {invoice.status}")


@invoices_app.command("finalize")
def invoices_finalize(
    numbers: Annotated[list[str] | None, typer.Argument(help="Drafts to finalize (DRAFT-id or id).")] = None,
    due: Annotated[bool, typer.Option("--due", help="Finalize every draft past its grace period, not on hold.")] = False,
    grace: Annotated[float, typer.Option("--grace", min=0, help="Grace period in hours (with --due).")] = 8.0,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Finalize drafts: they get a gapless number and never change again.

    `--due` is safe from cron and when two run at once: an invoice is finalized once, with one number."""
    if due == bool(numbers):
        fail("give either invoice numbers or --due")
    if numbers:
        _transition(numbers, "final", db, json_output)
        return
    with store_for(db) as store:
        _, catalog = optional_catalog(store)
        prefix = catalog.invoice_prefix if catalog else "RC"
        report = finalize_due(store, _now(), prefix, timedelta(hours=grace))
    if json_output:
        emit_json({"finalized": invoices_json(report.finalized), "on_hold": report.on_hold,
                   "within_grace": report.within_grace, "skipped_by_other_process": report.skipped_by_other_process})
        return
    for invoice in report.finalized:
        out.print(f"{invoice.display_number}: final ({invoice.customer}, {invoice.total:f} {invoice.currency})")
    out.print(f"{len(report.finalized)} finalized; {report.on_hold} on hold; {report.within_grace} within their "
              f"grace period; {report.skipped_by_other_process} finalized by another process")


def _hold(number: str, hold: bool, db: str | None) -> None:
    with store_for(db) as store:
        invoice = _find(store, number)
        if not set_hold(store, invoice.id, hold):
            fail(f"invoice {number}: only a draft can be {'held' if hold else 'released'} (it is {invoice.status})")
    out.print(f"{invoice.display_number}: {'on hold: it will not be finalized' if hold else 'released'}")


@invoices_app.command("hold")
def invoices_hold(number: str, db: DbOption = None) -> None:
    """Put a draft on hold: it is still refreshed but never finalized until released."""
    _hold(number, True, db)


@invoices_app.command("release")
def invoices_release(number: str, db: DbOption = None) -> None:
    """Release a held draft."""
    _hold(number, False, db)


@invoices_app.command("void")
def invoices_void(numbers: list[str], db: DbOption = None, json_output: JsonOption = False) -> None:
    """Void drafts."""
    _transition(numbers, "void", db, json_output)


@invoices_app.command("export")
def invoices_export(
    status: Status = None,
    export_format: Annotated[str, typer.Option("--format", help="json | csv")] = "json",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
    db: DbOption = None,
) -> None:
    """Every invoice with its lines, in the contract's export shape."""
    _check_status(status)
    if export_format not in ("json", "csv"):
        fail(f"--format: {export_format!r} is not one of json, csv")
    with store_for(db) as store:
        invoices = list_invoices(store, status=status)
    if export_format == "json":
        text = orjson.dumps(invoices_json(invoices), option=orjson.OPT_INDENT_2).decode() + "\n"
    else:
        text = invoices_csv(invoices)
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"--out {out_file}: cannot be written: {exc.strerror}")
    err.print(f"wrote {len(invoices)} invoice(s) to {out_file}")


# ---------------------------------------------------------------- keys and server

EnvOption = Annotated[str, typer.Option("--env", help="sandbox | live")]


def _check_env(env: str) -> None:
    if env not in ENVIRONMENTS:
        fail(f"--env: {env!r} is not one of {', '.join(ENVIRONMENTS)}")


@keys_app.command("create")
def keys_create(env: EnvOption = "sandbox", name: Annotated[str | None, typer.Option("--name")] = None,
                db: DbOption = None, json_output: JsonOption = False) -> None:
    """Create an API key. It is shown once, on the last line; only its hash is stored."""
    _check_env(env)
    with store_for(db) as store:
        key, token = create_key(store, env, to_micros(_now()), name)
    if json_output:
        emit_json({"id": key.id, "environment": key.environment, "name": key.name, "key": token})
        return
    out.print(f"created key {key.id} for the {env} environment; store it now, it is not shown again:")
    sys.stdout.write(token + "\n")


@keys_app.command("list")
def keys_list(env: Annotated[str | None, typer.Option("--env", help="sandbox | live")] = None, db: DbOption = None,
              json_output: JsonOption = False) -> None:
    """List keys (ids and state, never secrets)."""
    if env is not None:
        _check_env(env)
    with store_for(db) as store:
        keys = list_keys(store, env)
    rows = [{"id": k.id, "environment": k.environment, "name": k.name, "revoked": k.revoked_at is not None}
            for k in keys]
    if json_output:
        emit_json(rows)
        return
    table = Table(title=f"{len(rows)} key(s)")
    for column in ("id", "environment", "name", "state"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(row["id"], row["environment"], row["name"] or "", "revoked" if row["revoked"] else "active")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, db: DbOption = None) -> None:
    """Revoke a key by id: requests with it get 401 from then on."""
    with store_for(db) as store:
        if not revoke_key(store, key_id, to_micros(_now())):
            fail(f"no active key {key_id!r} (see `ratecard keys list`)")
    out.print(f"revoked key {key_id}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Server processes.")] = 1,
    db: DbOption = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json)."""
    import uvicorn

    from .store.db import resolve_url

    url = resolve_url(db)
    with store_for(url):
        pass  # migrate once, before the workers start
    os.environ["RATECARD_DATABASE_URL"] = url
    target = "ratecard.api.app:app_from_environment"
    if workers == 1:
        uvicorn.run(target, factory=True, host=host, port=port, log_level="warning", access_log=False)
        return
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(target, factory=True, host=host, port=port, workers=workers, log_level="warning",
                            access_log=False)
    Multiprocess(config, sockets=[_tcp_listener(host, port)]).run()


def _tcp_listener(host: str, port: int) -> Any:
    """The shared listening socket for several workers, created with proto=IPPROTO_TCP.

    uvicorn's own creates it with proto 0, and asyncio only turns TCP_NODELAY on for sockets
    whose proto is IPPROTO_TCP: without it every response waits ~40 ms for a delayed ACK.
    """
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(f"--host {host} --port {port}: cannot listen there: {exc.strerror}")
    sock.set_inheritable(True)
    return sock


# ---------------------------------------------------------------- demo


@app.command("demo")
def demo(
    examples: Annotated[Path, typer.Option("--examples", help="The example workspace folder.")] = Path("examples"),
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Load the example workspace, run it end to end, and show the resulting drafts."""
    from .demo import run_demo

    try:
        summary = run_demo(examples, db)
    except (CatalogFileError, ReaderError, StoreError, FileNotFoundError) as exc:
        fail(str(exc))
    if json_output:
        emit_json(summary)
        return
    from .demo import print_summary

    print_summary(out, summary)


def _register_golive() -> None:
    from .golive.backfill_commands import register_backfill
    from .golive.commands import check_command, import_subscriptions_command, reconcile_command

    app.command("reconcile")(reconcile_command)
    golive_app = typer.Typer(help="The go-live toolkit: readiness check.", no_args_is_help=True)
    golive_app.command("check")(check_command)
    app.add_typer(golive_app, name="golive")
    subscriptions_app = typer.Typer(help="Bring existing subscriptions over from another system.",
                                    no_args_is_help=True)
    subscriptions_app.command("import")(import_subscriptions_command)
    app.add_typer(subscriptions_app, name="subscriptions")
    from .golive.monitor_commands import register as register_monitoring

    register_monitoring(app)  # monitor ingestion|run, alerts list|rules, webhooks
    register_backfill(app)
    from .golive.cohort_commands import cohort_app, cutover_app, rollback_command

    app.add_typer(cohort_app, name="cohort")
    app.add_typer(cutover_app, name="cutover")
    app.command("rollback")(rollback_command)


_register_golive()


def main(argv: list[str] | None = None) -> int:
    """Console entry point: bad input never shows a traceback."""
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    except KeyboardInterrupt:
        err.print("interrupted; everything committed so far is kept")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one sentence, no traceback
        if os.environ.get("RATECARD_DEBUG") == "1":
            raise
        name = type(exc).__name__
        err.print(f"error: internal error ({name}: {str(exc)[:300]}); nothing after the last completed step was "
                  "written; rerun with RATECARD_DEBUG=1 for the traceback and please report it",
                  markup=False, highlight=False)
        return 2
    return 0


