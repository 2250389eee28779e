"""Read the current billing system's export: one row per invoice line.

CSV, or JSON in ratecard's own export shape (a list of invoices with lines, or a flat list of
lines). Other systems' column names are mapped with a mapping file:

    columns: {customer: "Customer ID", code: "Price ID", service_start: "Period Start (UTC)", ...}
    amounts_in_minor_units: false     # Stripe-style integer cents -> set true
    date_format: "%Y-%m-%d"           # or any strptime format; ISO datetimes are accepted too
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..domain.money import minor_units
from ..textfile import read_column_mapping, read_text

FIELDS = ("customer", "code", "service_start", "service_end", "quantity", "amount", "currency", "tax", "invoice")
REQUIRED = ("customer", "code", "service_start", "amount")


class LegacyFileError(ValueError):
    """The legacy file or mapping cannot be used; the message names file, row and field."""


@dataclass(frozen=True)
class LegacyLine:
    row: int
    customer: str
    code: str
    service_start: date
    service_end: date | None
    quantity: Decimal | None
    amount: Decimal
    currency: str | None
    tax: Decimal | None
    invoice: str | None

    @property
    def key(self) -> tuple[str, str, date]:
        return (self.customer, self.code, self.service_start)


@dataclass(frozen=True)
class Mapping:
    columns: dict[str, str]
    amounts_in_minor_units: bool = False
    date_format: str | None = None

    def column(self, field: str) -> str:
        return self.columns.get(field, field)


def load_mapping(path: Path | None) -> Mapping:
    if path is None:
        return Mapping({})
    columns, data = read_column_mapping(path, FIELDS, LegacyFileError)
    return Mapping(columns, bool(data.get("amounts_in_minor_units", False)), data.get("date_format"))


def read_legacy(path: Path, mapping: Mapping) -> list[LegacyLine]:
    text = read_text(path, "a legacy export", LegacyFileError)
    if not text.strip():
        raise LegacyFileError(f"{path}: is empty")
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        rows = _json_rows(path, text)
    else:
        rows = _csv_rows(path, text, mapping)
    return [_line(path, number, row, mapping) for number, row in rows]


def _json_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise LegacyFileError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise LegacyFileError(f"{path}: expected a list of invoices or of lines")
    rows: list[tuple[int, dict[str, Any]]] = []
    for index, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise LegacyFileError(f"{path}: item {index}: expected an object")
        if isinstance(item.get("lines"), list):  # ratecard's export shape: invoice with lines
            head = {k: v for k, v in item.items() if k != "lines"}
            for line in item["lines"]:
                # the export's tax is the invoice's, not the line's: it is not compared line by line
                merged = {**line, "customer": head.get("customer"), "currency": head.get("currency"),
                          "invoice": head.get("number"), "tax": None}
                rows.append((index, merged))
        else:
            rows.append((index, item))
    return rows


def _csv_rows(path: Path, text: str, mapping: Mapping) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    for field in REQUIRED:
        if mapping.column(field) not in header:
            raise LegacyFileError(f"{path}: line 1: no column {mapping.column(field)!r} for {field}"
                                  f"{' (map it with --mapping)' if field not in mapping.columns else ''}")
    # ratecard's own CSV export repeats the invoice's fields (subtotal, tax, total) on every
    # line: its tax belongs to the invoice, so it is not compared line by line
    invoice_level_tax = "subtotal" in header and "total" in header and "tax" not in mapping.columns
    by_ratecard_name = []
    for number, row in enumerate(reader, start=2):
        values = {field: row.get(mapping.column(field)) for field in FIELDS}
        if invoice_level_tax:
            values["tax"] = None
        by_ratecard_name.append((number, values))
    return by_ratecard_name


def _line(path: Path, number: int, row: dict[str, Any], mapping: Mapping) -> LegacyLine:
    where = f"{path}: line {number}"
    for field in REQUIRED:
        if row.get(field) in (None, ""):
            raise LegacyFileError(f"{where}: field {field!r} is empty")
    currency = _text(row.get("currency"))
    currency = currency.upper() if currency else None
    amount = _decimal(row.get("amount"), f"{where}: field 'amount'")
    tax = _decimal(row.get("tax"), f"{where}: field 'tax'") if row.get("tax") not in (None, "") else None
    if mapping.amounts_in_minor_units:
        if currency is None:
            raise LegacyFileError(f"{where}: amounts in minor units need a currency column")
        scale = Decimal(1).scaleb(-minor_units(currency))
        amount = amount * scale
        tax = tax * scale if tax is not None else None
    quantity = row.get("quantity")
    return LegacyLine(
        row=number,
        customer=str(row["customer"]).strip(),
        code=str(row["code"]).strip(),
        service_start=_date(row["service_start"], mapping, f"{where}: field 'service_start'"),
        service_end=_date(row["service_end"], mapping, f"{where}: field 'service_end'")
        if row.get("service_end") not in (None, "") else None,
        quantity=_decimal(quantity, f"{where}: field 'quantity'") if quantity not in (None, "") else None,
        amount=amount,
        currency=currency,
        tax=tax,
        invoice=_text(row.get("invoice")),
    )


def _text(value: Any) -> str | None:
    return str(value).strip() if value not in (None, "") else None


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise LegacyFileError(f"{where}: {value!r} is not a number") from None
    if not number.is_finite():
        raise LegacyFileError(f"{where}: {value!r} is not a finite number")
    return number


def _date(value: Any, mapping: Mapping, where: str) -> date:
    text = str(value).strip()
    try:
        if mapping.date_format:
            return datetime.strptime(text, mapping.date_format).date()
        if text.isdigit():  # Unix seconds, as some exports write them
            return datetime.fromtimestamp(int(text), tz=UTC).date()
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        raise LegacyFileError(f"{where}: {text!r} is not a date (expected YYYY-MM-DD"
                              f"{' or ' + mapping.date_format if mapping.date_format else ''})") from None
