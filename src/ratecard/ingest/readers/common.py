"""What every events reader shares: its error, the native field names, the file opening."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from ... import textfile
from ..records import RawEvent, Rejection

NATIVE_FIELDS = ("id", "customer", "meter", "timestamp")  # required
SUBSCRIPTION_COLUMN = "subscription"  # optional: the subscription that bills the event
NATIVE_COLUMNS = (*NATIVE_FIELDS, SUBSCRIPTION_COLUMN)  # a tabular file's columns that are no property
BOM = b"\xef\xbb\xbf"

# the most one record (a JSONL line, a JSON array element, a CSV row) may take: a longer one is
# rejected on its own (invalid_value) and never held in memory whole
MAX_RECORD_BYTES = 1 << 20

# column name -> the property its value is stored under (the meter's field), for the columns a
# Solvimon template may use as meter-value columns
Streams = Mapping[str, str]

# one CSV or Parquet row (cells in header order) and its line -> its events or rejections
RowHandler = Callable[[Sequence[Any], int], "list[RawEvent | Rejection]"]


class ReaderError(ValueError):
    """The file as a whole cannot be read (missing, not UTF-8, no header)."""


def id_of(value: Any) -> str | None:
    """An event id worth naming in a rejection: only a string is one."""
    return value if isinstance(value, str) else None


def open_binary(path: Path) -> BinaryIO:
    return textfile.open_binary(path, "an events file", ReaderError)


def bounded_lines(handle: BinaryIO) -> Iterator[bytes | None]:
    """Each line of the file with its newline, or None for a line longer than MAX_RECORD_BYTES,
    which is skipped without ever being held whole."""
    while True:
        raw = handle.readline(MAX_RECORD_BYTES + 1)
        if not raw:
            return
        if len(raw) <= MAX_RECORD_BYTES or raw.endswith(b"\n"):
            yield raw
            continue
        while raw and not raw.endswith(b"\n"):
            raw = handle.readline(1 << 16)
        yield None


def too_long(line: int, what: str = "line") -> Rejection:
    return Rejection(line, "invalid_value", f"line {line}: the {what} is longer than {MAX_RECORD_BYTES} bytes "
                                            "(the limit for one event): not read")
