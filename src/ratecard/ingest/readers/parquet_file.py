"""Parquet events, streamed batch by batch in constant memory, in the native layout or
Solvimon's upload template (layouts.py picks it from the header)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..records import RawEvent, Rejection
from .common import NATIVE_COLUMNS, NATIVE_FIELDS, SUBSCRIPTION_COLUMN, ReaderError, Streams, id_of
from .layouts import row_handler

PARQUET_BATCH_ROWS = 16_384


def open_parquet(path: Path) -> Any:
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

    parquet = open_parquet(path)
    columns = list(parquet.schema_arrow.names)
    to_records, timestamp_index = row_handler(path, columns, None, now, streams)
    native = all(name in columns for name in NATIVE_FIELDS)
    roles = {name: columns.index(name) for name in NATIVE_FIELDS} if native else {}
    extra = [(i, name) for i, name in enumerate(columns) if name not in NATIVE_COLUMNS and name] if native else []
    subscription_at = columns.index(SUBSCRIPTION_COLUMN) if native and SUBSCRIPTION_COLUMN in columns else None
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
            subscriptions = values[subscription_at] if subscription_at is not None else [None] * batch.num_rows
            for row in range(batch.num_rows):
                line += 1
                if bad and row in bad:
                    yield _bad_row(line, bad[row], ids[row])
                    continue
                yield RawEvent(ids[row], customers[row], meters[row], stamps[row],
                               {name: cells[row] for name, cells in properties if cells[row] is not None}, line,
                               _named(subscriptions[row]))
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


def _named(subscription: Any) -> Any:
    """A subscription cell: null or an empty string names none; anything else goes to validation."""
    if subscription is None or (type(subscription) is str and not subscription.strip()):
        return None
    return subscription.strip() if type(subscription) is str else subscription


def _bad_row(line: int, problem: tuple[str, str], event_id: Any) -> Rejection:
    reason, message = problem
    return Rejection(line, reason, f"line {line}: {message}", id_of(event_id))


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
