"""Continuous roll-ups: hourly partial aggregates of each meter's events, kept exact at every write.

- `absorb` (the ingest hook) adds the events a transaction inserted to their hours' rows, in that
  same transaction: an event stored is counted once, a duplicate (not inserted) never.
- `refresh` recomputes whole hours from the raw events, for every change that is not a plain
  insert (reprocess, soft delete, backfill close and revert): removing an event cannot be undone
  from a max, a min or a latest, so its hours are rebuilt instead.
- `rebuild` builds a roll-up from the raw events (a new or changed meter), customer by customer;
  until it is `ready` the invoice run reads the raw events for that meter.
- the read side is store/rollup_reads.py (store/usage.py calls it first).

A roll-up is keyed by its definition (streams, aggregation, field, filters, and a charge's filters
and group_by when priced per dimension), not by the meter's code: a meter whose definition
changes gets a new key, which has no rows until rebuilt, so nothing stale is ever read.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import msgspec
import orjson
from sqlalchemy import text

from ..catalog import MeterSpec
from ..catalog.validate import unreadable_property_name
from ..domain.instants import rfc3339
from ..domain.json_values import text_form
from ..domain.pricing import ChargeFilter
from ..domain.rollups import (
    HOUR_US,
    NO_DIMENSION,
    SEEN,
    Partial,
    RollupRule,
    hour_after,
    hour_of,
)
from .db import Store
from .types import sqlite_json_path

BUILDING, READY = "building", "ready"
decode_properties = msgspec.json.Decoder(float_hook=Decimal).decode


# ---------------------------------------------------------------- definitions


def definition_of(meter: MeterSpec) -> str | None:
    """The canonical JSON of what a meter's roll-up aggregates; None for a meter read raw (a sum a
    charge prices event by event needs each event's value)."""
    if meter.per_event and meter.aggregation == "sum":
        return None
    split = meter.split
    streams = sorted({split.meter or meter.code, meter.stream} if split is not None else {meter.code, meter.stream})
    filters = [[key, sorted({form for form in map(text_form, values) if form is not None})]
               for key, values in sorted(meter.filters.items())]
    document: dict[str, Any] = {
        "streams": streams, "aggregation": meter.aggregation,
        "field": meter.field if meter.aggregation != "count" else None, "filters": filters, "split": None}
    if split is not None:
        document["split"] = {
            "filters": [[item.code, [[key, sorted(values)] for key, values in item.match]] for item in split.filters],
            "group_by": list(split.group_by)}
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode()


