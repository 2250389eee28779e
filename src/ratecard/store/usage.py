"""Usage aggregation pushed down to SQL, batched over many (subscription, period) windows.

The windows go into a temporary table and every meter is aggregated for all of them in one
scan (one GROUP BY with a FILTER clause per meter), so an invoice run costs one query, not
one per subscription or per meter. SQLite adds JSON numbers as doubles: sums, max and min of
windows holding a non-integer or a large integer are redone exactly from the JSON text. average is
never SQL AVG: it is the exact sum divided by the count, both taken from the same scan.
weighted_sum needs the level before each window and the order of events inside it, so its
events are fetched and handed to the pure domain function. So are the events of a sum meter a
charge prices event by event (MeterSpec.per_event: a percentage charge with free units or
per-transaction bounds): its Usage carries each event's value, in order (`_per_event`).

A window may belong to one subscription: it then takes only the events naming that subscription,
plus those naming none when it takes unreferenced events (Window.takes); a window without one
takes every event of its customer. So each event is counted by one subscription's window only,
when a customer's overlapping subscriptions are told apart by the subscription events name.

Both stores follow domain.json_values' rule for what a value is (null is none, true is not 1,
numbers by value, filters by text form): PostgreSQL's jsonb mostly has it built in; SQLite
reads booleans as 0 and 1 and numbers as doubles, so its expressions check the JSON type where
that matters, and hand the rare value SQL cannot compare exactly (a non-integer or a large
integer under unique_count or a filter, an object or array) to two small functions
(ratecard_json_key, ratecard_number_text) registered on the connection.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from itertools import groupby
from operator import itemgetter
from typing import Any

import msgspec
import orjson
from sqlalchemy import text

from ..catalog import MeterSpec
from ..domain.aggregation import Sample, Usage, aggregate, average_of, exact_sum
from ..domain.dimensions import split_usage, split_weighted
from ..domain.instants import from_micros
from ..domain.json_values import canonical, is_number, is_plain_text, number_text, text_form
from .db import Store
from .rollup_reads import usage_from_rollups
from .rollups import definition_of, key_of, ready_keys
from .types import sqlite_json_path


@dataclass(frozen=True)
class Window:
    key: int
    customer: str
    start_us: int
    end_us: int
    # the subscription the window bills: it takes the events naming it, and (takes_unreferenced)
    # those naming none; None takes every event of the customer, whatever it names
    subscription: str | None = None
    takes_unreferenced: bool = True

    def takes(self, named: str | None) -> bool:
        """Whether an event of the window's customer and time naming `named` is counted in it."""
        if self.subscription is None:
            return True
        return named == self.subscription if named is not None else self.takes_unreferenced


# Window.takes in SQL, for an event e and a window w of the usage_windows table
_TAKES = "(w.subscription IS NULL OR e.subscription = w.subscription OR (e.subscription IS NULL AND w.unnamed = 1))"


def aggregate_usage(
    store: Store, windows: Sequence[Window], meters: Sequence[MeterSpec], environment: str = "live"
) -> dict[tuple[int, str], Usage]:
    """Usage of every meter in every window: {(window key, meter code): Usage}. A meter measuring a
    charge priced per dimension (MeterSpec.split) gives a domain.dimensions.Split (see _split_pass)."""
    result: dict[tuple[int, str], Usage] = {}
    if not windows or not meters:
        return result
    # meters whose continuous roll-up is ready are read from it (store/rollups.py), the others raw
    rolled, meters = usage_from_rollups(store, windows, meters, environment)
    result.update(rolled)
    if not meters:
        return result
    split = [meter for meter in meters if meter.split is not None]
    if split:
        result.update(_split_pass(store, windows, split, environment))
        meters = [meter for meter in meters if meter.split is None]
        if not meters:
            return result
    postgres = store.is_postgres
    grouped = [meter for meter in meters if meter.aggregation != "weighted_sum" and not _is_per_event(meter)]
    # PostgreSQL rolls a span up for the windows' customers only (see _span_pass), so a share of a
    # run (billing.claims: a batch of customers) takes that plan too, not the windows' join
    least = min(SCAN_FROM_WINDOWS, SPAN_FROM_WINDOWS_POSTGRES) if postgres else SCAN_FROM_WINDOWS
    scan = len(windows) >= least
    spans, joined = (_common_spans(windows, least) if grouped and scan else ({}, list(windows)))
    with store.engine.begin() as connection:
        if not postgres:
            _register_functions(connection)
        # the joined windows first; on SQLite the spans' windows then join them in the table, as
        # the exact redo of inexact sums and weighted_sum read the windows from it
        loaded = bool(joined) or not postgres
        if loaded:
            _load_windows(connection, postgres, joined)
        if grouped and joined:
            result.update(_single_pass(connection, postgres, grouped, environment, scan, joined))
        if spans and not postgres:
            _insert_windows(connection, False, [w for span_windows in spans.values() for w in span_windows])
        split: list[Window] = []  # span windows that take part of their customer's events
        for (start_us, end_us), span_windows in spans.items():
            result.update(_span_pass(connection, postgres, grouped, environment, start_us, end_us, span_windows,
                                     split))
        for meter in meters:
            if meter.aggregation == "weighted_sum":
                result.update(_weighted(connection, postgres, windows, meter, environment))
            elif _is_per_event(meter):
                result.update(_per_event(connection, postgres, windows, meter, environment))
        if split:
            # rare (a customer whose events name several subscriptions, or one and none): the join tells
            _load_windows(connection, postgres, split)
            loaded = True
            result.update(_single_pass(connection, postgres, grouped, environment, windows=split))
        if loaded:
            connection.execute(text("DROP TABLE usage_windows"))
    return result


# From this many windows on (a whole invoice run rather than a few subscriptions), SQLite reads
# the events table in order instead of one index range per window: random row lookups cost
# more than reading rows that are not needed.
SCAN_FROM_WINDOWS = 500


