"""Check one raw event against the rules and the catalog: reject it, or accept it with a status.

Rejections (never stored): invalid_json, missing_field, invalid_timestamp, future_timestamp,
archived_period, invalid_value (a number anywhere in the properties outside domain.numbers' bound
among them). archived_period: the timestamp falls in a month detached to an archive (PostgreSQL,
store/partitions.py); an invoice run would recompute that month's closed periods from the events
still attached, without the archived ones.
Accepted events are stored matched, or unmatched with the reason they cannot be billed yet:
unknown_customer, unknown_meter, no_subscription (reprocessing re-checks them).
An event may name the subscription that bills it (`subscription`): it is matched only when that
subscription is the customer's, active at the event's time and charging its meter. An event
naming none is matched by an active subscription of its customer that takes unnamed events (one
without `requires_reference`). Why a no_subscription event matched nothing: OUTSIDE_REASONS.
A matched event inside a service period whose invoice is already final is flagged `late`: it is
stored, but the final invoice never changes.

An event a subscription takes is `unpriced` rather than matched when no charge of that
subscription's plan in force at the event's time counts it: no charged meter reads its meter
name (meter_not_charged), or those that do leave it out by their filters or field
(filtered_out). No invoice line would ever hold it, so it is flagged where it arrives instead of
being billed silently at nothing; reprocessing re-checks it after the catalog changed.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec

from ..catalog import Catalog, MeterSpec
from ..domain.aggregation import NUMERIC_AGGREGATIONS
from ..domain.instants import EPOCH, MICROSECOND, to_micros
from ..domain.json_values import is_number, text_form
from ..domain.money import MoneyError, to_decimal
from ..domain.numbers import UPPER as _UPPER
from ..domain.numbers import number_problem, out_of_bound
from ..store.events import Row
from ..store.partitions import Month, archived_spans
from .records import Event, RawEvent, Rejection

MAX_ID_LENGTH = 256
MAX_SUBSCRIPTION_LENGTH = 256  # events.subscription is String(256)

# why a known customer's event (on a known meter) is no_subscription; the first three are about
# events naming no subscription, measured against every subscription's lifetime
OUTSIDE_REASONS = (
    "before_start",  # earlier than every subscription of the customer
    "after_end",  # later than all of them ended
    "between_subscriptions",  # in a gap between them
    "reference_required",  # the subscriptions active then take only events that name them
    "unknown_subscription",  # the subscription named is not one of the customer's
    "named_subscription_not_active",  # the subscription named is not active at the event's time
    "named_subscription_without_meter",  # the plan of the subscription named charges no meter reading the event
)
# why an event a subscription takes is `unpriced`: no invoice line would hold it
UNPRICED_REASONS = (
    "meter_not_charged",  # no charge of the plan in force at its time reads its meter name
    "filtered_out",  # the meters charged read its meter name, but their filters (or field) leave it out
)
# events may be stamped slightly ahead of our clock by the sender's; beyond this they are refused
FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

_encode = msgspec.json.Encoder(decimal_format="number").encode
_NONE = type(None)


# RFC 3339 date-time, strictly: full date, `T`/`t` (or a space, as RFC 3339 allows by note),
# hh:mm:ss, an optional fraction, then `Z`/`z` or ±hh:mm. ASCII digits only; the zone is
# optional here so that its absence gets its own reason. Anything ISO 8601 has besides
# (week dates, ordinal dates, basic format, hour-only offsets) is refused.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
)


def parse_timestamp(value: Any) -> datetime | str:
    """An RFC 3339 timestamp with its zone -> aware datetime (a fraction finer than microseconds
    is truncated); else the reason as text. Blanks around it (CSV padding) are ignored."""
    if not isinstance(value, str):
        return f"must be an RFC 3339 string, got {type(value).__name__}"
    match = _RFC3339.fullmatch(value.strip(" \t\r\n"))
    try:
        if match is None:
            raise ValueError
        year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
        micros = int((match.group(7) or "0").ljust(6, "0")[:6])
        zone = None
        if match.group(8):
            zone = UTC
        elif match.group(9):
            hours, minutes = int(match.group(10)), int(match.group(11))
            if hours > 23 or minutes > 59:
                raise ValueError
            offset = timedelta(hours=hours, minutes=minutes)
            zone = timezone(-offset if match.group(9) == "-" else offset)
        moment = datetime(year, month, day, hour, minute, second, micros, tzinfo=zone)
    except ValueError:  # no match, or a field out of range (month 13, 24:00, second 60, Feb 30)
        return f"{value[:60]!r} is not an RFC 3339 timestamp"
    if moment.tzinfo is None:
        return f"{value[:60]!r} has no timezone (add Z or an offset such as +01:00)"
    return moment


# 'YYYY-MM-DD' -> µs from the epoch to that day's midnight UTC, for the valid dates met so far
_MIDNIGHTS: dict[str, int] = {}
# 'YYYY-MM-DDTHH' (as written: T, t or a space) -> µs from the epoch to that hour (UTC), for the
# first 13 characters of the valid instants met so far
_HOURS: dict[str, int] = {}
_DAY_US = 86_400_000_000


def timestamp_micros(value: Any) -> int | str:
    """`parse_timestamp` as µs since the epoch (UTC), or the same reason as text.

    The import's hot path: a well-formed timestamp with its zone is worked out from its fields
    (each date checked once, by `date`, then remembered) instead of building a datetime; anything
    else goes through `parse_timestamp`, which gives the very same instant or reason.

    Quickest of all, a UTC instant whose first 13 characters (`YYYY-MM-DDTHH`) are those of a
    valid instant read before: that hour is remembered (`_HOURS`), and only the minutes, seconds,
    fraction and `Z` are checked here, as the pattern checks them (ASCII digits only)."""
    if type(value) is str:
        base = _HOURS.get(value[:13])
        if base is not None and value[13:14] == ":" and value[16:17] == ":" and value[-1:] in ("Z", "z"):
            minutes, seconds = value[14:16], value[17:19]
            clock = minutes + seconds
            if clock.isdigit() and clock.isascii() and minutes < "60" and seconds < "60":
                size = len(value)
                if size == 20:
                    return base + (int(minutes) * 60 + int(seconds)) * 1_000_000
                fraction = value[20:-1]
                if value[19] == "." and 0 < size - 21 <= 9 and fraction.isdigit() and fraction.isascii():
                    return base + (int(minutes) * 60 + int(seconds)) * 1_000_000 + int(fraction[:6].ljust(6, "0"))
        match = _RFC3339.fullmatch(value.strip(" \t\r\n"))
        if match is not None:
            _, _, _, hour, minute, second, fraction, utc, sign, offset_hours, offset_minutes = match.groups()
            if utc or sign:
                midnight = _MIDNIGHTS.get(match.string[:10])
                if midnight is None:
                    midnight = _midnight(match.string[:10])
                hour_n, minute_n, second_n = int(hour), int(minute), int(second)
                if midnight is not None and hour_n < 24 and minute_n < 60 and second_n < 60:
                    hour_start = midnight + hour_n * 3_600_000_000
                    if len(_HOURS) >= 100_000:
                        _HOURS.clear()
                    _HOURS[match.string[:13]] = hour_start
                    micros = hour_start + (minute_n * 60 + second_n) * 1_000_000 \
                        + (int(fraction.ljust(6, "0")[:6]) if fraction else 0)
                    if utc:
                        return micros
                    if int(offset_hours) < 24 and int(offset_minutes) < 60:
                        offset = (int(offset_hours) * 3600 + int(offset_minutes) * 60) * 1_000_000
                        return micros - offset if sign == "+" else micros + offset
    moment = parse_timestamp(value)
    return moment if type(moment) is str else (moment - EPOCH) // MICROSECOND


def _midnight(day: str) -> int | None:
    try:
        midnight = (date(int(day[:4]), int(day[5:7]), int(day[8:10])) - _EPOCH_DAY).days * _DAY_US
    except ValueError:  # month 13, Feb 30, year 0: parse_timestamp says why
        return None
    if len(_MIDNIGHTS) >= 100_000:
        _MIDNIGHTS.clear()
    _MIDNIGHTS[day] = midnight
    return midnight


_EPOCH_DAY = date(1970, 1, 1)


def _merged(spans: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Windows [start, end) sorted, the overlapping or touching ones merged: (starts, ends)."""
    starts: list[int] = []
    ends: list[int] = []
    for start, end in sorted(spans):
        if starts and start <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


