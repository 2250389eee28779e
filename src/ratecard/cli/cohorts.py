"""`ratecard cohort …`, `ratecard cutover …`, `ratecard rollback`: shadow launch, full cutover and
the way back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .common import ENVIRONMENT, DbOption, JsonOption, emit_json, now, store_for
from .console import Table, err, out, say, styled
from .reconcile import MappingOption
from .reports import print_reconciliation

if TYPE_CHECKING:
    from ..services.cutover import CutoverPlan

cohort_app = typer.Typer(help="Shadow launch: cohorts computed by ratecard while the legacy system bills.",
                         no_args_is_help=True)
cutover_app = typer.Typer(help="Full cutover: plan and record the date ratecard bills everyone from.",
                          no_args_is_help=True)
DateOption = Annotated[str, typer.Option("--date", help="The cutover date, YYYY-MM-DD.")]


def _when(micros: int | None) -> str:
    from ..domain.instants import from_micros

    return "" if micros is None else from_micros(micros).strftime("%Y-%m-%d %H:%M UTC")


DescriptionOption = Annotated[str | None, typer.Option(
    "--description", help="A note shown with the cohort (one line, at most 2000 characters).")]


@cohort_app.command("create")
def cohort_create(name: str, description: DescriptionOption = None, db: DbOption = None) -> None:
    """Create an empty cohort."""
    from ..services.cohorts import create_cohort

    with store_for(db) as store:
        create_cohort(store, name, now(), ENVIRONMENT, description)
    say(out, f"cohort {name} created; add customers with `ratecard cohort add {name} CUSTOMER…`")


@cohort_app.command("add")
def cohort_add(
    name: str,
    customers: Annotated[list[str] | None, typer.Argument(help="Customer references.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A text file with one customer reference per line.")]
    = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Put customers in shadow as members of the cohort (all or nothing)."""
    from ..services.cohorts import add_customers, read_customer_list

    wanted = list(customers or []) + (read_customer_list(file) if file is not None else [])
    with store_for(db) as store:
        added = add_customers(store, name, wanted, now(), ENVIRONMENT)
    if json_output:
        emit_json({"cohort": name, "added": added})
    else:
        say(out, f"cohort {name}: {len(added)} customer(s) added, in shadow (ratecard computes, never finalizes)")


