"""CSV events, decoded line by line (a bad byte is reported on its own line and the rest still
reads), in the native layout or Solvimon's upload template (layouts.py picks it from the header).

One row the csv module cannot take (a cell over its field limit, a stray carriage return) or
longer than MAX_RECORD_BYTES is rejected on its own (invalid_value, named by its first line) and
reading goes on at the line after the one it stopped on: one bad row never stops an import
halfway, and no row is held whole past the limit.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from ...outputs import csv_cell_read
from ..records import RawEvent, Rejection
from .common import BOM, MAX_RECORD_BYTES, ReaderError, Streams, bounded_lines, open_binary, too_long
from .layouts import row_handler


class _RowTooLong(Exception):
    """The row being read has passed MAX_RECORD_BYTES (raised through the csv reader)."""


class _Lines:
    """The file's lines as text for the csv module, counted, bounded per row, bad UTF-8 noted."""

    def __init__(self, binary: BinaryIO) -> None:
        self._lines = bounded_lines(binary)
        self.number = 0  # the last line handed out
        self.row_start = 1  # the first line of the row being read
        self.bad_lines: list[int] = []
        self._row_bytes = 0
        self.row_has_carriage_return = False

    def start_row(self) -> None:
        self.row_start = self.number + 1
        self._row_bytes = 0
        self.row_has_carriage_return = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = next(self._lines)
        self.number += 1
        if raw is None:
            raise _RowTooLong
        if self.number == 1:
            raw = raw.removeprefix(BOM)
        self._row_bytes += len(raw)
        if self._row_bytes > MAX_RECORD_BYTES:
            raise _RowTooLong
        if b"\r" in raw.removesuffix(b"\n").removesuffix(b"\r"):
            self.row_has_carriage_return = True
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad_lines.append(self.number)
            return "\n"


def _unreadable_row(line: int, lines: _Lines) -> Rejection:
    """Why the csv module refused a row, told from the row itself (not from its message)."""
    if lines.row_has_carriage_return:
        why = "a carriage return inside an unquoted cell (quote the cell)"
    else:
        why = f"a cell is longer than {csv.field_size_limit()} characters (the limit for one cell)"
    return Rejection(line, "invalid_value", f"line {line}: {why}: row not read, reading goes on at line "
                                            f"{lines.number + 1}")


def read_csv(path: Path, *, template: bool | None = None, now: datetime | None = None,
             streams: Streams | None = None) -> Iterator[RawEvent | Rejection]:
    """CSV with columns id, customer, meter, timestamp (every other column a property), or
    Solvimon's upload template (see the module docstring). `template`: None detects the layout
    from the header, True insists on the template (--format solvimon-csv)."""
    with open_binary(path) as binary:
        lines = _Lines(binary)
        reader = csv.reader(lines)
        try:
            header = next(reader)
        except StopIteration:
            return
        except _RowTooLong:
            raise ReaderError(f"{path}: line 1: the header is longer than {MAX_RECORD_BYTES} bytes") from None
        except csv.Error:
            raise ReaderError(f"{path}: line 1: malformed CSV header: {_unreadable_row(1, lines).message}") from None
        if lines.bad_lines:
            raise ReaderError(f"{path}: line 1: the header is not UTF-8 text")
        # a column name written by ratecard (the meter-data-file) as a CSV cell: the `'` that keeps a
        # spreadsheet from running it as a formula is not part of the name
        columns = [csv_cell_read(name.strip()) for name in header]
        to_records, _ = row_handler(path, columns, template, now, streams)
        reported = 0
        while True:
            lines.start_row()
            unreadable: Rejection | None = None
            try:
                row = next(reader)
            except StopIteration:
                break
            except _RowTooLong:
                unreadable = too_long(lines.row_start, "row")
            except csv.Error:
                unreadable = _unreadable_row(lines.row_start, lines)
            line = lines.number
            while reported < len(lines.bad_lines):
                yield Rejection(lines.bad_lines[reported], "invalid_json",
                                f"line {lines.bad_lines[reported]}: not UTF-8 text")
                reported += 1
            if unreadable is not None:
                yield unreadable
                reader = csv.reader(lines)  # a fresh parser: go on at the next line
                continue
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) > len(columns):
                yield Rejection(line, "invalid_value",
                                f"line {line}: {len(row)} cells but the header has {len(columns)} columns")
                continue
            if len(row) < len(columns):
                row = row + [""] * (len(columns) - len(row))
            yield from to_records(row, line)
        for number in lines.bad_lines[reported:]:
            yield Rejection(number, "invalid_json", f"line {number}: not UTF-8 text")
