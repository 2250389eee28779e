"""Stream events out of JSONL, CSV and Parquet files, one record (or rejection) per line/row,
in constant memory.

The JSONL hot path decodes straight into a typed msgspec Struct; only lines that do not fit
the native shape fall back to a generic decode, which also accepts the Solvimon shape and
says precisely what is wrong.

CSV and Parquet files come in two layouts, told apart by their header:
- native: columns `id, customer, meter, timestamp`, every other column a property;
- Solvimon's upload template: `customer_reference`, optional `pricing_plan_subscription_reference`,
  `reference` (the event reference), optional `timestamp` (missing: the import's "now"), then one
  column per meter value and per meter property. Header cells are matched loosely ("Customer
  reference", "Timestamp (optional)" and `customer_reference` are the same column). With a
  `meter_reference` column each row is one event of that meter; without one, every column named
  after a meter code or `source` of the catalog is a meter-value column, and each non-empty
  meter-value cell is one event of that meter (id `reference`, or `reference:column` when the
  row fills several), its value stored under the meter's `field`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ..textfile import utf8_error_offset
from .records import RawEvent, Rejection

if TYPE_CHECKING:
    from ..catalog import Catalog

NATIVE_FIELDS = ("id", "customer", "meter", "timestamp")
BOM = b"\xef\xbb\xbf"
FORMATS = ("jsonl", "ndjson", "json", "csv", "solvimon-csv", "parquet")
PARQUET_BATCH_ROWS = 16_384
SUBSCRIPTION_PROPERTY = "pricing_plan_subscription_reference"

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

# column name -> the property its value is stored under (the meter's field), for the columns a
# Solvimon template may use as meter-value columns
Streams = Mapping[str, str]


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
    except (msgspec.DecodeError, UnicodeDecodeError):
        return _undecodable(line, raw)
    try:
        data = _generic.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return _undecodable(line, raw)
    except RecursionError:
        return Rejection(line, "invalid_json", f"line {line}: JSON nested too deeply", raw=_snippet(raw))
    return from_mapping(line, data)


def _undecodable(line: int, raw: bytes) -> Rejection:
    """Why a line is not JSON: bad UTF-8 named as such, whatever the JSON library reports."""
    if utf8_error_offset(raw) is not None:
        return Rejection(line, "invalid_json", f"line {line}: not UTF-8 text", raw=_snippet(raw))
    return Rejection(line, "invalid_json", f"line {line}: not valid JSON", raw=_snippet(raw))


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
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        bad_byte = utf8_error_offset(raw)
        if bad_byte is not None:
            raise ReaderError(f"{path}: line {_line_of(raw, bad_byte)}: not UTF-8 text") from None
        raise ReaderError(f"{path}: {_where(raw, str(exc))}not valid JSON: {_without_byte(str(exc))}") from None
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


def read_csv(path: Path, *, template: bool | None = None, now: datetime | None = None,
             streams: Streams | None = None) -> Iterator[RawEvent | Rejection]:
    """CSV with columns id, customer, meter, timestamp (every other column a property), or
    Solvimon's upload template (see the module docstring). `template`: None detects the layout
    from the header, True insists on the template (--format solvimon-csv)."""
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
        to_records, _ = _row_handler(path, columns, template, now, streams)
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


RowHandler = Callable[[Sequence[Any], int], "list[RawEvent | Rejection]"]


def _row_handler(path: Path, columns: list[str], template: bool | None, now: datetime | None,
                 streams: Streams | None) -> tuple[RowHandler, int | None]:
    """Pick the layout from the header: native columns, else Solvimon's template. Returns the
    row handler and the index of the timestamp column."""
    if not template and all(name in columns for name in NATIVE_FIELDS):
        return _native_csv_row(columns), columns.index("timestamp")
    layout = TemplateLayout.from_header(columns)
    if layout is None:
        if template:
            raise ReaderError(f"{path}: line 1: not Solvimon's upload template: the header needs the columns "
                              "customer_reference and reference (the event reference)")
        missing = next(name for name in NATIVE_FIELDS if name not in columns)
        raise ReaderError(f"{path}: line 1: the header has no column {missing!r} (expected id, customer, meter, "
                          "timestamp, then properties; or Solvimon's upload template: customer_reference, "
                          "reference, optional pricing_plan_subscription_reference and timestamp, then meter "
                          "values and properties)")
    layout.resolve_values(path, streams or {})
    return layout.handler(now), layout.timestamp


def _native_csv_row(columns: list[str]) -> RowHandler:
    index = {name: columns.index(name) for name in NATIVE_FIELDS}
    extra = [(i, name) for i, name in enumerate(columns) if name not in NATIVE_FIELDS and name]

    def to_records(row: Sequence[Any], line: int) -> list[RawEvent | Rejection]:
        values = {name: row[i].strip() for name, i in index.items()}
        missing_value = [name for name in NATIVE_FIELDS if not values[name]]
        if missing_value:
            return [Rejection(line, "missing_field", f"line {line}: column {missing_value[0]!r} is empty",
                              values["id"] or None)]
        properties = {name: row[i] for i, name in extra if row[i] != ""}
        return [RawEvent(values["id"], values["customer"], values["meter"], values["timestamp"], properties, line)]

    return to_records


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
                                  _id_of(reference))]
            timestamp = now_text if self.timestamp is None or _is_empty(row[self.timestamp]) \
                else _text(row[self.timestamp])
            properties = {name: row[i] for i, name in self.properties if not _is_empty(row[i])}
            if self.subscription is not None and not _is_empty(row[self.subscription]):
                properties[SUBSCRIPTION_PROPERTY] = _text(row[self.subscription])
            if self.meter is not None:
                meter = _text(row[self.meter])
                return [RawEvent(reference, customer, None if _is_empty(meter) else meter, timestamp, properties,
                                 line)]
            cells = [(column, field, row[i]) for i, column, field in self.values if not _is_empty(row[i])]
            if not cells:
                names = ", ".join(column for _, column, _ in self.values)
                return [Rejection(line, "missing_field", f"line {line}: no meter value: every meter-value column "
                                  f"({names}) is empty", _id_of(reference))]
            if len(cells) == 1:
                column, field, value = cells[0]
                return [RawEvent(reference, customer, column, timestamp, {**properties, field: _text(value)}, line)]
            return [RawEvent(f"{reference}:{column}", customer, column, timestamp, {**properties, field: _text(value)},
                             line) for column, field, value in cells]

        return to_records


# ---------------------------------------------------------------- Parquet


def _open_parquet(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # no pre-buffering and a small read buffer: a row group's column chunks are read as
        # they are decoded, never the whole row group (or file) up front
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except FileNotFoundError:
        raise ReaderError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReaderError(f"{path}: is a directory, not an events file") from None
    except (pa.ArrowException, OSError) as exc:
        raise ReaderError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def read_parquet(path: Path, *, now: datetime | None = None, streams: Streams | None = None,
                 batch_rows: int = PARQUET_BATCH_ROWS) -> Iterator[RawEvent | Rejection]:
    """Parquet, streamed batch by batch (constant memory): the native columns or Solvimon's names.

    Lines are 1-based row numbers. Timestamps: strings as in JSON, or Arrow timestamps with a
    zone (converted to RFC 3339 UTC); a timestamp column without a zone is rejected row by row
    (invalid_timestamp), like a zone-less string. Decimal columns stay exact Decimals; float
    columns become Decimals from their shortest text (0.1 stays 0.1); NaN and infinities are
    rejected (invalid_value). Null cells are absent properties.
    """
    import pyarrow as pa

    parquet = _open_parquet(path)
    columns = list(parquet.schema_arrow.names)
    to_records, timestamp_index = _row_handler(path, columns, None, now, streams)
    native = all(name in columns for name in NATIVE_FIELDS)
    roles = {name: columns.index(name) for name in NATIVE_FIELDS} if native else {}
    extra = [(i, name) for i, name in enumerate(columns) if name not in NATIVE_FIELDS and name] if native else []
    line = 0
    pool = pa.default_memory_pool()
    batches = parquet.iter_batches(batch_size=batch_rows)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise ReaderError(f"{path}: line {line + 1}: the Parquet data cannot be read ({_first_line(exc)})") from None
        bad: dict[int, tuple[str, str]] = {}
        values = [_python_values(batch.column(i), columns[i], i == timestamp_index, bad) for i in range(len(columns))]
        if native:
            ids, customers, meters, stamps = (values[roles[name]] for name in NATIVE_FIELDS)
            properties = [(name, values[i]) for i, name in extra]
            for row in range(batch.num_rows):
                line += 1
                if bad and row in bad:
                    yield _bad_row(line, bad[row], ids[row])
                    continue
                yield RawEvent(ids[row], customers[row], meters[row], stamps[row],
                               {name: cells[row] for name, cells in properties if cells[row] is not None}, line)
        else:
            for row in range(batch.num_rows):
                line += 1
                if bad and row in bad:
                    yield _bad_row(line, bad[row], None)
                    continue
                yield from to_records([cells[row] for cells in values], line)
        # free this batch before the next is decoded, and hand Arrow's freed memory back (its
        # default allocator keeps it otherwise, and the resident size creeps up row group by row group)
        del batch, values
        pool.release_unused()


def _bad_row(line: int, problem: tuple[str, str], event_id: Any) -> Rejection:
    reason, message = problem
    return Rejection(line, reason, f"line {line}: {message}", _id_of(event_id))


def _python_values(array: Any, name: str, is_timestamp: bool, bad: dict[int, tuple[str, str]]) -> list[Any]:
    """One Arrow column -> Python values, exact: decimals stay Decimals, floats become Decimals
    from their shortest text, aware timestamps RFC 3339 text in UTC. Rows that cannot be
    taken go into `bad` (row index -> (reason, message))."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_dictionary(kind):
        return _python_values(array.dictionary_decode(), name, is_timestamp, bad)
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            utc = pc.cast(array, pa.timestamp("us", tz="UTC"), safe=False)
            return pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ").to_pylist()
        naive = pc.strftime(pc.cast(array, pa.timestamp("us"), safe=False), format="%Y-%m-%dT%H:%M:%S").to_pylist()
        if is_timestamp:
            for row, text in enumerate(naive):
                if text is not None:
                    bad.setdefault(row, ("invalid_timestamp", f"field {name!r}: {text} has no timezone (the Parquet "
                                         f"column is {kind} without a zone; write it with one, e.g. tz='UTC')"))
        return naive
    if pa.types.is_floating(kind):
        numbers: list[Any] = []
        for row, text in enumerate(pc.cast(array, pa.string()).to_pylist()):
            if text is None:
                numbers.append(None)
                continue
            number = Decimal(text)
            if not number.is_finite():
                bad.setdefault(row, ("invalid_value", f"column {name!r}: {text} is not a number"))
            numbers.append(number)
        return numbers
    if pa.types.is_decimal(kind) and kind.scale > 0:
        return [None if value is None else _without_scale_zeros(value) for value in array.to_pylist()]
    if pa.types.is_date(kind) or pa.types.is_time(kind):
        return pc.cast(array, pa.string()).to_pylist()
    return array.to_pylist()


