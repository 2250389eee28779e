"""Read the current billing system's export: one row per invoice line.

CSV, or JSON in ratecard's own export shape (a list of invoices with lines, or a flat list of
lines). Other systems' column names are mapped with a mapping file:

    columns: {customer: "Customer ID", code: "Price ID", service_start: "Period Start (UTC)", ...}
    amounts_in_minor_units: false     # Stripe-style integer cents -> set true
    date_format: "%Y-%m-%d"           # or any strptime format; ISO datetimes are accepted too
    timezone: UTC                     # the zone of datetimes written without an offset
    decimal_separator: ","            # for exports that write 1.234,50; "." when they write 1,234.50
    delimiter: ";"                    # else found from the header: , ; tab or |, whichever names the columns

Numbers (amount, tax, quantity) are read with the mapping's decimal separator ("." when none is
given); thousands separators are taken only where they cannot be the decimal separator (see
parse_number), and an ambiguous number ("1,500" when no separator is given) is refused, naming
file, line and column, never guessed.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..domain.json_values import text_form
from ..domain.money import MoneyError, minor_units
from ..domain.numbers import number_problem
from ..outputs import csv_cell_read
from ..textfile import csv_records, read_column_mapping, read_text

FIELDS = ("customer", "code", "service_start", "service_end", "quantity", "amount", "currency", "tax", "invoice",
          "filter", "group")
REQUIRED = ("customer", "code", "service_start", "amount")


# a comparison leaving rows out would report their ratecard lines as missing_in_legacy: an export
# with bad rows is refused whole, every bad row named (the first ones) so one run shows what to fix
MAX_ROW_PROBLEMS_SHOWN = 10


_TOO_MANY_CELLS = "\x00too many cells"  # a CSV row's marker: more non-empty cells than the header


class LegacyFileError(ValueError):
    """The legacy file or mapping cannot be used; the message names file, row and field."""


@dataclass(frozen=True, slots=True)
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
    # a line of a charge priced per dimension: the filter it prices (None: the default price) and its
    # group as JSON text, keys sorted, values in text form (dimension_text)
    filter: str | None = None
    group: str | None = None
    # the period's start and end as instants, when the export wrote a time (with an offset, in Unix
    # seconds, or in the mapping's timezone): reconcile matches them on the subscription's local day
    start_instant: datetime | None = None
    end_instant: datetime | None = None

    @property
    def key(self) -> tuple[str, str, date]:
        return (self.customer, self.code, self.service_start)

    @property
    def match_key(self) -> tuple[str, str, date, str | None, str | None]:
        return (self.customer, self.code, self.service_start, self.filter, self.group)


def dimension_text(group: dict[str, Any] | None) -> str | None:
    """A line's group as reconciliation compares it: JSON, keys sorted, values by text form (7 is "7")."""
    if not group:
        return None
    return json.dumps({str(key): text_form(value) for key, value in sorted(group.items())}, separators=(",", ":"),
                      ensure_ascii=False)


