"""`ratecard golive check`: the readiness report, grouped by cause."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import ENVIRONMENT, DbOption, JsonOption, emit_json, now, store_for
from .console import Table, out, styled

app = typer.Typer(help="The go-live toolkit: readiness check.", no_args_is_help=True)


@app.command("check")
def check(
    days: Annotated[int, typer.Option("--days", min=1, help="A charged meter silent this long is a warning.")] = 7,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Readiness report over the stored catalog and data; exit 1 when anything blocks go-live.

    The table shows each cause once, with how many it concerns and the first few; --json lists
    every finding (and the same groups)."""
    from ..services.golive import check_readiness

    with store_for(db, existing=True) as store:
        report = check_readiness(store, now(), ENVIRONMENT, days)
    if json_output:
        emit_json(report.as_dict())
        raise typer.Exit(0 if report.ready else 1)
    if not report.findings:
        out.print("ready: no blockers, no warnings")
        raise typer.Exit(0)
    warnings = len(report.findings) - report.blockers
    table = Table(title=f"go-live readiness: {report.blockers} blocker(s), {warnings} warning(s)")
    for column in ("severity", "finding", "count", "examples", "detail"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for group in report.groups():
        style = "red" if group.severity == "blocker" else "yellow"
        subjects = ", ".join(finding.subject for finding in group.examples)
        if group.count > len(group.examples):
            subjects += f" and {group.count - len(group.examples)} more"
        first = group.examples[0]
        several = len({finding.message for finding in group.findings}) > 1
        detail = f"{first.subject}: {first.message}" if several else first.message
        table.add_row(styled(group.severity, style), group.kind, str(group.count), subjects, detail)
    out.print(table)
    if any(group.count > len(group.examples) for group in report.groups()):
        out.print("every finding: ratecard golive check --json")
    raise typer.Exit(0 if report.ready else 1)
