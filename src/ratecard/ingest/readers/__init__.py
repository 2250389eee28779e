"""Stream events out of JSONL, JSON, CSV and Parquet files, one record (or rejection) per
line/row, in constant memory: this module picks the reader; each format has its own module
(jsonl.py, json_array.py, csv_file.py, parquet_file.py), and the tabular ones read two layouts (layouts.py:
native columns, or Solvimon's upload template, solvimon_template.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from ..records import RawEvent, Rejection
from .common import ReaderError, Streams, open_binary
from .csv_file import read_csv
from .json_array import read_json_array
from .jsonl import decode_json_line, from_mapping, read_jsonl
from .parquet_file import open_parquet, read_parquet
from .solvimon_template import meter_streams, normalize_column

__all__ = ["FORMATS", "ReaderError", "count_rows", "decode_json_line", "from_mapping", "meter_streams",
           "normalize_column", "read_csv", "read_events", "read_json_array", "read_jsonl", "read_parquet"]

FORMATS = ("jsonl", "ndjson", "json", "csv", "solvimon-csv", "parquet")


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
        return int(open_parquet(path).metadata.num_rows)
    except ReaderError:
        return None


def _first_byte(path: Path) -> bytes:
    with open_binary(path) as handle:
        while True:
            byte = handle.read(1)
            if not byte or not byte.isspace():
                return byte
