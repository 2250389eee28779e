"""The reconciliation report as tables (`ratecard reconcile`, `ratecard cohort report`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .console import Table, out, say

if TYPE_CHECKING:
    from ..services.reconcile import Reconciliation

SHOWN_DIFFERENCES = 50


def print_reconciliation(result: Reconciliation, limit: int = SHOWN_DIFFERENCES) -> None:
    """The summary, the differences by cause with the money at stake, then the first differences."""
    from ..services.reconcile import EXPLANATIONS, detail_text

    summary = result.summary()
    say(out, f"compared {summary['ratecard_lines']} ratecard line(s) with {summary['legacy_lines']} legacy "
             f"line(s): {summary['matched']} matched, {summary['differences']} difference(s)")
    if summary["one_off_lines"]:
        money = ", ".join(f"{v} {c}" for c, v in summary["one_off_amount"].items())
        say(out, f"left out: {summary['one_off_lines']} line(s) of one-off invoices ({money}), written by hand and "
                 "billing no usage")
    if not result.differences:
        return
    causes = Table(title="Differences by cause")
    for column in ("cause", "count", "money at stake", "meaning"):
        causes.add_column(column, justify="right" if column == "count" else "left")
    for cause, bucket in summary["by_cause"].items():
        money = ", ".join(f"{v} {c}" for c, v in bucket["money_at_stake"].items())
        causes.add_row(cause, str(bucket["count"]), money, EXPLANATIONS[cause])
    out.print(causes)
    table = Table(title=f"Differences{' (first ' + str(limit) + ')' if len(result.differences) > limit else ''}")
    for column in ("customer", "code", "service start", "field", "ratecard", "legacy", "delta", "cause", "detail"):
        table.add_column(column, justify="right" if column in ("ratecard", "legacy", "delta") else "left")
    for difference in result.differences[:limit]:
        row = difference.as_dict()
        table.add_row(row["customer"], row["code"], row["service_start"], row["field"], row["ratecard"] or "—",
                      row["legacy"] or "—", row["delta"] or "—", row["cause"], detail_text(row))
    out.print(table)
