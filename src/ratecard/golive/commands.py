"""`ratecard reconcile`: the CLI face of golive.reconcile (registered in ratecard.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from ..store.db import StoreError
from .legacy import LegacyFileError, load_mapping, read_legacy
from .reconcile import reconcile
from .report import print_table, to_csv, to_html

SHIPPED_MAPPINGS = Path(__file__).parent / "mappings"


def mapping_path(mapping: str | None) -> Path | None:
    """--mapping: a shipped mapping by name (stripe, stripe-subscriptions) or a file."""
    if mapping is None:
        return None
    shipped = SHIPPED_MAPPINGS / f"{mapping}.yaml"
    return shipped if shipped.exists() else Path(mapping)


def reconcile_command(
    legacy_file: Path,
    mapping: Annotated[str | None, typer.Option("--mapping", help="Column mapping file, or a shipped one: stripe")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the report here: .json, .csv or .html")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database URL.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False,
) -> None:
    """Compare ratecard's invoice lines with the current system's export; name the cause of each
    difference. Exit 1 when there are differences."""
    from ..cli import current_catalog_or_fail, emit_json, err, fail, store_for
    from ..cli import out as console

    try:
        lines = read_legacy(legacy_file, load_mapping(mapping_path(mapping)))
    except LegacyFileError as exc:
        fail(str(exc))
    if out is not None and out.suffix.lower() not in (".json", ".csv", ".html", ".htm"):
        fail(f"--out {out}: use a .json, .csv or .html file name")
    try:
        with store_for(db) as store:
            _, catalog = current_catalog_or_fail(store)
            result = reconcile(store, catalog, lines)
    except StoreError as exc:
        fail(str(exc))
    if out is not None:
        suffix = out.suffix.lower()
        text = (orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode() if suffix == ".json"
                else to_csv(result) if suffix == ".csv" else to_html(result))
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"--out {out}: cannot be written: {exc.strerror}")
        err.print(f"wrote the reconciliation report to {out}")
    if json_output:
        emit_json(result.as_dict())
    else:
        print_table(console, result)
    raise typer.Exit(1 if result.differences else 0)


def check_command(
    days: Annotated[int, typer.Option("--days", min=1, help="A charged meter silent this long is a warning.")] = 7,
    db: Annotated[str | None, typer.Option("--db", help="Database URL.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False,
) -> None:
    """Readiness report over the stored catalog and data; exit 1 when anything blocks go-live."""
    from rich.table import Table

    from ..cli import _now, current_catalog_or_fail, emit_json, store_for
    from ..cli import out as console
    from .readiness import readiness

    with store_for(db) as store:
        _, catalog = current_catalog_or_fail(store)
        findings = readiness(store, catalog, _now(), days)
    blockers = sum(1 for f in findings if f.severity == "blocker")
    if json_output:
        emit_json({"ready": blockers == 0, "blockers": blockers, "warnings": len(findings) - blockers,
                   "findings": [f.as_dict() for f in findings]})
    else:
        table = Table(title=f"go-live readiness: {blockers} blocker(s), {len(findings) - blockers} warning(s)")
        for column in ("severity", "finding", "subject", "detail"):
            table.add_column(column)
        for finding in findings:
            style = "red" if finding.severity == "blocker" else "yellow"
            table.add_row(f"[{style}]{finding.severity}[/]", finding.kind, finding.subject, finding.message)
        console.print(table if findings else "ready: no blockers, no warnings")
    raise typer.Exit(1 if blockers else 0)


def import_subscriptions_command(
    file: Path,
    mapping: Annotated[str | None, typer.Option("--mapping", help="Column mapping file, or a shipped one: "
                                                                   "stripe-subscriptions")] = None,
    bill_from: Annotated[str | None, typer.Option("--bill-from", help="Default bill_from date (YYYY-MM-DD) for "
                                                                       "rows without one")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report; store nothing.")] = False,
    db: Annotated[str | None, typer.Option("--db", help="Database URL.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False,
) -> None:
    """Add existing subscriptions (and their customers) from a CSV export to the catalog, with
    bill_from so that periods the previous system billed are never billed again. All or nothing."""
    from datetime import date

    from ..cli import _now, emit_json, err, fail, store_for
    from ..cli import out as console
    from ..ingest.validate import to_micros
    from ..store.catalogs import load_version, save_version
    from .subscriptions_import import SubscriptionImportError, plan_import
    from .subscriptions_import import load_mapping as load_columns

    default_bill_from = None
    if bill_from is not None:
        try:
            default_bill_from = date.fromisoformat(bill_from)
        except ValueError:
            fail(f"--bill-from: {bill_from!r} is not a date (YYYY-MM-DD)")
    with store_for(db) as store:
        loaded = load_version(store)
        if loaded is None:
            fail("no catalog has been applied yet; apply one with the plans first (`ratecard catalog apply`)")
        try:
            plan = plan_import(loaded[1], file, load_columns(mapping_path(mapping)), default_bill_from)
        except SubscriptionImportError as exc:
            fail(str(exc))
        if plan.problems:
            for problem in plan.problems:
                err.print(f"error: {problem}", markup=False, highlight=False)
            fail(f"{file}: {len(plan.problems)} problem(s); nothing was imported")
        version, created = (loaded[0], False) if dry_run else save_version(store, plan.document, to_micros(_now()))
    result = {"file": str(file), "subscriptions": plan.subscriptions, "new_customers": plan.customers,
              "dry_run": dry_run, "catalog_version": version}
    if json_output:
        emit_json(result)
    else:
        verb = "would add" if dry_run else f"added (catalog version {version})"
        console.print(f"{file}: {verb} {plan.subscriptions} subscription(s) and {plan.customers} new customer(s)")
