"""The two layouts of a tabular events file (CSV, Parquet), told apart by the header:
native columns `id, customer, meter, timestamp`, an optional `subscription` (the subscription
that bills the event), every other column a property; else Solvimon's upload template."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..records import RawEvent, Rejection
from .common import NATIVE_COLUMNS, NATIVE_FIELDS, SUBSCRIPTION_COLUMN, ReaderError, RowHandler, Streams
from .solvimon_template import TemplateLayout


def row_handler(path: Path, columns: list[str], template: bool | None, now: datetime | None,
                streams: Streams | None) -> tuple[RowHandler, int | None]:
    """Pick the layout from the header: native columns, else Solvimon's template. Returns the
    row handler and the index of the timestamp column."""
    if not template and all(name in columns for name in NATIVE_FIELDS):
        return _native_csv_row(columns), columns.index("timestamp")
    layout = TemplateLayout.from_header(columns)
    if layout is None:
        if template:
            raise ReaderError(f"{path}: line 1: not Solvimon's upload template: the header needs the columns "
                              "customer_reference and reference (the event reference)")
        missing = next(name for name in NATIVE_FIELDS if name not in columns)
        raise ReaderError(f"{path}: line 1: the header has no column {missing!r} (expected id, customer, meter, "
                          "timestamp, then properties; or Solvimon's upload template: customer_reference, "
                          "reference, optional pricing_plan_subscription_reference and timestamp, then meter "
                          "values and properties)")
    layout.resolve_values(path, streams or {})
    return layout.handler(now), layout.timestamp


def _native_csv_row(columns: list[str]) -> RowHandler:
    index = {name: columns.index(name) for name in NATIVE_FIELDS}
    extra = [(i, name) for i, name in enumerate(columns) if name not in NATIVE_COLUMNS and name]
    subscription_at = columns.index(SUBSCRIPTION_COLUMN) if SUBSCRIPTION_COLUMN in columns else None

    def to_records(row: Sequence[Any], line: int) -> list[RawEvent | Rejection]:
        values = {name: row[i].strip() for name, i in index.items()}
        missing_value = [name for name in NATIVE_FIELDS if not values[name]]
        if missing_value:
            return [Rejection(line, "missing_field", f"line {line}: column {missing_value[0]!r} is empty",
                              values["id"] or None)]
        properties = {name: row[i] for i, name in extra if row[i] != ""}
        # an empty cell names no subscription
        subscription = (row[subscription_at].strip() or None) if subscription_at is not None else None
        return [RawEvent(values["id"], values["customer"], values["meter"], values["timestamp"], properties, line,
                         subscription)]

    return to_records
