"""A stored catalog is read item by item (catalog.stored): whatever the JSON's spacing and whichever
arrays are empty or missing, it is the catalog of the same document."""

from __future__ import annotations

import json

import pytest

from ratecard.catalog import build_catalog, check_document
from ratecard.catalog.stored import catalog_from_json
from ratecard.store.catalogs import canonical_json

DOCUMENT = {
    "billing_entity": {"name": "Acme", "currency": "EUR", "timezone": "UTC"},
    "plans": [{"code": "pro", "currency": "EUR",
               "charges": [{"code": "base", "model": "flat", "amount": "100.00", "timing": "advance"}]}],
    "customers": [{"reference": "c1", "name": "Brackets ] } [ { and \"quotes\"", "currency": "EUR", "tax_rate": "21"},
                  {"reference": "c2", "currency": "EUR", "tax_rate": "21.00"}],
    "subscriptions": [{"reference": "s1", "customer": "c1", "plan": "pro", "start": "2026-01-01"},
                      {"reference": "s2", "customer": "c2", "plan": "pro", "start": "2026-01-01T00:00:00+01:00"}],
}


def _checked(raw: dict):
    document, problems = check_document(raw)
    assert problems == []
    return document


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("drop", [(), ("subscriptions",), ("customers", "subscriptions")])
def test_the_json_read_item_by_item_is_the_documents_catalog(indent: int | None, drop: tuple[str, ...]) -> None:
    raw = {key: value for key, value in DOCUMENT.items() if key not in drop}
    document = _checked(raw)
    text = json.dumps(json.loads(canonical_json(document)), indent=indent)
    stored, built = catalog_from_json(text), build_catalog(document)
    assert {key: repr(spec) for key, spec in stored.customers.items()} == \
        {key: repr(spec) for key, spec in built.customers.items()}
    assert {key: repr(spec) for key, spec in stored.subscriptions.items()} == \
        {key: repr(spec) for key, spec in built.subscriptions.items()}
    assert stored.document == document


def test_an_empty_catalog_reads_as_one() -> None:
    document = _checked({})
    assert catalog_from_json(" { } ").document == document
    assert catalog_from_json(canonical_json(document)).customers == {}