@dataclass(frozen=True)
class FieldRule:
    """What the meters reading one event stream need from an event's properties."""

    required_any: tuple[str, ...]  # when every meter needs a field: at least one must be present
    numeric: tuple[str, ...]  # fields that must hold numbers when present


class EventValidator:
    """Validates and matches events against one catalog at one moment ("now" is passed in).

    This is the import hot path: the per-stream field rules and per-customer lifetimes are
    worked out once here, so checking an event is a few dictionary lookups.
    """

    def __init__(self, catalog: Catalog | None, now: datetime,
                 finalized: Mapping[str, Sequence[tuple[int, int]]] | None = None,
                 archived: Sequence[tuple[int, int]] = ()) -> None:
        """`finalized`: customer -> the service windows [start, end) in µs already billed on a
        final invoice (store.invoices.finalized_windows); matched events inside one are late.
        `archived`: the months [start, end) in µs detached to an archive (store.partitions): an
        event in one is refused (archived_period)."""
        self.catalog = catalog
        self.latest_allowed = to_micros(now + FUTURE_TOLERANCE)
        self.earliest_allowed = to_micros(EARLIEST)
        self.customers: set[str] = set(catalog.customers) if catalog else set()
        self.rules: dict[str, FieldRule] = {}
        # customer -> [start, end) in µs of every subscription, and of those taking unnamed events
        self.lifetimes: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
        self.open_lifetimes: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
        # customer -> (start, end, what it prices) of the subscriptions taking unnamed events
        self.open_pricing: dict[str, list[tuple[int, int | None, PricedTerms]]] = defaultdict(list)
        self.pricing: dict[str, PricedTerms] = {}  # subscription reference -> what it prices
        self.named: dict[str, NamedSubscription] = {}
        self.finalized: dict[str, tuple[list[int], list[int]]] = {}
        self.set_finalized(finalized or {})
        self.archived: tuple[tuple[int, int], ...] = ()
        self.archived_until = 0  # the end of the last archived month: no event after it is in one
        self.archived_figure = ""  # the fingerprint's figure the months came from (follow_archived)
        self.set_archived(archived)
        if catalog is None:
            return
        by_stream: dict[str, list] = defaultdict(list)
        for meter in catalog.meters.values():
            by_stream[meter.code].append(meter)
            if meter.stream != meter.code:
                by_stream[meter.stream].append(meter)
        for stream, meters in by_stream.items():
            fields = tuple(dict.fromkeys(m.field for m in meters if m.field))
            every_meter_needs_a_field = all(m.field for m in meters)
            numeric = tuple(dict.fromkeys(m.field for m in meters if m.field and m.aggregation in NUMERIC_AGGREGATIONS))
            self.rules[stream] = FieldRule(fields if every_meter_needs_a_field else (), numeric)
        for subscription in catalog.subscriptions.values():
            schedule = subscription.schedule()
            lifetime = (to_micros(schedule.start), to_micros(schedule.end) if schedule.end is not None else None)
            self.lifetimes[subscription.customer].append(lifetime)
            priced = _priced_terms(catalog, subscription)
            self.pricing[subscription.reference] = priced
            if not subscription.requires_reference:
                self.open_lifetimes[subscription.customer].append(lifetime)
                self.open_pricing[subscription.customer].append((*lifetime, priced))
            self.named[subscription.reference] = NamedSubscription(
                subscription.customer, *lifetime, _meter_names(catalog, subscription.plan.charges))

    def set_finalized(self, windows: Mapping[str, Sequence[tuple[int, int]]]) -> None:
        """Replace the finalized windows; overlapping or touching ones are merged, so a lookup is
        one bisect over a customer's few merged windows."""
        merged: dict[str, tuple[list[int], list[int]]] = {}
        for customer, spans in windows.items():
            found = _merged(spans)
            if found[0]:
                merged[customer] = found
        self.finalized = merged

    def add_finalized(self, windows: Mapping[str, Sequence[tuple[int, int]]]) -> None:
        """Add windows to those held (documents finalized since they were read): the result is
        the one `set_finalized` gives for all of them at once, as merging touching or overlapping
        windows does not depend on the order they come in. Only the customers named are rebuilt,
        each replaced whole, so a request checking an event meanwhile sees the old or the new."""
        for customer, spans in windows.items():
            held = self.finalized.get(customer)
            found = _merged([*zip(*held, strict=True), *spans] if held is not None else spans)
            if found[0]:
                self.finalized[customer] = found

    def set_archived(self, spans: Sequence[tuple[int, int]]) -> None:
        """Replace the archived months (a cached validator is given them whenever the fingerprint's
        `archived` moves); a request checking an event meanwhile sees the old months or the new."""
        archived = tuple(sorted(spans))
        self.archived, self.archived_until = archived, max((end for _, end in archived), default=0)

    def follow_archived(self, figure: str) -> None:
        """Take the archived months the fingerprint's figure names (store.partitions.ARCHIVED_FIGURE)
        when it moved since the last one given (a detach or an attach, by any process)."""
        if figure != self.archived_figure:
            self.set_archived(archived_spans(figure))
            self.archived_figure = figure

    def in_archived(self, ts: int) -> bool:
        # archived months are few (and old: most events are after the last, one comparison)
        return ts < self.archived_until and any(start <= ts < end for start, end in self.archived)

    def is_late(self, customer: str, ts: int) -> bool:
        spans = self.finalized.get(customer)
        if spans is None:
            return False
        index = bisect_right(spans[0], ts) - 1
        return index >= 0 and ts < spans[1][index]

    def set_now(self, now: datetime) -> None:
        """Move the clock of a long-lived validator (the API keeps one per catalog version)."""
        self.latest_allowed = to_micros(now + FUTURE_TOLERANCE)

    def check(self, raw: RawEvent) -> Event | Rejection:
        result = self.check_row(raw, "", 0)
        if type(result) is Rejection:
            return result
        return Event(raw.line, result[1], result[2], result[3], result[4], result[5], result[7], result[8], result[9])

    def check_row(self, raw: RawEvent, environment: str, received_at: int) -> Row | Rejection:
        """`check`, returning the events row to store (store.events.COLUMNS order) rather than an
        Event: the bulk import writes these tuples as they are, with no object per event."""
        line = raw.line
        event_id, customer, meter = raw.id, raw.customer, raw.meter
        if not (type(event_id) is str and type(customer) is str and type(meter) is str
                and 0 < len(event_id) <= MAX_ID_LENGTH and 0 < len(customer) <= MAX_ID_LENGTH
                and 0 < len(meter) <= MAX_ID_LENGTH and event_id.strip() and customer.strip() and meter.strip()
                and "\x00" not in event_id and "\x00" not in customer and "\x00" not in meter):
            problem = self._identity_problem(raw)
            if isinstance(problem, Rejection):
                return problem
            event_id = problem
        if raw.timestamp is None or raw.timestamp == "":
            return Rejection(line, "missing_field", f"line {line}: field 'timestamp' is missing", event_id)
        ts = timestamp_micros(raw.timestamp)
        if type(ts) is str:
            return Rejection(line, "invalid_timestamp", f"line {line}: field 'timestamp': {ts}", event_id)
        if ts > self.latest_allowed:
            return Rejection(line, "future_timestamp",
                             f"line {line}: field 'timestamp': {raw.timestamp} is in the future", event_id)
        if ts < self.earliest_allowed:
            return Rejection(line, "invalid_timestamp",
                             f"line {line}: field 'timestamp': {raw.timestamp} is before 2000-01-01", event_id)
        if ts < self.archived_until and self.in_archived(ts):
            return Rejection(line, "archived_period",
                             f"line {line}: field 'timestamp': {raw.timestamp} is in {Month.of_micros(ts).label}, "
                             "a month archived (detached from the events): no event can be stored in it any more",
                             event_id)
        properties = raw.properties
        if type(properties) is not dict:
            return Rejection(line, "invalid_value", f"line {line}: field 'properties' must be an object", event_id)
        rule = self.rules.get(meter)
        if rule is not None:
            # _check_fields only when it has something to say or to convert: a required field
            # not plainly there, or a numeric field holding anything but an integer or a decimal
            required = rule.required_any
            checked = required and required[0] not in properties
            if not checked:
                for field in rule.numeric:
                    kind = type(properties.get(field))
                    if kind is not int and kind is not Decimal and kind is not _NONE:
                        checked = True
                        break
            if checked:
                problem = _check_fields(line, rule, properties)
                if problem is not None:
                    return Rejection(line, problem[0], problem[1], event_id)
        # out_of_bound only when a value is not plainly inside the bound (what it passes over too)
        for value in properties.values():
            kind = type(value)
            if kind is str or kind is bool or value is None or (kind is int and -_UPPER < value < _UPPER):
                continue
            outside = out_of_bound(properties)
            if outside is not None:
                return Rejection(line, "invalid_value", f"line {line}: property {outside[0]!r}: {outside[1]}", event_id)
            break
        subscription = raw.subscription
        if subscription is None and rule is not None and customer in self.customers:
            # _status then _priced for an event naming no subscription, in one pass over the
            # customer's subscriptions taking unnamed events (the same list for both)
            status = "no_subscription"
            for start, end, priced in self.open_pricing.get(customer, ()):
                if start <= ts and (end is None or ts < end):
                    if _priced_by(priced, ts, meter, properties):
                        status = "matched"
                        break
                    status = "unpriced"
        else:
            if subscription is not None and not (type(subscription) is str
                                                 and 0 < len(subscription) <= MAX_SUBSCRIPTION_LENGTH
                                                 and subscription.strip() and "\x00" not in subscription):
                return _subscription_problem(line, subscription, event_id)
            status = self._status(customer, ts, rule is not None, meter, subscription)
            if status == "matched" and not self._priced(customer, ts, meter, subscription, properties):
                status = "unpriced"
        late = status == "matched" and customer in self.finalized and self.is_late(customer, ts)
        encoded = _encode(properties).decode()
        if "\\u0000" in encoded:  # valid JSON, but PostgreSQL can store no NUL in text or jsonb
            return Rejection(line, "invalid_value", f"line {line}: field 'properties' holds a NUL character", event_id)
        return (environment, event_id, customer, meter, ts, encoded, received_at, status, late, subscription)

    def _identity_problem(self, raw: RawEvent) -> Rejection | str:
        """The slow path for id/customer/meter: say precisely what is wrong (or fix an int id)."""
        line = raw.line
        event_id = raw.id
        if isinstance(event_id, int) and not isinstance(event_id, bool):
            event_id = str(event_id)
        for name, value in (("id", event_id), ("customer", raw.customer), ("meter", raw.meter)):
            if value is None:
                return Rejection(line, "missing_field", f"line {line}: field {name!r} is missing")
            if not isinstance(value, str):
                return Rejection(line, "invalid_value", f"line {line}: field {name!r} must be a string",
                                 event_id if isinstance(event_id, str) else None)
            if not value.strip():
                return Rejection(line, "missing_field", f"line {line}: field {name!r} is empty")
            if len(value) > MAX_ID_LENGTH:
                return Rejection(line, "invalid_value",
                                 f"line {line}: field {name!r} is longer than {MAX_ID_LENGTH} characters", None)
            if "\x00" in value:
                return Rejection(line, "invalid_value", f"line {line}: field {name!r} holds a NUL character", None)
        return event_id

    def outside_reason(self, customer: str, ts: int, meter: str | None = None, subscription: str | None = None) -> str:
        """Why a known customer's event matched no subscription (one of OUTSIDE_REASONS). An event
        naming a subscription is judged against that one only."""
        if subscription is not None:
            return self._named_problem(customer, ts, meter or "", subscription) or "named_subscription_not_active"
        lifetimes = self.lifetimes.get(customer, ())
        if not lifetimes or ts < min(start for start, _ in lifetimes):
            return "before_start"
        if any(_within(ts, start, end) for start, end in lifetimes):
            return "reference_required"
        if all(end is not None and ts >= end for _, end in lifetimes):
            return "after_end"
        return "between_subscriptions"

    def unpriced_reason(self, customer: str, ts: int, meter: str, subscription: str | None,
                        properties: Mapping[str, Any] | None = None) -> str | None:
        """Why no charge of the subscriptions taking a matched event counts it (one of
        UNPRICED_REASONS); None when one does. Without `properties` the event is known to be
        unpriced and only the reason is asked: a charged meter reading it has filtered it out."""
        read = False
        for priced in self._taking(customer, ts, subscription):
            tests = priced.tests_at(ts).get(meter)
            if tests is None:
                continue
            read = True
            if properties is not None and (not tests or any(test.counts(properties) for test in tests)):
                return None
        return "filtered_out" if read else "meter_not_charged"

    def _priced(self, customer: str, ts: int, meter: str, subscription: str | None,
                properties: Mapping[str, Any]) -> bool:
        """unpriced_reason(...) is None, written for the hot path: no list, no generator."""
        if subscription is not None:
            named = self.pricing.get(subscription)
            return named is not None and _priced_by(named, ts, meter, properties)
        for start, end, priced in self.open_pricing.get(customer, ()):
            if start <= ts and (end is None or ts < end) and _priced_by(priced, ts, meter, properties):
                return True
        return False

    def _taking(self, customer: str, ts: int, subscription: str | None) -> list[PricedTerms]:
        """What the subscriptions taking a matched event price: the one it names, else the
        customer's alive then that take unnamed events."""
        if subscription is not None:
            named = self.pricing.get(subscription)
            return [named] if named is not None else []
        return [priced for start, end, priced in self.open_pricing.get(customer, ()) if _within(ts, start, end)]

    def _named_problem(self, customer: str, ts: int, meter: str, reference: str) -> str | None:
        """Why the subscription an event names cannot bill it; None when it can."""
        named = self.named.get(reference)
        if named is None or named.customer != customer:
            return "unknown_subscription"
        if not _within(ts, named.start, named.end):
            return "named_subscription_not_active"
        if meter not in named.meters:
            return "named_subscription_without_meter"
        return None

    def _status(self, customer: str, ts: int, known_meter: bool, meter: str, subscription: str | None) -> str:
        if customer not in self.customers:
            return "unknown_customer"
        if not known_meter:
            return "unknown_meter"
        if subscription is not None:
            return "no_subscription" if self._named_problem(customer, ts, meter, subscription) else "matched"
        for start, end in self.open_lifetimes.get(customer, ()):
            if start <= ts and (end is None or ts < end):
                return "matched"
        return "no_subscription"


