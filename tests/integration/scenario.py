"""A small, hand-priced workspace shared by the integration tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from ratecard.catalog import build_catalog, check_document
from ratecard.catalog.load import parse_text
from ratecard.store import Store, open_store
from ratecard.store.catalogs import save_version

from ..migrated import at_head

NOW = datetime(2026, 11, 26, tzinfo=UTC)

# one meter of source `s` per aggregation (numbers in `v`, a unique key in `u`): the catalog
# `meters:` lines the usage properties check every aggregation with
EVERY_AGGREGATION = """\
  - {code: m_count, aggregation: count, source: s}
  - {code: m_sum, aggregation: sum, field: v, source: s}
  - {code: m_max, aggregation: max, field: v, source: s}
  - {code: m_min, aggregation: min, field: v, source: s}
  - {code: m_unique, aggregation: unique_count, field: u, source: s}
  - {code: m_latest, aggregation: latest, field: v, source: s}
  - {code: m_weighted, aggregation: weighted_sum, field: v, source: s}
  - {code: m_average, aggregation: average, field: v, source: s}
"""

CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
  - {code: api_calls, aggregation: count}
  - {code: gb, aggregation: max, field: gb}
  - {code: seats, aggregation: weighted_sum, field: delta}
  - {code: gpt4_tokens, aggregation: sum, field: tokens, source: tokens, filters: {model: [gpt-4o]}}
plans:
  - code: pro
    currency: EUR
    minimum: "100.00"
    charges:
      - {code: base, model: flat, amount: "49.00", timing: advance}
      - code: tokens
        meter: tokens
        model: graduated
        tiers: [{up_to: 1000, unit_amount: "0"}, {up_to: null, unit_amount: "0.002", flat_amount: "5"}]
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.0001"}
      - {code: storage, meter: gb, model: package, package_size: 100, package_amount: "5", free_units: 100}
      - {code: seats, meter: seats, model: per_unit, unit_amount: "10"}
      - {code: gpt4, meter: gpt4_tokens, model: per_unit, unit_amount: "0.01"}
customers:
  - {reference: acme, name: Acme Inc, country: DE, currency: EUR, tax_rate: "19", timezone: Europe/Berlin}
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2026-01-15, billing_anchor: 1}
"""

EVENTS = [
    {"id": "e1", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
     "properties": {"tokens": 1200, "model": "gpt-4o"}},
    {"id": "e2", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-21T10:00:00Z",
     "properties": {"tokens": "300.5", "model": "mini"}},
    {"id": "e3", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-21T10:00:00Z"},
    {"id": "e4", "customer": "acme", "meter": "gb", "timestamp": "2026-01-22T10:00:00Z", "properties": {"gb": 201}},
    {"id": "e5", "customer": "acme", "meter": "gb", "timestamp": "2026-01-23T10:00:00Z", "properties": {"gb": 150}},
    {"id": "e6", "customer": "acme", "meter": "seats", "timestamp": "2026-01-25T00:00:00+01:00",
     "properties": {"delta": 3}},
]


def catalog_document(text: str = CATALOG):
    document, problems = check_document(parse_text(text, "catalog.yaml"))
    assert problems == [], problems
    return document


def workspace(url: str, text: str = CATALOG) -> tuple[Store, int]:
    store = open_store(at_head(url))  # a new database: a copy of a migrated one, not a migration of its own
    version, _ = save_version(store, catalog_document(text), 0)
    return store, version


def current(store: Store):
    from ratecard.services.catalog import current_catalog

    return current_catalog(store)


def write_jsonl(path: Path, events: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    return path


__all__ = ["CATALOG", "EVENTS", "NOW", "build_catalog", "catalog_document", "current", "workspace", "write_jsonl"]