def key_of(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()[:16]


_RULES: dict[str, RollupRule] = {}


def rule_of(definition: str) -> RollupRule:
    """The rule a definition stands for (cached: a definition text never changes meaning)."""
    rule = _RULES.get(definition)
    if rule is None:
        document = orjson.loads(definition)
        split = document["split"]
        rule = RollupRule(
            streams=frozenset(document["streams"]), aggregation=document["aggregation"], field=document["field"],
            filters=tuple((key, frozenset(values)) for key, values in document["filters"]),
            split=split is not None,
            charge_filters=tuple(
                ChargeFilter(code, tuple((key, frozenset(values)) for key, values in match), cast(Any, None))
                for code, match in (split or {}).get("filters", [])),
            group_by=tuple((split or {}).get("group_by", [])))
        if len(_RULES) < 10_000:
            _RULES[definition] = rule
    return rule


@dataclass(frozen=True)
class Registered:
    key: str
    definition: str
    state: str

    @property
    def rule(self) -> RollupRule:
        return rule_of(self.definition)


REGISTERED_SQL = "SELECT key, definition, state FROM rollup_meters WHERE environment = %s"
_REGISTERED_SQLITE = REGISTERED_SQL.replace("%s", "?")


def registered(connection: Any, environment: str) -> list[Registered]:
    """The environment's roll-ups, read on the driver: every ingest transaction reads them, and
    SQLAlchemy's statement machinery costs several times the query itself."""
    raw = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor:
            cursor.execute(REGISTERED_SQL, (environment,))
            rows = cursor.fetchall()
    else:
        rows = raw.execute(_REGISTERED_SQLITE, (environment,)).fetchall()
    return [Registered(*row) for row in rows]


# ---------------------------------------------------------------- writing rows


_KEY = "environment, meter_key, customer, hour, subscription, dimension"
VALUE_COLUMNS = "events, total, low, high, moment, latest_ts, latest_id, latest_value"


def _upsert_sql(postgres: bool) -> str:
    target = "usage_rollups"
    collate = ' COLLATE "C"' if postgres else ""  # ties by the id's bytes, whatever the collation
    newer = (f"({target}.latest_ts IS NULL OR excluded.latest_ts > {target}.latest_ts OR "
             f"(excluded.latest_ts = {target}.latest_ts AND excluded.latest_id{collate} > {target}.latest_id{collate}))")
    if postgres:
        add, least, greatest = "{0} + {1}", "LEAST({0}, {1})", "GREATEST({0}, {1})"
        slots = ", ".join(["%s"] * 14)
    else:
        add, least, greatest = "ratecard_add({0}, {1})", "ratecard_least({0}, {1})", "ratecard_greatest({0}, {1})"
        slots = ", ".join(["?"] * 14)

    def merged(template: str, column: str) -> str:
        return f"{column} = {template.format(f'{target}.{column}', f'excluded.{column}')}"

    latest = ", ".join(f"{column} = CASE WHEN {newer} THEN excluded.{column} ELSE {target}.{column} END"
                       for column in ("latest_ts", "latest_id", "latest_value"))
    return (f"INSERT INTO usage_rollups ({_KEY}, {VALUE_COLUMNS}) VALUES ({slots}) ON CONFLICT ({_KEY}) DO UPDATE SET "
            f"events = {target}.events + excluded.events, {merged(add, 'total')}, {merged(least, 'low')}, "
            f"{merged(greatest, 'high')}, {merged(add, 'moment')}, {latest}")


_UPSERT = {True: _upsert_sql(True), False: _upsert_sql(False)}
# the same from the staging table, in key order (concurrent writers lock rows alike)
_UPSERT_STAGED = _UPSERT[True].replace(
    f"VALUES ({', '.join(['%s'] * 14)})", f"SELECT {_KEY}, {VALUE_COLUMNS} FROM rollup_staging ORDER BY {_KEY}")
_INSERT_VALUE = {
    True: f"INSERT INTO rollup_values ({_KEY}, value_key) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
    False: f"INSERT OR IGNORE INTO rollup_values ({_KEY}, value_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
}

# PostgreSQL: from this many rows on, one COPY into a staging table and one INSERT … SELECT … ON
# CONFLICT, not a statement per row (an import batch touches about one row per event)
COPY_FROM_ROWS = 200


def _copy_upsert(cursor: Any, rows: Sequence[tuple]) -> None:
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS rollup_staging (LIKE usage_rollups) ON COMMIT DELETE ROWS")
    with cursor.copy(f"COPY rollup_staging ({_KEY}, {VALUE_COLUMNS}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cursor.execute(_UPSERT_STAGED)
    cursor.execute("DELETE FROM rollup_staging")  # a transaction may write several times


RowKey = tuple[str, str, int, str, str]  # meter key, customer, hour, subscription ('' for none), dimension


def _number(value: Decimal | None, postgres: bool) -> Any:
    if value is None:
        return None
    return value if postgres else format(value, "f")


def _write(connection: Any, postgres: bool, environment: str, partials: dict[RowKey, Partial]) -> None:
    """Merge partials into their rows (insert, or add to what is there), in the caller's transaction."""
    if not partials:
        return
    rows = []
    values = []
    # PostgreSQL: one order for every writer, so concurrent transactions lock rows alike, never a
    # deadlock; SQLite has one writer at a time
    for key in sorted(partials) if postgres else partials:
        partial = partials[key]
        latest = partial.latest or (None, None, None)
        rows.append((environment, *key, partial.events, _number(partial.total, postgres),
                     _number(partial.low, postgres), _number(partial.high, postgres),
                     _number(partial.moment, postgres), latest[0], latest[1], _number(latest[2], postgres)))
        values.extend((environment, *key, value) for value in sorted(partial.values))
    raw = connection.connection.driver_connection
    if postgres:
        with raw.cursor() as cursor:
            if len(rows) >= COPY_FROM_ROWS:
                _copy_upsert(cursor, rows)
            else:
                cursor.executemany(_UPSERT[True], rows)
            if values:
                cursor.executemany(_INSERT_VALUE[True], values)
    else:
        raw.executemany(_UPSERT[False], rows)
        if values:
            raw.executemany(_INSERT_VALUE[False], values)


def _by_stream(rules: Sequence[Registered]) -> dict[str, list[tuple[str, RollupRule]]]:
    """The roll-ups reading each event meter name (an event is offered to those only)."""
    readers: dict[str, list[tuple[str, RollupRule]]] = defaultdict(list)
    for entry in rules:
        rule = entry.rule
        for stream in rule.streams:
            readers[stream].append((entry.key, rule))
    return readers


def _accumulate(partials: dict[RowKey, Partial], readers: dict[str, list[tuple[str, RollupRule]]], event_id: str,
                customer: str, meter: str, ts: int, properties: Any, subscription: str | None) -> None:
    """One matched event into every roll-up reading its meter. `properties`: decoded, or JSON text."""
    reading = readers.get(meter)
    if not reading:
        return
    decoded = None if isinstance(properties, (str, bytes)) else properties
    hour = ts - ts % HOUR_US
    named = subscription or ""
    for key, rule in reading:
        if rule.counts_every_event:  # a plain count reads no property: the JSON is not even decoded
            found: tuple[str, object] | None = (NO_DIMENSION, None)
        else:
            if decoded is None:
                decoded = decode_properties(properties)
            found = rule.contribution(decoded)
        if found is None:
            continue
        dimension, value = found
        row_key = (key, customer, hour, named, dimension)
        partial = partials.get(row_key)
        if partial is None:
            partial = partials[row_key] = Partial()
        if dimension == SEEN:
            partial.events += 1
        else:
            partial.add(rule.aggregation, ts, event_id, value)


def absorb(connection: Any, rows: Iterable[Sequence[Any]], after_rowid: int | None = None,
           known: dict[str, list[Registered]] | None = None) -> None:
    """The ingest hook: the events this transaction inserted (events.COLUMNS rows, every one new)
    into their roll-ups, in the same transaction. Costs one small SELECT when no roll-up exists.

    A batch of SET_BASED_FROM matched events or more is folded by the database, in one statement,
    for the roll-ups it can fold exactly (`folded_in_sql`); the others, and smaller batches, in
    Python. SQLite: `after_rowid` says the rows are exactly the events past that rowid (the caller
    checked), which the statement then reads in place. `known`: the roll-ups of each environment,
    read by the caller in this transaction after its insert (see `build`)."""
    by_environment: dict[str, list[Sequence[Any]]] = defaultdict(list)
    for row in rows:
        if row[7] == "matched":
            by_environment[row[0]].append(row)
    postgres = connection.dialect.name == "postgresql"
    for environment, matched in by_environment.items():
        rules = known[environment] if known is not None and environment in known \
            else registered(connection, environment)
        if not rules:
            continue
        in_python = rules
        # PostgreSQL: only when the database folds every roll-up. Its statement locks the rows in one
        # order and the Python writes (_write, refresh) in the same order, but one after the other
        # they would lock in two passes, which deadlocks with a writer taking all of them in one
        if len(matched) >= SET_BASED_FROM and (not postgres or all(folded_in_sql(entry.rule) for entry in rules)):
            in_sql = [entry for entry in rules if folded_in_sql(entry.rule)]
            if in_sql:
                in_python = [entry for entry in rules if not folded_in_sql(entry.rule)]
                _fold_in_sql(connection, postgres, environment, in_sql, matched, after_rowid)
        if not in_python:
            continue
        partials: dict[RowKey, Partial] = {}
        readers = _by_stream(in_python)
        for row in matched:
            _accumulate(partials, readers, row[1], row[2], row[3], row[4], row[5], row[9])
        _write(connection, postgres, environment, partials)


# from this many matched events in a batch, the roll-ups the database can fold are folded by it
SET_BASED_FROM = 200
_HOUR_OF_TS = f"ts - ts % {HOUR_US}"  # events are after 2000: % and floor agree


def folded_in_sql(rule: RollupRule) -> bool:
    """A roll-up the database folds exactly as `_accumulate` does: a count, or a sum or average of
    one field, with no filter and not per dimension (each event adds one, and its field's number
    when it is one, to its hour's row; nothing else of the row is kept)."""
    return (not rule.split and not rule.filters
            and (rule.aggregation == "count" or (rule.aggregation in ("sum", "average") and rule.field is not None
                                                 # refused by catalog check; a catalog stored
                                                 # before may hold one: Python folds it
                                                 and not unreadable_property_name(rule.field))))


def _fold_in_sql(connection: Any, postgres: bool, environment: str, entries: Sequence[Registered],
                 matched: Sequence[Sequence[Any]], after_rowid: int | None) -> None:
    """Add the matched events to the rows of these roll-ups with one INSERT … SELECT … GROUP BY …
    ON CONFLICT DO UPDATE: from the events table past `after_rowid` (SQLite), else from a
    temporary table the batch is loaded into."""
    streams = {stream for entry in entries for stream in entry.rule.streams}
    raw = connection.connection.driver_connection
    if postgres:
        # the properties only of the events a sum or an average reads: a count reads none, and the
        # server parses each value copied into the jsonb column
        read = {stream for entry in entries if entry.rule.aggregation != "count" for stream in entry.rule.streams}
        with raw.cursor() as cursor:
            cursor.execute(_BATCH_TABLE[True])
            # emptied at each commit (ON COMMIT DELETE ROWS); here for a transaction that writes
            # several times, before the COPY (an empty table costs nothing) rather than after it
            cursor.execute("DELETE FROM rollup_batch")
            with cursor.copy("COPY rollup_batch (customer, meter, ts, subscription, properties) FROM STDIN") as copy:
                write_row = copy.write_row
                for row in matched:
                    meter = row[3]
                    if meter in read:
                        write_row((row[2], meter, row[4], row[9], row[5]))
                    elif meter in streams:
                        write_row((row[2], meter, row[4], row[9], None))
            sql, params = _fold_sql(True, environment, entries, "rollup_batch", "")
            cursor.execute(sql, params)
        return
    if after_rowid is not None:
        # NOT INDEXED: the rows past the rowid are read in place, in rowid order; through
        # ix_events_status SQLite would look each one up again in the table
        sql, params = _fold_sql(False, environment, entries, "events NOT INDEXED",
                                "rowid > :after AND environment = :env AND status = 'matched' AND ",
                                small_integers=len(matched) <= SMALL_INTEGER_ROWS)
        params["after"] = after_rowid
        raw.execute(sql, params)
        return
    raw.execute(_BATCH_TABLE[False])
    wanted = set(streams)
    raw.executemany("INSERT INTO temp.rollup_batch VALUES (?, ?, ?, ?, ?)",
                    [(row[2], row[3], row[4], row[9], row[5]) for row in matched if row[3] in wanted])
    sql, params = _fold_sql(False, environment, entries, "temp.rollup_batch", "",
                            small_integers=len(matched) <= SMALL_INTEGER_ROWS)
    raw.execute(sql, params)
    raw.execute("DELETE FROM temp.rollup_batch")


_BATCH_TABLE = {
    True: "CREATE TEMP TABLE IF NOT EXISTS rollup_batch (customer text, meter text, ts bigint, subscription text, "
          "properties jsonb) ON COMMIT DELETE ROWS",
    False: "CREATE TEMP TABLE IF NOT EXISTS rollup_batch (customer TEXT, meter TEXT, ts INTEGER, subscription TEXT, "
           "properties TEXT)",
}


# SQLite: the integers of 1 <= |n| < SMALL_INTEGER a batch of at most SMALL_INTEGER_ROWS events
# holds add up as SQLite's own 64-bit integers, exactly and never past 2^63 - 1; ratecard_sum (a
# Python call per value) adds the other numbers, and the two parts are added as decimal text
SMALL_INTEGER = 10**14
SMALL_INTEGER_ROWS = 90_000  # 90,000 * 10^14 < 2^63


def _fold_sql(postgres: bool, environment: str, entries: Sequence[Registered], source: str,
              where: str, small_integers: bool = False) -> tuple[str, dict[str, Any]]:
    """One INSERT … SELECT per batch: a SELECT … GROUP BY per roll-up, UNION ALL, merged into the
    rows there as `_UPSERT` merges (PostgreSQL: taken in key order, as `_write` takes them).
    SQLite, `small_integers`: the batch holds at most SMALL_INTEGER_ROWS events."""
    def slot(name: str) -> str:
        return f"%({name})s" if postgres else f":{name}"

    def null(kind: str) -> str:  # typed for PostgreSQL, whose UNION ALL would take an untyped NULL as text
        return f"NULL::{kind}" if postgres else "NULL"

    hour = _HOUR_OF_TS.replace("%", "%%") if postgres else _HOUR_OF_TS  # psycopg's placeholders
    params: dict[str, Any] = {"env": environment}
    selects = []
    for index, entry in enumerate(entries):
        rule = entry.rule
        params[f"k{index}"] = entry.key
        names = []
        for position, stream in enumerate(sorted(rule.streams)):
            params[f"k{index}s{position}"] = stream
            names.append(slot(f"k{index}s{position}"))
        conditions = f"{where}meter IN ({', '.join(names)})"
        rows, group_hour, total = f"{source} WHERE {conditions}", hour, null("numeric")
        if rule.aggregation != "count":
            field = slot(f"k{index}f")
            if postgres:
                field += "::text"  # jsonb -> text, not -> integer
                params[f"k{index}f"] = rule.field
                rows += f" AND jsonb_typeof(properties -> {field}) = 'number'"
                total = f"SUM((properties -> {field})::numeric)"
            else:
                params[f"k{index}f"] = sqlite_json_path(cast(str, rule.field))
                rows, total = _sqlite_sum_rows(rows, hour, field, small_integers)
                group_hour = "hour"
        selects.append(
            f"SELECT {slot('env')}, {slot(f'k{index}')}, customer, {group_hour}, COALESCE(subscription, ''), '', "
            f"COUNT(*), {total}, {null('numeric')}, {null('numeric')}, {null('numeric')}, {null('bigint')}, "
            f"{null('text')}, {null('numeric')} FROM {rows} "
            f"GROUP BY customer, {group_hour}, COALESCE(subscription, '')")
    body = " UNION ALL ".join(selects)
    if postgres:
        # every writer locks rows in one order (code points, as Python sorts the keys): no deadlock
        body = (f"SELECT * FROM ({body}) AS batch (environment, meter_key, customer, hour, subscription, dimension, "
                f"{VALUE_COLUMNS}) ORDER BY meter_key COLLATE \"C\", customer COLLATE \"C\", hour, "
                f"subscription COLLATE \"C\", dimension COLLATE \"C\"")
    return f"INSERT INTO usage_rollups ({_KEY}, {VALUE_COLUMNS}) {body}{_FOLD_MERGE[postgres]}", params


def _fold_merge(postgres: bool) -> str:
    """How a folded row merges into the row there. PostgreSQL: as `_UPSERT` merges. SQLite: the fold
    writes only `events` and `total` (the other columns are NULL, which `_UPSERT` would merge into
    what is there unchanged), and two totals that are both integers of at most 15 characters are
    added by SQLite itself, exactly (far below 2^63); other totals by ratecard_add. So merging into
    an hour's row calls no Python function in the common case (it called four)."""
    upsert = _UPSERT[postgres]
    if postgres:
        return upsert[upsert.index(" ON CONFLICT"):]
    stored, added = "usage_rollups.total", "excluded.total"

    def integer(text: str) -> str:  # a sign or a digit, then digits only
        return (f"(length({text}) <= 15 AND {text} GLOB '[0-9-]*' AND substr({text}, 2) NOT GLOB '*[^0-9]*' "
                f"AND {text} <> '-')")

    return (f" ON CONFLICT ({_KEY}) DO UPDATE SET events = usage_rollups.events + excluded.events, "
            f"total = CASE WHEN {added} IS NULL THEN {stored} WHEN {stored} IS NULL THEN {added} "
            f"WHEN {integer(stored)} AND {integer(added)} "
            f"THEN CAST(CAST({stored} AS INTEGER) + CAST({added} AS INTEGER) AS TEXT) "
            f"ELSE ratecard_add({stored}, {added}) END")


_FOLD_MERGE = {True: _fold_merge(True), False: _fold_merge(False)}


def _sqlite_sum_rows(rows: str, hour: str, field: str, small_integers: bool) -> tuple[str, str]:
    """SQLite: the rows a sum's GROUP BY reads (customer, hour, subscription and the field's number)
    and the sum of their numbers, from `rows` (`source WHERE conditions`) and the field's JSON path.

    Each event's field is read from its JSON once: in a subquery SQLite cannot flatten into the
    aggregate (LIMIT -1), which would otherwise read the JSON again for every mention of it."""
    read = f"(SELECT customer, {hour} AS hour, subscription, json_type(properties, {field}) AS kind"
    if not small_integers:
        return (f"{read}, properties -> {field} AS number FROM {rows} LIMIT -1) "
                "WHERE kind IN ('integer', 'real')"), "ratecard_sum(number)"
    # the integers of 1 <= |n| < SMALL_INTEGER are summed by SQLite; a zero (-0 too), a larger integer
    # (beyond 64 bits SQLite reads it as a real) and every non-integer go through ratecard_sum, as
    # JSON text. No abs(): -2^63 overflows it
    small = f"(kind = 'integer' AND value <> 0 AND value > -{SMALL_INTEGER} AND value < {SMALL_INTEGER})"
    numbers = (f"(SELECT customer, hour, subscription, value, {small} AS small, "
               f"CASE WHEN {small} THEN NULL ELSE properties -> {field} END AS number "
               f"FROM {read}, properties ->> {field} AS value, properties FROM {rows} LIMIT -1) "
               "WHERE kind IN ('integer', 'real') LIMIT -1)")
    # an hour of small integers only calls no Python at all (ratecard_sum never stepped is not
    # finalized either); one holding others adds the two parts
    total = ("CASE WHEN COUNT(*) FILTER (WHERE NOT small) = 0 THEN CAST(SUM(value) AS TEXT) "
             "ELSE ratecard_add(CAST(SUM(value) FILTER (WHERE small) AS TEXT), "
             "ratecard_sum(number) FILTER (WHERE NOT small)) END")
    return numbers, total


def refresh(connection: Any, environment: str, hours: Iterable[tuple[str, int]]) -> None:
    """Recompute the (customer, hour) rows of every roll-up from the raw events, in the caller's
    transaction: for changes other than inserts (an event matched, edited, deleted, moved)."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for customer, ts in hours:
        wanted[customer].add(hour_of(ts))
    if not wanted:
        return
    rules = registered(connection, environment)
    if not rules:
        return
    postgres = connection.dialect.name == "postgresql"
    streams = sorted({stream for entry in rules for stream in entry.rule.streams})
    for customer, customer_hours in wanted.items():
        ordered = sorted(customer_hours)
        for table in ("usage_rollups", "rollup_values"):
            for start in range(0, len(ordered), 500):
                chunk = ordered[start:start + 500]
                params = {"env": environment, "customer": customer, **{f"h{i}": h for i, h in enumerate(chunk)}}
                connection.execute(text(
                    f"DELETE FROM {table} WHERE environment = :env AND customer = :customer "
                    f"AND hour IN ({', '.join(f':h{i}' for i in range(len(chunk)))})"), params)
        partials: dict[RowKey, Partial] = {}
        readers = _by_stream(rules)
        for event in _events(connection, postgres, environment, streams, customer, ordered[0], ordered[-1] + HOUR_US):
            if hour_of(event[2]) in customer_hours:
                _accumulate(partials, readers, event[0], customer, event[1], event[2], event[3], event[4])
        _write(connection, postgres, environment, partials)


def refresh_span(connection: Any, environment: str, start_us: int, end_us: int, customer: str | None) -> None:
    """`refresh` of every hour touching [start, end) of one customer, or of every customer with events
    there or rows there (a backfill's window)."""
    if not registered(connection, environment):
        return
    low, high = hour_of(start_us), hour_after(end_us)
    params = {"env": environment, "low": low, "high": high, "customer": customer}
    only = "AND customer = :customer " if customer is not None else ""
    pairs = set()
    for sql in (f"SELECT DISTINCT customer, ts FROM events WHERE environment = :env {only}AND ts >= :low AND ts < :high",
                f"SELECT DISTINCT customer, hour FROM usage_rollups WHERE environment = :env {only}"
                "AND hour >= :low AND hour < :high"):
        pairs.update((row[0], hour_of(row[1])) for row in connection.execute(text(sql), params))
    refresh(connection, environment, pairs)


def _events(connection: Any, postgres: bool, environment: str, streams: Sequence[str], customer: str | None,
            start_us: int | None, end_us: int | None) -> Any:
    """(id, meter, ts, properties text, subscription) of matched events, one customer or all."""
    params: dict[str, Any] = {"env": environment, **{f"s{i}": s for i, s in enumerate(streams)}}
    conditions = ["environment = :env", "status = 'matched'",
                  f"meter IN ({', '.join(f':s{i}' for i in range(len(streams)))})"]
    if customer is not None:
        conditions.append("customer = :customer")
        params["customer"] = customer
    if start_us is not None:
        conditions.append("ts >= :start")
        params["start"] = start_us
    if end_us is not None:
        conditions.append("ts < :end")
        params["end"] = end_us
    properties = "CAST(properties AS TEXT)" if postgres else "properties"
    return connection.execute(text(f"SELECT id, meter, ts, {properties}, subscription FROM events "
                                   f"WHERE {' AND '.join(conditions)}"), params)


# ---------------------------------------------------------------- rebuild and check


@dataclass(frozen=True)
class RebuildPlan:
    build: list[tuple[str, str, str]]  # (key, definition, meter codes)
    keep: list[tuple[str, str]]  # (key, meter codes) already ready
    drop: list[str]  # keys no meter uses any more


def plan(store: Store, environment: str, meters: Sequence[MeterSpec], force: bool = False) -> RebuildPlan:
    by_key: dict[str, tuple[str, list[str]]] = {}
    for meter in meters:
        definition = definition_of(meter)
        if definition is not None:
            by_key.setdefault(key_of(definition), (definition, []))[1].append(meter.code)
    with store.engine.connect() as connection:
        stored = {entry.key: entry for entry in registered(connection, environment)}
    build, keep = [], []
    for key, (definition, codes) in sorted(by_key.items(), key=lambda item: item[1][1]):
        if not force and key in stored and stored[key].state == READY:
            keep.append((key, ", ".join(codes)))
        else:
            build.append((key, definition, ", ".join(codes)))
    drop = sorted(key for key in stored if key not in by_key)
    return RebuildPlan(build, keep, drop)


def customers_with_events(store: Store, environment: str) -> list[str]:
    with store.engine.connect() as connection:
        return sorted(row[0] for row in connection.execute(
            text("SELECT DISTINCT customer FROM events WHERE environment = :env AND status = 'matched'"),
            {"env": environment}))


def drop(store: Store, environment: str, keys: Sequence[str]) -> None:
    with store.engine.begin() as connection:
        for key in keys:
            params = {"env": environment, "key": key}
            for table in ("usage_rollups", "rollup_values"):
                connection.execute(text(f"DELETE FROM {table} WHERE environment = :env AND meter_key = :key"), params)
            connection.execute(text("DELETE FROM rollup_meters WHERE environment = :env AND key = :key"), params)
    registry_changed()


def build(store: Store, environment: str, key: str, definition: str, now_us: int,
          on_progress: Callable[[int, int], None] | None = None, batch: int = 200) -> int:
    """Build one roll-up from the raw events; returns the events counted into it.

    Registered as `building` first (committed): from then on every insert maintains it, so the
    customers rebuilt below and the events arriving meanwhile meet exactly once (each customer's
    rows are deleted and recomputed in one transaction, which on PostgreSQL reads one snapshot and
    is done again when an insert's rows meet it: `_rebuild_chunk`; an insert committed after that
    adds to them).
    Then `ready`: the invoice run reads it."""
    postgres = store.is_postgres
    with store.engine.begin() as connection:
        _set_state(connection, postgres, environment, key, definition, BUILDING, now_us)
    registry_changed()
    if postgres:
        # an insert still open may have read the roll-ups before this one was registered: wait for
        # every open writer of events to end (each writer reads the roll-ups after its insert, so
        # those that follow see this one), then read the events
        with store.engine.begin() as connection:
            connection.execute(text("LOCK TABLE events IN SHARE MODE"))
    customers = customers_with_events(store, environment)
    with store.engine.connect() as connection:  # and those with rows left from before (a forced rebuild)
        customers = sorted(set(customers) | {row[0] for row in connection.execute(text(
            "SELECT DISTINCT customer FROM usage_rollups WHERE environment = :env AND meter_key = :key"),
            {"env": environment, "key": key})})
    entry = Registered(key, definition, BUILDING)
    counted = 0
    for start in range(0, len(customers), batch):
        chunk = customers[start:start + batch]
        progress = {"done": min(start + batch, len(customers)), "total": len(customers), "env": environment,
                    "key": key}
        counted += _rebuild_chunk(store, postgres, environment, entry, chunk, progress)
        if on_progress is not None:
            on_progress(min(start + batch, len(customers)), len(customers))
    with store.engine.begin() as connection:
        _set_state(connection, postgres, environment, key, definition, READY, now_us)
    registry_changed()
    return counted


# PostgreSQL: a chunk's rows are deleted and its events read in one snapshot (REPEATABLE READ), so
# an event whose insert commits meanwhile is either in both or in neither; when its insert's row
# meets the chunk's, the chunk fails to serialize and is done again. After this many attempts (a
# customer whose events never stop), the chunk holds the events table (inserts wait for it).
CHUNK_ATTEMPTS = 20
_RETRIED = ("40001", "40P01")  # serialization failure, deadlock


def _rebuild_chunk(store: Store, postgres: bool, environment: str, entry: Registered, chunk: Sequence[str],
                   progress: dict[str, Any]) -> int:
    """Delete and recompute the roll-up rows of these customers in one transaction; the events counted."""
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        last = attempt == CHUNK_ATTEMPTS
        try:
            with store.engine.connect() as connection:
                if postgres and not last:
                    connection.execution_options(isolation_level="REPEATABLE READ")
                with connection.begin():
                    if postgres and last:
                        connection.execute(text("LOCK TABLE events IN SHARE MODE"))
                    return _recompute_chunk(connection, postgres, environment, entry, chunk, progress)
        except Exception as exc:  # the driver's own (raw cursors) or wrapped by SQLAlchemy
            state = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
            if not postgres or last or state not in _RETRIED:
                raise
    raise AssertionError("unreachable")


def _recompute_chunk(connection: Any, postgres: bool, environment: str, entry: Registered, chunk: Sequence[str],
                     progress: dict[str, Any]) -> int:
    key = entry.key
    readers = _by_stream([entry])
    partials: dict[RowKey, Partial] = {}
    for customer in chunk:
        params = {"env": environment, "key": key, "customer": customer}
        for table in ("usage_rollups", "rollup_values"):
            connection.execute(text(f"DELETE FROM {table} WHERE environment = :env AND meter_key = :key "
                                    "AND customer = :customer"), params)
        for event in _events(connection, postgres, environment, sorted(entry.rule.streams), customer, None, None):
            _accumulate(partials, readers, event[0], customer, event[1], event[2], event[3], event[4])
    _write(connection, postgres, environment, partials)
    connection.execute(text("UPDATE rollup_meters SET done = :done, total = :total "
                            "WHERE environment = :env AND key = :key"), progress)
    return sum(partial.events for partial in partials.values())


def _set_state(connection: Any, postgres: bool, environment: str, key: str, definition: str, state: str,
               now_us: int) -> None:
    connection.execute(text(
        "INSERT INTO rollup_meters (environment, key, definition, state, updated_at) "
        "VALUES (:env, :key, :definition, :state, :now) ON CONFLICT (environment, key) DO UPDATE SET "
        "state = excluded.state, updated_at = excluded.updated_at"),
        {"env": environment, "key": key, "definition": definition, "state": state, "now": now_us})


def progress(connection: Any, environment: str) -> dict[str, tuple[int, int]]:
    """key -> (customers done, customers to go through) of each roll-up's last build."""
    return {key: (done, total) for key, done, total in connection.execute(
        text("SELECT key, done, total FROM rollup_meters WHERE environment = :env"), {"env": environment})}


def ready_keys(connection: Any, environment: str) -> set[str]:
    return {entry.key for entry in registered(connection, environment) if entry.state == READY}


# The ready keys read by `recent_ready_keys`, per (store, environment): (store, expiry on
# time.monotonic(), keys). Emptied when this process changes the registry (after the commit).
_RECENT_LOCK = threading.Lock()
_RECENT: dict[tuple[int, str], tuple[Store, float, frozenset[str]]] = {}
_changes = 0


def recent_ready_keys(store: Store, connection: Any, environment: str, max_age: float) -> frozenset[str]:
    """`ready_keys`, or the keys this process read less than `max_age` seconds ago (0: read now).

    For frequent small reads that accept it (the entitlements refresh): a roll-up that became
    ready in another process since is read from the raw events meanwhile (the same figures); one
    another process started rebuilding (`building`) keeps every customer's rows whole at every
    commit, so reading it meanwhile gives the figures of either side of that customer's rebuild;
    one another process dropped had no meter of the current catalog left."""
    if max_age <= 0:
        return frozenset(ready_keys(connection, environment))
    key = (id(store), environment)
    with _RECENT_LOCK:
        kept = _RECENT.get(key)
        changes = _changes
    if kept is not None and kept[0] is store and kept[1] > time.monotonic():
        return kept[2]
    expires = time.monotonic() + max_age
    keys = frozenset(ready_keys(connection, environment))
    with _RECENT_LOCK:
        if changes == _changes:  # read across a change in this process: used once, not kept
            if len(_RECENT) >= 1_000:
                _RECENT.clear()
            _RECENT[key] = (store, expires, keys)
    return keys


def registry_changed() -> None:
    """This process registered, rebuilt or dropped a roll-up (committed): read the keys again."""
    global _changes
    with _RECENT_LOCK:
        _changes += 1
        _RECENT.clear()


# ---------------------------------------------------------------- check


def decimal_or_none(value: Any) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def stored_rows(connection: Any, environment: str, key: str) -> dict[RowKey, Partial]:
    params = {"env": environment, "key": key}
    found: dict[RowKey, Partial] = {}
    for (customer, hour, subscription, dimension, events, total, low, high, moment, latest_ts, latest_id,
         latest_value) in connection.execute(text(
            f"SELECT customer, hour, subscription, dimension, {VALUE_COLUMNS} FROM usage_rollups "
            "WHERE environment = :env AND meter_key = :key"), params):
        found[(key, customer, hour, subscription, dimension)] = Partial(
            events, decimal_or_none(total), decimal_or_none(low), decimal_or_none(high), decimal_or_none(moment),
            (latest_ts, latest_id, decimal_or_none(latest_value)) if latest_ts is not None else None)
    for customer, hour, subscription, dimension, value in connection.execute(text(
            "SELECT customer, hour, subscription, dimension, value_key FROM rollup_values "
            "WHERE environment = :env AND meter_key = :key"), params):
        row = found.setdefault((key, customer, hour, subscription, dimension), Partial())
        row.values.add(value)
    return found


def differences(store: Store, environment: str, entry: Registered, limit: int = 20) -> tuple[int, list[str]]:
    """(rows compared, up to `limit` descriptions of rows that differ from the raw events' roll-up)."""
    postgres = store.is_postgres
    with store.engine.connect() as connection:
        expected: dict[RowKey, Partial] = {}
        readers = _by_stream([entry])
        for event_id, meter, ts, properties, subscription, customer in _all_events(
                connection, postgres, environment, sorted(entry.rule.streams)):
            _accumulate(expected, readers, event_id, customer, meter, ts, properties, subscription)
        stored = stored_rows(connection, environment, entry.key)
    problems = []
    for key in sorted(set(expected) | set(stored)):
        want, have = expected.get(key), stored.get(key)
        if want is None or have is None or _signature(want) != _signature(have):
            if len(problems) < limit:
                problems.append(f"customer {key[1]} hour {rfc3339(key[2])} subscription {key[3] or '-'} "
                                f"dimension {key[4] or '-'}: stored {_describe(have)}, raw events {_describe(want)}")
            else:
                break
    return len(set(expected) | set(stored)), problems


def _signature(partial: Partial) -> tuple:
    return (partial.events, partial.total, partial.low, partial.high, partial.moment,
            partial.latest, frozenset(partial.values))


def _describe(partial: Partial | None) -> str:
    if partial is None:
        return "nothing"
    return f"{partial.events} events, sum {partial.total}"


def _all_events(connection: Any, postgres: bool, environment: str, streams: Sequence[str]) -> Any:
    params: dict[str, Any] = {"env": environment, **{f"s{i}": s for i, s in enumerate(streams)}}
    properties = "CAST(properties AS TEXT)" if postgres else "properties"
    return connection.execute(text(
        f"SELECT id, meter, ts, {properties}, subscription, customer FROM events WHERE environment = :env "
        f"AND status = 'matched' AND meter IN ({', '.join(f':s{i}' for i in range(len(streams)))})"), params)
