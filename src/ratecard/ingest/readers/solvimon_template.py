"""Solvimon's upload template (CSV or Parquet): `customer_reference`, optional
`pricing_plan_subscription_reference` (the subscription that bills the event), `reference` (the
event reference), optional `timestamp` (missing: the import's "now"), then one column per meter
value and per meter property.

Header cells are matched loosely ("Customer reference", "Timestamp (optional)" and
`customer_reference` are the same column). With a `meter_reference` column each row is one
event of that meter; without one, every column named after a meter code or `source` of the
catalog is a meter-value column, and each non-empty meter-value cell is one event of that meter
(id `reference`, or `reference:column` when the row fills several), its value stored under the
meter's `field`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..records import RawEvent, Rejection
from .common import ReaderError, RowHandler, Streams, id_of

if TYPE_CHECKING:
    from ...catalog import Catalog

# the field (and template column) naming the subscription that bills an event: events.subscription
SOLVIMON_SUBSCRIPTION = "pricing_plan_subscription_reference"

# Solvimon column names (normalized: lower case, "(optional)" dropped, words joined by "_") -> role
SOLVIMON_COLUMNS = {
    "reference": "id",
    "event_reference": "id",
    "customer_reference": "customer",
    "pricing_plan_subscription_reference": "subscription",
    "subscription_reference": "subscription",
    "timestamp": "timestamp",
    "meter_reference": "meter",
}

def normalize_column(name: str) -> str:
    """'Customer reference', 'Timestamp (optional)', 'customer-reference' -> customer_reference, timestamp."""
    text = re.sub(r"\(.*?\)", " ", name.lstrip("\ufeff").strip().lower())
    return re.sub(r"[^0-9a-z]+", "_", text).strip("_")


def meter_streams(catalog: Catalog | None) -> dict[str, str]:
    """Every event meter name the catalog reads (meter codes and sources) -> the property a
    template's meter-value cell is stored under: the field of the meters reading that name when
    they agree on one, else the column's own name."""
    if catalog is None:
        return {}
    names = {meter.code for meter in catalog.meters.values()} | {meter.stream for meter in catalog.meters.values()}
    streams: dict[str, str] = {}
    for name in sorted(names):
        fields = {meter.field for meter in catalog.meters.values() if meter.reads(name) and meter.field}
        streams[name] = fields.pop() if len(fields) == 1 else name
    return streams


def _is_empty(value: Any) -> bool:
    return value is None or (type(value) is str and not value.strip())


def _text(value: Any) -> Any:
    return value.strip() if type(value) is str else value


@dataclass
class TemplateLayout:
    """Where the roles of Solvimon's upload template sit in one header."""

    columns: list[str]
    id: int
    customer: int
    subscription: int | None = None
    timestamp: int | None = None
    meter: int | None = None
    values: tuple[tuple[int, str, str], ...] = ()  # (index, column, property the value is stored under)
    properties: tuple[tuple[int, str], ...] = ()

    @classmethod
    def from_header(cls, columns: list[str]) -> TemplateLayout | None:
        roles: dict[str, int] = {}
        for index, name in enumerate(columns):
            role = SOLVIMON_COLUMNS.get(normalize_column(name))
            if role is not None and role not in roles:
                roles[role] = index
        if "id" not in roles or "customer" not in roles:
            return None
        return cls(columns, roles["id"], roles["customer"], roles.get("subscription"), roles.get("timestamp"),
                   roles.get("meter"))

    def resolve_values(self, path: Path, streams: Streams) -> None:
        """Split the other columns into meter values (named after a meter) and properties."""
        taken = {i for i in (self.id, self.customer, self.subscription, self.timestamp, self.meter) if i is not None}
        values: list[tuple[int, str, str]] = []
        properties: list[tuple[int, str]] = []
        for index, name in enumerate(self.columns):
            if index in taken or not name:
                continue
            if self.meter is None and name in streams:
                values.append((index, name, streams[name]))
            else:
                properties.append((index, name))
        self.values, self.properties = tuple(values), tuple(properties)
        if self.meter is None and not values:
            known = ", ".join(sorted(streams)[:12]) or "none: no catalog is applied"
            raise ReaderError(f"{path}: line 1: the Solvimon template names no meter: add a meter_reference column, "
                              f"or name each meter-value column after a meter code or source (known: {known})")

    def handler(self, now: datetime | None) -> RowHandler:
        moment = now if now is not None else datetime.now(UTC)
        now_text = moment.isoformat()
        id_name, customer_name = self.columns[self.id], self.columns[self.customer]

        def to_records(row: Sequence[Any], line: int) -> list[RawEvent | Rejection]:
            reference, customer = _text(row[self.id]), _text(row[self.customer])
            if _is_empty(reference):
                return [Rejection(line, "missing_field", f"line {line}: column {id_name!r} is empty")]
            if _is_empty(customer):
                return [Rejection(line, "missing_field", f"line {line}: column {customer_name!r} is empty",
                                  id_of(reference))]
            timestamp = now_text if self.timestamp is None or _is_empty(row[self.timestamp]) \
                else _text(row[self.timestamp])
            properties = {name: row[i] for i, name in self.properties if not _is_empty(row[i])}
            subscription = None
            if self.subscription is not None and not _is_empty(row[self.subscription]):
                subscription = _text(row[self.subscription])
            if self.meter is not None:
                meter = _text(row[self.meter])
                return [RawEvent(reference, customer, None if _is_empty(meter) else meter, timestamp, properties,
                                 line, subscription)]
            cells = [(column, field, row[i]) for i, column, field in self.values if not _is_empty(row[i])]
            if not cells:
                names = ", ".join(column for _, column, _ in self.values)
                return [Rejection(line, "missing_field", f"line {line}: no meter value: every meter-value column "
                                  f"({names}) is empty", id_of(reference))]
            if len(cells) == 1:
                column, field, value = cells[0]
                return [RawEvent(reference, customer, column, timestamp, {**properties, field: _text(value)}, line,
                                 subscription)]
            return [RawEvent(f"{reference}:{column}", customer, column, timestamp, {**properties, field: _text(value)},
                             line, subscription) for column, field, value in cells]

        return to_records
