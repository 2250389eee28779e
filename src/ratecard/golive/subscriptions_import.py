"""Import existing subscriptions from another system's CSV export, with `bill_from` so that the
periods that system already billed are never billed again.

Each row adds a subscription (and its customer, when the catalog does not have it) to the
current catalog; the result is validated like any catalog and stored as a new version — all
rows or none.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..catalog.schema import CatalogDocument
from ..catalog.validate import Problem, check_document
from ..textfile import csv_records, read_column_mapping, read_text

FIELDS = ("reference", "customer", "plan", "start", "end", "bill_from", "billing_anchor", "customer_name",
          "currency", "country", "tax_rate", "timezone", "stripe_customer_id")
REQUIRED = ("reference", "customer", "plan", "start")
CUSTOMER_FIELDS = {"customer_name": "name", "currency": "currency", "country": "country", "tax_rate": "tax_rate",
                   "timezone": "timezone", "stripe_customer_id": "stripe_customer_id"}


class SubscriptionImportError(ValueError):
    """The file or mapping cannot be used; the message names the file, row and field."""


@dataclass
class ImportPlan:
    document: CatalogDocument | None
    subscriptions: int
    customers: int
    problems: list[str]
    # rows left out, each with its reason (the others are added)
    refused: list[str] = dataclasses.field(default_factory=list)


def load_mapping(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    return read_column_mapping(path, FIELDS, SubscriptionImportError)[0]


def plan_import(document: CatalogDocument, path: Path, mapping: dict[str, str],
                bill_from: date | None = None, refusal: Callable[[str], str | None] | None = None) -> ImportPlan:
    """The catalog with the file's subscriptions added, or the problems (row and field named).
    `refusal`: why a known customer may not be subscribed (None: it may); such a row is left out
    and listed in `refused` with its reason, and the other rows are added."""
    rows = _read(path, mapping)
    raw = document.model_dump(mode="json")
    known_customers = {c["reference"] for c in raw["customers"]}
    known_subscriptions = {s["reference"] for s in raw["subscriptions"]}
    problems: list[str] = []
    row_of_subscription: dict[int, int] = {}  # index in the catalog's subscriptions -> CSV line
    row_of_customer: dict[int, int] = {}  # index in the catalog's customers -> the CSV line that added or linked it
    added_customers = 0
    refused: list[str] = []
    for number, row in rows:
        reference = row["reference"]
        why = refusal(row["customer"]) if refusal is not None and row["customer"] in known_customers else None
        if why is not None:
            refused.append(f"{path}: line {number}: subscription {reference!r}: {why}")
            continue
        if reference in known_subscriptions:
            problems.append(f"{path}: line {number}: subscription {reference!r} already exists; nothing was imported")
            continue
        known_subscriptions.add(reference)
        if row["customer"] in known_customers:
            problem = _link_stripe_customer(raw["customers"], row)
            if problem:
                problems.append(f"{path}: line {number}: {_field('stripe_customer_id', mapping)}: {problem}; "
                                "nothing was imported")
            elif row.get("stripe_customer_id"):
                index = next(i for i, c in enumerate(raw["customers"]) if c["reference"] == row["customer"])
                row_of_customer.setdefault(index, number)
        else:
            customer: dict[str, Any] = {"reference": row["customer"]}
            for column, name in CUSTOMER_FIELDS.items():
                if row.get(column):
                    customer[name] = row[column]
            row_of_customer[len(raw["customers"])] = number
            raw["customers"].append(customer)
            known_customers.add(row["customer"])
            added_customers += 1
        subscription: dict[str, Any] = {"reference": reference, "customer": row["customer"], "plan": row["plan"],
                                        "start": _moment(row["start"], path, number, "start")}
        if row.get("end"):
            subscription["end"] = _moment(row["end"], path, number, "end")
        chosen = row.get("bill_from") or (bill_from.isoformat() if bill_from else None)
        if chosen:
            subscription["bill_from"] = _moment(chosen, path, number, "bill_from")
        if row.get("billing_anchor"):
            subscription["billing_anchor"] = _anchor(row["billing_anchor"], path, number)
        row_of_subscription[len(raw["subscriptions"])] = number
        raw["subscriptions"].append(subscription)
    checked, catalog_problems = check_document(raw)
    for problem in catalog_problems:
        problems.append(_located(problem, path, mapping, {"subscriptions": row_of_subscription,
                                                          "customers": row_of_customer}))
    if problems:
        return ImportPlan(None, 0, 0, problems, refused)
    return ImportPlan(checked, len(rows) - len(refused), added_customers, [], refused)


def _link_stripe_customer(customers: list[dict[str, Any]], row: dict[str, str]) -> str | None:
    """A customer the catalog has gets the row's Stripe customer id when it has none (so that its
    invoices can be charged); a different id already there is a problem, never overwritten."""
    given = row.get("stripe_customer_id")
    if not given:
        return None
    customer = next(c for c in customers if c["reference"] == row["customer"])
    current = customer.get("stripe_customer_id")
    if current is None:
        customer["stripe_customer_id"] = given
        return None
    if current != given:
        return f"customer {row['customer']!r} is linked to Stripe customer {current!r}, not {given!r}"
    return None


# a catalog customer's field -> the import's field (the CSV column it came from)
_CUSTOMER_SOURCES = {"reference": "customer", **{name: field for field, name in CUSTOMER_FIELDS.items()}}


def _located(problem: Problem, path: Path, mapping: dict[str, str], rows: dict[str, dict[int, int]]) -> str:
    """A problem of a subscription or customer the file added, on the CSV line (and column) to
    fix: subscriptions[12].plan -> 'file: line 5: field plan (column 'Plan'): unknown plan …';
    customers[3].currency -> 'file: line 4: field currency (column 'Currency'): unknown currency …'.
    A problem elsewhere in the catalog keeps its catalog path."""
    for kind, lines in rows.items():
        if not problem.path.startswith(f"{kind}["):
            continue
        index = int(problem.path[len(kind) + 1: problem.path.index("]")])
        if index not in lines:
            break
        field = problem.path[problem.path.index("]") + 2:] or "row"
        if kind == "customers":
            field = _CUSTOMER_SOURCES.get(field, f"customer {field}")
        return f"{path}: line {lines[index]}: {_field(field, mapping)}: {problem.message}"
    return f"{path}: catalog {problem}"


def _field(field: str, mapping: dict[str, str]) -> str:
    """'field plan', with the CSV column it is read from when the mapping names another."""
    column = mapping.get(field, field) if field in FIELDS else field
    return f"field {field}" + (f" (column {column!r})" if column != field else "")


def _read(path: Path, mapping: dict[str, str]) -> list[tuple[int, dict[str, str]]]:
    text = read_text(path, "a CSV file", SubscriptionImportError)
    # only CR and LF end a record (a name holding U+2028 is one cell); a row is named by its first line
    reader = csv.DictReader(csv_records(text))
    try:
        header = reader.fieldnames or []
    except csv.Error:
        raise SubscriptionImportError(f"{path}: line 1: the header is not CSV") from None
    for field in REQUIRED:
        if mapping.get(field, field) not in header:
            raise SubscriptionImportError(f"{path}: line 1: no column {mapping.get(field, field)!r} for {field}")
    rows = []
    while True:
        number = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:  # a cell over the csv module's limit: the line, not the library's words
            raise SubscriptionImportError(f"{path}: line {number}: a cell is longer than {csv.field_size_limit()} "
                                          "characters, or is not CSV") from None
        values = {field: (row.get(mapping.get(field, field)) or "").strip() for field in FIELDS}
        for field in REQUIRED:
            if not values[field]:
                raise SubscriptionImportError(f"{path}: line {number}: field {field!r} is empty")
        rows.append((number, values))
    if not rows:
        raise SubscriptionImportError(f"{path}: holds no subscriptions")
    return rows


def _moment(text: str, path: Path, number: int, field: str) -> str:
    """Dates stay dates (checked with the catalog); datetimes without a zone are read as UTC (exports
    write them so); digits are a Unix timestamp. Anything else is refused naming its line and field."""
    value = text.strip()
    if len(value) == 10:
        return value
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value), tz=UTC).isoformat()
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except (ValueError, OverflowError, OSError):
        raise SubscriptionImportError(
            f"{path}: line {number}: field {field!r}: {value[:40]!r} is not a date (2026-10-01), an RFC 3339 "
            "datetime or a Unix timestamp") from None
    if parsed.tzinfo is None:
        return value.replace(" ", "T") + "+00:00"
    return parsed.isoformat()


def _anchor(text: str, path: Path, number: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise SubscriptionImportError(f"{path}: line {number}: field 'billing_anchor': {text!r} is not a day "
                                      "of the month") from None
