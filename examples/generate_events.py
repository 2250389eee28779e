"""Generate a month of realistic usage events (JSONL, the event shape in the README), deterministically.

    python examples/generate_events.py --catalog examples/catalog.yaml \\
        --out examples/events.jsonl --month 2026-10 [--events 20000] [--with-problems]

Flags
  --catalog FILE      catalog to read meters, plans, customers, subscriptions from
                      (YAML or JSON; default: catalog.yaml next to this script)
  --out FILE          where to write the JSONL; "-" or omitted: stdout
  --month YYYY-MM     the month to generate (default: 2026-10)
  --events N          number of good events (default: 20000); problem rows come on top
  --seed N            random seed (default: 2026); same inputs + seed -> same bytes
  --with-problems     append the problem rows listed below after the good events
  --id-prefix TEXT    event ids are TEXT + a zero-padded sequence number
                      (default: "evt-YYYYMM-", so different months never collide)
  --customers N       synthetic mode: ignore the catalog's customers and subscriptions and
                      spread the events over customers cust-00001 .. cust-N (the number is
                      zero-padded to at least 5 digits), each sending every stream of the
                      meter set; the month is taken in the billing entity's timezone
  --meters LIST       the meter set, comma-separated meter codes or stream names from the
                      catalog (e.g. "tokens_gpt4o,api_calls,gpu"); a meter code stands for
                      the stream it reads. Default: the streams of --plan when given, else
                      every stream of the catalog. In catalog mode it restricts each
                      customer's streams to this set.
  --plan CODE         synthetic mode: the plan the synthetic customers are on (it picks the
                      default meter set, the payment currency and --catalog-out's plan);
                      default: the plan whose meters read the most of the meter set
  --catalog-out FILE  synthetic mode: also write a catalog (JSON, which the YAML loader
                      reads too) with the input's entity, meters and plans plus the N
                      synthetic customers, each subscribed to --plan from the 1st of the month
                      (billing_anchor 1, tax_rate "21"), so that the events match and bill

Events
  One JSON object per line: {"id", "customer", "meter", "timestamp", "properties"}, ordered
  by timestamp; timestamps are RFC 3339 UTC with milliseconds ("2026-10-05T13:04:05.123Z").
  "meter" is the stream name a meter reads (its `source`, else its code). Each customer sends
  every stream its plan's charges read, only inside its subscription and the month, where
  the month is taken in the customer's timezone (else the entity's, else UTC). Properties
  carry the meters' fields, shaped by aggregation:
    sum                tokens-like integers; money fields (meters priced by a `percentage`
                       charge) as amounts with two decimals, plus "currency"
    max / min          gauge readings with one decimal around a per-customer level
    unique_count       ids from a per-customer pool ("usr-0042")
    latest             a slowly drifting integer level (seats)
    weighted_sum       +1 / -1 deltas of a level that never goes below 0 (GPU instances)
    filters            the filter property, with the filters' values plus a few the filters
                       leave out (e.g. model "text-embedding-3-small": counted by
                       llm_requests, billed by no token meter)
  A customer's share of the events follows its plan (enterprise > pro > starter), a random
  size factor and how much of the month its subscription covers.

Problem rows (--with-problems), appended in this order after the good events:
  <prefix>bad-unknown-customer   customer "ghost-corp"          -> accepted, unknown_customer
  <prefix>bad-unknown-meter      meter "bandwidth_gb"           -> accepted, unknown_meter
  <prefix>bad-missing-timestamp  no "timestamp" field            -> rejected, missing_field
  <prefix>bad-naive-timestamp    "2026-10-15T10:00:00" (no zone) -> rejected, invalid_timestamp
  <prefix>bad-non-numeric        "tokens": "lots"                -> rejected, invalid_value
  (the first event's id)         an exact copy of the first event -> duplicate, counted once
  <prefix>bad-before-subscription a day before a mid-month start -> accepted, no_subscription
                                 (left out when no subscription starts inside the month)
  <prefix>bad-future             "2099-01-01T00:00:00Z"          -> rejected, future_timestamp
  (truncated line)               not valid JSON                  -> rejected, invalid_json

Speed: 1,000,000 events take a few seconds (no json.dumps per event; timestamps from lookup
tables). Uses only the standard library and PyYAML.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import sys
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HERE = Path(__file__).resolve().parent
DEFAULT_CATALOG = HERE / "catalog.yaml"
DEFAULT_EVENTS = 20_000
DEFAULT_SEED = 2026
DEFAULT_MONTH = "2026-10"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)

# Extra values for filter properties, so that some events fall outside every filter.
FILTER_EXTRAS: dict[str, list[Any]] = {"model": ["text-embedding-3-small"]}
# Relative frequency of categorical values (default 1).
VALUE_WEIGHTS: dict[Any, float] = {
    "gpt-4o": 3, "gpt-4o-mini": 4, "llama-3.1-70b": 2, "mistral-small": 1, "text-embedding-3-small": 1,
}
# Context properties some streams carry besides the meters' fields (by stream name).
STREAM_EXTRAS: dict[str, dict[str, list[Any]]] = {
    "api_calls": {"endpoint": ["/v1/chat/completions", "/v1/chat/completions", "/v1/embeddings",
                               "/v1/files", "/v1/batches"],
                  "status": [200] * 17 + [201, 429, 500]},
}
# Integer ranges (low, spread) for sum fields by name; the value is low + r^2 * spread.
QUANTITY_RANGES: dict[str, tuple[int, int]] = {"tokens": (200, 12_000)}
# How often each kind of stream reports, relative to one another.
ROLE_RATES = {"delta": 0.15, "level": 0.1, "gauge": 0.4, "money": 1.5, "ident": 4.0, "quantity": 8.0}
DEFAULT_RATE = 8.0
# A customer's size by plan code (substring match, first hit wins).
PLAN_SIZES = (("enterprise", 6.0), ("pro", 2.5), ("starter", 1.0))


class InputError(Exception):
    """Bad flags or catalog: reported as one sentence, exit 2."""


# --------------------------------------------------------------------------------------
# catalog


def load_catalog(path: Path) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        document = yaml.load(text, Loader=loader)  # noqa: S506 - safe loader
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: is not valid YAML/JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("meters"), list):
        raise InputError(f"{path}: is not a catalog (it needs a `meters` list)")
    return document


def stream_of(meter: dict[str, Any]) -> str:
    return meter.get("source") or meter["code"]


def plan_streams(plan: dict[str, Any], meters: dict[str, dict[str, Any]]) -> list[str]:
    streams: list[str] = []
    for charge in plan.get("charges") or []:
        meter = meters.get(charge.get("meter"))
        if meter is not None and stream_of(meter) not in streams:
            streams.append(stream_of(meter))
    return streams


@dataclass
class Prop:
    name: str
    role: str  # quantity | money | gauge | level | delta | ident | category | currency
    values: list[Any] = field(default_factory=list)


@dataclass
class StreamSpec:
    name: str
    props: list[Prop]
    rate: float
    numeric_field: str | None  # a field a problem row can make non-numeric


def build_streams(document: dict[str, Any]) -> dict[str, StreamSpec]:
    meters = [m for m in document.get("meters") or [] if isinstance(m, dict) and m.get("code")]
    money_meters = {charge.get("meter") for plan in document.get("plans") or []
                    for charge in plan.get("charges") or [] if charge.get("model") == "percentage"}
    roles = {"sum": "quantity", "max": "gauge", "min": "gauge", "unique_count": "ident",
             "latest": "level", "weighted_sum": "delta"}
    specs: dict[str, StreamSpec] = {}
    for meter in meters:
        name = stream_of(meter)
        spec = specs.setdefault(name, StreamSpec(name, [], DEFAULT_RATE, None))
        known = {p.name: p for p in spec.props}
        column = meter.get("field")
        aggregation = meter.get("aggregation")
        if column and aggregation in roles and column not in known:
            role = "money" if aggregation == "sum" and meter["code"] in money_meters else roles[aggregation]
            spec.props.append(Prop(column, role))
            spec.rate = min(spec.rate, ROLE_RATES.get(role, DEFAULT_RATE))
            if role == "money":
                spec.props.append(Prop("currency", "currency"))
            if role in ("quantity", "money", "gauge") and spec.numeric_field is None:
                spec.numeric_field = column
        for key, values in (meter.get("filters") or {}).items():
            prop = known.get(key) or next((p for p in spec.props if p.name == key), None)
            if prop is None:
                prop = Prop(key, "category")
                spec.props.append(prop)
            for value in list(values or []):
                if value not in prop.values:
                    prop.values.append(value)
    for spec in specs.values():
        for prop in spec.props:
            if prop.role == "category":
                prop.values += [v for v in FILTER_EXTRAS.get(prop.name, []) if v not in prop.values]
        for key, values in STREAM_EXTRAS.get(spec.name, {}).items():
            if all(p.name != key for p in spec.props):
                spec.props.append(Prop(key, "category", list(values)))
    return specs


# --------------------------------------------------------------------------------------
# property makers: for one stream, a function (slot, group) -> the properties' JSON text


def make_properties(spec: StreamSpec, rng: random.Random, currency_of: list[str],
                    scale_of: list[float]) -> Callable[[int, int], str]:
    """`scale_of[group]` is the sender's size: bigger customers store more, have more users and seats."""
    r = rng.random
    parts: list[Callable[[int, int], str]] = []
    for prop in spec.props:
        key = json.dumps(prop.name) + ":"
        parts.append(_maker(prop, key, r, currency_of, scale_of))
    if not parts:
        return lambda slot, group: ""
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda slot, group: first(slot, group) + "," + second(slot, group)
    return lambda slot, group: ",".join([part(slot, group) for part in parts])