@cohort_app.command("list")
def cohort_list(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Every cohort: its state, customers and parallel-run streak."""
    from ..services.cohorts import list_cohorts

    with store_for(db) as store:
        statuses = list_cohorts(store, ENVIRONMENT)
    if json_output:
        emit_json([status.as_dict() for status in statuses])
        return
    table = Table(title="cohorts")
    for column in ("cohort", "state", "customers", "parallel runs", "clean in a row", "promoted", "live from"):
        table.add_column(column)
    for status in statuses:
        starts = [v for v in status.cohort.members.values() if v is not None]
        table.add_row(status.cohort.name, status.state, str(len(status.cohort.members)), str(len(status.runs)),
                      str(status.clean_streak), _when(status.cohort.promoted_at), _when(min(starts, default=None)))
    out.print(table if statuses else "no cohorts yet: `ratecard cohort create NAME`")


@cohort_app.command("report")
def cohort_report(
    name: str,
    legacy_file: Path,
    cycle: Annotated[str | None, typer.Option("--cycle", help="YYYY-MM: the service periods starting in that "
                                                               "month (default: the file's only month)")] = None,
    mapping: MappingOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Parallel run: reconcile the cohort's invoices for one cycle against the legacy export and keep the
    report. Exit 1 when the cycle is not clean."""
    from ..services.cohorts import report_cohort

    with store_for(db) as store:
        report = report_cohort(store, name, legacy_file, now(), ENVIRONMENT, cycle=cycle, mapping=mapping)
    if json_output:
        emit_json(report.as_dict())
    else:
        result = report.result
        print_reconciliation(result)
        say(out, f"cohort {name}, cycle {report.cycle}: {'clean' if report.clean else 'NOT clean'} "
                 f"({result.matched} lines matched, {len(result.differences)} difference(s)); "
                 f"{report.clean_streak} clean cycle(s) in a row")
    raise typer.Exit(0 if report.clean else 1)


@cohort_app.command("history")
def cohort_history(name: str, db: DbOption = None, json_output: JsonOption = False) -> None:
    """The cohort's parallel-run reports, oldest first."""
    from ..services.cohorts import cohort_history as history

    with store_for(db) as store:
        status = history(store, name, ENVIRONMENT)
    if json_output:
        emit_json([{"id": r.id, "cycle": r.cycle, "legacy_file": r.legacy_file, "run_at": _when(r.created_at),
                    "matched": r.lines_compared, "differences": r.differences, "clean": r.clean,
                    "summary": r.summary} for r in status.runs])
        return
    table = Table(title=f"parallel runs of cohort {name}")
    for column in ("#", "cycle", "run at", "matched", "differences", "clean", "legacy file"):
        table.add_column(column)
    for r in status.runs:
        table.add_row(str(r.id), r.cycle, _when(r.created_at), str(r.lines_compared), str(r.differences),
                      "yes" if r.clean else styled("no", "red"), r.legacy_file)
    out.print(table if status.runs else f"no parallel runs yet: `ratecard cohort report {name} LEGACY_FILE`")


@cohort_app.command("promote")
def cohort_promote(name: str, force: Annotated[bool, typer.Option("--force", help="Promote without two clean "
                                                                                   "parallel runs in a row.")] = False,
                   db: DbOption = None, json_output: JsonOption = False) -> None:
    """Make the cohort live at each customer's next period boundary."""
    from ..domain.instants import rfc3339_or_none
    from ..services.cohorts import promote_cohort

    with store_for(db) as store:
        promotion = promote_cohort(store, name, now(), ENVIRONMENT, force)
    if promotion.forced:
        say(err, f"warning: cohort {name} promoted without 2 clean parallel runs in a row (--force)")
    if json_output:
        emit_json({"cohort": name, "forced": promotion.forced,
                   "live_from": {c: rfc3339_or_none(v) for c, v in promotion.live_from.items()}})
        return
    table = Table(title=f"cohort {name}: ratecard bills each customer's service periods from")
    table.add_column("customer")
    table.add_column("live from (next period boundary)")
    for customer, start in promotion.live_from.items():
        table.add_row(customer, _when(start))
    out.print(table)
    out.print("the legacy system keeps billing every period that starts before these instants")


def rollback(
    cohort: Annotated[str, typer.Option("--cohort", help="The promoted cohort to move back to shadow.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what the rollback would void, remove and list; "
                                                            "change nothing.")] = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Move a promoted cohort back to shadow now: void its unsent drafts, list the final invoices issued since
    promotion with the corrections they need."""
    from ..services.cohorts import rollback_cohort

    with store_for(db) as store:
        report = rollback_cohort(store, cohort, now(), ENVIRONMENT, dry_run)
    if json_output:
        emit_json(report.as_dict())
        return
    if dry_run:
        say(out, f"dry run, nothing was changed: cohort {cohort} would put {len(report.customers)} customer(s) back "
                 f"in shadow, void {len(report.voided)} unsent draft(s) "
                 f"({', '.join(i.display_number for i in report.voided) or 'none'}) and remove "
                 f"{len(report.removed)} draft(s) cut ahead of their date "
                 f"({', '.join(i.display_number for i in report.removed) or 'none'})")
    else:
        say(out, f"cohort {cohort}: {len(report.customers)} customer(s) back in shadow; "
                 f"{len(report.voided)} unsent draft(s) voided, {len(report.removed)} draft(s) cut ahead of their "
                 "date removed (the next invoice run recomputes them as shadow)")
    if report.issued:
        table = Table(title="final invoices issued since the promotion: the legacy system bills these customers "
                            "again, so each needs a credit note if it bills the same periods")
        for column in ("invoice", "customer", "issued", "total", "correction"):
            table.add_column(column)
        for invoice in report.issued:
            table.add_row(invoice.display_number, invoice.customer, invoice.issue_date,
                          f"{invoice.total:f} {invoice.currency}", "credit note if re-billed by legacy")
        out.print(table)
    else:
        out.print("no final invoices were issued since the promotion: nothing to correct")


def _print_plan(plan: CutoverPlan) -> None:
    table = Table(title=f"cutover on {plan.day}: {plan.aligned} of {len(plan.considered)} subscription(s) aligned")
    for column in ("subscription", "customer", "aligned", "partial period (legacy bills it)", "ratecard bills from",
                   "risks"):
        table.add_column(column)
    for item in plan.subscriptions:
        if item.cohort is not None:
            table.add_row(item.subscription, item.customer, "—", "", f"follows cohort {item.cohort}", "")
            continue
        straddle = f"{item.straddling[0]} → {item.straddling[1]}" if item.straddling else ""
        table.add_row(item.subscription, item.customer, "yes" if item.aligned else styled("no", "yellow"), straddle,
                      str(item.ratecard_from or "—"), "; ".join(item.risks))
    out.print(table)
    if plan.candidates:
        options = Table(title="dates that align the most subscriptions")
        for column in ("date", "aligned", "not aligned", "days from the date asked"):
            options.add_column(column)
        for candidate in plan.candidates:
            options.add_row(candidate.day.isoformat(), str(candidate.aligned), str(candidate.total - candidate.aligned),
                            f"{(candidate.day - plan.day).days:+d}")
        out.print(options)
        out.print(f"proposed: {plan.proposal.day} ({plan.proposal.aligned} of {plan.proposal.total} aligned)")


@cutover_app.command("plan")
def cutover_plan(date_text: DateOption, db: DbOption = None, json_output: JsonOption = False) -> None:
    """For each subscription: is the date on its boundary, the partial period around it and who bills it, the
    risk of billing a period twice or never; proposes the date that aligns the most subscriptions."""
    from ..services import cutover
    from ..services.parsing import parse_day

    day = parse_day("date", date_text)
    with store_for(db) as store:
        plan = cutover.plan(store, day, now(), ENVIRONMENT)
    if json_output:
        emit_json(plan.as_dict())
    else:
        _print_plan(plan)


@cutover_app.command("apply")
def cutover_apply(date_text: DateOption,
                  force: Annotated[bool, typer.Option("--force", help="Record it even if a period would be billed "
                                                                     "twice.")] = False,
                  db: DbOption = None, json_output: JsonOption = False) -> None:
    """Record the cutover date: ratecard then bills only the service periods starting on or after it."""
    from ..services import cutover
    from ..services.parsing import parse_day

    day = parse_day("date", date_text)
    with store_for(db) as store:
        plan = cutover.apply(store, day, now(), ENVIRONMENT, force)
    if json_output:
        emit_json({"applied": True, **plan.as_dict()})
        return
    say(out, f"cutover recorded: ratecard bills service periods starting on or after {day} (midnight in each "
             f"subscription's timezone); {plan.aligned} of {len(plan.considered)} subscription(s) aligned, "
             f"{len(plan.risks)} risk(s) listed by `ratecard cutover plan --date {day}`")
