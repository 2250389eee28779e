"""`ratecard backfill create|list|show|close|revert` (events go in with `events import --backfill`)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from .common import ENVIRONMENT, DbOption, JsonOption, emit_json, now, store_for
from .console import Table, out, say

app = typer.Typer(
    help="Historical usage for a time window: import it into a pending backfill, close it to bill it "
         "(final invoices are corrected by credit notes), revert it to undo.",
    no_args_is_help=True)


@app.command("create")
def create(
    start: Annotated[str, typer.Option("--from", help="Start of the window (inclusive): a date (midnight UTC) "
                                                     "or an RFC 3339 datetime.")],
    end: Annotated[str, typer.Option("--to", help="End of the window (exclusive).")],
    replace: Annotated[bool, typer.Option("--replace", help="At close, the window's stored events (of the "
                                                            "customer, with --customer) are replaced.")] = False,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's events.")] = None,
    id_only: Annotated[bool, typer.Option("--id-only", help="Print the backfill's id alone, for a script: "
                                                            "BF=$(ratecard backfill create ... --id-only).")] = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Open a pending backfill for [FROM, TO); refused when it overlaps another pending one, or an archived month.
    The same request again (window, customer, --replace) gives back the pending backfill it made."""
    from ..services.backfills import open_backfill
    from ..services.parsing import parse_instant

    start_at, end_at = parse_instant("from", start), parse_instant("to", end)
    with store_for(db) as store:
        document = open_backfill(store, start_at, end_at, now(), ENVIRONMENT, customer=customer, replace=replace)
    if json_output:
        emit_json(document)
        return
    if id_only:
        sys.stdout.write(document["id"] + "\n")
        return
    scope = f" for customer {customer}" if customer else ""
    mode = ("replacing the window's stored events at close" if replace
            else "adding to the window's stored events at close")
    if not document["created"]:
        say(out, f"backfill {document['id']} is already pending for this window (created {document['created_at']}, "
                 f"{document['events']} event(s) imported so far): nothing new was created, use it")
    else:
        say(out, f"backfill {document['id']} pending: [{document['from']}, {document['to']}){scope}, {mode}")
    say(out, f"next: ratecard events import FILE --backfill {document['id']}; then ratecard backfill close "
             f"{document['id']}")


@app.command("list")
def list_(
    status: Annotated[str | None, typer.Option("--status", help="pending | closed | reverted")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Every backfill, oldest first."""
    from ..services.backfills import find_backfills

    with store_for(db) as store:
        found = find_backfills(store, ENVIRONMENT, status)
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


@app.command("show")
def show(backfill_id: str, db: DbOption = None, json_output: JsonOption = False) -> None:
    """One backfill: window, status, events, and what its last close or revert did."""
    from ..services.backfills import show_backfill

    with store_for(db) as store:
        document = show_backfill(store, backfill_id, ENVIRONMENT)
    if json_output:
        emit_json(document)
        return
    table = Table(title=f"backfill {document['id']}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for name in ("status", "from", "to", "customer", "replace", "events", "created_at", "closed_at", "reverted_at"):
        value = document[name]
        table.add_row(name, "(all)" if name == "customer" and value is None else "" if value is None else str(value))
    out.print(table)
    if document["last_result"]:
        _print_result(document["last_result"])


@app.command("close")
def close(backfill_id: str, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Bill a pending backfill: its events become billable (with --replace, instead of the window's stored
    ones), drafts are refreshed and each changed final invoice gets a credit note and a new invoice."""
    from ..services import backfills

    _run(backfills.close, backfill_id, db, json_output)


@app.command("revert")
def revert(backfill_id: str, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Undo a pending or closed backfill: its events are no longer billed, replaced events come back, drafts are
    refreshed and changed final invoices are corrected again."""
    from ..services import backfills

    _run(backfills.revert, backfill_id, db, json_output)


def _run(action: Any, backfill_id: str, db: str | None, json_output: bool) -> None:
    with store_for(db) as store:
        result = action(store, backfill_id, now(), ENVIRONMENT)
    if json_output:
        emit_json(result)
        return
    _print_result(result)


def _print_result(result: dict) -> None:
    verb = {"close": "closed", "revert": "reverted"}[result["action"]]
    events = result["events"]
    backfill = result.get("backfill", {}).get("id", "")
    if result["already_done"]:
        say(out, f"backfill {backfill} was already {verb}; no event moved".replace("  ", " "))
    elif result["action"] == "close":
        say(out, f"backfill {backfill} {verb}: {events['added']} event(s) now billed, "
                 f"{events['replaced']} replaced, {events['already_stored']} already stored (not doubled)"
                 .replace("  ", " "))
    else:
        say(out, f"backfill {backfill} {verb}: {events['removed']} event(s) no longer billed, "
                 f"{events['restored']} replaced event(s) restored".replace("  ", " "))
    say(out, f"drafts: {result['drafts_created']} created, {result['drafts_refreshed']} refreshed; "
             f"final invoices checked: {result['final_invoices_checked']}, corrected: {len(result['corrections'])}")
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
    out.print(table)
