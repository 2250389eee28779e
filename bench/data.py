"""Deterministic benchmark inputs: a catalog of N/100 customers and N JSONL events.

Everything derives from one seed, so two runs (and the baseline rows) see the same data.
Events are spread over October 2026 in time order with time-ordered ids (the shape of an
export from a metering pipeline); 75% carry a `tokens` number (sum meter), 25% are API calls
(count meter).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

SEED = 20261001
ENVIRONMENT = "live"
PERIOD_START = datetime(2026, 10, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 26, tzinfo=UTC)
UNTIL = date(2026, 11, 1)
SUBSCRIPTION_START = "2026-10-01"
EVENTS_PER_CUSTOMER = 100
TOKENS_SHARE = 0.75
MODELS = ("gpt-4o", "gpt-4o-mini", "o3")
ENDPOINTS = ("/v1/chat", "/v1/embed", "/v1/files")
SUM_METER = "tokens"
SUM_FIELD = "tokens"
COUNT_METER = "api_calls"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)


def to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def customer_count(events: int) -> int:
    return max(1, events // EVENTS_PER_CUSTOMER)


def customer_ref(index: int) -> str:
    return f"cus-{index:06d}"


def catalog_document(customers: int) -> dict:
    """One plan (flat base fee, graduated sum charge, per-unit count charge), one subscription each."""
    return {
        "billing_entity": {"name": "Bench Cloud BV", "country": "NL", "timezone": "UTC", "currency": "EUR",
                           "rounding": "half_up", "tax_rounding": "invoice"},
        "meters": [
            {"code": SUM_METER, "aggregation": "sum", "field": SUM_FIELD},
            {"code": COUNT_METER, "aggregation": "count"},
        ],
        "plans": [{
            "code": "pro",
            "currency": "EUR",
            "interval": "month",
            "charges": [
                {"code": "base", "model": "flat", "amount": "49.00", "timing": "advance"},
                {"code": "tokens", "meter": SUM_METER, "model": "graduated", "tiers": [
                    {"up_to": 50000, "unit_amount": "0"},
                    {"up_to": 200000, "unit_amount": "0.0004"},
                    {"up_to": None, "unit_amount": "0.0002", "flat_amount": "5"},
                ]},
                {"code": "calls", "meter": COUNT_METER, "model": "per_unit", "unit_amount": "0.0125"},
            ],
        }],
        "customers": [
            {"reference": customer_ref(i), "name": f"Customer {i}", "country": "NL", "currency": "EUR",
             "tax_rate": "21"}
            for i in range(customers)
        ],
        "subscriptions": [
            {"reference": f"sub-{i:06d}", "customer": customer_ref(i), "plan": "pro",
             "start": SUBSCRIPTION_START, "billing_anchor": 1}
            for i in range(customers)
        ],
    }


def iter_events(events: int, seed: int = SEED,
                customers: int | None = None) -> Iterator[tuple[str, str, str, int, str, str]]:
    """(id, customer, meter, ts µs, RFC 3339 timestamp, properties JSON) in time order.

    The properties text is exactly what the importer stores (msgspec's compact encoding,
    keys in file order), so the baseline inserts byte-identical rows. `customers` (default
    customer_count(events)) spreads them over more or fewer customers.
    """
    rng = random.Random(seed)
    customers = customers or customer_count(events)
    start = to_micros(PERIOD_START) // 1000  # milliseconds
    span = (to_micros(PERIOD_END) - to_micros(PERIOD_START)) // 1000
    step = max(1, span // events)
    randrange, rand = rng.randrange, rng.random
    for index in range(events):
        ms = start + (index * span) // events + randrange(step)
        stamp = (_EPOCH_NAIVE + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds") + "Z"
        customer = customer_ref(randrange(customers))
        if rand() < TOKENS_SHARE:
            meter = SUM_METER
            properties = f'{{"{SUM_FIELD}":{randrange(1, 4000)},"model":"{MODELS[randrange(3)]}"}}'
        else:
            meter = COUNT_METER
            properties = f'{{"endpoint":"{ENDPOINTS[randrange(3)]}"}}'
        yield f"evt-{index:010d}", customer, meter, ms * 1000, stamp, properties


def write_events(path: Path, events: int, seed: int = SEED, customers: int | None = None) -> None:
    with path.open("w", encoding="utf-8", buffering=1 << 20) as handle:
        write = handle.write
        for event_id, customer, meter, _ts, stamp, properties in iter_events(events, seed, customers):
            write(f'{{"id":"{event_id}","customer":"{customer}","meter":"{meter}",'
                  f'"timestamp":"{stamp}","properties":{properties}}}\n')


def write_catalog(path: Path, events: int) -> None:
    path.write_text(json.dumps(catalog_document(customer_count(events))), encoding="utf-8")


def event_rows(events: int, received_at: int, seed: int = SEED) -> list[tuple]:
    """The rows the importer stores for these events, in the events table's column order."""
    return [
        (ENVIRONMENT, event_id, customer, meter, ts, properties, received_at, "matched", False)
        for event_id, customer, meter, ts, _stamp, properties in iter_events(events, seed)
    ]
