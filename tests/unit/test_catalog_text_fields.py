"""The words a catalog puts on documents (names, descriptions, the footer) are bounded and hold no
control characters: they reach PDFs, e-invoices, CSV exports and terminals, where a NUL, an escape
sequence or 100,000 characters do harm, so they are refused with their path when the file is read."""

from __future__ import annotations

import json

import pytest

from ratecard.catalog import check_document
from ratecard.catalog.stored import catalog_from_json

FIELDS = {  # path -> where the hostile text goes in the catalog below
    "billing_entity.name": lambda c, v: c["billing_entity"].update(name=v),
    "billing_entity.footer": lambda c, v: c["billing_entity"].update(footer=v),
    "meters[0].name": lambda c, v: c["meters"][0].update(name=v),
    "plans[0].name": lambda c, v: c["plans"][0].update(name=v),
    "plans[0].charges[0].description": lambda c, v: c["plans"][0]["charges"][0].update(description=v),
    "customers[0].name": lambda c, v: c["customers"][0].update(name=v),
    "customers[0].email": lambda c, v: c["customers"][0].update(email=v),
    "coupons[0].description": lambda c, v: c["coupons"][0].update(description=v),
    "features[0].name": lambda c, v: c["features"][0].update(name=v),
    "features[0].description": lambda c, v: c["features"][0].update(description=v),
}


def _catalog() -> dict:
    return {
        "billing_entity": {"name": "Acme", "footer": "Acme GmbH\nAmtsgericht Berlin HRB 1234"},
        "meters": [{"code": "tokens", "name": "Tokens", "aggregation": "sum", "field": "tokens"}],
        "plans": [{"code": "pro", "name": "Pro", "currency": "EUR", "charges": [
            {"code": "base", "model": "flat", "amount": "49.00", "timing": "advance", "description": "Pro plan"}]}],
        "customers": [{"reference": "acme", "name": "Acme Kunde", "email": "billing@acme.example"}],
        "subscriptions": [{"reference": "acme-pro", "customer": "acme", "plan": "pro", "start": "2026-01-15"}],
        "coupons": [{"code": "spring", "description": "Spring sale", "percent_off": "10", "duration": "once"}],
        "features": [{"code": "seats", "name": "Seats", "description": "Seats included", "type": "number"}],
    }


def _problems(document: dict) -> dict[str, str]:
    _, problems = check_document(document)
    return {problem.path: problem.message for problem in problems}


def test_the_catalog_with_plain_words_and_a_two_line_footer_is_valid() -> None:
    assert _problems(_catalog()) == {}


@pytest.mark.parametrize("path", sorted(FIELDS))
@pytest.mark.parametrize("hostile", ["Acme\x00GmbH", "Pro \x1b[31mplan", "a\x7fb", "Pro \x9b31mplan", "W" * 100_000])
def test_a_control_character_or_an_endless_text_is_refused_at_its_path(path: str, hostile: str) -> None:
    document = _catalog()
    FIELDS[path](document, hostile)
    assert list(_problems(document)) == [path]


def test_text_that_only_looks_like_markup_or_a_formula_is_kept() -> None:
    document = _catalog()
    for path, put in FIELDS.items():
        if path != "customers[0].email":
            put(document, '=HYPERLINK("x") <script>]]> &amp; 🚀 عربي')
    assert _problems(document) == {}


@pytest.mark.parametrize("path", sorted(FIELDS))
@pytest.mark.parametrize("disguised", ["invoice\u202egnp.exe", "Pro\u202dplan"])
def test_a_bidi_override_that_disguises_a_name_is_refused_at_its_path(path: str, disguised: str) -> None:
    document = _catalog()
    FIELDS[path](document, disguised)
    problems = _problems(document)
    assert list(problems) == [path]
    assert "U+202D or U+202E" in problems[path]


def test_right_to_left_text_marks_and_isolates_are_kept() -> None:
    document = _catalog()
    for path, put in FIELDS.items():
        if path != "customers[0].email":
            put(document, "رسوم شهرية \u2067עמלה\u2069 \u200fFee\u200e \u202bembedded\u202c")
    assert _problems(document) == {}


def test_a_catalog_stored_before_the_rule_still_loads() -> None:
    document = _catalog()
    for path, put in FIELDS.items():
        if not path.startswith(("coupons", "features")):  # their model has always bounded them
            put(document, "Acme\x00" + "W" * 1000)
    catalog = catalog_from_json(json.dumps(document))
    assert catalog.customers["acme"].name == "Acme\x00" + "W" * 1000