def _group(value: Any, where: str) -> str | None:
    """A legacy line's group: a JSON object ({"project_id": "a"}), as a cell's text or in a JSON export."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_float=Decimal)
        except (json.JSONDecodeError, RecursionError):
            value = None
    if not isinstance(value, dict):
        raise LegacyFileError(f"{where}: field 'group': expected a JSON object of property and value, such as "
                              '{"project_id": "a"}')
    return dimension_text(value)


@dataclass(frozen=True)
class Mapping:
    columns: dict[str, str]
    amounts_in_minor_units: bool = False
    date_format: str | None = None
    decimal_separator: str | None = None  # None: "." assumed, so a lone group of "," is ambiguous
    delimiter: str | None = None  # None: found from the header (DELIMITERS)
    timezone: str | None = None  # the zone of datetimes without an offset (None: their date is taken as written)

    def column(self, field: str) -> str:
        return self.columns.get(field, field)


def load_mapping(path: Path | None) -> Mapping:
    if path is None:
        return Mapping({})
    columns, data = read_column_mapping(path, FIELDS, LegacyFileError)
    separator = data.get("decimal_separator")
    if separator is not None and separator not in DECIMAL_SEPARATORS:
        raise LegacyFileError(f"{path}: decimal_separator: {separator!r} is not one of \".\" or \",\"")
    date_format = data.get("date_format")
    if date_format is not None and not isinstance(date_format, str):
        raise LegacyFileError(f"{path}: date_format: expected a strptime format such as \"%d.%m.%Y\"")
    delimiter = data.get("delimiter")
    if delimiter is not None and delimiter not in DELIMITERS:
        raise LegacyFileError(f"{path}: delimiter: {delimiter!r} is not one of "
                              + ", ".join(repr(d) for d in DELIMITERS))
    zone = data.get("timezone")
    if zone is not None:
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            raise LegacyFileError(f"{path}: timezone: {zone!r} is not an IANA timezone such as \"UTC\" or "
                                  "\"Europe/Berlin\"") from None
    return Mapping(columns, bool(data.get("amounts_in_minor_units", False)), date_format, separator, delimiter,
                   None if zone is None else str(zone))


def read_legacy(path: Path, mapping: Mapping) -> list[LegacyLine]:
    text = read_text(path, "a legacy export", LegacyFileError)
    if not text.strip():
        raise LegacyFileError(f"{path}: is empty")
    rows: Iterable[tuple[int, dict[str, Any]]]
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        rows = _json_rows(path, text)
    else:
        rows = _csv_rows(path, text, mapping)
    lines, problems, bad = [], [], 0
    known: dict[Any, Any] = {}  # one object per distinct customer, code, currency, invoice and day
    for number, row in rows:
        try:
            lines.append(_line(path, number, row, mapping, known))
        except LegacyFileError as exc:
            bad += 1
            if len(problems) < MAX_ROW_PROBLEMS_SHOWN:
                problems.append(str(exc).removeprefix(f"{path}: "))
    if bad == 1:
        raise LegacyFileError(f"{path}: {problems[0]}")
    if bad:
        more = f"; and {bad - len(problems)} more" if bad > len(problems) else ""
        raise LegacyFileError(f"{path}: {bad} row(s) cannot be read, nothing was compared: "
                              + "; ".join(problems) + more)
    return lines


def _json_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise LegacyFileError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise LegacyFileError(f"{path}: JSON nested too deeply") from None
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
                if not isinstance(line, dict):
                    raise LegacyFileError(f"{path}: item {index}: every one of its lines must be an object")
                # the export's tax is the invoice's, not the line's: it is not compared line by line
                merged = {**line, "customer": head.get("customer"), "currency": head.get("currency"),
                          "invoice": head.get("number"), "tax": None}
                rows.append((index, merged))
        else:
            rows.append((index, item))
    return rows


def _csv_rows(path: Path, text: str, mapping: Mapping) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows one at a time (a list of 200,000 dicts held at once doubled the reader's memory)."""
    # only CR and LF end a record (never U+2028, NEL or a form feed in a cell, which str.splitlines
    # would split on); a quoted cell may hold line breaks, and a row is named by the line it starts on
    reader = csv.reader(csv_records(text), delimiter=_delimiter(text, mapping))
    try:
        header = next(reader, [])
    except csv.Error:
        raise LegacyFileError(f"{path}: line 1: the header is not CSV") from None
    for field in REQUIRED:
        if mapping.column(field) not in header:
            raise LegacyFileError(f"{path}: line 1: no column {mapping.column(field)!r} for {field}"
                                  f"{' (map it with --mapping)' if field not in mapping.columns else ''}; "
                                  f"the header has {_names(header)}")
    # ratecard's own CSV export repeats the invoice's fields (subtotal, tax, total) on every
    # line: its tax belongs to the invoice, so it is not compared line by line
    invoice_level_tax = "subtotal" in header and "total" in header and "tax" not in mapping.columns
    # ratecard's own export put a `'` before a text a spreadsheet would run as a formula (a
    # customer reference such as "=acme" or "@acme"): read without it, it matches its own lines
    own_export = {"number", "subtotal", "total", "customer", "code"} <= set(header) and not mapping.columns
    position = {name: index for index, name in enumerate(header)}  # a repeated name: its last column
    columns = [(field, position.get(mapping.column(field))) for field in FIELDS]
    while True:
        number = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error:
            # a cell over the csv module's limit: say so, with the line (not the library's words)
            raise LegacyFileError(f"{path}: line {number}: a cell is longer than "
                                  f"{csv.field_size_limit()} characters, or is not CSV") from None
        if not cells:  # a blank line
            continue
        if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header):]):
            # e.g. 1,500.00 unquoted: read short, the amount would be 1; the row is refused in read_legacy
            yield number, {_TOO_MANY_CELLS: (len(cells), len(header))}
            continue
        values: dict[str, Any] = {field: cells[index] if index is not None and index < len(cells) else None
                                  for field, index in columns}
        if invoice_level_tax:
            values["tax"] = None
        if own_export:
            for field in ("customer", "code", "invoice", "filter"):
                if isinstance(values.get(field), str):
                    values[field] = csv_cell_read(values[field])
        yield number, values


DELIMITERS = (",", ";", "\t", "|")


