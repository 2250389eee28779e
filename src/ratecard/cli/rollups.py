"""`ratecard rollups rebuild|check|status`: the continuous roll-ups the invoice run reads."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import ENVIRONMENT, DbOption, JsonOption, emit_json, now, progress, store_for
from .console import err, out, say

app = typer.Typer(
    help="Continuous roll-ups: hourly partial aggregates kept at ingest; the invoice run reads them "
         "instead of the raw events once a meter's roll-up is ready.",
    no_args_is_help=True)
# what check and status say when nothing is rolled up yet
NO_ROLLUPS = "no roll-ups (ratecard rollups rebuild builds them)"


@app.command("rebuild")
def rebuild(
    meter: Annotated[str | None, typer.Option("--meter", help="Rebuild only this meter's roll-ups, even "
                                                             "when ready.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be built and dropped; "
                                                            "write nothing.")] = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Build the roll-ups of the current catalog's meters that are not ready, from the raw events
    (safe while events arrive); drop those no meter uses any more."""
    from ..services.rollups import rebuild_rollups

    with store_for(db) as store, progress(json_output) as bar:
        tasks: dict[str, object] = {}

        def on_progress(codes: str, done: int, total: int) -> None:
            if codes not in tasks:
                tasks[codes] = bar.add_task(f"rolling up {codes}", total=total)
            bar.update(tasks[codes], completed=done, total=total)  # type: ignore[arg-type]

        document = rebuild_rollups(store, ENVIRONMENT, now(), meter=meter, dry_run=dry_run,
                                   on_progress=on_progress)
    if json_output:
        emit_json(document)
        return
    verb = "would build" if dry_run else "built"
    for item in document["build"]:
        counted = document["events"].get(item["meters"])
        say(out, f"{verb} {item['meters']}" + (f": {counted} events" if counted is not None else ""))
    for item in document["ready"]:
        say(out, f"ready {item['meters']}")
    for key in document["drop"]:
        say(out, f"{'would drop' if dry_run else 'dropped'} roll-up {key} (no meter uses it)")
    if not document["build"] and not document["ready"]:
        say(err, "no meter to roll up in the current catalog")


@app.command("check")
def check(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Compare every roll-up with the raw events, row by row; exit 1 when one differs."""
    from ..services.rollups import check_rollups

    with store_for(db) as store:
        report = check_rollups(store, ENVIRONMENT)
    if json_output:
        emit_json(report)
    else:
        for item in report["rollups"]:
            state = "ok" if not item["differences"] else f"{len(item['differences'])} differences"
            say(out, f"{item['meter'] or item['key']} ({item['state']}): {item['rows']} rows, {state}")
            for line in item["differences"]:
                say(out, f"  {line}")
        if not report["rollups"]:
            say(out, NO_ROLLUPS)
    raise typer.Exit(0 if report["ok"] else 1)


@app.command("status")
def status(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Each roll-up: the meter it serves and whether the invoice run reads it (ready) or not yet (building)."""
    from ..services.rollups import rollup_status

    with store_for(db) as store:
        found = rollup_status(store, ENVIRONMENT)
    if json_output:
        emit_json(found)
        return
    for item in found:
        progress_text = (f" ({item['customers_done']} of {item['customers']} customers)"
                         if item["state"] == "building" else "")
        say(out, f"{item['meter'] or '(no meter of the current catalog)'} {item['key']}: {item['state']}{progress_text}")
    if not found:
        say(out, NO_ROLLUPS)
