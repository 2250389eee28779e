"""`ratecard catalog check|apply`."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import DbOption, JsonOption, emit_json, now, store_for
from .console import Table, err, out, say

app = typer.Typer(help="Validate and apply the catalog.", no_args_is_help=True)


@app.command("check")
def check(file: Path, json_output: JsonOption = False) -> None:
    """Validate a catalog file and list every problem with its path (exit 1 if any)."""
    from ..services.catalog import check_catalog_file

    checked = check_catalog_file(file)
    if json_output:
        emit_json(checked.as_dict())
    elif checked.problems:
        out.print(_table(f"{file}: {len(checked.problems)} problem(s)", "problem", checked.problems))
    else:
        counts = checked.counts()
        say(out, f"{file}: valid — {counts['meters']} meters, {counts['plans']} plans, {counts['customers']} customers, "
                 f"{counts['subscriptions']} subscriptions")
    if checked.warnings and not json_output:
        out.print(_table(f"{file}: {len(checked.warnings)} warning(s)", "warning", checked.warnings))
    raise typer.Exit(1 if checked.problems else 0)


def _table(title: str, kind: str, problems: list) -> Table:
    table = Table(title=title)
    table.add_column("path", style="cyan", no_wrap=True)
    table.add_column(kind)
    for problem in problems:
        table.add_row(problem.path, problem.message)
    return table


@app.command("apply")
def apply(file: Path, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Store the catalog as a new version (all or nothing; history is never overwritten)."""
    from ..services.catalog import applicable_catalog, apply_checked

    checked = applicable_catalog(file)  # checked before the database is opened
    with store_for(db) as store:
        result = apply_checked(store, checked, now())
    for warning in checked.warnings:  # on stderr: --json output stays the result alone
        say(err, f"warning: {file}: {warning}")
    if json_output:
        emit_json(result)
    else:
        verb = "stored as version" if result["created"] else "unchanged; still version"
        say(out, f"{file}: {verb} {result['version']}")
        from ..services.impact import impact_sentence

        sentence = impact_sentence(result.get("invoices"))
        if sentence:
            say(out, sentence)
        for removal in (result.get("invoices") or {}).get("removals", []):
            say(out, f"  removes {removal['invoice']} ({removal['subscription']}, {removal['boundary']}): "
                     f"{removal['reason']}")
