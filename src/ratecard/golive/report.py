"""Reconciliation reports: CSV for programs, one HTML file for finance (the table for people is the CLI's)."""

from __future__ import annotations

import html
from collections import defaultdict

from ..outputs import csv_text
from .reconcile import CAUSES, Reconciliation

CSV_FIELDS = ("customer", "code", "service_start", "field", "ratecard", "legacy", "delta", "cause", "currency", "detail")
EXPLANATIONS = {
    "missing_in_legacy": "ratecard bills a line the current system does not",
    "missing_in_ratecard": "the current system bills a line ratecard does not",
    "duplicate_in_legacy": "the current system's export holds the same line more than once (one copy matches)",
    "currency": "the current system bills the line in another currency: its figures are not compared",
    "aggregation": "the current system aggregates the meter differently (e.g. MAX instead of SUM)",
    "tier_model": "the current system applies another tier model to the same tiers",
    "override": "one side uses the list price, the other a per-customer override",
    "tax_rate": "the current system uses another tax rate",
    "tax_rounding": "tax rounded per line on one side and per invoice on the other",
    "period_boundary": "the period is cut at another time (timezone or anchor day)",
    "discount": "the current system took a discount off the charge's own line, ratecard shows it as a line",
    "cap": "a cap (maximum) applied on one side only, or netted into the charge's own line on one side",
    "rounding": "within one minor unit: a rounding difference",
    "unexplained": "no single change reproduces the legacy figure: investigate",
}


def detail_text(row: dict) -> str:
    """A difference's extra facts (beyond the CSV columns) as key=value pairs."""
    extra = {k: v for k, v in row.items() if k not in CSV_FIELDS}
    return ", ".join(f"{k}={v}" for k, v in extra.items())


def to_csv(result: Reconciliation) -> str:
    """One row per difference; legacy cells are neutralised by csv_text (never a spreadsheet formula)."""
    rows = (difference.as_dict() for difference in result.differences)
    return csv_text(CSV_FIELDS, ([row.get(name) if name != "detail" else detail_text(row) for name in CSV_FIELDS]
                                 for row in rows))


def to_html(result: Reconciliation, title: str = "ratecard reconciliation") -> str:
    """One self-contained page: summary, then differences grouped by cause with money at stake."""
    summary = result.summary()
    grouped = defaultdict(list)
    for difference in result.differences:
        grouped[difference.cause].append(difference.as_dict())
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'>",
        f"<title>{e(title)}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
        "margin:.5em 0 2em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}h2{margin-top:1.5em}.muted{color:#666}</style>",
        f"<h1>{e(title)}</h1>",
        f"<p>{summary['ratecard_lines']} ratecard lines, {summary['legacy_lines']} legacy lines, "
        f"{summary['matched']} matched, <strong>{summary['differences']} differences</strong>.</p>",
        _one_off_note(summary),
        "<table><tr><th>cause</th><th>count</th><th>money at stake</th><th>meaning</th></tr>",
    ]
    for cause, bucket in summary["by_cause"].items():
        money = ", ".join(f"{v} {c}" for c, v in bucket["money_at_stake"].items())
        parts.append(f"<tr><td><a href='#{cause}'>{cause}</a></td><td class=n>{bucket['count']}</td>"
                     f"<td class=n>{e(money)}</td><td>{e(EXPLANATIONS[cause])}</td></tr>")
    parts.append("</table>")
    for cause in CAUSES:
        rows = grouped.get(cause)
        if not rows:
            continue
        parts.append(f"<h2 id='{cause}'>{cause} <span class=muted>({len(rows)})</span></h2>")
        parts.append("<table><tr><th>customer</th><th>code</th><th>service start</th><th>field</th><th>ratecard</th>"
                     "<th>legacy</th><th>delta</th><th>currency</th><th>detail</th></tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{e(str(row[k] or ''))}</td>" for k in
                                          ("customer", "code", "service_start", "field"))
                         + "".join(f"<td class=n>{e(str(row[k] or '—'))}</td>" for k in ("ratecard", "legacy", "delta"))
                         + f"<td>{e(str(row['currency'] or ''))}</td><td>{e(detail_text(row))}</td></tr>")
        parts.append("</table>")
    parts.append("</html>")
    return "\n".join(parts)


def _one_off_note(summary: dict) -> str:
    """The one-off invoices left out of the comparison (an empty string when there are none)."""
    if not summary.get("one_off_lines"):
        return ""
    money = ", ".join(f"{v} {c}" for c, v in summary["one_off_amount"].items())
    return (f"<p class=muted>Left out: {summary['one_off_lines']} line(s) of one-off invoices "
            f"({html.escape(money)}), written by hand and billing no usage.</p>")