@dataclass(frozen=True, slots=True)
class NamedSubscription:
    """What matching an event that names a subscription needs to know of it."""

    customer: str
    start: int  # µs
    end: int | None
    meters: frozenset[str]  # every event meter name a charge of its plan reads (meter codes and sources)


@dataclass(frozen=True, slots=True)
class MeterTest:
    """Whether one meter counts an event, by its properties: the rule store.usage applies in SQL
    (a numeric field present as a number, any value but null for unique_count; every filter
    matched by text form, domain.json_values). Worked out once per catalog: this is the hot path."""

    field: str | None  # the field the event must carry (None: any event of the stream)
    numeric: bool  # the field must hold a number
    filters: tuple[tuple[str, frozenset[str]], ...]  # property -> the text forms it may have

    @classmethod
    def of(cls, meter: MeterSpec) -> MeterTest:
        field = meter.field if meter.field and meter.aggregation != "count" else None
        forms = tuple((key, frozenset(form for form in map(text_form, values) if form is not None))
                      for key, values in sorted(meter.filters.items()))
        return cls(field, meter.aggregation != "unique_count", forms)

    @property
    def counts_every_event(self) -> bool:
        return self.field is None and not self.filters

    def counts(self, properties: Mapping[str, Any]) -> bool:
        if self.field is not None:
            value = properties.get(self.field)
            if value is None:
                return False
            if self.numeric:
                kind = type(value)
                if kind is not int and kind is not Decimal and kind is not float and not is_number(value):
                    return False
        for key, forms in self.filters:
            if text_form(properties.get(key)) not in forms:
                return False
        return True


