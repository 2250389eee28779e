"""`ratecard backfill create|list|show|close|revert` and `events import --backfill` (registered in
ratecard.cli)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

import typer
from rich.table import Table

from ..store.backfills import (
    BackfillError,
    create_backfill,
    get_backfill,
    list_backfills,
)
from .backfill import close_backfill, describe, import_target, revert_backfill

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
STATUSES = ("pending", "closed", "reverted")

backfill_app = typer.Typer(
    help="Historical usage for a time window: import it into a pending backfill, close it to bill it "
         "(final invoices are corrected by credit notes), revert it to undo.",
    no_args_is_help=True)


def register_backfill(app: typer.Typer) -> None:
    app.add_typer(backfill_app, name="backfill")


def parse_instant(option: str, value: str) -> int:
    """A date (its midnight UTC) or an RFC 3339 datetime with an offset, as µs."""
    from ..cli import fail
    from ..ingest.validate import to_micros

    text = value.strip()
    try:
        if len(text) == 10:
            return to_micros(datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC))
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        fail(f"{option}: {value!r} is not a date (2026-10-01) or RFC 3339 datetime (2026-10-01T00:00:00+02:00)")
    if moment.tzinfo is None:
        fail(f"{option}: {value!r} has no timezone offset (a bare date means midnight UTC)")
    return to_micros(moment)


def backfill_import_target(store: Any, catalog: Any, now: datetime, backfill_id: str) -> dict[str, Any]:
    """Keyword arguments for import_file that send the events into a pending backfill."""
    from ..cli import fail

    try:
        validator, writer_factory = import_target(store, catalog, now, backfill_id)
    except BackfillError as exc:
        fail(f"--backfill: {exc}")
    return {"validator": validator, "writer_factory": writer_factory}


@backfill_app.command("create")
def create_command(
    start: Annotated[str, typer.Option("--from", help="Start of the window (inclusive): a date (midnight UTC) "
                                                     "or an RFC 3339 datetime.")],
    end: Annotated[str, typer.Option("--to", help="End of the window (exclusive).")],
    replace: Annotated[bool, typer.Option("--replace", help="At close, the window's stored events (of the "
                                                            "customer, with --customer) are replaced.")] = False,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's events.")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Open a pending backfill for [FROM, TO); refused when it overlaps another pending one."""
    from ..cli import _now, emit_json, fail, out, store_for
    from ..ingest.validate import to_micros

    start_us, end_us = parse_instant("--from", start), parse_instant("--to", end)
    if start_us >= end_us:
        fail(f"--to {end} must be after --from {start} (the window is [from, to))")
    with store_for(db) as store:
        try:
            backfill = create_backfill(store, "live", start_us, end_us, customer, replace, to_micros(_now()))
        except BackfillError as exc:
            fail(f"backfill --from {start} --to {end}: {exc}")
    if json_output:
        emit_json(describe(backfill))
        return
    document = describe(backfill)
    scope = f" for customer {customer}" if customer else ""
    mode = ("replacing the window's stored events at close" if replace
            else "adding to the window's stored events at close")
    out.print(f"backfill {backfill.id} pending: [{document['from']}, {document['to']}){scope}, {mode}", highlight=False)
    out.print(f"next: ratecard events import FILE --backfill {backfill.id}; then ratecard backfill close "
              f"{backfill.id}", highlight=False)


