"""`ratecard subscriptions import|create|change|unschedule|charge|cancel|void|list|show`: subscriptions brought over
from another system's export, and changed by command (each change a new catalog version)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .common import ENVIRONMENT, DbOption, JsonOption, emit_json, now, store_for
from .console import Table, err, out, say

if TYPE_CHECKING:
    from ..services.subscription_changes import SubscriptionEdit

app = typer.Typer(help="Create, change, cancel and list subscriptions; bring existing ones over from another system.",
                  no_args_is_help=True)


@app.command("import")
def import_(
    file: Path,
    mapping: Annotated[str | None, typer.Option("--mapping", help="Column mapping file, or a shipped one: "
                                                                   "stripe-subscriptions")] = None,
    bill_from: Annotated[str | None, typer.Option("--bill-from", help="Default bill_from date (YYYY-MM-DD) for "
                                                                       "rows without one")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report; store nothing.")] = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add existing subscriptions (and their customers) from a CSV export to the catalog, with
    bill_from so that periods the previous system billed are never billed again. All or nothing,
    except a row whose customer may not be subscribed (not ACTIVE): it is refused with its reason,
    the others are added, and the exit code is 1."""
    from ..services.parsing import parse_day
    from ..services.subscriptions import import_subscriptions

    default_bill_from = parse_day("bill_from", bill_from) if bill_from is not None else None
    with store_for(db) as store:
        result = import_subscriptions(store, file, now(), ENVIRONMENT, mapping=mapping, bill_from=default_bill_from,
                                      dry_run=dry_run)
    if json_output:
        emit_json(result)
    else:
        for refused in result["refused"]:
            say(err, f"refused: {refused}")
        verb = "would add" if dry_run else f"added (catalog version {result['catalog_version']})"
        say(out, f"{file}: {verb} {result['subscriptions']} subscription(s) and {result['new_customers']} new "
                 "customer(s)" + (f"; {len(result['refused'])} row(s) refused" if result["refused"] else ""))
    if result["refused"]:
        raise typer.Exit(1)


Override = Annotated[list[str] | None, typer.Option("--override", help="CHARGE.FIELD=VALUE laid over the plan's charge "
                                                                       "(repeatable); a [ or { value is JSON, e.g. "
                                                                       "tiers")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Validate and show what would change and the customer's next "
                                                        "invoice; store nothing.")]
Quantity = Annotated[int | None, typer.Option("--quantity", help="Seats: the plan's flat fees are billed this many "
                                                                "times.")]
ReplaceLater = Annotated[bool, typer.Option("--replace-later", help="Drop the changes at or after the instant instead "
                                                                    "of refusing.")]


