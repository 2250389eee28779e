"""The read side of the continuous roll-ups (store/rollups.py): a window's usage from the rows of
its whole hours and the raw events of its partial edge hours, for the meters whose roll-up is ready.

store/usage.py asks here first; the meters returned as left over are read from the raw events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import text

from ..catalog import MeterSpec
from ..domain.aggregation import Usage
from ..domain.dimensions import Split
from ..domain.rollups import NO_DIMENSION, SEEN, Partial, RollupRule, dimension_key, hour_after, hour_of, split_of, weighted
from .db import Store
from .rollups import (
    VALUE_COLUMNS,
    decimal_or_none,
    decode_properties,
    definition_of,
    key_of,
    ready_keys,
    recent_ready_keys,
    registry_changed,
    rule_of,
)


@dataclass
class _Row:
    hour: int
    subscription: str | None
    dimension: str
    partial: Partial


def usage_from_rollups(store: Store, windows: Sequence[Any], meters: Sequence[MeterSpec], environment: str,
                       registry_age: float = 0.0) -> tuple[dict[tuple[int, str], Usage], list[MeterSpec]]:
    """The usage of the meters whose roll-up is ready, in every window, and the meters left to read
    from the raw events. Whole hours come from the roll-up rows; a window's partial edge hours
    (a boundary at :30 in a +05:30 time zone, a proration cut at 14:17) from its raw events.
    `registry_age`: which roll-ups are ready may be what this process read up to that many seconds
    ago (rollups.recent_ready_keys); 0 reads it now."""
    if not windows or not meters:
        return {}, list(meters)
    keyed = {meter.code: (key_of(definition), definition) for meter in meters
             if (definition := definition_of(meter)) is not None}
    if not keyed:
        return {}, list(meters)
    result: dict[tuple[int, str], Usage] = {}
    postgres = store.is_postgres
    with store.engine.connect() as connection:
        ready = recent_ready_keys(store, connection, environment, registry_age)
        chosen = [meter for meter in meters if meter.code in keyed and keyed[meter.code][0] in ready]
        if not chosen:
            return {}, list(meters)
        wanted = sorted({keyed[meter.code] for meter in chosen})

        def read(key: str, definition: str, on: Any = None) -> dict[int, Usage]:
            if on is not None:
                return _read(on, postgres, environment, key, rule_of(definition), windows)
            with store.engine.connect() as own:
                return _read(own, postgres, environment, key, rule_of(definition), windows)

        if postgres and len(wanted) > 1 and len(windows) >= PARALLEL_FROM:
            # one connection per roll-up, each on a thread: the server runs the queries side by side
            # (each a GROUP BY over its own rows), the driver waits for them without the GIL
            with ThreadPoolExecutor(min(len(wanted), PARALLEL_READS), thread_name_prefix="rollup-read") as pool:
                read_all = list(pool.map(lambda item: read(*item), wanted))
        else:
            read_all = [read(key, definition, connection) for key, definition in wanted]
        if registry_age > 0:
            # the ready keys may be a second old: one another process dropped meanwhile has lost its
            # rows, and reading it would give no usage. Checked after the rows were read (a drop
            # removes rows and registration in one transaction), its meters then go to the raw events
            still = ready_keys(connection, environment)
            if not all(key in still for key, _definition in wanted):
                registry_changed()
                kept = [(item, usages) for item, usages in zip(wanted, read_all, strict=True) if item[0] in still]
                wanted, read_all = [item for item, _ in kept], [usages for _, usages in kept]
                chosen = [meter for meter in chosen if keyed[meter.code][0] in still]
    for (key, _definition), usages in zip(wanted, read_all, strict=True):
        for meter in chosen:
            if keyed[meter.code][0] == key:
                result.update({(window_key, meter.code): usage for window_key, usage in usages.items()})
    rest = [meter for meter in meters if meter not in chosen]
    return result, rest


# PostgreSQL: from this many windows on (an invoice run, not a preview), the roll-ups of the request
# are read on this many connections at once
PARALLEL_FROM = 1_000
PARALLEL_READS = 4


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
            found = (latest_ts, latest_id, decimal_or_none(latest_value))
        elif latest_ts is not None:  # SQLite's one text: 20 digits of µs, the id's bytes in hex, the value
            space = latest_ts.index(" ", 20)
            found = (int(latest_ts[:20]), bytes.fromhex(latest_ts[20:space]).decode(), Decimal(latest_ts[space + 1:]))
        partial = Partial(events, decimal_or_none(total), decimal_or_none(low), decimal_or_none(high), None, found)
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
            f"SELECT customer, hour, subscription, dimension, {VALUE_COLUMNS} FROM usage_rollups WHERE {where} "
            "ORDER BY customer, hour"), params):
        if customer not in wanted:
            continue
        number = decimal_or_none
        partial = Partial(events, number(total), number(low), number(high), number(moment),
                          (latest_ts, latest_id, number(latest_value)) if latest_ts is not None else None)
        rows[customer].append(_Row(hour, subscription or None, dimension, partial))
        by_row[(customer, hour, subscription, dimension)] = partial
    if rule.aggregation == "unique_count":
        for customer, hour, subscription, dimension, value in connection.execute(text(
                f"SELECT customer, hour, subscription, dimension, value_key FROM rollup_values WHERE {where}"), params):
            partial = by_row.get((customer, hour, subscription, dimension))
            if partial is not None:
                partial.values.add(value)
    return rows


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
            found = rule.contribution(decode_properties(properties) if isinstance(properties, str) else properties)
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