@backfill_app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option("--status", help="pending | closed | reverted")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Every backfill, oldest first."""
    from ..cli import emit_json, fail, out, store_for

    if status is not None and status not in STATUSES:
        fail(f"--status: {status!r} is not one of {', '.join(STATUSES)}")
    with store_for(db) as store:
        found = [describe(backfill) for backfill in list_backfills(store, "live", status)]
    if json_output:
        emit_json(found)
        return
    table = Table(title=f"{len(found)} backfill(s)")
    for column in ("id", "status", "from", "to", "customer", "replace", "events", "corrections"):
        table.add_column(column, no_wrap=True, justify="right" if column in ("events", "corrections") else "left")
    for item in found:
        corrections = len((item["last_result"] or {}).get("corrections", []))
        table.add_row(item["id"], item["status"], item["from"], item["to"], item["customer"] or "(all)",
                      "yes" if item["replace"] else "no", str(item["events"]), str(corrections))
    out.print(table)


@backfill_app.command("show")
def show_command(backfill_id: str, db: DbOption = None, json_output: JsonOption = False) -> None:
    """One backfill: window, status, events, and what its last close or revert did."""
    from ..cli import emit_json, fail, out, store_for

    with store_for(db) as store:
        try:
            document = describe(get_backfill(store, "live", backfill_id))
        except BackfillError as exc:
            fail(str(exc))
    if json_output:
        emit_json(document)
        return
    table = Table(title=f"backfill {document['id']}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for name in ("status", "from", "to", "customer", "replace", "events", "created_at", "closed_at", "reverted_at"):
        value = document[name]
        table.add_row(name, "(all)" if name == "customer" and value is None else "" if value is None else str(value))
    out.print(table, highlight=False)
    if document["last_result"]:
        _print_result(document["last_result"], out)


@backfill_app.command("close")
def close_command(backfill_id: str, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Bill a pending backfill: its events become billable (with --replace, instead of the window's stored
    ones), drafts are refreshed and each changed final invoice gets a credit note and a new invoice."""
    _run(close_backfill, backfill_id, db, json_output)


@backfill_app.command("revert")
def revert_command(backfill_id: str, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Undo a pending or closed backfill: its events are no longer billed, replaced events come back, drafts are
    refreshed and changed final invoices are corrected again."""
    _run(revert_backfill, backfill_id, db, json_output)


def _run(action: Any, backfill_id: str, db: str | None, json_output: bool) -> None:
    from ..cli import _now, emit_json, fail, out, store_for

    with store_for(db) as store:
        try:
            result = action(store, backfill_id, _now())
        except BackfillError as exc:
            fail(str(exc))
    if json_output:
        emit_json(result)
        return
    _print_result(result, out)


def _print_result(result: dict, console: Any) -> None:
    verb = {"close": "closed", "revert": "reverted"}[result["action"]]
    events = result["events"]
    backfill = result.get("backfill", {}).get("id", "")
    if result["already_done"]:
        console.print(f"backfill {backfill} was already {verb}; no event moved".replace("  ", " "), highlight=False)
    elif result["action"] == "close":
        console.print(f"backfill {backfill} {verb}: {events['added']} event(s) now billed, "
                      f"{events['replaced']} replaced, {events['already_stored']} already stored (not doubled)"
                      .replace("  ", " "), highlight=False)
    else:
        console.print(f"backfill {backfill} {verb}: {events['removed']} event(s) no longer billed, "
                      f"{events['restored']} replaced event(s) restored".replace("  ", " "), highlight=False)
    console.print(f"drafts: {result['drafts_created']} created, {result['drafts_refreshed']} refreshed; "
                  f"final invoices checked: {result['final_invoices_checked']}, corrected: "
                  f"{len(result['corrections'])}", highlight=False)
    if not result["corrections"]:
        return
    table = Table(title="corrections (credit note + new invoice per changed final invoice)")
    for column in ("customer", "original", "credit note", "new invoice", "difference"):
        table.add_column(column, no_wrap=True, justify="right" if column == "difference" else "left")
    for item in result["corrections"]:
        replacement = item["replacement"]
        table.add_row(item["customer"], f"{item['original']['number']} ({item['original']['total']})",
                      f"{item['credit_note']['number']} ({item['credit_note']['total']})",
                      f"{replacement['number']} ({replacement['total']})" if replacement else "(none)",
                      item["difference"])
    console.print(table)
