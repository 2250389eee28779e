"""`ratecard subscriptions import`: existing subscriptions from another system's export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import ENVIRONMENT, DbOption, JsonOption, emit_json, now, store_for
from .console import out, say

app = typer.Typer(help="Bring existing subscriptions over from another system.", no_args_is_help=True)


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
    bill_from so that periods the previous system billed are never billed again. All or nothing."""
    from ..services.parsing import parse_day
    from ..services.subscriptions import import_subscriptions

    default_bill_from = parse_day("bill_from", bill_from) if bill_from is not None else None
    with store_for(db) as store:
        result = import_subscriptions(store, file, now(), ENVIRONMENT, mapping=mapping, bill_from=default_bill_from,
                                      dry_run=dry_run)
    if json_output:
        emit_json(result)
    else:
        verb = "would add" if dry_run else f"added (catalog version {result['catalog_version']})"
        say(out, f"{file}: {verb} {result['subscriptions']} subscription(s) and {result['new_customers']} new "
                 "customer(s)")