# PostgreSQL: a span shared by this many windows is rolled up with `GROUP BY customer` over the
# windows' customers (an index range each), cheaper per event than the join with the windows table
# from a few dozen windows on.
SPAN_FROM_WINDOWS_POSTGRES = 50
# ... for up to this many customers; past it the filter costs more than the rows it skips (a whole
# run of 10,000 customers: 3.9 s with it, 3.2 s without, at 1,000,000 events)
SPAN_CUSTOMERS_POSTGRES = 1000


# A span [start, end) shared by at least SCAN_FROM_WINDOWS windows (subscriptions billed on the
# same calendar) is rolled up by GROUP BY customer over that time range, at most this many spans
# per run; the other windows go through the joined windows table.
MAX_SPAN_SCANS = 3


def _common_spans(windows: Sequence[Window], least: int = SCAN_FROM_WINDOWS
                  ) -> tuple[dict[tuple[int, int], list[Window]], list[Window]]:
    """The largest spans many windows share (each rolled up on its own), and the other windows.

    `GROUP BY customer` over one time range is the bare roll-up's own plan, and the customer
    picks the window: on PostgreSQL a parallel scan with partial hash aggregates (a join with a
    temporary table, private to the backend, allows no parallel plan); on SQLite a scan with no
    probe of the windows' index per event (~25% of the joined roll-up's time)."""
    by_span: dict[tuple[int, int], list[Window]] = defaultdict(list)
    for window in windows:
        by_span[(window.start_us, window.end_us)].append(window)
    largest = sorted(by_span, key=lambda span: (-len(by_span[span]), span))[:MAX_SPAN_SCANS]
    spans = {span: by_span[span] for span in largest if len(by_span[span]) >= max(1, least)}
    joined = [window for window in windows if (window.start_us, window.end_us) not in spans]
    return spans, joined


def _span_pass(connection: Any, postgres: bool, meters: Sequence[MeterSpec], environment: str, start_us: int,
               end_us: int, windows: Sequence[Window], split: list[Window]) -> dict[tuple[int, str], Usage]:
    """Every meter for every window of one span, in one GROUP BY customer over its time range.

    Each customer's row also says how many of its events name a subscription, and the least
    and greatest name: enough to tell, for nearly every window, that it takes all of the
    customer's events or none (Window.takes). A window that may take only part of them (a
    customer whose events name several subscriptions, or some one and some none) is left out
    and appended to `split`."""
    params: dict[str, Any] = {"env": environment, "span_start": start_us, "span_end": end_us}
    streams = sorted({name for meter in meters for name in (meter.code, meter.stream)})
    for index, name in enumerate(streams):
        params[f"s{index}"] = name
    where = (
        f"WHERE e.environment = :env AND e.meter IN ({', '.join(f':s{i}' for i in range(len(streams)))}) "
        "AND e.status = 'matched' AND e.ts >= :span_start AND e.ts < :span_end"
    )
    customers = sorted({window.customer for window in windows})
    if postgres and len(customers) <= SPAN_CUSTOMERS_POSTGRES:
        # only the windows' customers: the rows of the others would be read and dropped
        params["customers"] = customers
        where += " AND e.customer = ANY(:customers)"
    if postgres:
        columns: list[str] = []
        for index, meter in enumerate(meters):
            columns += _postgres_columns(meter, params, f"m{index}_")
        sql = (f"SELECT e.customer, {_NAMED_COLUMNS.format(named='e.subscription')}, {', '.join(columns)} "
               f"FROM events e {where} GROUP BY e.customer")
    else:
        sql = _sqlite_single_pass(meters, params, f"FROM events e NOT INDEXED {where}", "e.customer",
                                  named="e.subscription")
    by_customer: dict[str, list[Window]] = defaultdict(list)
    for window in windows:
        by_customer[window.customer].append(window)
    rows = []
    keys: dict[str, list[int]] = {}
    for row in connection.execute(text(sql), params):
        taking = []
        for window in by_customer.get(row[0], ()):
            share = _share(window, *row[1:4])
            if share == "all":
                taking.append(window.key)
            elif share == "part":
                split.append(window)
        keys[row[0]] = taking
        rows.append((row[0], *row[4:]))
    return _collect_rows(connection, postgres, meters, environment, rows, keys.get)


# per customer group: how many of its events name a subscription, the least and greatest name
_NAMED_COLUMNS = "COUNT({named}), MIN({named}), MAX({named})"


def _share(window: Window, named: int, least: str | None, greatest: str | None) -> str:
    """Which of a customer's events a window of that customer takes: all, none or part (or
    maybe part: the join tells). `named` of them name a subscription, between least and greatest."""
    if window.subscription is None:
        return "all"
    if named == 0:
        return "all" if window.takes_unreferenced else "none"
    if least == greatest:  # every named event names the same subscription
        if least == window.subscription:
            return "all" if window.takes_unreferenced else "part"
        return "part" if window.takes_unreferenced else "none"
    return "part"  # several names: whether the window's is among them is for the join to tell


def _load_windows(connection: Any, postgres: bool, windows: Sequence[Window]) -> None:
    connection.execute(text("DROP TABLE IF EXISTS usage_windows"))
    # subscription: NULL for a window of every event of its customer; unnamed: 1 when it also
    # takes the events naming no subscription (Window.takes, _TAKES)
    connection.execute(text(
        "CREATE TEMP TABLE usage_windows (key BIGINT PRIMARY KEY, customer VARCHAR(256), "
        "start_ts BIGINT, end_ts BIGINT, subscription VARCHAR(256), unnamed SMALLINT)"
    ))
    _insert_windows(connection, postgres, windows)
    if postgres:
        connection.execute(text("ANALYZE usage_windows"))
    else:
        connection.execute(text("CREATE INDEX temp.usage_windows_customer ON usage_windows (customer, start_ts)"))


