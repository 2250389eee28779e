"""`ratecard events import|list|reprocess`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from .common import (
    ENVIRONMENT,
    MAX_LIMIT,
    DbOption,
    JsonOption,
    check_output,
    counts_text,
    emit_json,
    now,
    output_file,
    progress,
    store_for,
)
from .console import Table, err, out, say

app = typer.Typer(help="Import and reprocess usage events.", no_args_is_help=True)

SHOWN_PROBLEMS = 20  # rejections and customers without a subscription listed on stderr


@app.command("import")
def import_(
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
    from ..services.events import import_events

    if rejects is not None:
        check_output("--rejects", rejects, db, file)
    moment = now()
    # the rejects file replaces the old one only once the import has finished
    with store_for(db) as store, output_file("--rejects", rejects) as rejects_handle:

        def write_reject(rejection: Any) -> None:
            if rejects_handle is not None:
                rejects_handle.write(orjson.dumps({"line": rejection.line, "reason": rejection.reason,
                                                   "message": rejection.message, "id": rejection.event_id,
                                                   "raw": rejection.raw}).decode() + "\n")
        with progress(json_output) as bar:
            task = bar.add_task(f"{'checking' if dry_run else 'importing'} {file.name}", total=None)
            imported = import_events(store, file, moment, environment=ENVIRONMENT, dry_run=dry_run,
                                     file_format=file_format, backfill=backfill,
                                     on_progress=lambda n: bar.advance(task, n),
                                     on_total=lambda n: bar.update(task, total=n), on_rejection=write_reject)
    if json_output:
        emit_json(imported.as_dict())
    else:
        _print_import(imported.report, not imported.catalog_applied)
    raise typer.Exit(1 if imported.report.rejected else 0)


def _print_import(report: Any, no_catalog: bool) -> None:
    from ..services.events import OUTSIDE_REASONS

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
    outside = report.outside_by_customer()
    for row in outside[:SHOWN_PROBLEMS]:
        times = ", ".join(f"{row[k]} {k.replace('_', ' ')}" for k in OUTSIDE_REASONS if row[k])
        say(err, f"no subscription: {row['customer']}: {times}")
    if len(outside) > SHOWN_PROBLEMS:
        err.print(f"… and {len(outside) - SHOWN_PROBLEMS} more customers without a subscription for some "
                  "events (use --json)")
    unpriced = report.unpriced_rows()
    for row in unpriced[:SHOWN_PROBLEMS]:
        say(err, f"unpriced: {row['customer']} / {row['meter']}: {row['events']} event(s), "
                 f"{row['reason'].replace('_', ' ')} (no invoice line counts them)")
    if len(unpriced) > SHOWN_PROBLEMS:
        err.print(f"… and {len(unpriced) - SHOWN_PROBLEMS} more unpriced (customer, meter) pairs "
                  "(use --json, or `ratecard events list --status unpriced`)")
    for rejection in report.rejections[:SHOWN_PROBLEMS]:
        say(err, f"rejected: {report.source}: {rejection.message} [{rejection.reason}]")
    if len(report.rejections) > SHOWN_PROBLEMS:
        err.print(f"… and {sum(report.rejected.values()) - SHOWN_PROBLEMS} more rejected (use --json or --rejects FILE)")
    for event_id, line in report.conflicts[:SHOWN_PROBLEMS]:
        say(err, f"conflict: {report.source}: line {line}: id {event_id} is already held with other content "
                 "(the stored event is kept)")
    if report.flags.get("conflict", 0) > SHOWN_PROBLEMS:
        err.print(f"… and {report.flags['conflict'] - SHOWN_PROBLEMS} more conflicts (use --json)")
    if no_catalog:
        err.print("warning: no catalog applied: events are stored as unmatched (unknown_customer)")


@app.command("list")
def list_(
    late: Annotated[bool, typer.Option("--late", help="Only late events: stored for a period whose invoice is "
                                                      "already final (never billed on it).")] = False,
    status: Annotated[str | None, typer.Option("--status", help="matched | unmatched (any flag) | unknown_customer "
                                                                "| unknown_meter | no_subscription | unpriced "
                                                                "(taken by a subscription, counted by no "
                                                                "charge) | invalid_value")]
    = None,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's events.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, max=MAX_LIMIT,
                                                help="At most this many, newest first (0: all).")] = 100,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """List stored events, newest first (--late: the events flagged late)."""
    import msgspec

    from ..domain.instants import rfc3339
    from ..services.events import check_event_status, find_events

    check_event_status(status)  # before the database is opened
    with store_for(db, existing=True) as store:
        found = find_events(store, ENVIRONMENT, late=late, status=status, customer=customer, limit=limit or None)
    if json_output:
        # properties are written as stored (msgspec.Raw): their decimals stay exact
        documents = [{"id": e.id, "customer": e.customer, "meter": e.meter, "timestamp": rfc3339(e.ts),
                      "properties": msgspec.Raw(e.properties.encode()), "status": e.status, "late": e.late,
                      "received_at": rfc3339(e.received_at), "subscription": e.subscription} for e in found]
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(documents), indent=2).decode() + "\n")
        return
    title = f"{len(found)} {'late event(s)' if late else 'event(s)'}, newest first"
    if limit and len(found) == limit:
        title += f" (the first {limit}; --limit N for more)"
    table = Table(title=title)
    for column in ("id", "customer", "meter", "timestamp", "status", "late", "subscription", "properties"):
        table.add_column(column, no_wrap=column in ("timestamp", "status", "late"))
    for event in found:
        table.add_row(event.id, event.customer, event.meter, rfc3339(event.ts), event.status,
                      "late" if event.late else "", event.subscription or "", event.properties,
                      style="yellow" if event.late else None)
    out.print(table)


@app.command("reprocess")
def reprocess(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Re-match unmatched events against the current catalog."""
    from ..services.events import reprocess_events

    with store_for(db) as store:
        result = reprocess_events(store, now(), ENVIRONMENT)
    if json_output:
        emit_json(result)
    else:
        late = f" ({result['late']} late: their period's invoice is final)" if result["late"] else ""
        out.print(f"checked {result['checked']} unmatched event(s): {result['matched']} now matched{late}; "
                  f"still unmatched: {counts_text(result['still_unmatched'])}")