def _maker(prop: Prop, key: str, r: Callable[[], float], currency_of: list[str],
           scale_of: list[float]) -> Callable[[int, int], str]:
    role = prop.role
    if role == "quantity":
        low, spread = QUANTITY_RANGES.get(prop.name, (1, 100))
        return lambda slot, group: f"{key}{low + int(r() * r() * spread)}"
    if role == "money":
        def money(slot: int, group: int) -> str:
            cents = 500 + int(r() * r() * 50_000)
            return f"{key}{cents // 100}.{cents % 100:02d}"
        return money
    if role == "currency":
        encoded = [f'{key}"{c}"' for c in currency_of]
        return lambda slot, group: encoded[group]
    if role == "gauge":
        bases: dict[int, int] = {}

        def gauge(slot: int, group: int) -> str:
            base = bases.get(slot)
            if base is None:
                base = bases[slot] = int((20 + r() * r() * 400) * scale_of[group] * 10)  # in tenths
            tenths = int(base * (0.85 + 0.3 * r()))
            return f"{key}{tenths // 10}.{tenths % 10}"
        return gauge
    if role == "ident":
        pools: dict[int, int] = {}

        def ident(slot: int, group: int) -> str:
            pool = pools.get(slot)
            if pool is None:
                pool = pools[slot] = 5 + int(r() * r() * 150 * scale_of[group])
            return f'{key}"usr-{int(r() * pool):04d}"'
        return ident
    if role == "level":
        levels: dict[int, int] = {}

        def level(slot: int, group: int) -> str:
            value = levels.get(slot)
            if value is None:
                value = 3 + int(r() * r() * 40 * scale_of[group])
            else:
                x = r()
                if x < 0.5:
                    value += 1
                elif x < 0.7:
                    value = max(1, value - 1)
                elif x < 0.75:
                    value += 5
            levels[slot] = value
            return f"{key}{value}"
        return level
    if role == "delta":
        running: dict[int, int] = {}

        def delta(slot: int, group: int) -> str:
            value = running.get(slot, 0)
            step = 1 if value == 0 else -1 if value >= 6 else (1 if r() < 0.55 else -1)
            running[slot] = value + step
            return f"{key}{step}"
        return delta
    # category
    choices: list[str] = []
    for value in prop.values or [""]:
        choices += [json.dumps(value)] * max(1, int(VALUE_WEIGHTS.get(value, 1)))
    count = len(choices)
    if count == 1:
        fixed = key + choices[0]
        return lambda slot, group: fixed
    return lambda slot, group: key + choices[int(r() * count)]


