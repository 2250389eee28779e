"""Continuous roll-ups: hourly partial aggregates of each meter's events, kept exact at every write.

- `absorb` (the ingest hook) adds the events a transaction inserted to their hours' rows, in that
  same transaction: an event stored is counted once, a duplicate (not inserted) never.
- `refresh` recomputes whole hours from the raw events, for every change that is not a plain
  insert (reprocess, soft delete, backfill close and revert): removing an event cannot be undone
  from a max, a min or a latest, so its hours are rebuilt instead.
- `rebuild` builds a roll-up from the raw events (a new or changed meter), customer by customer;
  until it is `ready` the invoice run reads the raw events for that meter.
- `usage_from_rollups` is the read side (store/usage.py calls it first).

A roll-up is keyed by its definition (streams, aggregation, field, filters, and a charge's filters
and group_by when priced per dimension), not by the meter's code: a meter whose definition
changes gets a new key, which has no rows until rebuilt, so nothing stale is ever read.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import msgspec
import orjson
from sqlalchemy import text

from ..catalog import MeterSpec
from ..domain.aggregation import Usage
from ..domain.dimensions import Split
from ..domain.json_values import text_form
from ..domain.pricing import ChargeFilter
from ..domain.rollups import (
    HOUR_US,
    NO_DIMENSION,
    SEEN,
    Partial,
    RollupRule,
    dimension_key,
    hour_after,
    hour_of,
    split_of,
    weighted,
)
from .db import Store

BUILDING, READY = "building", "ready"
_decode = msgspec.json.Decoder(float_hook=Decimal).decode


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


def registered(connection: Any, environment: str) -> list[Registered]:
    rows = connection.execute(text("SELECT key, definition, state FROM rollup_meters WHERE environment = :env"),
                              {"env": environment})
    return [Registered(*row) for row in rows]


# ---------------------------------------------------------------- writing rows


_KEY = "environment, meter_key, customer, hour, subscription, dimension"
_VALUES = "events, total, low, high, moment, latest_ts, latest_id, latest_value"


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
    return (f"INSERT INTO usage_rollups ({_KEY}, {_VALUES}) VALUES ({slots}) ON CONFLICT ({_KEY}) DO UPDATE SET "
            f"events = {target}.events + excluded.events, {merged(add, 'total')}, {merged(least, 'low')}, "
            f"{merged(greatest, 'high')}, {merged(add, 'moment')}, {latest}")


_UPSERT = {True: _upsert_sql(True), False: _upsert_sql(False)}
# the same from the staging table, in key order (concurrent writers lock rows alike)
_UPSERT_STAGED = _UPSERT[True].replace(
    f"VALUES ({', '.join(['%s'] * 14)})", f"SELECT {_KEY}, {_VALUES} FROM rollup_staging ORDER BY {_KEY}")
_INSERT_VALUE = {
    True: f"INSERT INTO rollup_values ({_KEY}, value_key) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
    False: f"INSERT OR IGNORE INTO rollup_values ({_KEY}, value_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
}

# PostgreSQL: from this many rows on, one COPY into a staging table and one INSERT … SELECT … ON
# CONFLICT, not a statement per row (an import batch touches about one row per event)
COPY_FROM_ROWS = 200


def _copy_upsert(cursor: Any, rows: Sequence[tuple]) -> None:
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS rollup_staging (LIKE usage_rollups) ON COMMIT DELETE ROWS")
    with cursor.copy(f"COPY rollup_staging ({_KEY}, {_VALUES}) FROM STDIN") as copy:
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
                decoded = _decode(properties)
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


def absorb(connection: Any, rows: Iterable[Sequence[Any]]) -> None:
    """The ingest hook: the events this transaction inserted (events.COLUMNS rows, every one new)
    into their roll-ups, in the same transaction. Costs one small SELECT when no roll-up exists."""
    by_environment: dict[str, list[Sequence[Any]]] = defaultdict(list)
    for row in rows:
        if row[7] == "matched":
            by_environment[row[0]].append(row)
    postgres = connection.dialect.name == "postgresql"
    for environment, matched in by_environment.items():
        rules = registered(connection, environment)
        if not rules:
            continue
        partials: dict[RowKey, Partial] = {}
        readers = _by_stream(rules)
        for row in matched:
            _accumulate(partials, readers, row[1], row[2], row[3], row[4], row[5], row[9])
        _write(connection, postgres, environment, partials)


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


def build(store: Store, environment: str, key: str, definition: str, now_us: int,
          on_progress: Callable[[int, int], None] | None = None, batch: int = 200) -> int:
    """Build one roll-up from the raw events; returns the events counted into it.

    Registered as `building` first (committed): from then on every insert maintains it, so the
    customers rebuilt below and the events arriving meanwhile meet exactly once (each customer's
    rows are deleted and recomputed in one transaction; an insert committed after that adds to them).
    Then `ready`: the invoice run reads it."""
    postgres = store.is_postgres
    with store.engine.begin() as connection:
        _set_state(connection, postgres, environment, key, definition, BUILDING, now_us)
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
    readers = _by_stream([entry])
    counted = 0
    for start in range(0, len(customers), batch):
        chunk = customers[start:start + batch]
        with store.engine.begin() as connection:
            partials: dict[RowKey, Partial] = {}
            for customer in chunk:
                params = {"env": environment, "key": key, "customer": customer}
                for table in ("usage_rollups", "rollup_values"):
                    connection.execute(text(f"DELETE FROM {table} WHERE environment = :env AND meter_key = :key "
                                            "AND customer = :customer"), params)
                for event in _events(connection, postgres, environment, sorted(entry.rule.streams), customer,
                                     None, None):
                    _accumulate(partials, readers, event[0], customer, event[1], event[2], event[3], event[4])
            counted += sum(partial.events for partial in partials.values())
            _write(connection, postgres, environment, partials)
            connection.execute(text("UPDATE rollup_meters SET done = :done, total = :total "
                                    "WHERE environment = :env AND key = :key"),
                               {"done": min(start + batch, len(customers)), "total": len(customers),
                                "env": environment, "key": key})
        if on_progress is not None:
            on_progress(min(start + batch, len(customers)), len(customers))
    with store.engine.begin() as connection:
        _set_state(connection, postgres, environment, key, definition, READY, now_us)
    return counted


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


# ---------------------------------------------------------------- reading


@dataclass
class _Row:
    hour: int
    subscription: str | None
    dimension: str
    partial: Partial


def usage_from_rollups(store: Store, windows: Sequence[Any], meters: Sequence[MeterSpec], environment: str
                       ) -> tuple[dict[tuple[int, str], Usage], list[MeterSpec]]:
    """The usage of the meters whose roll-up is ready, in every window, and the meters left to read
    from the raw events. Whole hours come from the roll-up rows; a window's partial edge hours
    (a boundary at :30 in a +05:30 time zone, a proration cut at 14:17) from its raw events."""
    if not windows or not meters:
        return {}, list(meters)
    keyed = {meter.code: (key_of(definition), definition) for meter in meters
             if (definition := definition_of(meter)) is not None}
    if not keyed:
        return {}, list(meters)
    result: dict[tuple[int, str], Usage] = {}
    with store.engine.connect() as connection:
        ready = ready_keys(connection, environment)
        chosen = [meter for meter in meters if meter.code in keyed and keyed[meter.code][0] in ready]
        if not chosen:
            return {}, list(meters)
        postgres = store.is_postgres
        for key, definition in sorted({keyed[meter.code] for meter in chosen}):
            rule = rule_of(definition)
            usages = _read(connection, postgres, environment, key, rule, windows)
            for meter in chosen:
                if keyed[meter.code][0] == key:
                    result.update({(window_key, meter.code): usage for window_key, usage in usages.items()})
    rest = [meter for meter in meters if meter not in chosen]
    return result, rest


# the windows' customers go into the query as a list up to this many (each an index range of its
# hours: a month's run never reads the other months' rows); more read the whole time range
CUSTOMER_LIST = 100_000


def _read(connection: Any, postgres: bool, environment: str, key: str, rule: RollupRule,
          windows: Sequence[Any]) -> dict[int, Usage]:
    """Each window's usage: its whole hours from the rows (many windows over the same hours: one
    GROUP BY customer in SQL; the others row by row in Python), its edges from the raw events."""
    whole_parts: dict[int, dict[str, Partial]] = {}
    rest = list(windows)
    if rule.aggregation != "weighted_sum":
        by_range: dict[tuple[int, int], list[Any]] = defaultdict(list)
        for window in windows:
            whole = _spans(window)[0]
            if whole is not None:
                by_range[whole].append(window)
        rest = [window for window in windows if (whole := _spans(window)[0]) is None
                or len(by_range[whole]) < GROUPED_FROM]
        for whole, ranged in by_range.items():
            if len(ranged) < GROUPED_FROM:
                continue
            grouped, redo = _grouped(connection, postgres, environment, key, rule, whole, ranged)
            for window in ranged:
                if window.customer in redo:
                    rest.append(window)
                    continue
                parts: dict[str, Partial] = defaultdict(Partial)
                for subscription, dimension, partial in grouped.get(window.customer, ()):
                    if window.takes(subscription):
                        parts[dimension].merge(partial)
                whole_parts[window.key] = parts
    rows = _rows(connection, postgres, environment, key, rule, rest) if rest else {}
    edges = _edge_events(connection, postgres, environment, rule, windows, rule.aggregation == "weighted_sum")
    result: dict[int, Usage] = {}
    for window in windows:
        usage = _window_usage(rule, window, rows.get(window.customer, ()), edges, whole_parts.get(window.key))
        if usage is not None:
            result[window.key] = usage
    return result


# From this many windows over the same whole hours on (an invoice run's subscriptions billed on one
# calendar), their rows are added up by SQL, per customer, instead of read one by one
GROUPED_FROM = 20


def _customer_filter(postgres: bool, customers: Sequence[str], params: dict[str, Any]) -> str:
    if len(customers) > CUSTOMER_LIST:
        return ""  # most customers: reading the range beats probing a long list
    if postgres:
        params["customers"] = list(customers)
        return " AND customer = ANY(:customers)"
    params["customers"] = orjson.dumps(list(customers)).decode()
    return " AND customer IN (SELECT value FROM json_each(:customers))"


def _small(column: str) -> str:
    """SQLite: a decimal text that is an integer SQLite adds exactly (at most 10 digits)."""
    return f"({column} NOT GLOB '*[^0-9-]*' AND length({column}) <= 10)"


def _grouped(connection: Any, postgres: bool, environment: str, key: str, rule: RollupRule,
             whole: tuple[int, int], windows: Sequence[Any]
             ) -> tuple[dict[str, list[tuple[str | None, str, Partial]]], set[str]]:
    """The rows of [whole) added up per (customer, subscription named, dimension) in SQL; and, on
    SQLite, the customers whose numbers SQL cannot add exactly (decimals, large integers): those
    windows are read row by row instead."""
    params: dict[str, Any] = {"env": environment, "key": key, "low": whole[0], "high": whole[1]}
    customers = sorted({window.customer for window in windows})
    only = _customer_filter(postgres, customers, params)
    latest = rule.aggregation == "latest"
    if postgres:
        order = 'ORDER BY latest_ts DESC, latest_id COLLATE "C" DESC'
        latest_columns = (", ".join(f"(array_agg({c} {order}))[1]" for c in ("latest_ts", "latest_id", "latest_value"))
                          if latest else "NULL, NULL, NULL")
        columns = f"SUM(events), SUM(total), MIN(low), MAX(high), {latest_columns}, 0"
    else:
        # only the column the aggregation reads must be exact (latest's value travels as text)
        column = {"sum": "total", "average": "total", "max": "high", "min": "low"}.get(rule.aggregation)
        exact = "1" if column is None else _small(column)
        latest_columns = ("MAX(printf('%020d', latest_ts) || hex(latest_id) || ' ' || latest_value), NULL, NULL"
                          if latest else "NULL, NULL, NULL")
        columns = (f"SUM(events), SUM(CAST(total AS INTEGER)), MIN(CAST(low AS INTEGER)), "
                   f"MAX(CAST(high AS INTEGER)), {latest_columns}, "
                   f"COALESCE(SUM({column or 'total'} IS NOT NULL AND NOT ({exact})), 0)")
    sql = (f"SELECT customer, subscription, dimension, {columns} FROM usage_rollups WHERE environment = :env "
           f"AND meter_key = :key AND hour >= :low AND hour < :high{only} GROUP BY customer, subscription, dimension")
    wanted = set(customers)
    grouped: dict[str, list[tuple[str | None, str, Partial]]] = defaultdict(list)
    by_group: dict[tuple[str, str, str], Partial] = {}
    redo: set[str] = set()
    for customer, subscription, dimension, events, total, low, high, latest_ts, latest_id, latest_value, inexact \
            in connection.execute(text(sql), params):
        if customer not in wanted:
            continue
        if inexact:
            redo.add(customer)
            continue
        found = None
        if latest_ts is not None and postgres:
            found = (latest_ts, latest_id, _decimal(latest_value))
        elif latest_ts is not None:  # SQLite's one text: 20 digits of µs, the id's bytes in hex, the value
            space = latest_ts.index(" ", 20)
            found = (int(latest_ts[:20]), bytes.fromhex(latest_ts[20:space]).decode(), Decimal(latest_ts[space + 1:]))
        partial = Partial(events, _decimal(total), _decimal(low), _decimal(high), None, found)
        grouped[customer].append((subscription or None, dimension, partial))
        by_group[(customer, subscription, dimension)] = partial
    if rule.aggregation == "unique_count":
        for customer, subscription, dimension, value in connection.execute(text(
                "SELECT DISTINCT customer, subscription, dimension, value_key FROM rollup_values "
                f"WHERE environment = :env AND meter_key = :key AND hour >= :low AND hour < :high{only}"), params):
            partial = by_group.get((customer, subscription, dimension))
            if partial is not None:
                partial.values.add(value)
    return grouped, redo


def _rows(connection: Any, postgres: bool, environment: str, key: str, rule: RollupRule,
          windows: Sequence[Any]) -> dict[str, list[_Row]]:
    """The rows the windows may take, per customer in hour order."""
    customers = sorted({window.customer for window in windows})
    params: dict[str, Any] = {"env": environment, "key": key, "high": max(hour_after(w.end_us) for w in windows)}
    where = "environment = :env AND meter_key = :key AND hour < :high"
    if rule.aggregation != "weighted_sum":  # weighted_sum's level before a window is made of every earlier row
        params["low"] = min(hour_of(w.start_us) for w in windows)
        where += " AND hour >= :low"
    where += _customer_filter(postgres, customers, params)
    rows: dict[str, list[_Row]] = defaultdict(list)
    by_row: dict[tuple[str, int, str, str], Partial] = {}
    wanted = set(customers)
    for (customer, hour, subscription, dimension, events, total, low, high, moment, latest_ts, latest_id,
         latest_value) in connection.execute(text(
            f"SELECT customer, hour, subscription, dimension, {_VALUES} FROM usage_rollups WHERE {where} "
            "ORDER BY customer, hour"), params):
        if customer not in wanted:
            continue
        partial = Partial(events, _decimal(total), _decimal(low), _decimal(high), _decimal(moment),
                          (latest_ts, latest_id, _decimal(latest_value)) if latest_ts is not None else None)
        rows[customer].append(_Row(hour, subscription or None, dimension, partial))
        by_row[(customer, hour, subscription, dimension)] = partial
    if rule.aggregation == "unique_count":
        for customer, hour, subscription, dimension, value in connection.execute(text(
                f"SELECT customer, hour, subscription, dimension, value_key FROM rollup_values WHERE {where}"), params):
            partial = by_row.get((customer, hour, subscription, dimension))
            if partial is not None:
                partial.values.add(value)
    return rows


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _spans(window: Any) -> tuple[tuple[int, int] | None, list[tuple[int, int]], tuple[int, int] | None]:
    """(whole hours, raw edge spans inside the window, raw span before it within its first hour)."""
    start, end = window.start_us, window.end_us
    first, whole_from, whole_to = hour_of(start), hour_after(start), hour_of(end)
    before = (first, start) if first < start else None
    if end <= start:
        return None, [], before
    if whole_from > whole_to:  # the window lies inside one hour
        return None, [(start, end)], before
    edges = [span for span in ((start, whole_from), (whole_to, end)) if span[0] < span[1]]
    return ((whole_from, whole_to) if whole_from < whole_to else None), edges, before


EdgeEvents = dict[tuple[str, int, int], list[tuple[str, int, Any, str | None]]]


def _edge_events(connection: Any, postgres: bool, environment: str, rule: RollupRule, windows: Sequence[Any],
                 is_weighted: bool) -> EdgeEvents:
    """The raw events of every window's partial hours: {(customer, start, end): [(id, ts, properties, named)]}."""
    spans: set[tuple[str, int, int]] = set()
    for window in windows:
        _, edges, before = _spans(window)
        spans.update((window.customer, *span) for span in edges)
        if is_weighted and before is not None:
            spans.add((window.customer, *before))
    found: EdgeEvents = {span: [] for span in spans}
    if not spans:
        return found
    # an invoice run's windows mostly share their boundaries: one query per distinct span
    by_span: dict[tuple[int, int], set[str]] = defaultdict(set)
    for customer, start, end in spans:
        by_span[(start, end)].add(customer)
    streams = sorted(rule.streams)
    for (start, end), customers in by_span.items():
        params: dict[str, Any] = {"env": environment, "start": start, "end": end,
                                  **{f"s{i}": s for i, s in enumerate(streams)}}
        only = _customer_filter(postgres, sorted(customers), params)
        properties = "CAST(properties AS TEXT)" if postgres else "properties"
        for customer, event_id, ts, raw, named in connection.execute(text(
                f"SELECT customer, id, ts, {properties}, subscription FROM events WHERE environment = :env "
                f"AND status = 'matched' AND meter IN ({', '.join(f':s{i}' for i in range(len(streams)))}) "
                f"AND ts >= :start AND ts < :end{only}"), params):
            if customer in customers:
                found[(customer, start, end)].append((event_id, ts, raw, named))
    return found