partitions_app = typer.Typer(help="Monthly partitions of the events table (PostgreSQL): create ahead, list, "
                                  "archive a month, re-attach it.", no_args_is_help=True)
app.add_typer(partitions_app, name="partitions")


@partitions_app.command("create")
def partitions_create(
    ahead: Annotated[int, typer.Option("--ahead", help="Months after the current one to create (0-36).")] = 3,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create the partitions of the current month and the next ones (idempotent); months whose
    events wait in the default partition get theirs, and the events move into it."""
    from ..services.partitions import create_partitions

    with store_for(db) as store:
        result = create_partitions(store, now(), ahead)
    if json_output:
        emit_json(result)
        return
    for made in result["created"]:
        moved = f", {made['moved']} event(s) moved in from the default partition" if made["moved"] else ""
        say(out, f"created {made['name']}{moved}")
    say(out, f"{len(result['created'])} created, {len(result['existing'])} already there; "
             f"partitions up to {result['horizon']}")


@partitions_app.command("list")
def partitions_list(
    exact: Annotated[bool, typer.Option("--exact", help="Count each partition's rows (a full scan) instead of "
                                                        "the planner's estimate.")] = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the partitions of events and the archived months: name, range, rows, size."""
    from ..services.partitions import partition_report

    with store_for(db) as store:
        found = partition_report(store, exact)
    if json_output:
        emit_json(found)
        return
    table = Table(title=f"{len(found)} partition(s) of events{'' if exact else ' (rows: estimates; --exact counts)'}")
    for column in ("name", "kind", "from", "to", "rows", "size"):
        table.add_column(column, justify="right" if column in ("rows", "size") else "left")
    for row in found:
        table.add_row(row["name"], row["kind"], row["start"] or "-", row["end"] or "-", f"{row['rows']:,}",
                      _size(row["bytes"]))
    out.print(table)
    waiting = sum(row["rows"] for row in found if row["kind"] == "default")
    if waiting > 0:
        say(err, f"note: {'about ' if not exact else ''}{waiting:,} event(s) wait in the default partition: "
                 "`ratecard events partitions create` gives their months a partition of their own")


def _size(count: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024
    return str(count)


@partitions_app.command("detach")
def partitions_detach(
    month: Annotated[str, typer.Argument(help="The month to archive, YYYY-MM (UTC).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only check whether the month is settled.")] = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Archive a settled month: its partition leaves events and is kept as the table
    events_archive_YYYY_MM. Refused (exit 1) while an event of it is unmatched or in a period no
    final invoice has billed."""
    from ..services.partitions import detach_partition

    with store_for(db) as store:
        result = detach_partition(store, month, now(), dry_run)
    if json_output:
        emit_json(result)
    elif result["archived_as"]:
        say(out, f"detached {result['partition']} ({result['rows']} event(s)); kept as {result['archived_as']}")
    else:
        for reason in result["reasons"]:
            say(err, f"not settled: {reason}")
        say(out, f"{result['month']}: {'settled: it can be detached' if result['settled'] else 'not settled'} "
                 f"({result['rows']} event(s); dry run, nothing changed)")
    raise typer.Exit(1 if result["reasons"] else 0)


@partitions_app.command("attach")
def partitions_attach(
    month: Annotated[str, typer.Argument(help="The archived month to re-attach, YYYY-MM (UTC).")],
    without_archive: Annotated[bool, typer.Option(
        "--without-archive", help="The archive table was dropped: only let the month take events again (its "
                                  "archived events are gone for good).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be done.")] = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Re-attach an archived month: events_archive_YYYY_MM becomes its partition again and the month
    takes events again. Refused (exit 2) when the month is not archived, has a partition, or its
    archive is gone (unless --without-archive)."""
    from ..services.partitions import attach_partition

    with store_for(db) as store:
        result = attach_partition(store, month, without_archive, dry_run)
    if json_output:
        emit_json(result)
        return
    table = Table(title=f"{result['month']}{' (dry run: nothing changed)' if dry_run else ''}")
    table.add_column("step")
    table.add_column("detail")
    verb = (lambda done, todo: todo) if dry_run else (lambda done, todo: done)
    if result["archive"]:
        if result["to_move"]:
            table.add_row(verb("moved", "would move"),
                          f"{result['moved'] if not dry_run else result['to_move']} event(s) of the month from "
                          f"the default partition into {result['archive']}")
        table.add_row(verb("attached", "would attach"),
                      f"{result['archive']} as the partition {result['partition']} ({result['rows']} event(s))")
    if result["guard"]:
        table.add_row(verb("guard dropped", "would drop guard"), f"{result['guard']}: the month takes events again")
    if result["without_archive"]:
        table.add_row(verb("roll-ups", "would recompute roll-ups"),
                      "the month's roll-ups from the events left (its archived events are gone)")
    out.print(table)
