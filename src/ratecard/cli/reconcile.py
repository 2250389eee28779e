"""`ratecard reconcile`: ratecard's invoice lines against the current system's export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import ENVIRONMENT, DbOption, JsonOption, check_output, emit_json, fail, store_for, write_file
from .console import err, say
from .reports import print_reconciliation

MappingOption = Annotated[str | None, typer.Option("--mapping", help="Column mapping file, or a shipped one: stripe")]


def reconcile(
    legacy_file: Path,
    mapping: MappingOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the report here: .json, .csv or .html")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Compare ratecard's invoice lines with the current system's export; name the cause of each
    difference. Exit 1 when there are differences."""
    from ..services.reconcile import check_report_name, mapping_path, read_legacy_export, reconcile_legacy, report_text
    from ..store.db import StoreError

    legacy = read_legacy_export(legacy_file, mapping)
    if out is not None:
        check_report_name(out)
        mapping_file = mapping_path(mapping)
        check_output("--out", out, db, legacy_file, *([mapping_file] if mapping_file else []))
    try:
        with store_for(db, existing=True) as store:
            result = reconcile_legacy(store, legacy, ENVIRONMENT)
    except StoreError as exc:
        fail(str(exc))
    if out is not None:
        write_file("--out", out, report_text(result, out))
        say(err, f"wrote the reconciliation report to {out}")
    if json_output:
        emit_json(result.as_dict())
    else:
        print_reconciliation(result)
    raise typer.Exit(1 if result.differences else 0)