def _delimiter(text: str, mapping: Mapping) -> str:
    """The mapping's delimiter, else the one that reads the header's first line as cells holding
    every required column (a spreadsheet in a decimal-comma locale writes `;`), else the one that
    reads it as the most cells (so a refusal lists the columns the header has)."""
    if mapping.delimiter is not None:
        return mapping.delimiter
    first = text[:text.find("\n")] if "\n" in text else text
    wanted = [mapping.column(field) for field in REQUIRED]
    counts = []
    for delimiter in DELIMITERS:
        try:
            header = next(csv.reader([first.rstrip("\r")], delimiter=delimiter), [])
        except csv.Error:
            continue
        if all(name in header for name in wanted):
            return delimiter
        counts.append((len(header), -DELIMITERS.index(delimiter), delimiter))
    return max(counts)[2] if counts else ","


def _names(header: list[str], shown: int = 8) -> str:
    """A header's column names for a message: the first few, each cut short."""
    names = ", ".join(repr(name if len(name) <= 40 else name[:40] + "…") for name in header[:shown])
    return (names or "no column") + (f" and {len(header) - shown} more" if len(header) > shown else "")


def _line(path: Path, number: int, row: dict[str, Any], mapping: Mapping, known: dict[Any, Any]) -> LegacyLine:
    """One row as a line; `known` shares the texts and days that repeat from row to row (200,000
    lines of a few hundred customers hold a few hundred customer names, not 200,000 copies)."""

    def one(value: Any) -> Any:
        return value if value is None else known.setdefault(value, value)

    def day(field: str) -> tuple[date | None, datetime | None]:
        text = row.get(field)
        if text in (None, ""):
            return None, None
        if not isinstance(text, str):  # a JSON export's number or list
            return _date(text, mapping, f"{where}: field {field!r}")
        cached = known.get(("day", text))
        if cached is None:
            cached = known[("day", text)] = _date(text, mapping, f"{where}: field {field!r}")
        return cached  # type: ignore[no-any-return]

    where = f"{path}: line {number}"
    if _TOO_MANY_CELLS in row:
        cells, columns = row[_TOO_MANY_CELLS]
        raise LegacyFileError(f"{where}: {cells} cells where the header has {columns} (a number written with an "
                              "unquoted ',' such as 1,500.00? quote it, or declare the delimiter)")
    for field in REQUIRED:
        if row.get(field) in (None, ""):
            raise LegacyFileError(f"{where}: field {field!r} is empty")

    def decimal(field: str) -> Decimal:
        value = row.get(field)
        if isinstance(value, str) and (cached := known.get(("number", value))) is not None:
            return cached  # type: ignore[no-any-return]
        column = mapping.column(field)
        number = _decimal(value, mapping.decimal_separator,
                          f"{where}: field {field!r}" + (f" (column {column!r})" if column != field else ""))
        if isinstance(value, str):
            known[("number", value)] = number
        return number

    currency = _text(row.get("currency"))
    currency = currency.upper() if currency else None
    if currency is not None and ("currency", currency) not in known:
        try:
            minor_units(currency)
        except MoneyError:
            shown = currency if len(currency) <= 12 else currency[:12] + "…"
            raise LegacyFileError(f"{where}: field 'currency': {shown!r} is not an ISO 4217 currency code "
                                  "(such as EUR or USD)") from None
        known[("currency", currency)] = True
    amount = decimal("amount")
    tax = decimal("tax") if row.get("tax") not in (None, "") else None
    if mapping.amounts_in_minor_units:
        if currency is None:
            raise LegacyFileError(f"{where}: amounts in minor units need a currency column")
        scale = Decimal(1).scaleb(-minor_units(currency))
        amount = amount * scale
        tax = tax * scale if tax is not None else None
    quantity = row.get("quantity")
    start, start_instant = day("service_start")
    end, end_instant = day("service_end")
    if start is None:  # a required field, checked above
        raise LegacyFileError(f"{where}: field 'service_start' is empty")
    return LegacyLine(
        row=number,
        customer=one(str(row["customer"]).strip()),
        code=one(str(row["code"]).strip()),
        service_start=start,
        service_end=end,
        quantity=decimal("quantity") if quantity not in (None, "") else None,
        amount=amount,
        currency=one(currency),
        tax=tax,
        invoice=one(_text(row.get("invoice"))),
        filter=_text(row.get("filter")),
        group=_group(row.get("group"), where),
        start_instant=start_instant,
        end_instant=end_instant,
    )


def _text(value: Any) -> str | None:
    return str(value).strip() if value not in (None, "") else None


