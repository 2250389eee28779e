"""The machine's own limits, measured on the same database in the same run.

- bare insert: the same rows, into an empty copy of the events table (same primary key and
  indexes), with one executemany (SQLite) or one COPY (PostgreSQL), in one transaction.
- bare roll-up: SELECT customer, meter, SUM(<the JSON field extraction the invoice run uses>)
  FROM events GROUP BY customer, meter, every row fetched.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from decimal import Decimal

from ratecard.store import open_store

COLUMNS = ("environment", "id", "customer", "meter", "ts", "properties", "received_at", "status", "late")
TABLE = "bench_events"


def _create_copy_of_events(raw, postgres: bool) -> None:
    cursor = raw.cursor()
    if postgres:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cursor.execute(f"CREATE TABLE {TABLE} (LIKE events INCLUDING ALL)")
    else:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        ddl = cursor.execute(
            "SELECT type, sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL "
            "ORDER BY type DESC"  # the table before its indexes
        ).fetchall()
        for kind, sql in ddl:
            if kind == "table":
                sql = re.sub(r'^CREATE TABLE "?events"?', f"CREATE TABLE {TABLE}", sql)
            else:
                sql = re.sub(r'^CREATE INDEX "?(\w+)"? ON "?events"?', rf"CREATE INDEX bench_\1 ON {TABLE}", sql)
            if TABLE not in sql:
                raise RuntimeError(f"cannot copy the events DDL: {sql}")
            cursor.execute(sql)
    cursor.close()
    raw.commit()


def empty_copy_of_events(url: str, migrate: bool = False) -> None:
    """An empty copy of the events table (TABLE) in the database at `url`, for the bare baselines
    and the ideal servers to write into (`migrate`: migrate the database first)."""
    store = open_store(url, migrate=migrate)
    raw = store.engine.raw_connection()
    try:
        _create_copy_of_events(raw, store.is_postgres)
    finally:
        raw.close()
        store.dispose()


def bare_insert(url: str, rows: Sequence[tuple]) -> dict:
    """Seconds to insert `rows` into an empty copy of events; the copy is dropped afterwards."""
    store = open_store(url, migrate=False)
    raw = store.engine.raw_connection()
    try:
        postgres = store.is_postgres
        _create_copy_of_events(raw, postgres)
        columns = ", ".join(COLUMNS)
        driver = raw.driver_connection
        if postgres:
            started = time.perf_counter()
            with driver.cursor() as cursor:
                with cursor.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:
                    write_row = copy.write_row
                    for row in rows:
                        write_row(row)
            driver.commit()
            seconds = time.perf_counter() - started
            count = driver.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        else:
            started = time.perf_counter()
            driver.executemany(f"INSERT INTO {TABLE} ({columns}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
            driver.commit()
            seconds = time.perf_counter() - started
            count = driver.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        if count != len(rows):
            raise RuntimeError(f"bare insert stored {count} rows, expected {len(rows)}")
        cursor = raw.cursor()
        cursor.execute(f"DROP TABLE {TABLE}")
        cursor.close()
        raw.commit()
    finally:
        raw.close()
        store.dispose()
    return {"seconds": seconds, "rows": count}


def rollup_sql(postgres: bool, field: str) -> str:
    """The bare GROUP BY, with the same JSON extraction ratecard.store.usage uses for a sum."""
    if postgres:
        value = f"(properties -> '{field}')::numeric"
    else:
        value = f"json_extract(properties, '$.\"{field}\"')"
    return f"SELECT customer, meter, COUNT(*), SUM({value}) FROM events GROUP BY customer, meter"


def bare_rollup(url: str, field: str) -> dict:
    """Seconds for the bare roll-up over the whole events table, and its totals per meter."""
    store = open_store(url, migrate=False)
    raw = store.engine.raw_connection()
    try:
        driver = raw.driver_connection
        sql = rollup_sql(store.is_postgres, field)
        started = time.perf_counter()
        cursor = driver.execute(sql)
        rows = cursor.fetchall()
        seconds = time.perf_counter() - started
        raw.rollback()
    finally:
        raw.close()
        store.dispose()
    events = sum(row[2] for row in rows)
    counts: dict[str, int] = {}
    sums: dict[str, Decimal] = {}
    for _customer, meter, count, total in rows:
        counts[meter] = counts.get(meter, 0) + count
        if total is not None:
            sums[meter] = sums.get(meter, Decimal(0)) + Decimal(str(total))
    return {"seconds": seconds, "events": events, "groups": len(rows), "counts": counts, "sums": sums, "sql": sql}