@dataclass(frozen=True, slots=True)
class PricedTerms:
    """Which events a subscription's charges count, phase by phase: an event its phase in force
    counts lands on an invoice line."""

    starts: tuple[int, ...]  # µs, each phase's start, in time order
    # per phase: event meter name -> the tests of the meters charged reading it; () when one of
    # them counts every event of that name
    tests: tuple[dict[str, tuple[MeterTest, ...]], ...]

    def tests_at(self, ts: int) -> dict[str, tuple[MeterTest, ...]]:
        if len(self.starts) == 1:
            return self.tests[0]
        # an event before the first phase is outside the subscription: the first phase judges it anyway
        return self.tests[max(bisect_right(self.starts, ts) - 1, 0)]


def _priced_by(priced: PricedTerms, ts: int, meter: str, properties: Mapping[str, Any]) -> bool:
    tests = (priced.tests[0] if len(priced.starts) == 1 else priced.tests_at(ts)).get(meter)
    if tests is None:
        return False
    if not tests:
        return True
    for test in tests:
        if test.counts(properties):
            return True
    return False


def _priced_terms(catalog: Catalog, subscription: Any) -> PricedTerms:
    starts, tests = [], []
    for terms in subscription.terms():
        by_name: dict[str, list[MeterTest]] = defaultdict(list)
        for charge in terms.plan.charges:
            spec = catalog.meters.get(charge.meter) if charge.meter else None
            if spec is not None:
                for name in {spec.code, spec.stream}:
                    by_name[name].append(MeterTest.of(spec))
        starts.append(to_micros(terms.start))
        tests.append({name: () if any(test.counts_every_event for test in found) else tuple(found)
                      for name, found in by_name.items()})
    return PricedTerms(tuple(starts), tuple(tests))


