"""Reconciliation against the current billing system's export, and its report files."""

from __future__ import annotations

from pathlib import Path

import orjson

from ..golive.legacy import LegacyFileError, LegacyLine, load_mapping, read_legacy
from ..golive.reconcile import Reconciliation, reconcile
from ..golive.report import EXPLANATIONS, detail_text, to_csv, to_html
from ..store import Store
from .catalog import current_catalog
from .errors import InvalidInput

SHIPPED_MAPPINGS = Path(__file__).resolve().parent.parent / "golive" / "mappings"
REPORT_SUFFIXES = (".json", ".csv", ".html", ".htm")
__all__ = ["EXPLANATIONS", "Reconciliation", "detail_text", "mapping_path", "read_legacy_export", "reconcile_legacy",
           "report_text"]


def mapping_path(mapping: str | None) -> Path | None:
    """A column mapping: one shipped with ratecard by name (stripe, stripe-subscriptions) or a file."""
    if mapping is None:
        return None
    shipped = SHIPPED_MAPPINGS / f"{mapping}.yaml"
    return shipped if shipped.exists() else Path(mapping)


def read_legacy_export(path: Path, mapping: str | None = None) -> list[LegacyLine]:
    """The legacy system's invoice lines (CSV or JSON), columns named by the mapping."""
    try:
        return read_legacy(path, load_mapping(mapping_path(mapping)))
    except LegacyFileError as exc:
        raise InvalidInput(str(exc)) from None


def check_report_name(out: Path) -> None:
    if out.suffix.lower() not in REPORT_SUFFIXES:
        raise InvalidInput(f"{out} is not a .json, .csv or .html file name", field="out")


def reconcile_legacy(store: Store, legacy: list[LegacyLine], environment: str = "live") -> Reconciliation:
    """Compare ratecard's invoice lines with the legacy export's; each difference gets its cause."""
    _, catalog = current_catalog(store, environment)
    return reconcile(store, catalog, legacy, environment)


def report_text(result: Reconciliation, out: Path) -> str:
    """The report in the format the file name asks for: .json, .csv or .html."""
    check_report_name(out)
    suffix = out.suffix.lower()
    if suffix == ".json":
        return orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode()
    return to_csv(result) if suffix == ".csv" else to_html(result)
