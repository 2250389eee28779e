"""Stream events out of JSONL and CSV files, one record (or rejection) per line, in constant memory.

The JSONL hot path decodes straight into a typed msgspec Struct; only lines that do not fit
the native shape fall back to a generic decode, which also accepts the Solvimon shape and
says precisely what is wrong.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from .records import RawEvent, Rejection

NATIVE_FIELDS = ("id", "customer", "meter", "timestamp")
BOM = b"\xef\xbb\xbf"


class ReaderError(ValueError):
    """The file as a whole cannot be read (missing, not UTF-8, no header)."""


_typed = msgspec.json.Decoder(RawEvent, float_hook=Decimal)
_generic = msgspec.json.Decoder(float_hook=Decimal)


def from_mapping(line: int, data: Any) -> RawEvent | Rejection:
    """A decoded JSON object in the native or the Solvimon shape -> RawEvent, or a rejection."""
    if not isinstance(data, dict):
        return Rejection(line, "invalid_json", f"line {line}: expected a JSON object, got {type(data).__name__}")
    if "reference" in data and "id" not in data:
        return _from_solvimon(line, data)
    missing = [name for name in NATIVE_FIELDS if data.get(name) in (None, "")]
    if missing:
        return Rejection(line, "missing_field", f"line {line}: field {missing[0]!r} is missing",
                         _id_of(data.get("id")))
    properties = data.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        return Rejection(line, "invalid_value", f"line {line}: field 'properties' must be an object",
                         _id_of(data.get("id")))
    return RawEvent(data["id"], data["customer"], data["meter"], data["timestamp"], properties, line)


def _from_solvimon(line: int, data: dict[str, Any]) -> RawEvent | Rejection:
    mapping = {"reference": "id", "customer_reference": "customer", "meter_reference": "meter",
               "timestamp": "timestamp"}
    for name in mapping:
        if data.get(name) in (None, ""):
            return Rejection(line, "missing_field", f"line {line}: field {name!r} is missing",
                             _id_of(data.get("reference")))
    properties: dict[str, Any] = {}
    for key, value_key in (("meter_values", "number"), ("meter_properties", "value")):
        items = data.get(key) or []
        if not isinstance(items, list):
            return Rejection(line, "invalid_value", f"line {line}: field {key!r} must be a list",
                             _id_of(data.get("reference")))
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not item.get("reference"):
                return Rejection(line, "invalid_value",
                                 f"line {line}: {key}[{index}] needs a 'reference'", _id_of(data.get("reference")))
            value = item.get(value_key, item.get("value", item.get("number")))
            properties[str(item["reference"])] = value
    return RawEvent(data["reference"], data["customer_reference"], data["meter_reference"],
                    data["timestamp"], properties, line)


def _id_of(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def decode_json_line(line: int, raw: bytes) -> RawEvent | Rejection:
    try:
        event = _typed.decode(raw)
        event.line = line
        return event
    except msgspec.ValidationError:
        pass
    except RecursionError:
        return Rejection(line, "invalid_json", f"line {line}: JSON nested too deeply", raw=_snippet(raw))
    except msgspec.DecodeError:
        return Rejection(line, "invalid_json", f"line {line}: not valid JSON", raw=_snippet(raw))
    except UnicodeDecodeError:
        return Rejection(line, "invalid_json", f"line {line}: not UTF-8 text", raw=_snippet(raw))
    try:
        data = _generic.decode(raw)
    except msgspec.DecodeError:
        return Rejection(line, "invalid_json", f"line {line}: not valid JSON", raw=_snippet(raw))
    except UnicodeDecodeError:
        return Rejection(line, "invalid_json", f"line {line}: not UTF-8 text", raw=_snippet(raw))
    except RecursionError:
        return Rejection(line, "invalid_json", f"line {line}: JSON nested too deeply", raw=_snippet(raw))
    return from_mapping(line, data)


def _snippet(raw: bytes) -> str:
    return raw[:200].decode("utf-8", errors="replace")


def read_jsonl(path: Path) -> Iterator[RawEvent | Rejection]:
    with _open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if not raw.strip():
                continue
            yield decode_json_line(number, raw)


def read_json_array(path: Path) -> Iterator[RawEvent | Rejection]:
    """A file holding one JSON array of events (the export shape of some systems)."""
    raw = path.read_bytes().removeprefix(BOM)
    try:
        data = _generic.decode(raw)
    except msgspec.DecodeError as exc:
        raise ReaderError(f"{path}: {_where(raw, str(exc))}not valid JSON: {_without_byte(str(exc))}") from None
    except UnicodeDecodeError as exc:
        raise ReaderError(f"{path}: line {_line_of(raw, exc.start)}: not UTF-8 text") from None
    if not isinstance(data, list):
        data = [data]
    for index, item in enumerate(data, start=1):
        yield from_mapping(index, item)


def _where(raw: bytes, message: str) -> str:
    """msgspec names a byte offset; people want the line."""
    match = re.search(r"\(byte (\d+)\)", message)
    if not match:
        return ""
    return f"line {_line_of(raw, int(match.group(1)))}: "


def _line_of(raw: bytes, offset: int) -> int:
    return raw[:offset].count(b"\n") + 1


def _without_byte(message: str) -> str:
    return re.sub(r"\s*\(byte \d+\)", "", message)


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


def read_csv(path: Path) -> Iterator[RawEvent | Rejection]:
    """CSV with columns id, customer, meter, timestamp; every other column is a property."""
    bad_lines: list[int] = []
    with _open_binary(path) as binary:
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
        missing = [name for name in NATIVE_FIELDS if name not in columns]
        if missing:
            raise ReaderError(f"{path}: line 1: the header has no column {missing[0]!r} "
                              f"(expected id, customer, meter, timestamp, then properties)")
        index = {name: columns.index(name) for name in NATIVE_FIELDS}
        extra = [(i, name) for i, name in enumerate(columns) if name not in NATIVE_FIELDS and name]
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
                values = {name: row[i].strip() for name, i in index.items()}
                missing_value = [name for name in NATIVE_FIELDS if not values[name]]
                if missing_value:
                    yield Rejection(line, "missing_field", f"line {line}: column {missing_value[0]!r} is empty",
                                    values["id"] or None)
                    continue
                properties = {name: row[i] for i, name in extra if row[i] != ""}
                yield RawEvent(values["id"], values["customer"], values["meter"], values["timestamp"],
                               properties, line)
        except csv.Error as exc:
            raise ReaderError(f"{path}: line {reader.line_num}: malformed CSV: {exc}") from None
        for number in bad_lines[reported:]:
            yield Rejection(number, "invalid_json", f"line {number}: not UTF-8 text")


def _open_binary(path: Path) -> Any:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise ReaderError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReaderError(f"{path}: is a directory, not an events file") from None
    except OSError as exc:
        raise ReaderError(f"{path}: cannot be read: {exc.strerror}") from None


def read_events(path: Path, file_format: str | None = None) -> Iterator[RawEvent | Rejection]:
    """Pick the reader from --format or the file's extension (.jsonl/.ndjson/.json/.csv)."""
    kind = (file_format or path.suffix.lstrip(".")).lower()
    if kind in ("jsonl", "ndjson"):
        return read_jsonl(path)
    if kind == "json":
        head = _first_byte(path)
        return read_json_array(path) if head == b"[" else read_jsonl(path)
    if kind == "csv":
        return read_csv(path)
    raise ReaderError(f"{path}: unknown events format {kind!r} (expected .jsonl, .json or .csv)")


def _first_byte(path: Path) -> bytes:
    with _open_binary(path) as handle:
        while True:
            byte = handle.read(1)
            if not byte or not byte.isspace():
                return byte