def _within(ts: int, start: int, end: int | None) -> bool:
    return start <= ts and (end is None or ts < end)


def _meter_names(catalog: Catalog, charges: Sequence[Any]) -> frozenset[str]:
    names: set[str] = set()
    for charge in charges:
        meter = catalog.meters.get(charge.meter) if charge.meter else None
        if meter is not None:
            names.update((meter.code, meter.stream))
    return frozenset(names)


def _subscription_problem(line: int, value: Any, event_id: str) -> Rejection:
    """Why the `subscription` an event names cannot be taken (it is a reference, or absent)."""
    if not isinstance(value, str):
        why = f"must be a string (a subscription reference), got {type(value).__name__}"
    elif len(value) > MAX_SUBSCRIPTION_LENGTH:
        why = f"is longer than {MAX_SUBSCRIPTION_LENGTH} characters"
    elif "\x00" in value:
        why = "holds a NUL character"
    else:
        why = "is empty (leave it out to let the customer's subscription take the event)"
    return Rejection(line, "invalid_value", f"line {line}: field 'subscription' {why}", event_id)


def validator_at(validator: EventValidator | None, now: datetime, archived: str = "") -> EventValidator:
    """The validator to check events with at `now`: the caller's cached one with its clock moved,
    or without one (no catalog) a validator of no catalog refusing the months that `archived`, the
    request's fingerprint's figure, names."""
    if validator is None:
        validator = EventValidator(None, now)
        validator.follow_archived(archived)
    else:
        validator.set_now(now)
    return validator


def _check_fields(line: int, rule: FieldRule, properties: dict[str, Any]) -> tuple[str, str] | None:
    """Numeric fields must hold numbers; numeric strings (CSV) become numbers, exactly."""
    if rule.required_any:
        for field in rule.required_any:
            if field in properties:
                break
        else:
            return "missing_field", f"line {line}: property {rule.required_any[0]!r} is missing"
    for field in rule.numeric:
        value = properties.get(field)
        kind = type(value)
        if value is None or kind is int or kind is Decimal:
            continue
        if kind is not str:
            return "invalid_value", f"line {line}: property {field!r} must be a number, got {str(value)[:40]!r}"
        try:  # the one syntax of a number written as text, and the one bound of event numbers
            properties[field] = to_decimal(value, bound=number_problem)
        except MoneyError as exc:
            return "invalid_value", f"line {line}: property {field!r} must be a number: {exc}"
    return None