ZERO = Decimal(0)


def _without_scale_zeros(value: Decimal) -> Decimal:
    """A decimal(38,18) column says 2.5 as 2.500000000000000000: keep every significant digit,
    drop the zeros the column's scale pads it with (1200.0 -> 1200), so quantities read as sent."""
    text = str(value)
    if "." in text and "E" not in text:
        return Decimal(text.rstrip("0").rstrip("."))
    return value if value else ZERO


def _open_binary(path: Path) -> Any:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise ReaderError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReaderError(f"{path}: is a directory, not an events file") from None
    except OSError as exc:
        raise ReaderError(f"{path}: cannot be read: {exc.strerror}") from None


def read_events(path: Path, file_format: str | None = None, *, now: datetime | None = None,
                streams: Streams | None = None) -> Iterator[RawEvent | Rejection]:
    """Pick the reader from --format or the file's extension (.jsonl/.ndjson/.json/.csv/.parquet).

    `now` stamps Solvimon template rows without a timestamp; `streams` (meter_streams of the
    catalog) tells a template's meter-value columns from its property columns.
    """
    kind = _kind(path, file_format)
    if kind in ("jsonl", "ndjson"):
        return read_jsonl(path)
    if kind == "json":
        head = _first_byte(path)
        return read_json_array(path) if head == b"[" else read_jsonl(path)
    if kind in ("csv", "solvimon-csv"):
        return read_csv(path, template=kind == "solvimon-csv" or None, now=now, streams=streams)
    if kind == "parquet":
        return read_parquet(path, now=now, streams=streams)
    raise ReaderError(f"{path}: unknown events format {kind!r} (expected .jsonl, .json, .csv or .parquet, "
                      f"or --format {'|'.join(FORMATS)})")


def _kind(path: Path, file_format: str | None) -> str:
    kind = (file_format or path.suffix.lstrip(".")).lower()
    return "parquet" if kind in ("pq", "parq") else kind


def count_rows(path: Path, file_format: str | None = None) -> int | None:
    """The number of rows when the format records it (Parquet metadata), else None."""
    if _kind(path, file_format) != "parquet":
        return None
    try:
        return int(_open_parquet(path).metadata.num_rows)
    except ReaderError:
        return None


def _first_byte(path: Path) -> bytes:
    with _open_binary(path) as handle:
        while True:
            byte = handle.read(1)
            if not byte or not byte.isspace():
                return byte
