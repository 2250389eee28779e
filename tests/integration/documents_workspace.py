"""A workspace for the invoice documents tests: two billing entities (Berlin in de_DE, Paris in
fr_FR), a customer of each, September's usage; hand-priced figures beside the catalog."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, date, datetime
from pathlib import Path

import orjson

from ratecard.services.catalog import apply_catalog
from ratecard.services.events import import_events
from ratecard.services.invoices import finalize_invoices, find_invoices, generate
from ratecard.store import Store, open_store

from ..migrated import at_head

NOW = datetime(2026, 10, 5, tzinfo=UTC)
HOSTILE_NAME = "<script>alert(1)</script>"

CATALOG = f"""
billing_entity:
  code: berlin
  name: Acme Cloud
  legal_name: Acme Cloud GmbH
  address: {{lines: ["Hauptstraße 1"], city: Berlin, postal_code: "10115", country: DE}}
  tax_id: DE123456789
  iban: DE89 3704 0044 0532 0130 00
  bic: COBADEFFXXX
  logo: logo.png
  locale: de_DE
  footer: "Amtsgericht Berlin HRB 1234"
  timezone: UTC
  currency: EUR
  invoice_prefix: AC
  corrections: credit_note
billing_entities:
  - code: paris
    name: Acme France
    legal_name: Acme France SAS
    address: {{lines: ["1 rue de la Paix"], city: Paris, postal_code: "75002", country: FR}}
    tax_id: FR40303265045
    iban: FR14 2004 1010 0505 0001 3M02 606
    locale: fr_FR
    currency: EUR
    invoice_prefix: FR
    corrections: credit_note
meters:
  - {{code: tokens, aggregation: sum, field: tokens}}
plans:
  - code: pro
    currency: EUR
    charges:
      - {{code: base, model: flat, amount: "1000.00", timing: advance, description: Pro plan}}
      - code: tokens
        meter: tokens
        model: graduated
        description: Tokens
        tiers: [{{up_to: 1000, unit_amount: "0"}}, {{up_to: null, unit_amount: "0.01", flat_amount: "5"}}]
  - code: basic
    currency: EUR
    charges:
      - {{code: base, model: flat, amount: "500.00", timing: advance, description: Basic plan}}
customers:
  - reference: berlin-co
    name: "{HOSTILE_NAME}"
    tax_rate: "19"
    tax_id: DE987654321
    address: {{lines: ["Unter den Linden 1"], city: Berlin, postal_code: "10117", country: DE}}
  - reference: paris-co
    name: Paris SARL
    billing_entity: paris
    tax_rate: "20"
    address: {{lines: ["2 avenue Foch"], city: Paris, postal_code: "75016", country: FR}}
subscriptions:
  - {{reference: berlin-pro, customer: berlin-co, plan: pro, start: 2026-09-01}}
  - {{reference: paris-pro, customer: paris-co, plan: pro, start: 2026-09-01}}
"""
# berlin-co's invoice of 2026-10-01: October's fee 1000.00 + September's 23,456 tokens (1,000
# free, then 22,456 × 0.01 + 5 = 229.56) = 1229.56; VAT 19 % = 233.6164 -> 233.62; total 1463.18
BERLIN_OCTOBER = {"subtotal": "1.229,56 €", "tax": "233,62 €", "total": "1.463,18 €"}
EVENTS = [
    {"id": "t1", "customer": "berlin-co", "meter": "tokens", "timestamp": "2026-09-05T10:00:00Z",
     "properties": {"tokens": 23456}},
    {"id": "t2", "customer": "paris-co", "meter": "tokens", "timestamp": "2026-09-06T10:00:00Z",
     "properties": {"tokens": 1500}},
]


def png(width: int = 4, height: int = 2) -> bytes:
    """A small opaque blue PNG, made here (no file shipped)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x20\x40\xc0" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def documents_workspace(url: str, folder: Path, catalog: str = CATALOG) -> Store:
    """Catalog applied from a file (its logo read beside it), September's usage imported, drafts cut
    up to 2026-10-01."""
    store = open_store(at_head(url))
    (folder / "logo.png").write_bytes(png())
    (folder / "catalog.yaml").write_text(catalog, encoding="utf-8")
    apply_catalog(store, folder / "catalog.yaml", NOW)
    (folder / "events.jsonl").write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in EVENTS))
    import_events(store, folder / "events.jsonl", NOW)
    generate(store, date(2026, 10, 1), NOW)
    return store


def draft_of(store: Store, customer: str, issue_date: str) -> str:
    [invoice] = [i for i in find_invoices(store, status="draft") if i.customer == customer and i.issue_date == issue_date]
    return invoice.display_number


def finalize(store: Store, *references: str) -> list[str]:
    return [invoice.display_number for invoice in finalize_invoices(store, list(references), NOW).finalized]