# --------------------------------------------------------------------------------------
# who sends what, when


@dataclass
class Group:
    """One sender: a subscription's customer (catalog mode) or a synthetic customer."""

    customer: str
    currency: str
    start_ms: int  # window [start, end) in ms since the epoch
    end_ms: int
    size: float  # share of the events (scale x how much of the month the window covers)
    streams: list[str]
    scale: float = 1.0  # how big the customer is: storage, users, seats grow with it
    subscription_start_ms: int | None = None  # when the subscription starts inside the month


def to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // MS


def month_bounds(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    year, number = int(month[:4]), int(month[5:7])
    following = (year + 1, 1) if number == 12 else (year, number + 1)
    return datetime(year, number, 1, tzinfo=tz), datetime(*following, 1, tzinfo=tz)


def as_moment(value: Any, tz: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=tz)
    text = str(value).strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(0), tzinfo=tz)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"unknown timezone {name!r} in the catalog") from None


def plan_size(code: str) -> float:
    return next((size for hint, size in PLAN_SIZES if hint in code), 1.0)


def catalog_groups(document: dict[str, Any], month: str, rng: random.Random,
                   only: set[str] | None) -> list[Group]:
    entity = document.get("billing_entity") or {}
    meters = {m["code"]: m for m in document.get("meters") or []}
    plans = {p["code"]: p for p in document.get("plans") or []}
    customers = {c["reference"]: c for c in document.get("customers") or []}
    groups = []
    for sub in document.get("subscriptions") or []:
        customer = customers.get(sub.get("customer"))
        plan = plans.get(sub.get("plan"))
        if customer is None or plan is None:
            continue
        tz = zone(customer.get("timezone") or entity.get("timezone") or "UTC")
        month_start, month_end = month_bounds(month, tz)
        start = as_moment(sub.get("start"), tz) or month_start
        end = as_moment(sub.get("end"), tz)
        low = max(month_start, start)
        high = min(month_end, end) if end else month_end
        size = plan_size(plan["code"]) * (0.5 + rng.random())  # drawn even when skipped: stable
        if low >= high:
            continue
        streams = [s for s in plan_streams(plan, meters) if only is None or s in only]
        if not streams:
            continue
        fraction = (high - low) / (month_end - month_start)
        groups.append(Group(customer["reference"], plan.get("currency") or customer.get("currency") or "EUR",
                            to_ms(low), to_ms(high), size * fraction, streams, size,
                            to_ms(start) if start > month_start else None))
    return groups


