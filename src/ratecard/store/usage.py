"""Usage aggregation pushed down to SQL, batched over many (subscription, period) windows.

The windows go into a temporary table and each meter is aggregated for all of them in one
GROUP BY query, so an invoice run costs one query per meter, not one per subscription.
weighted_sum needs the level before each window and the order of events inside it, so its
events are fetched and handed to the pure domain function.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from ..catalog import MeterSpec
from ..domain.aggregation import Sample, Usage, aggregate
from ..ingest.validate import from_micros
from .db import Store


@dataclass(frozen=True)
class Window:
    key: int
    customer: str
    start_us: int
    end_us: int


def _sqlite_value(path_param: str) -> str:
    return f"json_extract(e.properties, :{path_param})"


def aggregate_usage(
    store: Store, windows: Sequence[Window], meters: Sequence[MeterSpec], environment: str = "live"
) -> dict[tuple[int, str], Usage]:
    """Usage of every meter in every window: {(window key, meter code): Usage}."""
    result: dict[tuple[int, str], Usage] = {}
    if not windows or not meters:
        return result
    with store.engine.begin() as connection:
        _load_windows(connection, store.is_postgres, windows)
        for meter in meters:
            if meter.aggregation == "weighted_sum":
                result.update(_weighted(connection, store.is_postgres, windows, meter, environment))
            else:
                result.update(_grouped(connection, store.is_postgres, meter, environment))
        connection.execute(text("DROP TABLE usage_windows"))
    return result


def _load_windows(connection: Any, postgres: bool, windows: Sequence[Window]) -> None:
    connection.execute(text("DROP TABLE IF EXISTS usage_windows"))
    connection.execute(text(
        "CREATE TEMP TABLE usage_windows (key BIGINT PRIMARY KEY, customer VARCHAR(256), "
        "start_ts BIGINT, end_ts BIGINT)"
    ))
    raw = connection.connection.driver_connection
    rows = [(w.key, w.customer, w.start_us, w.end_us) for w in windows]
    if postgres:
        with raw.cursor() as cursor, cursor.copy("COPY usage_windows (key, customer, start_ts, end_ts) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        connection.execute(text("ANALYZE usage_windows"))
    else:
        raw.executemany("INSERT INTO usage_windows VALUES (?, ?, ?, ?)", rows)


def _conditions(meter: MeterSpec, postgres: bool, params: dict[str, Any]) -> list[str]:
    """Stream names, status, field presence and filters as SQL, values as bound parameters."""
    names = sorted({meter.code, meter.stream})
    placeholders = []
    for index, name in enumerate(names):
        params[f"stream{index}"] = name
        placeholders.append(f":stream{index}")
    conditions = [f"e.meter IN ({', '.join(placeholders)})", "e.status = 'matched'"]
    if meter.field:
        if postgres:
            params["field"] = meter.field
            if meter.aggregation == "unique_count":
                conditions.append("e.properties ? :field")
            else:
                conditions.append("jsonb_typeof(e.properties -> :field) = 'number'")
        else:
            params["path"] = _json_path(meter.field)
            if meter.aggregation == "unique_count":
                conditions.append("json_type(e.properties, :path) IS NOT NULL")
            else:
                conditions.append("json_type(e.properties, :path) IN ('integer', 'real')")
    for f_index, (key, values) in enumerate(sorted(meter.filters.items())):
        slots = []
        for v_index, value in enumerate(values):
            name = f"filter{f_index}_{v_index}"
            params[name] = _filter_value(value, postgres)
            slots.append(f":{name}")
        if postgres:
            params[f"filterkey{f_index}"] = key
            conditions.append(f"e.properties ->> :filterkey{f_index} IN ({', '.join(slots)})")
        else:
            params[f"filterpath{f_index}"] = _json_path(key)
            conditions.append(f"json_extract(e.properties, :filterpath{f_index}) IN ({', '.join(slots)})")
    return conditions


def _filter_value(value: Any, postgres: bool) -> Any:
    if postgres:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)  # a filter comparison, not money: SQLite holds JSON reals as doubles
    return value


def _json_path(field: str) -> str:
    return '$."' + field.replace('"', '\\"') + '"'


def _grouped(connection: Any, postgres: bool, meter: MeterSpec, environment: str) -> dict[tuple[int, str], Usage]:
    params: dict[str, Any] = {"env": environment}
    conditions = _conditions(meter, postgres, params)
    aggregation = meter.aggregation
    if postgres:
        value = "(e.properties -> :field)::numeric"
        select_value = {
            "count": "NULL",
            "sum": f"SUM({value})",
            "max": f"MAX({value})",
            "min": f"MIN({value})",
            "unique_count": "COUNT(DISTINCT e.properties -> :field)",
            "latest": f"(array_agg({value} ORDER BY e.ts DESC, e.id DESC))[1]",
        }[aggregation]
        extra = "0"
    else:
        value = "json_extract(e.properties, :path)"
        exact = "(e.properties -> :path)"
        # SQLite's bare-column rule: with MAX(x) or MIN(x), other columns come from that row,
        # so the exact JSON text of the max/min/latest value is read, never a double.
        select_value = {
            "count": "NULL",
            "sum": f"SUM({value})",
            "max": f"{exact}, MAX({value})",
            "min": f"{exact}, MIN({value})",
            # json_extract: numbers compare by value, strings as written (the domain's rule)
            "unique_count": f"COUNT(DISTINCT {value})",
            # ties on the timestamp go to the greatest event id, as on PostgreSQL
            "latest": f"{exact}, MAX(printf('%020d', e.ts) || e.id)",
        }[aggregation]
        extra = "SUM(json_type(e.properties, :path) != 'integer')" if aggregation == "sum" else "0"
    sql = (
        f"SELECT w.key, COUNT(*), {extra}, {select_value} FROM usage_windows w "
        "JOIN events e ON e.environment = :env AND e.customer = w.customer "
        "AND e.ts >= w.start_ts AND e.ts < w.end_ts "
        f"WHERE {' AND '.join(conditions)} GROUP BY w.key"
    )
    result: dict[tuple[int, str], Usage] = {}
    inexact: list[int] = []
    for row in connection.execute(text(sql), params):
        key, count, non_integers, raw_value = row[0], row[1], row[2], row[3]
        if aggregation == "count":
            quantity = Decimal(count)
        elif aggregation == "unique_count":
            quantity = Decimal(raw_value)
        elif aggregation == "sum" and not postgres:
            if non_integers:
                inexact.append(key)
                continue
            quantity = Decimal(raw_value)
        else:
            quantity = _decimal(raw_value)
        result[(key, meter.code)] = Usage(quantity, count)
    if inexact:
        result.update(_exact_sqlite_sums(connection, meter, environment, inexact))
    return result


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def _exact_sqlite_sums(connection: Any, meter: MeterSpec, environment: str, keys: list[int]) -> dict[tuple[int, str], Usage]:
    """Sum decimal values exactly from their JSON text (SQLite would add them as doubles)."""
    params: dict[str, Any] = {"env": environment}
    conditions = _conditions(meter, False, params)
    totals: dict[int, Decimal] = defaultdict(Decimal)
    counts: dict[int, int] = defaultdict(int)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        slots = ", ".join(f":k{i}" for i in range(len(chunk)))
        params.update({f"k{i}": key for i, key in enumerate(chunk)})
        sql = (
            "SELECT w.key, e.properties -> :path FROM usage_windows w "
            "JOIN events e ON e.environment = :env AND e.customer = w.customer "
            "AND e.ts >= w.start_ts AND e.ts < w.end_ts "
            f"WHERE {' AND '.join(conditions)} AND w.key IN ({slots})"
        )
        for key, raw in connection.execute(text(sql), params):
            totals[key] += Decimal(raw)
            counts[key] += 1
    return {(key, meter.code): Usage(totals[key], counts[key]) for key in totals}


def _weighted(connection: Any, postgres: bool, windows: Sequence[Window], meter: MeterSpec,
              environment: str) -> dict[tuple[int, str], Usage]:
    """weighted_sum: the level before each window plus the ordered deltas inside it."""
    params: dict[str, Any] = {"env": environment, "until": max(w.end_us for w in windows)}
    conditions = _conditions(meter, postgres, params)
    value = "(e.properties -> :field)::text" if postgres else "e.properties -> :path"
    sql = (
        f"SELECT e.customer, e.ts, {value} FROM events e "
        "WHERE e.environment = :env AND e.ts < :until "
        "AND e.customer IN (SELECT DISTINCT customer FROM usage_windows) "
        f"AND {' AND '.join(conditions)} ORDER BY e.customer, e.ts"
    )
    by_customer: dict[str, list[tuple[int, Decimal]]] = defaultdict(list)
    for customer, ts, raw in connection.execute(text(sql), params):
        by_customer[customer].append((ts, Decimal(str(raw))))
    result = {}
    for window in windows:
        deltas = by_customer.get(window.customer, [])
        prior = sum((v for ts, v in deltas if ts < window.start_us), Decimal(0))
        inside = [Sample(from_micros(ts), v) for ts, v in deltas if window.start_us <= ts < window.end_us]
        result[(window.key, meter.code)] = aggregate(
            "weighted_sum", inside, from_micros(window.start_us), from_micros(window.end_us), prior
        )
    return result
