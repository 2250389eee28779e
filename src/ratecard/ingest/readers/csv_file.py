"""CSV events, decoded line by line (a bad byte is reported on its own line and the rest still
reads), in the native layout or Solvimon's upload template (layouts.py picks it from the header)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ..records import RawEvent, Rejection
from .common import BOM, ReaderError, Streams, open_binary
from .layouts import row_handler


def _decoded_lines(binary: Any, bad_lines: list[int]) -> Iterator[str]:
    """Decode line by line, so a bad byte is reported on its own line and the rest still reads."""
    for number, raw in enumerate(binary, start=1):
        if number == 1:
            raw = raw.removeprefix(BOM)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            bad_lines.append(number)
            yield "\n"


def read_csv(path: Path, *, template: bool | None = None, now: datetime | None = None,
             streams: Streams | None = None) -> Iterator[RawEvent | Rejection]:
    """CSV with columns id, customer, meter, timestamp (every other column a property), or
    Solvimon's upload template (see the module docstring). `template`: None detects the layout
    from the header, True insists on the template (--format solvimon-csv)."""
    bad_lines: list[int] = []
    with open_binary(path) as binary:
        reader = csv.reader(_decoded_lines(binary, bad_lines))
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ReaderError(f"{path}: line 1: malformed CSV header: {exc}") from None
        if bad_lines:
            raise ReaderError(f"{path}: line 1: the header is not UTF-8 text")
        columns = [name.strip() for name in header]
        to_records, _ = row_handler(path, columns, template, now, streams)
        reported = 0
        try:
            for row in reader:
                line = reader.line_num
                while reported < len(bad_lines):
                    yield Rejection(bad_lines[reported], "invalid_json",
                                    f"line {bad_lines[reported]}: not UTF-8 text")
                    reported += 1
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) > len(columns):
                    yield Rejection(line, "invalid_value",
                                    f"line {line}: {len(row)} cells but the header has {len(columns)} columns")
                    continue
                if len(row) < len(columns):
                    row = row + [""] * (len(columns) - len(row))
                yield from to_records(row, line)
        except csv.Error as exc:
            raise ReaderError(f"{path}: line {reader.line_num}: malformed CSV: {exc}") from None
        for number in bad_lines[reported:]:
            yield Rejection(number, "invalid_json", f"line {number}: not UTF-8 text")