def _insert_windows(connection: Any, postgres: bool, windows: Sequence[Window]) -> None:
    if not windows:
        return
    raw = connection.connection.driver_connection
    rows = [(w.key, w.customer, w.start_us, w.end_us, w.subscription, int(w.takes_unreferenced)) for w in windows]
    if postgres:
        with raw.cursor() as cursor, cursor.copy(
            "COPY usage_windows (key, customer, start_ts, end_ts, subscription, unnamed) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
    else:
        # one statement, not one step per window: the driver releases the GIL for each step, and an
        # invoice run rolls up on a second thread while it prices (one step per row would wait on
        # the pricing thread's GIL for every window)
        raw.execute(
            "INSERT INTO usage_windows SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
            "json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), "
            "json_extract(value, '$[5]') FROM json_each(?)",
            (orjson.dumps(rows).decode(),),
        )


def _conditions(meter: MeterSpec, postgres: bool, params: dict[str, Any], prefix: str = "",
                with_field: bool = True) -> list[str]:
    """Stream names, field presence (unless `with_field` is False) and filters as SQL; values as
    bound parameters named with `prefix`, so the conditions of several meters can share one statement."""
    names = sorted({meter.split.meter or meter.code, meter.stream} if meter.split is not None
                   else {meter.code, meter.stream})
    placeholders = []
    for index, name in enumerate(names):
        params[f"{prefix}stream{index}"] = name
        placeholders.append(f":{prefix}stream{index}")
    conditions = [f"e.meter IN ({', '.join(placeholders)})"]
    if with_field and meter.field and meter.aggregation != "count":  # count counts events, whatever their fields
        # unique_count takes any value but null; the others numbers only (never true or false)
        if postgres:
            params[f"{prefix}field"] = meter.field
            kind = "<> 'null'" if meter.aggregation == "unique_count" else "= 'number'"
            conditions.append(f"jsonb_typeof(e.properties -> :{prefix}field) {kind}")
        else:
            params[f"{prefix}path"] = sqlite_json_path(meter.field)
            kinds = "<> 'null'" if meter.aggregation == "unique_count" else "IN ('integer', 'real')"
            conditions.append(f"json_type(e.properties, :{prefix}path) {kinds}")
    for f_index, (key, values) in enumerate(sorted(meter.filters.items())):
        conditions.append(_filter_condition(key, values, postgres, params, f"{prefix}filter{f_index}_"))
    return conditions


def _filter_condition(key: str, values: Sequence[Any], postgres: bool, params: dict[str, Any], name: str) -> str:
    """The property `key` has the text form of one of `values` (domain.json_values.text_form).

    Texts only a string can have (model names, regions: nearly every filter) are one comparison
    with the JSON value; a number's or a boolean's text form is worked out per event."""
    texts = sorted({form for form in map(text_form, values) if form is not None})
    plain = [form for form in texts if is_plain_text(form)]
    special = [form for form in texts if not is_plain_text(form)]
    params[f"{name}key"] = key if postgres else sqlite_json_path(key)
    value = f"e.properties -> :{name}key" if postgres else f"json_extract(e.properties, :{name}key)"
    terms = []
    if plain:
        slots = []
        for index, form in enumerate(plain):
            params[f"{name}p{index}"] = orjson.dumps(form).decode() if postgres else form
            slots.append(f"CAST(:{name}p{index} AS jsonb)" if postgres else f":{name}p{index}")
        terms.append(f"({value}) IN ({', '.join(slots)})")
    if special:
        for index, form in enumerate(special):
            params[f"{name}s{index}"] = form
        slots = ", ".join(f":{name}s{index}" for index in range(len(special)))
        if postgres:
            as_text = (f"CASE jsonb_typeof({value}) WHEN 'number' THEN trim_scale(({value})::numeric)::text "
                       f"WHEN 'string' THEN e.properties ->> :{name}key WHEN 'boolean' THEN e.properties ->> :{name}key END")
        else:
            # json_extract reads true/false as 1/0 and an object or array as its JSON text
            json = f"e.properties, :{name}key"
            as_text = (
                f"CASE typeof({value}) "
                f"WHEN 'text' THEN CASE WHEN substr({value}, 1, 1) IN ('{{', '[') "
                f"AND json_type({json}) IN ('object', 'array') THEN NULL ELSE {value} END "
                f"WHEN 'integer' THEN CASE WHEN {value} IN (0, 1) AND json_type({json}) IN ('true', 'false') "
                f"THEN json_type({json}) ELSE CAST({value} AS TEXT) END "
                f"WHEN 'real' THEN ratecard_number_text(e.properties -> :{name}key) END"
            )
        terms.append(f"{as_text} IN ({slots})")
    return terms[0] if len(terms) == 1 else f"({' OR '.join(terms)})"


# SQLite orders "latest" candidates by one text: the timestamp in 20 digits, the id's UTF-8 bytes
# in hex, a space, the value's JSON text. Hex digits sort as the bytes do and the space before
# any of them, so an id sorts before a longer id it starts (the order PostgreSQL's COLLATE "C"
# and Python give), whatever the id's length or script. The value starts after that space.
LATEST_ID_AT = 20


def _windows_join(postgres: bool) -> str:
    """Windows drive the join, each one a range scan of the usage index.

    SQLite has no statistics for the temporary windows table and may otherwise scan events
    by status and probe every window per event; CROSS JOIN fixes its join order (and the
    unary + on status keeps it off the status index). PostgreSQL plans from ANALYZE.
    """
    return "usage_windows w JOIN events e" if postgres else "usage_windows w CROSS JOIN events e"


def _status_term(postgres: bool) -> str:
    # SQLite: the unary + keeps the planner off the status index for this term
    return "e.status" if postgres else "+e.status"


def _postgres_columns(meter: MeterSpec, params: dict[str, Any], prefix: str) -> list[str]:
    """One meter's SELECT columns on PostgreSQL: its event count, its value, a check (unused)."""
    where = f"FILTER (WHERE {' AND '.join(_conditions(meter, True, params, prefix))})"
    value = f"(e.properties -> :{prefix}field)::numeric"
    aggregate = {
        "count": "NULL",
        "sum": f"SUM({value}) {where}",
        "average": f"SUM({value}) {where}",  # divided by the count column, exactly, in Python
        "max": f"MAX({value}) {where}",
        "min": f"MIN({value}) {where}",
        # jsonb equality is the rule: numbers by value, types apart, objects whatever their key order
        "unique_count": f"COUNT(DISTINCT e.properties -> :{prefix}field) {where}",
        # ties by the id's bytes, whatever the database's collation
        "latest": f"(array_agg({value} ORDER BY e.ts DESC, e.id COLLATE \"C\" DESC) {where})[1]",
    }[meter.aggregation]
    return [f"COUNT(*) {where}", aggregate, "0"]


def _single_pass(connection: Any, postgres: bool, meters: Sequence[MeterSpec],
                 environment: str, scan: bool = False, windows: Sequence[Window] = ()) -> dict[tuple[int, str], Usage]:
    """Every meter's aggregate for every window in one scan of the events (FILTER per meter).

    On PostgreSQL the windows' overall time range is also stated as bounds on e.ts: events is
    partitioned by month there, and a join's bounds alone prune no partition."""
    params: dict[str, Any] = {"env": environment}
    streams = sorted({name for meter in meters for name in (meter.code, meter.stream)})
    for index, name in enumerate(streams):
        params[f"s{index}"] = name
    stream_list = ", ".join(f":s{i}" for i in range(len(streams)))
    if not postgres and scan:
        # most events are wanted: read the table in order and probe the few windows per customer
        join = (
            "FROM events e NOT INDEXED CROSS JOIN usage_windows w ON w.customer = e.customer "
            f"AND e.ts >= w.start_ts AND e.ts < w.end_ts AND {_TAKES} "
            f"WHERE e.environment = :env AND e.meter IN ({stream_list}) AND e.status = 'matched'"
        )
    else:
        join = (
            f"FROM {_windows_join(postgres)} ON e.environment = :env AND e.customer = w.customer "
            f"AND e.ts >= w.start_ts AND e.ts < w.end_ts AND {_TAKES} "
            f"AND e.meter IN ({stream_list}) WHERE {_status_term(postgres)} = 'matched'"
        )
        if postgres and windows:
            params["from_ts"], params["to_ts"] = min(w.start_us for w in windows), max(w.end_us for w in windows)
            join += " AND e.ts >= :from_ts AND e.ts < :to_ts"
    if postgres:
        columns: list[str] = []
        for index, meter in enumerate(meters):
            columns += _postgres_columns(meter, params, f"m{index}_")
        sql = f"SELECT w.key, {', '.join(columns)} {join} GROUP BY w.key"
    else:
        sql = _sqlite_single_pass(meters, params, join)
    return _collect(connection, postgres, meters, environment, sql, params, _one_key)


def _one_key(key: int) -> tuple[int]:
    return (key,)


def _collect(connection: Any, postgres: bool, meters: Sequence[MeterSpec], environment: str, sql: str,
             params: dict[str, Any], keys_of: Any) -> dict[tuple[int, str], Usage]:
    """Usage per (window, meter) from the rows of a grouped pass; `keys_of` maps a row's group
    to its windows' keys. SQLite sums that took a double are redone exactly."""
    return _collect_rows(connection, postgres, meters, environment, connection.execute(text(sql), params), keys_of)


def _collect_rows(connection: Any, postgres: bool, meters: Sequence[MeterSpec], environment: str, rows: Any,
                  keys_of: Any) -> dict[tuple[int, str], Usage]:
    """_collect over rows already read: (group, then three cells per meter)."""
    result: dict[tuple[int, str], Usage] = {}
    inexact: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        keys = keys_of(row[0])
        if not keys:
            continue
        for index, meter in enumerate(meters):
            count, raw_value, check = row[1 + 3 * index : 4 + 3 * index]
            if not count:
                continue
            quantity = _quantity(meter.aggregation, count, raw_value, check, postgres)
            for key in keys:
                if quantity is None:
                    inexact[index].append(key)
                else:
                    result[(key, meter.code)] = Usage(quantity, count)
    for index, inexact_keys in inexact.items():
        result.update(_exact_sqlite(connection, meters[index], environment, inexact_keys))
    return result


def _sqlite_single_pass(meters: Sequence[MeterSpec], params: dict[str, Any], join: str, key: str = "w.key",
                        named: str | None = None) -> str:
    """SQLite re-parses a JSON text at every json_extract, so each field is extracted once per
    event in an inner query (LIMIT -1 keeps SQLite from flattening it back into the aggregate)
    and the meters aggregate those columns. json_extract reads true and false as 1 and 0, so a
    field's JSON type is a column too (SQLite reuses the statement's last parse of the same
    text for it: a few percent of the pass, where looking for booleans in the text cost 20%).
    `named` (the events' subscription column) adds the _NAMED_COLUMNS right after the key."""
    fields: dict[str, str] = {}  # JSON path -> inner column name
    unique_fields: set[str] = set()

    def column_for(field: str) -> str:
        path = sqlite_json_path(field)
        if path not in fields:
            fields[path] = f"f{len(fields)}"
            params[f"path_{fields[path]}"] = path
        return fields[path]

    inner = [f"{key} AS key"] + ([f"{named} AS named"] if named else [])
    outer: list[str] = [_NAMED_COLUMNS.format(named="named")] if named else []
    for index, meter in enumerate(meters):
        prefix = f"m{index}_"
        condition = " AND ".join(_conditions(meter, False, params, prefix, with_field=False))
        matched = f"c{index}"
        inner.append(f"({condition}) AS {matched}")
        if not meter.field or meter.aggregation == "count":
            outer += [f"SUM({matched})", "NULL", "0"]
            continue
        value = column_for(meter.field)
        if meter.aggregation == "unique_count":
            unique_fields.add(value)
            where = f"FILTER (WHERE {matched} AND {value} IS NOT NULL)"  # JSON null extracts as NULL
            outer += [f"COUNT(*) {where}", f"COUNT(DISTINCT {_sqlite_unique_key(value)}) {where}", "0"]
            continue
        where = f"FILTER (WHERE {matched} AND {value}_type IN ('integer', 'real'))"
        # a double, or an integer SQLite's 64-bit SUM could overflow on, sends the window to the exact
        # redo; SUM itself only adds the small integers (below 2^32 each: 2^31 events cannot overflow)
        small = f"{value} BETWEEN -{SMALL_INTEGER} AND {SMALL_INTEGER}"
        check = f"SUM(typeof({value}) = 'real' OR NOT {small}) {where}"
        if meter.aggregation == "latest":
            text_column = f"t{index}"
            inner.append(f"CASE WHEN {condition} THEN printf('%020d', e.ts) || hex(e.id) || ' ' || "
                         f"(e.properties -> :path_{value}) END AS {text_column}")
            outer += [f"COUNT(*) {where}", f"MAX({text_column}) {where}", check]
            continue
        if meter.aggregation in ("sum", "average"):
            total = f"SUM(CASE WHEN typeof({value}) = 'integer' AND {small} THEN {value} END) {where}"
        else:
            total = f"{meter.aggregation.upper()}({value}) {where}"
        outer += [f"COUNT(*) {where}", total, check]
    for name in fields.values():
        json = f"e.properties, :path_{name}"
        inner += [f"json_extract({json}) AS {name}", f"json_type({json}) AS {name}_type"]
        if name in unique_fields:
            # the JSON text of the values unique_count compares in Python: non-integers, integers
            # past 64 bits (both extracted as doubles), objects and arrays
            inner.append(f"CASE WHEN typeof(json_extract({json})) = 'real' OR json_type({json}) IN ('object', 'array') "
                         f"THEN e.properties -> :path_{name} END AS {name}_json")
    return f"SELECT key, {', '.join(outer)} FROM (SELECT {', '.join(inner)} {join} LIMIT -1) GROUP BY key"


def _sqlite_unique_key(column: str) -> str:
    """A value unique_count counts once per distinct key: strings and 64-bit integers as
    extracted (text and integers never compare equal), true and false as one-byte blobs, the
    others by ratecard_json_key."""
    return (f"CASE WHEN {column}_json IS NOT NULL THEN ratecard_json_key({column}_json) "
            f"WHEN {column}_type = 'true' THEN x'01' WHEN {column}_type = 'false' THEN x'00' ELSE {column} END")


_decode_json = msgspec.json.Decoder(float_hook=Decimal).decode
_INT64 = range(-(2**63), 2**63)


def _json_key(raw: str | None) -> int | bytes | None:
    """ratecard_json_key: a number equal to a 64-bit integer as that integer (so 1.0 meets the
    1 SQLite extracted), any other number as its plain text, an object or array as its canonical
    JSON; never equal to a string or to true/false (blobs of other lengths)."""
    if raw is None:
        return None
    try:
        value = _decode_json(raw)
    except (msgspec.DecodeError, ValueError):
        return None
    if is_number(value):
        number = Decimal(value)
        if number == number.to_integral_value() and int(number) in _INT64:
            return int(number)
        return b"n" + number_text(number).encode()
    return b"j" + msgspec.json.encode(canonical(value), order="sorted")


def _json_number_text(raw: str | None) -> str | None:
    """ratecard_number_text: a JSON number's plain decimal form (a filter's text form)."""
    if raw is None:
        return None
    try:
        value = _decode_json(raw)
    except (msgspec.DecodeError, ValueError):
        return None
    return number_text(value) if is_number(value) else None


def _register_functions(connection: Any) -> None:
    raw = connection.connection.driver_connection
    raw.create_function("ratecard_json_key", 1, _json_key, deterministic=True)
    raw.create_function("ratecard_number_text", 1, _json_number_text, deterministic=True)


def _json_number(raw: str) -> Decimal:
    """A JSON number's text as the Decimal PostgreSQL's numeric makes of it: exact, an exponent
    written out (1E+2 is 100) and no negative zero, so both stores print the same quantity."""
    number = Decimal(raw)
    if number.as_tuple().exponent > 0:  # type: ignore[operator]
        number = Decimal(int(number))
    return number.copy_abs() if number.is_zero() else number


# SQLite's SUM adds integers in 64 bits and fails the whole query past 2^63 - 1 (one event of
# 9223372036854775807 and one of 1 stopped every invoice run): larger integers are summed exactly in Python
SMALL_INTEGER = 2**32


def _quantity(aggregation: str, count: int, raw_value: Any, check: Any, postgres: bool) -> Decimal | None:
    """The quantity from one aggregate cell, or None when SQLite must redo it exactly."""
    if aggregation == "count":
        return Decimal(count)
    if aggregation == "unique_count":
        return Decimal(raw_value)
    if postgres:
        return _settled(aggregation, _decimal(raw_value), count)
    if aggregation == "latest":
        return _json_number(raw_value[raw_value.index(" ", LATEST_ID_AT) + 1 :])
    if check:
        # a double (or a large integer) took part: SQLite's sum, or its comparison of a double
        # with a near integer (2 and 2.0000000000000000001), may be off: redo it from the JSON text
        return None
    return _settled(aggregation, _decimal(raw_value), count)


def _settled(aggregation: str, value: Decimal, count: int) -> Decimal:
    """average from the exact sum; max and min without trailing zeros, as of equal values (0 and
    0.0, 1.5 and 1.50) each store may return either."""
    if aggregation == "average":
        return average_of(value, count)
    return _without_trailing_zeros(value) if aggregation in ("max", "min") else value


def _without_trailing_zeros(value: Decimal) -> Decimal:
    """1.50 as 1.5, 100 as 100: exactly, whatever the digits (Decimal.normalize rounds to the context)."""
    if value.is_zero():
        return Decimal(0)
    sign, digits, exponent = value.as_tuple()
    while exponent < 0 and digits[-1] == 0:  # type: ignore[operator]
        digits, exponent = digits[:-1], exponent + 1  # type: ignore[operator]
    return Decimal((sign, digits, exponent))


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def _exact_sqlite(connection: Any, meter: MeterSpec, environment: str, keys: list[int]) -> dict[tuple[int, str], Usage]:
    """Redo sum/average/max/min from the values' JSON text (SQLite computed them as doubles)."""
    params: dict[str, Any] = {"env": environment}
    conditions = _conditions(meter, False, params)
    values: dict[int, list[Sample]] = defaultdict(list)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        slots = ", ".join(f":k{i}" for i in range(len(chunk)))
        params.update({f"k{i}": key for i, key in enumerate(chunk)})
        sql = (
            f"SELECT w.key, e.ts, e.properties -> :path FROM {_windows_join(False)} "
            "ON e.environment = :env AND e.customer = w.customer AND e.ts >= w.start_ts AND e.ts < w.end_ts "
            f"AND {_TAKES} "
            f"WHERE {_status_term(False)} = 'matched' AND {' AND '.join(conditions)} AND w.key IN ({slots})"
        )
        for key, ts, raw in connection.execute(text(sql), params):
            values[key].append(Sample(from_micros(ts), _json_number(raw)))
    result = {}
    for key, samples in values.items():
        usage = aggregate(meter.aggregation, samples)
        if meter.aggregation in ("max", "min"):
            usage = Usage(_without_trailing_zeros(usage.quantity), usage.events)
        result[(key, meter.code)] = usage
    return result


def _values_by_customer(connection: Any, postgres: bool, windows: Sequence[Window], meter: MeterSpec,
                        environment: str, since_us: int | None, order: str
                        ) -> dict[str, list[tuple[int, Decimal, str | None]]]:
    """The meter's matched events of the windows' customers from `since_us` (None: from the first)
    to the last window's end, each as (µs, value, the subscription it names), per customer in
    `order` (SQL after the customer)."""
    params: dict[str, Any] = {"env": environment, "until": max(w.end_us for w in windows)}
    if postgres:  # the windows table may hold only the joined windows
        params["customers"] = sorted({w.customer for w in windows})
    if since_us is not None:
        params["since"] = since_us
    conditions = _conditions(meter, postgres, params)
    value = "(e.properties -> :field)::text" if postgres else "e.properties -> :path"
    customers = "= ANY(:customers)" if postgres else "IN (SELECT DISTINCT customer FROM usage_windows)"
    since = "AND e.ts >= :since " if since_us is not None else ""
    sql = (
        f"SELECT e.customer, e.ts, {value}, e.subscription FROM events e "
        f"WHERE e.environment = :env {since}AND e.ts < :until AND e.status = 'matched' "
        f"AND e.customer {customers} AND {' AND '.join(conditions)} ORDER BY e.customer, {order}"
    )
    by_customer: dict[str, list[tuple[int, Decimal, str | None]]] = defaultdict(list)
    for customer, ts, raw, named in connection.execute(text(sql), params):
        by_customer[customer].append((ts, _json_number(str(raw)), named))
    return by_customer


def _weighted(connection: Any, postgres: bool, windows: Sequence[Window], meter: MeterSpec,
              environment: str) -> dict[tuple[int, str], Usage]:
    """weighted_sum: the level before each window plus the ordered deltas inside it."""
    # every event before the last window's end: the level a window starts from counts
    by_customer = _values_by_customer(connection, postgres, windows, meter, environment, None, "e.ts")
    result = {}
    for window in windows:
        # the level a window starts from is made of the events it takes, as its deltas are
        deltas = [(ts, v) for ts, v, named in by_customer.get(window.customer, ()) if window.takes(named)]
        prior = exact_sum(v for ts, v in deltas if ts < window.start_us)
        inside = [Sample(from_micros(ts), v) for ts, v in deltas if window.start_us <= ts < window.end_us]
        result[(window.key, meter.code)] = aggregate(
            "weighted_sum", inside, from_micros(window.start_us), from_micros(window.end_us), prior
        )
    return result


def _is_per_event(meter: MeterSpec) -> bool:
    """A sum meter whose events' values a charge needs one by one (off the single pass)."""
    return getattr(meter, "per_event", False) and meter.aggregation == "sum"


def _per_event(connection: Any, postgres: bool, windows: Sequence[Window], meter: MeterSpec,
               environment: str) -> dict[tuple[int, str], Usage]:
    """A sum with each event's value: the events inside each window (Window.takes), in the period's
    order (timestamp, then when ratecard received it, then the id's bytes, on both stores)."""
    by_bytes = 'e.id COLLATE "C"' if postgres else "e.id"  # SQLite compares text by its bytes
    by_customer = _values_by_customer(connection, postgres, windows, meter, environment,
                                      min(w.start_us for w in windows), f"e.ts, e.received_at, {by_bytes}")
    moments = {customer: [ts for ts, _, _ in rows] for customer, rows in by_customer.items()}
    result = {}
    for window in windows:
        rows = by_customer.get(window.customer)
        if not rows:
            continue
        first = bisect_left(moments[window.customer], window.start_us)
        last = bisect_left(moments[window.customer], window.end_us)
        values = tuple(v for _, v, named in rows[first:last] if window.takes(named))
        if values:
            result[(window.key, meter.code)] = Usage(exact_sum(values), len(values), values)
    return result


# ---------------------------------------------------------------- a few windows (the upcoming invoice)

# Up to this many windows (one customer's subscriptions) are rolled up by `few_windows_usage`
# without the windows table; more go to `aggregate_usage`.
FEW_WINDOWS = 16
SQLITE_MMAP_BYTES = 1 << 30  # address space, not memory: the OS decides what stays resident
# On SQLite, a stream read by more meters than this goes through aggregate_usage's single pass
MAX_READERS = 3


def few_windows_usage(store: Store, windows: Sequence[Window], meters: Sequence[MeterSpec],
                      environment: str = "live", registry_age: float = 0.0) -> dict[tuple[int, str], Usage]:
    """The same as `aggregate_usage`, faster for a handful of windows (a preview of one customer).

    `aggregate_usage` is built for an invoice run's thousands of windows: a temporary windows table
    (PostgreSQL creates, analyzes and drops it in the system catalogs every call) joined to the
    events, and on SQLite one extraction per event feeding a FILTER per meter and column. Here each
    window's bounds are query parameters, so every query is a range of the usage index:
    PostgreSQL aggregates all meters of a window in one statement (FILTER per meter, no table);
    SQLite takes one statement per meter over that meter's streams only, with its conditions in
    WHERE (a count meter reads no JSON) and the field extracted once per event. The rare cases
    that need more go the invoice run's way: weighted_sum through `aggregate_usage` (so are, on
    SQLite, the meters of a stream more than MAX_READERS meters read: one pass beats a scan each),
    and on SQLite a sum (average, max, min) that met a double or a large integer is redone exactly
    from the values' JSON text, as `_exact_sqlite` does. `registry_age`: see `usage_from_rollups`."""
    if len(windows) > FEW_WINDOWS:
        return aggregate_usage(store, windows, meters, environment)
    result, meters = usage_from_rollups(store, windows, meters, environment, registry_age)
    split = [meter for meter in meters if meter.split is not None]
    if split and windows:
        result.update(_split_pass(store, windows, split, environment))
        meters = [meter for meter in meters if meter.split is None]
    grouped = [meter for meter in meters if meter.aggregation != "weighted_sum" and not _is_per_event(meter)]
    rolled_up = [meter for meter in meters if meter.aggregation == "weighted_sum" or _is_per_event(meter)]
    if not store.is_postgres:  # one statement per meter: a stream many meters read is scanned once instead
        readers: dict[str, int] = defaultdict(int)
        for meter in grouped:
            for stream in {meter.code, meter.stream}:
                readers[stream] += 1
        crowded = [meter for meter in grouped if max(readers[meter.code], readers[meter.stream]) > MAX_READERS]
        grouped = [meter for meter in grouped if meter not in crowded]
        rolled_up += crowded
    if windows and grouped:
        with store.engine.connect() as connection:
            if not store.is_postgres:
                # a SQLite connection is opened per use, its page cache empty: mapping the file lets
                # it read the pages the OS holds without a read() per page (this connection only)
                connection.exec_driver_sql(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            for window in windows:
                if store.is_postgres:
                    result.update(_window_postgres(connection, grouped, environment, window))
                    continue
                for meter in grouped:
                    usage = _window_sqlite(connection, meter, environment, window)
                    if usage is None:  # a double or a large integer took part
                        usage = _window_sqlite_exact(connection, meter, environment, window)
                    if usage.events:
                        result[(window.key, meter.code)] = usage
    if windows and rolled_up:
        result.update(aggregate_usage(store, windows, rolled_up, environment))
    return result


@lru_cache(maxsize=1024)
def _statement(sql: str) -> Any:
    """`text(sql)`, built once per distinct SQL: the few-windows queries are the same text call
    after call (the bounds are parameters), and parsing a text's parameters costs more than its
    SQLite query (about 0.1 ms per computation of the entitlements)."""
    return text(sql)


def _window_params(environment: str, window: Window) -> dict[str, Any]:
    return {"env": environment, "customer": window.customer, "start": window.start_us, "end": window.end_us,
            "subscription": window.subscription, "unnamed": int(window.takes_unreferenced)}


# the window's customer and time, and the events it takes (Window.takes, as _TAKES for the run's
# windows table): each event counted by one subscription's window, as the invoice run counts it
WINDOW_RANGE = ("e.environment = :env AND e.customer = :customer AND e.ts >= :start AND e.ts < :end "
                "AND (CAST(:subscription AS VARCHAR(256)) IS NULL OR e.subscription = :subscription "
                "OR (e.subscription IS NULL AND :unnamed = 1))")


def _window_postgres(connection: Any, meters: Sequence[MeterSpec], environment: str,
                     window: Window) -> dict[tuple[int, str], Usage]:
    """Every meter of one window in one statement: the columns of `_span_pass`, without GROUP BY."""
    params = _window_params(environment, window)
    streams = sorted({name for meter in meters for name in (meter.code, meter.stream)})
    params.update({f"s{index}": name for index, name in enumerate(streams)})
    columns: list[str] = []
    for index, meter in enumerate(meters):
        columns += _postgres_columns(meter, params, f"m{index}_")
    sql = (f"SELECT 0, {', '.join(columns)} FROM events e WHERE {WINDOW_RANGE} "
           f"AND e.meter IN ({', '.join(f':s{i}' for i in range(len(streams)))}) AND e.status = 'matched'")
    return _collect_rows(connection, True, meters, environment, connection.execute(_statement(sql), params),
                         lambda _: (window.key,))


def _window_sqlite(connection: Any, meter: MeterSpec, environment: str, window: Window) -> Usage | None:
    """One meter over one window; None when the result must be redone exactly (a double, or an
    integer beyond SMALL_INTEGER, took part in a sum, average, max or min)."""
    params = _window_params(environment, window)
    # the field's type is tested on the value extracted once, not by a second json_type() parse
    conditions = [c for c in _conditions(meter, False, params) if "json_type" not in c]
    where = f"WHERE {WINDOW_RANGE} AND {' AND '.join(conditions)} AND e.status = 'matched'"
    if not meter.field or meter.aggregation == "count":
        count = connection.execute(_statement(f"SELECT COUNT(*) FROM events e {where}"), params).scalar()
        return Usage(Decimal(count), count)
    params["value_path"] = sqlite_json_path(meter.field)
    extracted = "json_extract(e.properties, :value_path) AS v"
    if meter.aggregation == "unique_count":
        sql = (f"SELECT COUNT(*), COUNT(DISTINCT v), 0 FROM (SELECT {extracted} FROM events e {where} LIMIT -1) "
               "WHERE v IS NOT NULL")
    elif meter.aggregation == "latest":
        # the latest event's value's JSON text, ordered as _sqlite_single_pass orders it
        sql = ("SELECT COUNT(*), MAX(printf('%020d%-256s', ts, id) || raw), 0 FROM (SELECT e.ts AS ts, e.id AS id, "
               f"(e.properties -> :value_path) AS raw, {extracted} FROM events e {where} LIMIT -1) "
               "WHERE typeof(v) IN ('integer', 'real')")
    else:
        small = f"v BETWEEN -{SMALL_INTEGER} AND {SMALL_INTEGER}"
        total = (f"SUM(CASE WHEN typeof(v) = 'integer' AND {small} THEN v END)"
                 if meter.aggregation in ("sum", "average") else f"{meter.aggregation.upper()}(v)")
        sql = (f"SELECT COUNT(*), {total}, SUM(typeof(v) = 'real' OR NOT {small}) "
               f"FROM (SELECT {extracted} FROM events e {where} LIMIT -1) WHERE typeof(v) IN ('integer', 'real')")
    count, raw_value, check = connection.execute(_statement(sql), params).one()
    if not count:
        return Usage.zero()
    quantity = _quantity(meter.aggregation, count, raw_value, check, False)
    return None if quantity is None else Usage(quantity, count)


def _window_sqlite_exact(connection: Any, meter: MeterSpec, environment: str, window: Window) -> Usage:
    """One meter over one window from its values' JSON text, aggregated exactly (`_exact_sqlite`'s rule)."""
    params = _window_params(environment, window)
    conditions = _conditions(meter, False, params)
    sql = (f"SELECT e.ts, e.properties -> :path FROM events e WHERE {WINDOW_RANGE} AND {' AND '.join(conditions)} "
           "AND e.status = 'matched'")
    samples = [Sample(from_micros(ts), Decimal(raw)) for ts, raw in connection.execute(text(sql), params)]
    return aggregate(meter.aggregation, samples)


# ---------------------------------------------------------------- usage per dimension


def _split_pass(store: Store, windows: Sequence[Window], meters: Sequence[MeterSpec],
                environment: str) -> dict[tuple[int, str], Usage]:
    """The usage of charges priced per dimension: per meter, one scan of the windows' events (the
    same join and conditions as the other meters, the meter's field not required: an event that
    does not count is told in Python), each event's properties read as JSON text and split by
    domain.dimensions.split_usage, the one rule for both stores (its exact Decimal arithmetic is the
    reference the SQL aggregates are tested against). Events come in (window, time, id) order, the
    order `latest` breaks ties by on both stores (ids by their bytes)."""
    result: dict[tuple[int, str], Usage] = {}
    postgres = store.is_postgres
    with store.engine.begin() as connection:
        _load_windows(connection, postgres, windows)
        for meter in meters:
            charge = meter.split
            assert charge is not None
            if meter.aggregation == "weighted_sum":
                result.update(_split_weighted(connection, postgres, windows, meter, charge, environment))
                continue
            params: dict[str, Any] = {"env": environment}
            conditions = _conditions(meter, postgres, params, with_field=False)
            properties = "CAST(e.properties AS TEXT)" if postgres else "e.properties"
            order = 'e.id COLLATE "C"' if postgres else "e.id"
            sql = (
                f"SELECT w.key, e.ts, {properties} FROM {_windows_join(postgres)} "
                "ON e.environment = :env AND e.customer = w.customer AND e.ts >= w.start_ts AND e.ts < w.end_ts "
                f"AND {_TAKES} WHERE {_status_term(postgres)} = 'matched' AND {' AND '.join(conditions)} "
                f"ORDER BY w.key, e.ts, {order}"
            )
            # the rows come window by window: one window's events are decoded and split at a time
            for key, rows in groupby(connection.execute(text(sql), params), key=itemgetter(0)):
                result[(key, meter.code)] = split_usage(
                    meter.aggregation, meter.field, charge.filters, charge.group_by,
                    ((from_micros(ts), _decode_json(raw)) for _, ts, raw in rows))
        connection.execute(text("DROP TABLE usage_windows"))
    return result


def _split_weighted(connection: Any, postgres: bool, windows: Sequence[Window], meter: MeterSpec, charge: Any,
                    environment: str) -> dict[tuple[int, str], Usage]:
    """weighted_sum per dimension: every event of the windows' customers before the last window's
    end (the level before a window counts), as `_weighted` reads them, split by split_weighted."""
    params: dict[str, Any] = {"env": environment, "until": max(w.end_us for w in windows)}
    conditions = _conditions(meter, postgres, params, with_field=False)
    properties = "CAST(e.properties AS TEXT)" if postgres else "e.properties"
    sql = (
        f"SELECT e.customer, e.ts, {properties}, e.subscription FROM events e "
        "WHERE e.environment = :env AND e.ts < :until AND e.status = 'matched' "
        f"AND e.customer IN (SELECT DISTINCT customer FROM usage_windows) AND {' AND '.join(conditions)} "
        "ORDER BY e.customer, e.ts"
    )
    by_customer: dict[str, list[tuple[Any, Any, str | None]]] = defaultdict(list)
    for customer, ts, raw, named in connection.execute(text(sql), params):
        by_customer[customer].append((from_micros(ts), _decode_json(raw), named))
    result: dict[tuple[int, str], Usage] = {}
    for window in windows:
        # the level a window starts from is made of the events it takes, as its deltas are
        taken = [(at, values) for at, values, named in by_customer.get(window.customer, ()) if window.takes(named)]
        split = split_weighted(meter.field, charge.filters, charge.group_by, taken, from_micros(window.start_us),
                               from_micros(window.end_us))
        if split.parts:
            result[(window.key, meter.code)] = split
    return result


def all_rolled_up(store: Store, meters: Sequence[MeterSpec], environment: str = "live") -> bool:
    """Whether aggregate_usage would read every one of the meters from a ready roll-up, none from
    the raw events (as of now: a roll-up dropped meanwhile is then read raw, with the same figures)."""
    definitions = [definition_of(meter) for meter in meters]
    if not definitions or None in definitions:
        return False
    with store.engine.connect() as connection:
        ready = ready_keys(connection, environment)
    return all(key_of(definition) in ready for definition in definitions)
