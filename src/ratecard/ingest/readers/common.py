"""What every events reader shares: its error, the native field names, the file opening."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from ... import textfile
from ..records import RawEvent, Rejection

NATIVE_FIELDS = ("id", "customer", "meter", "timestamp")
BOM = b"\xef\xbb\xbf"

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