def _decimal(value: Any, decimal_separator: str | None, where: str) -> Decimal:
    if isinstance(value, bool):
        raise LegacyFileError(f"{where}: {value!r} is not a number")
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    else:
        try:
            number = parse_number(str(value), decimal_separator)
        except UnreadableNumber as exc:
            raise LegacyFileError(f"{where}: {value!r} {exc}") from None
    if not number.is_finite():
        raise LegacyFileError(f"{where}: {value!r} is not a finite number")
    # the bound every event value meets: 1e400 would otherwise be compared and printed in full
    if (problem := number_problem(number)) is not None:
        raise LegacyFileError(f"{where}: {problem}")
    return number


# ---------------------------------------------------------------------------------------------
# numbers as exports write them: 1234.5, 1,234.50, 1.234,50, 1 234,50

DECIMAL_SEPARATORS = (".", ",")
# separators of thousands that can never be a decimal separator: space, no-break spaces, apostrophe
_ALWAYS_THOUSANDS = " \u00a0\u202f'"
_DIGITS = "[0-9]"


class UnreadableNumber(ValueError):
    """Text that is no number, or that could be two (its message says which and what to do)."""


def parse_number(text: str, decimal_separator: str | None = None) -> Decimal:
    """`text` as a Decimal, read with `decimal_separator` ("." or ","; None: "." assumed, not
    declared). Thousands separators are taken only in groups of three digits, all the same
    character, and only where they cannot be the decimal separator: spaces and apostrophes
    always; the other of "." and "," when the number also has a decimal part or several groups
    ("1,234.50", "1,234,567"), or when the separator was declared. One group alone with the
    separator assumed ("1,500") could be either and is refused, as is the other mark anywhere
    else ("1,50" with ".").
    """
    declared = decimal_separator is not None
    decimal_separator = decimal_separator or "."
    other = "," if decimal_separator == "." else "."
    body = text.strip()
    sep, oth = re.escape(decimal_separator), re.escape(other)
    plain = re.fullmatch(rf"[+-]?(?:{_DIGITS}+(?:{sep}{_DIGITS}*)?|{sep}{_DIGITS}+)(?:[eE][+-]?{_DIGITS}+)?", body)
    if plain:
        return Decimal(body.replace(decimal_separator, "."))
    grouping = f"[{re.escape(_ALWAYS_THOUSANDS)}{oth}]"
    grouped = re.fullmatch(rf"([+-]?{_DIGITS}{{1,3}})((?:({grouping}){_DIGITS}{{3}})(?:\3{_DIGITS}{{3}})*)"
                           rf"(?:{sep}({_DIGITS}+))?", body)
    word = "comma" if other == "," else "point"
    if grouped:
        head, groups, mark, decimals = grouped.groups()
        if mark == other and decimals is None and groups.count(mark) == 1 and not declared:
            raise UnreadableNumber(
                f"is ambiguous: {other!r} may separate thousands or be a decimal {word}; set "
                f"decimal_separator in the mapping file: {other!r} if the export writes decimal {word}s, "
                f"{decimal_separator!r} if {other!r} separates thousands")
        return Decimal(head + groups.replace(mark, "") + ("." + decimals if decimals is not None else ""))
    if other in body:
        raise UnreadableNumber(f"is not a number with decimal_separator {decimal_separator!r}; set "
                              f"decimal_separator: {other!r} in the mapping file if the export writes decimal "
                              f"{word}s")
    raise UnreadableNumber("is not a number")


def _date(value: Any, mapping: Mapping, where: str) -> tuple[date, datetime | None]:
    """The day as written, and the instant when the text says one: a time with an offset, Unix
    seconds, or a time without an offset in the mapping's timezone."""
    text = str(value).strip()
    try:
        if mapping.date_format:
            moment = datetime.strptime(text, mapping.date_format)
            has_time = any(f"%{d}" in mapping.date_format for d in "HIMSXcs")
        elif text.isdigit():  # Unix seconds, as some exports write them
            moment = datetime.fromtimestamp(int(text), tz=UTC)
            has_time = True
        elif len(text) == 10:
            return date.fromisoformat(text), None
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            has_time = True
    except (ValueError, OverflowError, OSError):  # OverflowError, OSError: Unix seconds out of range
        raise LegacyFileError(f"{where}: {text!r} is not a date (expected YYYY-MM-DD"
                              f"{' or ' + mapping.date_format if mapping.date_format else ''})") from None
    if moment.tzinfo is None and has_time and mapping.timezone is not None:
        moment = moment.replace(tzinfo=ZoneInfo(mapping.timezone))
    return moment.date(), moment if moment.tzinfo is not None else None