def synthetic_groups(document: dict[str, Any], month: str, count: int, streams: list[str], currency: str,
                     rng: random.Random) -> list[Group]:
    entity = document.get("billing_entity") or {}
    month_start, month_end = month_bounds(month, zone(entity.get("timezone") or "UTC"))
    low, high = to_ms(month_start), to_ms(month_end)
    width = max(5, len(str(count)))
    r = rng.random
    groups = []
    for n in range(1, count + 1):
        size = 0.5 + r()
        groups.append(Group(f"cust-{n:0{width}d}", currency, low, high, size, streams, size))
    return groups


def resolve_meter_set(text: str | None, document: dict[str, Any], specs: dict[str, StreamSpec]) -> list[str] | None:
    if not text:
        return None
    meters = {m["code"]: m for m in document.get("meters") or []}
    streams: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        if name in meters:
            stream = stream_of(meters[name])
        elif name in specs:
            stream = name
        else:
            raise InputError(f"--meters: {name!r} is neither a meter code nor a stream of the catalog "
                             f"(known: {', '.join(sorted(set(meters) | set(specs)))})")
        if stream not in streams:
            streams.append(stream)
    if not streams:
        raise InputError("--meters: names no meter")
    return streams


# --------------------------------------------------------------------------------------
# writing


class Generator:
    def __init__(self, groups: list[Group], specs: dict[str, StreamSpec], rng: random.Random,
                 id_prefix: str, synthetic: bool) -> None:
        self.groups = groups
        self.synthetic = synthetic
        self.rng = rng
        self.id_prefix = id_prefix
        self.stream_names = sorted({s for g in groups for s in g.streams})
        self.specs = specs
        self.width = len(self.stream_names)
        currency_of = [g.currency for g in groups]
        scale_of = [g.scale for g in groups]
        self.makers = [make_properties(specs[name], rng, currency_of, scale_of) for name in self.stream_names]
        self.customer_json = [json.dumps(g.customer) for g in groups]
        self.meter_json = [json.dumps(name) for name in self.stream_names]
        self.first_line: str | None = None

    def slots(self) -> tuple[list[int], list[float]]:
        index = {name: i for i, name in enumerate(self.stream_names)}
        slots: list[int] = []
        cumulative: list[float] = []
        total = 0.0
        for g, group in enumerate(self.groups):
            for name in group.streams:
                total += group.size * self.specs[name].rate
                slots.append(g * self.width + index[name])
                cumulative.append(total)
        return slots, cumulative

    def write(self, out: Any, count: int) -> int:
        if count <= 0 or not self.groups:
            return 0
        r = self.rng.random
        slots, cumulative = self.slots()
        total = cumulative[-1]
        last = len(slots) - 1
        chosen = [slots[min(bisect.bisect(cumulative, r() * total), last)] for _ in itertools.repeat(None, count)]
        stride = self.width * len(self.groups)
        starts = [g.start_ms for g in self.groups]
        spans = [g.end_ms - g.start_ms for g in self.groups]
        width = self.width
        keys = [(starts[s // width] + int(r() * spans[s // width])) * stride + s for s in chosen]
        del chosen
        keys.sort()

        day_prefix: dict[int, str] = {}
        clock_text = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
        millis_text = [f".{ms:03d}Z" for ms in range(1000)]
        makers, customers, meters = self.makers, self.customer_json, self.meter_json
        id_format = self.id_prefix + "{:0" + str(max(7, len(str(count)))) + "d}"
        buffer: list[str] = []
        append = buffer.append
        previous = -1
        repeats = 0
        for number, key in enumerate(keys, start=1):
            if key == previous:  # same sender and stream in the same millisecond: move it 1 ms on,
                repeats += 1     # so that `latest` never sees a tie
            else:
                previous, repeats = key, 0
            stamp, slot = divmod(key + repeats * stride, stride)
            group, stream = divmod(slot, width)
            seconds, millis = divmod(stamp, 1000)
            day, second = divmod(seconds, 86400)
            prefix = day_prefix.get(day)
            if prefix is None:
                prefix = day_prefix[day] = (EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
            append(
                f'{{"id":"{id_format.format(number)}","customer":{customers[group]},"meter":{meters[stream]},'
                f'"timestamp":"{prefix}{clock_text[second]}{millis_text[millis]}",'
                f'"properties":{{{makers[stream](slot, group)}}}}}\n'
            )
            if len(buffer) >= 50_000:
                if self.first_line is None:
                    self.first_line = buffer[0]
                out.write("".join(buffer))
                buffer.clear()
        if buffer:
            if self.first_line is None:
                self.first_line = buffer[0]
            out.write("".join(buffer))
        return count

    def problems(self, out: Any, month: str) -> int:
        """The deliberately bad rows (see the module docstring); returns how many."""
        if not self.groups:
            return 0
        group = self.groups[0]
        stream = next((name for name in group.streams if self.specs[name].numeric_field), group.streams[0])
        spec = self.specs[stream]
        maker = self.makers[self.stream_names.index(stream)]
        properties = "{" + maker(self.stream_names.index(stream), 0) + "}"
        middle = datetime.fromtimestamp((group.start_ms + group.end_ms) // 2000, UTC)
        stamp = middle.strftime("%Y-%m-%dT%H:%M:%SZ")
        prefix = self.id_prefix + "bad-"
        rows: list[Any] = [
            {"id": prefix + "unknown-customer", "customer": "ghost-corp", "meter": stream, "timestamp": stamp,
             "properties": properties},
            {"id": prefix + "unknown-meter", "customer": group.customer, "meter": "bandwidth_gb",
             "timestamp": stamp, "properties": {"gb": 12}},
            {"id": prefix + "missing-timestamp", "customer": group.customer, "meter": stream,
             "properties": properties},
            {"id": prefix + "naive-timestamp", "customer": group.customer, "meter": stream,
             "timestamp": f"{month}-15T10:00:00", "properties": properties},
        ]
        if spec.numeric_field:
            rows.append({"id": prefix + "non-numeric", "customer": group.customer, "meter": stream,
                         "timestamp": stamp, "properties": {spec.numeric_field: "lots"}})
        if self.first_line is not None:
            rows.append(self.first_line)
        late = max((g for g in self.groups if g.subscription_start_ms is not None),
                   key=lambda g: g.subscription_start_ms or 0, default=None)
        if late is not None or self.synthetic:
            target = late or group  # synthetic customers' subscriptions start on the 1st
            before = datetime.fromtimestamp(target.start_ms // 1000, UTC) - timedelta(days=1)
            first_stream = target.streams[0]
            first_maker = self.makers[self.stream_names.index(first_stream)]
            target_index = self.groups.index(target)
            rows.append({"id": prefix + "before-subscription", "customer": target.customer,
                         "meter": first_stream, "timestamp": before.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "properties": "{" + first_maker(target_index * self.width
                                                         + self.stream_names.index(first_stream),
                                                         target_index) + "}"})
        rows.append({"id": prefix + "future", "customer": group.customer, "meter": stream,
                     "timestamp": "2099-01-01T00:00:00Z", "properties": properties})
        rows.append(f'{{"id": "{prefix}invalid-json", "customer": "{group.customer}", "meter": \n')
        for row in rows:
            out.write(row if isinstance(row, str) else _encode_row(row))
        return len(rows)


def _encode_row(row: dict[str, Any]) -> str:
    """A row whose `properties` may already be JSON text."""
    parts = []
    for key, value in row.items():
        text = value if key == "properties" and isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        parts.append(f"{json.dumps(key)}:{text}")
    return "{" + ",".join(parts) + "}\n"


def write_catalog(path: Path, document: dict[str, Any], groups: list[Group], plan: dict[str, Any],
                  month: str) -> None:
    entity = document.get("billing_entity") or {}
    catalog = {
        "billing_entity": entity,
        "meters": document.get("meters") or [],
        "plans": document.get("plans") or [],
        "customers": [{"reference": g.customer, "name": f"Synthetic customer {g.customer[5:]}",
                       "country": entity.get("country") or "NL", "currency": plan["currency"],
                       "tax_rate": "21"} for g in groups],
        "subscriptions": [{"reference": f"{g.customer}-sub", "customer": g.customer, "plan": plan["code"],
                           "start": f"{month}-01", "billing_anchor": 1} for g in groups],
    }
    path.write_text(json.dumps(catalog, default=str, separators=(",", ":")) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Generate a month of usage events (JSONL) for a ratecard catalog, deterministically.",
        epilog="See the module docstring for the event shapes and the problem rows.")
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG, help="catalog file (default: %(default)s)")
    parser.add_argument("--out", default="-", help="JSONL file to write; - for stdout (default)")
    parser.add_argument("--month", default=DEFAULT_MONTH, help="YYYY-MM (default: %(default)s)")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="good events (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument("--with-problems", action="store_true", help="append the deliberately bad rows")
    parser.add_argument("--id-prefix", default=None, help='event id prefix (default: "evt-YYYYMM-")')
    parser.add_argument("--customers", type=int, default=None,
                        help="synthetic mode: customers cust-00001..cust-N instead of the catalog's")
    parser.add_argument("--meters", default=None, help="comma-separated meter codes or stream names to emit")
    parser.add_argument("--plan", default=None, help="synthetic mode: the synthetic customers' plan")
    parser.add_argument("--catalog-out", type=Path, default=None,
                        help="synthetic mode: also write a catalog subscribing them to --plan")
    args = parser.parse_args(argv)
    try:
        datetime.strptime(args.month, "%Y-%m")
        if len(args.month) != 7:
            raise ValueError
    except ValueError:
        parser.error(f"--month: {args.month!r} is not a month such as 2026-10")
    if args.events < 0:
        parser.error("--events must be 0 or more")
    if args.customers is not None and args.customers < 1:
        parser.error("--customers must be at least 1")
    if args.customers is None and (args.catalog_out or args.plan):
        parser.error("--plan and --catalog-out only apply with --customers")
    return args


def run(args: argparse.Namespace) -> str:
    began = clock.perf_counter()
    rng = random.Random(args.seed)
    document = load_catalog(args.catalog)
    specs = build_streams(document)
    meter_set = resolve_meter_set(args.meters, document, specs)
    id_prefix = args.id_prefix if args.id_prefix is not None else f"evt-{args.month.replace('-', '')}-"
    meters = {m["code"]: m for m in document.get("meters") or []}
    plans = {p["code"]: p for p in document.get("plans") or []}
    plan = None
    if args.customers is not None:
        if args.plan is not None:
            if args.plan not in plans:
                raise InputError(f"--plan: the catalog has no plan {args.plan!r} "
                                 f"(known: {', '.join(plans) or 'none'})")
            plan = plans[args.plan]
        streams = meter_set or (plan_streams(plan, meters) if plan else list(specs))
        if plan is None and plans:
            plan = max(plans.values(), key=lambda p: len(set(plan_streams(p, meters)) & set(streams)))
        if args.catalog_out and plan is None:
            raise InputError(f"{args.catalog}: has no plans to subscribe the synthetic customers to")
        currency = (plan or {}).get("currency") or (document.get("billing_entity") or {}).get("currency") or "EUR"
        groups = synthetic_groups(document, args.month, args.customers, streams, currency, rng)
    else:
        groups = catalog_groups(document, args.month, rng, set(meter_set) if meter_set else None)
    generator = Generator(groups, specs, rng, id_prefix, args.customers is not None)

    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
    try:
        written = generator.write(out, args.events)
        problems = generator.problems(out, args.month) if args.with_problems else 0
    finally:
        if out is not sys.stdout:
            out.close()
    if args.catalog_out and plan is not None:
        write_catalog(args.catalog_out, document, groups, plan, args.month)
    seconds = clock.perf_counter() - began
    where = "stdout" if args.out == "-" else args.out
    extra = f" + {problems} problem rows" if problems else ""
    return (f"wrote {written} events{extra} for {len(groups)} customers on "
            f"{len(generator.stream_names)} streams to {where} in {seconds:.1f}s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args)
    except InputError as exc:
        print(f"generate_events: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"generate_events: {args.catalog}: an item lacks the field {exc}", file=sys.stderr)
        return 2
    print(summary, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