def _window_usage(rule: RollupRule, window: Any, rows: Sequence[_Row], edges: EdgeEvents,
                  summed: dict[str, Partial] | None = None) -> Usage | None:
    """One window's usage from its rows (or its whole hours already `summed` per dimension) and the
    raw events of its edges."""
    whole, edge_spans, before = _spans(window)
    inside: dict[str, Partial] = defaultdict(Partial, summed or {})
    prior: dict[str, Partial] = defaultdict(Partial)
    is_weighted = rule.aggregation == "weighted_sum"
    first_hour = hour_of(window.start_us)
    for row in rows if summed is None else ():
        if not window.takes(row.subscription):
            continue
        if whole is not None and whole[0] <= row.hour < whole[1]:
            inside[row.dimension].merge(row.partial)
        elif is_weighted and row.hour < first_hour:
            prior[row.dimension].merge(row.partial)
    for span, target in [*((span, inside) for span in edge_spans),
                         *(((before, prior),) if is_weighted and before is not None else ())]:
        for event_id, ts, properties, named in edges.get((window.customer, *span), ()):
            if not window.takes(named):
                continue
            found = rule.contribution(_decode(properties) if isinstance(properties, str) else properties)
            if found is None:
                continue
            dimension, value = found
            if dimension == SEEN:
                target[dimension].events += 1
            else:
                target[dimension].add(rule.aggregation, ts, event_id, value)
    if is_weighted:
        return _weighted_usage(rule, window, inside, prior)
    if rule.split:
        if not any(partial.events for partial in inside.values()):
            return None
        return split_of(rule.aggregation, inside)
    partial = inside.get(NO_DIMENSION)
    if partial is None or not partial.events:
        return None
    return partial.usage(rule.aggregation)