@app.command("create")
def create(
    reference: str,
    customer: Annotated[str, typer.Option("--customer", help="An existing customer's reference.")],
    plan: Annotated[str, typer.Option("--plan", help="A plan code.")],
    start: Annotated[str | None, typer.Option("--start", help="A date (local midnight of the customer) or an RFC 3339 "
                                                              "instant; default now.")] = None,
    anchor: Annotated[int | None, typer.Option("--anchor", help="Day of the month periods start on (1..31); default "
                                                                "the start's day.")] = None,
    override: Override = None,
    requires_reference: Annotated[bool, typer.Option(
        "--requires-reference", help="Bill only the events that name this subscription (a customer's second "
                                     "subscription on the same meters).")] = False,
    quantity: Quantity = None,
    trial_days: Annotated[int | None, typer.Option("--trial-days", help="Days free from the start (default: the "
                                                                        "plan's trial; 0: none).")] = None,
    dry_run: DryRun = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Subscribe an existing customer to a plan, as a new catalog version."""
    from ..services import subscription_changes as changes

    overrides = changes.parse_overrides(override or [])
    moment = now()
    with store_for(db) as store:
        result = _edit(lambda: changes.create_subscription(
            store, moment, ENVIRONMENT, reference=reference, customer=customer, plan=plan, start=start, anchor=anchor,
            overrides=overrides, dry_run=dry_run, requires_reference=requires_reference, quantity=quantity,
            trial_days=trial_days))
    _report(result, json_output)


@app.command("change")
def change(
    subscription: str,
    at: Annotated[str, typer.Option("--at", help="A date (local midnight of the customer) or an RFC 3339 instant; "
                                                 "past corrects, future schedules.")],
    plan: Annotated[str | None, typer.Option("--plan", help="The plan from --at (default: the plan in force).")] = None,
    proration: Annotated[str, typer.Option("--proration", help="prorate | none | invoice_now: how fees already billed "
                                                               "for the period holding --at are settled.")] = "prorate",
    override: Override = None,
    quantity: Quantity = None,
    replace_later: ReplaceLater = False,
    dry_run: DryRun = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Give a subscription new terms (plan, overrides, seats, or several) from an instant, as a new catalog
    version."""
    from ..services import subscription_changes as changes

    overrides = changes.parse_overrides(override or [])
    moment = now()
    with store_for(db) as store:
        result = _edit(lambda: changes.change_subscription(
            store, moment, ENVIRONMENT, reference=subscription, at=at, plan=plan, overrides=overrides,
            proration=proration, replace_later=replace_later, dry_run=dry_run, quantity=quantity))
    _report(result, json_output)


@app.command("charge")
def charge(
    subscription: str,
    code: Annotated[str, typer.Option("--code", help="The line's code, new on the subscription (e.g. setup).")],
    amount: Annotated[str, typer.Option("--amount", help="The amount of one unit, e.g. 500.00 (in the "
                                                         "currency the subscription is billed in).")],
    at: Annotated[str | None, typer.Option("--at", help="A date (local midnight of the customer) or an RFC 3339 "
                                                        "instant: billed on the first invoice at or after it; "
                                                        "default now.")] = None,
    description: Annotated[str | None, typer.Option("--description", help="The line's description.")] = None,
    quantity: Annotated[str | None, typer.Option("--quantity", help="Units (e.g. 7.5 hours); default 1.")] = None,
    dry_run: DryRun = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add a one-off charge (set-up fee, professional services) to a subscription's next invoice, as a new
    catalog version."""
    from ..services import subscription_changes as changes

    moment = now()
    with store_for(db) as store:
        result = _edit(lambda: changes.charge_subscription(
            store, moment, ENVIRONMENT, reference=subscription, code=code, amount=amount, at=at,
            description=description, quantity=quantity, dry_run=dry_run))
    _report(result, json_output)


@app.command("cancel")
def cancel(
    subscription: str,
    at: Annotated[str | None, typer.Option("--at", help="A date (local midnight of the customer) or an RFC 3339 "
                                                        "instant; may be in the past.")] = None,
    at_period_end: Annotated[bool, typer.Option("--at-period-end", help="At the end of the period that holds "
                                                                        "now.")] = False,
    proration: Annotated[str, typer.Option("--proration", help="prorate | none: credit the unused part of fees "
                                                               "billed in advance, or keep them.")] = "prorate",
    replace_later: ReplaceLater = False,
    dry_run: DryRun = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """End a subscription at an instant or at the end of the current period, as a new catalog version."""
    from ..services import subscription_changes as changes

    moment = now()
    with store_for(db) as store:
        result = _edit(lambda: changes.cancel_subscription(
            store, moment, ENVIRONMENT, reference=subscription, at=at, at_period_end=at_period_end,
            proration=proration, replace_later=replace_later, dry_run=dry_run))
    _report(result, json_output)


@app.command("unschedule")
def unschedule(
    subscription: str,
    at: Annotated[str, typer.Option("--at", help="The instant of the change to take back (as `show` lists it); "
                                                 "it must still be to come.")],
    dry_run: DryRun = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Take back a change still to come, as a new catalog version: the terms before it run on."""
    from ..services import subscription_changes as changes

    moment = now()
    with store_for(db) as store:
        result = _edit(lambda: changes.unschedule_change(store, moment, ENVIRONMENT, reference=subscription, at=at,
                                                         dry_run=dry_run))
    _report(result, json_output)


@app.command("void")
def void(
    subscription: str,
    dry_run: DryRun = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Void a subscription made in error: out of the catalog (a new version), nothing billed. Refused
    once a final invoice names it (cancel it instead)."""
    from ..services import subscription_changes as changes

    moment = now()
    with store_for(db) as store:
        result = _edit(lambda: changes.void_subscription(store, moment, ENVIRONMENT, reference=subscription,
                                                         dry_run=dry_run))
    _report(result, json_output)


@app.command("list")
def list_(
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's subscriptions.")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Subscriptions of the current catalog with their status, plan in force and next change."""
    from ..services.subscription_changes import list_subscriptions

    with store_for(db, existing=True) as store:
        found = list_subscriptions(store, now(), ENVIRONMENT, customer)
    if json_output:
        emit_json(found)
        return
    table = Table(title=f"{len(found)} subscription(s)")
    for column in ("reference", "customer", "plan now", "start", "end", "status", "next change"):
        table.add_column(column, no_wrap=column in ("start", "end", "status"))
    for item in found:
        upcoming = item["next_change"]
        table.add_row(item["reference"], item["customer"], item["plan_now"], item["start"], item["end"] or "",
                      item["status"], f"{upcoming['at']} → {upcoming['plan']}" if upcoming else "")
    out.print(table)


@app.command("show")
def show(subscription: str, db: DbOption = None, json_output: JsonOption = False) -> None:
    """A subscription's terms over time (every phase, its end) and the catalog versions that changed it."""
    from ..services.subscription_changes import show_subscription

    with store_for(db, existing=True) as store:
        history = show_subscription(store, now(), subscription, ENVIRONMENT)
    if json_output:
        emit_json(history.as_dict())
        return
    terms = history.terms
    say(out, f"{terms['reference']}: customer {terms['customer']}, {terms['status']}, plan now {terms['plan_now']} "
             f"(timezone {terms['timezone']})")
    if terms["trial_end"]:
        say(out, f"free trial until {terms['trial_end']}")
    table = Table(title="terms")
    for column in ("from", "plan", "seats", "overrides", "proration"):
        table.add_column(column)
    for phase in history.phases:
        table.add_row(phase["at"], phase["plan"], str(phase["quantity"]), _overrides(phase["overrides"]),
                      phase["proration"] or "")
    if terms["end"]:
        table.add_row(terms["end"], "(ends)", "", "", terms["end_proration"])
    out.print(table)
    if terms["one_off"]:
        charges = Table(title="one-off charges")
        for column in ("due", "code", "quantity", "amount", "description"):
            charges.add_column(column)
        for item in terms["one_off"]:
            charges.add_row(item["at"], item["code"], item["quantity"], item["amount"], item["description"] or "")
        out.print(charges)
    versions = Table(title="catalog versions")
    for column in ("version", "stored at", "subscription"):
        versions.add_column(column)
    for version in history.versions:
        versions.add_row(str(version["version"]), version["created_at"], version["what"])
    out.print(versions)


def _edit(call: Callable[[], SubscriptionEdit]) -> SubscriptionEdit:
    """Run a write; a catalog it would leave invalid is listed problem by problem (exit 1)."""
    from ..services.subscription_changes import ChangeInvalid

    try:
        return call()
    except ChangeInvalid as exc:
        for problem in exc.problems:
            say(err, f"error: {problem}")
        say(err, f"error: {len(exc.problems)} problem(s) in the catalog this would make; nothing was stored")
        raise typer.Exit(1) from None


def _report(result: SubscriptionEdit, json_output: bool) -> None:
    if json_output:
        emit_json(result.as_dict())
        return
    for line in result.described:
        say(out, f"{result.reference}: {line}")
    if result.dry_run:
        say(out, f"dry run: nothing stored (would be catalog version {result.catalog_version}; now "
                 f"{result.previous_version})")
        for document in result.documents or []:
            if "error" in document:
                say(out, f"next invoice of {document['subscription']} at {document['boundary']}: cannot be priced: "
                         f"{document['error']}")
            else:
                say(out, f"next invoice of {document['subscription']} ({document['mode']}) issued "
                         f"{document['issue_date']}: {document['total']} {document['currency']} "
                         f"({len(document['lines'])} line(s))")
    elif result.stored:
        say(out, f"stored as catalog version {result.catalog_version} (was {result.previous_version})")
    else:
        say(out, f"unchanged; still catalog version {result.catalog_version}")
    from ..services.impact import impact_sentence

    sentence = impact_sentence(result.invoices)
    if sentence:
        say(out, sentence)


def _overrides(overrides: dict) -> str:
    return ", ".join(f"{code}.{name}={value}" for code, fields in sorted(overrides.items())
                     for name, value in sorted(fields.items()))
