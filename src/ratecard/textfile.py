"""Reading a user's text file (catalog, legacy export, subscription CSV, column mapping) with
errors that name the file and, for bad bytes, the line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import yaml


def open_binary(path: Path, what: str, error: type[Exception]) -> BinaryIO:
    """The file opened for reading bytes; `error` names the file and what is wrong."""
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read: {exc.strerror}") from None


# What a file read whole may hold unless its reader says otherwise: a legacy export of a year of
# invoice lines for 10,000 customers is ~25 MB; ten times that is still read in seconds, and a
# device or a pipe that never ends (/dev/zero) is refused instead of filling the memory
MAX_TEXT_BYTES = 256 * 1024 * 1024
MAX_MAPPING_BYTES = 1024 * 1024  # a column mapping is a few lines of YAML


def read_text(path: Path, what: str, error: type[Exception], limit: int = MAX_TEXT_BYTES) -> str:
    """The file's text (UTF-8, a BOM dropped); `error` names the file and what is wrong. At most
    `limit` bytes are read: a longer file is refused, whatever its size says (a pipe or a device
    such as /dev/zero reports none)."""
    with open_binary(path, what, error) as handle:
        try:
            raw = _read_at_most(handle, limit + 1)
        except OSError as exc:
            raise error(f"{path}: cannot be read: {exc.strerror}") from None
    if len(raw) > limit:
        raise error(f"{path}: is larger than {limit} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(f"{path}: line {line}: not UTF-8 text") from None


PHYSICAL_LINE = re.compile(r"[^\n]*\n|[^\n]+")


def csv_records(text: str) -> Iterator[str]:
    """The text's lines one at a time, each with its own CR LF or LF (a quoted cell keeps its line
    breaks), cut only there: never at U+2028, NEL or a form feed as str.splitlines would, and
    without a second copy of the file as io.StringIO keeps (four bytes a character)."""
    return (match.group() for match in PHYSICAL_LINE.finditer(text))


READ_CHUNK = 1024 * 1024


def _read_at_most(handle: BinaryIO, most: int) -> bytearray:
    """Up to `most` bytes, a chunk at a time: `read(most)` sets aside `most` bytes at once (256 MiB
    for a legacy export of a few lines) before it knows how much the file holds."""
    buffer = bytearray()
    while len(buffer) < most:
        chunk = handle.read(min(READ_CHUNK, most - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    return buffer


def utf8_error_offset(raw: bytes) -> int | None:
    """The offset of the first byte that is not UTF-8, or None when `raw` is UTF-8 text.

    Checked here rather than read off a JSON library's exception class: msgspec reports bad
    UTF-8 as a UnicodeDecodeError in some versions and as a DecodeError in others, and the
    reason a user sees must not change with the version installed."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def read_column_mapping(path: Path, fields: tuple[str, ...], error: type[Exception]) -> tuple[dict[str, str], dict]:
    """A mapping file `columns: {ratecard field: their column}` (+ other keys, returned as is)."""
    try:
        data: Any = yaml.safe_load(read_text(path, "a mapping file", error, MAX_MAPPING_BYTES)) or {}
    except yaml.YAMLError as exc:
        raise error(f"{path}: cannot be read as a YAML mapping: {exc}") from None
    columns = data.get("columns", {}) if isinstance(data, dict) else None
    if not isinstance(columns, dict):
        raise error(f"{path}: expected `columns: {{ratecard field: your column}}`")
    unknown = sorted(set(map(str, columns)) - set(fields))
    if unknown:
        raise error(f"{path}: columns.{unknown[0]}: not a ratecard field (expected one of {', '.join(fields)})")
    return {str(k): str(v) for k, v in columns.items()}, data