def _weighted_usage(rule: RollupRule, window: Any, inside: dict[str, Partial], prior: dict[str, Partial]
                    ) -> Usage | None:
    if not rule.split:
        level = prior.get(NO_DIMENSION, Partial())
        now = inside.get(NO_DIMENSION, Partial())
        return Usage(weighted(level.total or Decimal(0), now, window.start_us, window.end_us), now.events)
    parts = {}
    for dimension in {*prior, *inside} - {SEEN}:
        before, now = prior.get(dimension, Partial()), inside.get(dimension, Partial())
        if not before.events and not now.events:
            continue
        parts[dimension_key(dimension)] = Usage(
            weighted(before.total or Decimal(0), now, window.start_us, window.end_us), now.events)
    return Split.of(parts) if parts else None


def stored_rows(connection: Any, environment: str, key: str) -> dict[RowKey, Partial]:
    params = {"env": environment, "key": key}
    found: dict[RowKey, Partial] = {}
    for (customer, hour, subscription, dimension, events, total, low, high, moment, latest_ts, latest_id,
         latest_value) in connection.execute(text(
            f"SELECT customer, hour, subscription, dimension, {_VALUES} FROM usage_rollups "
            "WHERE environment = :env AND meter_key = :key"), params):
        found[(key, customer, hour, subscription, dimension)] = Partial(
            events, _decimal(total), _decimal(low), _decimal(high), _decimal(moment),
            (latest_ts, latest_id, _decimal(latest_value)) if latest_ts is not None else None)
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
                problems.append(f"customer {key[1]} hour {key[2]} subscription {key[3] or '-'} "
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
