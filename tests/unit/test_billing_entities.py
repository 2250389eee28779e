"""Billing entities in the catalog: the single `billing_entity` of existing catalogs stays valid
(the default entity), `billing_entities` add more; every problem with its path."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ratecard.catalog import build_catalog, check_document
from ratecard.catalog.edits import zone_of
from ratecard.catalog.identifiers import iban
from ratecard.services.catalog import check_catalog_file

from ..integration.documents_workspace import png

PLAN = {"code": "pro", "currency": "EUR", "charges": [{"code": "base", "model": "flat", "amount": "10.00"}]}


def problems(document: dict) -> list[str]:
    _, found = check_document(document)
    return [str(problem) for problem in found]


def test_a_catalog_with_todays_single_billing_entity_is_valid_and_numbers_as_before() -> None:
    document, found = check_document({"billing_entity": {"name": "Acme BV", "country": "NL", "invoice_prefix": "ACME"},
                                      "plans": [PLAN], "customers": [{"reference": "c"}]})
    assert found == []
    catalog = build_catalog(document)
    assert catalog.invoice_prefix_for("c") == "ACME"
    assert catalog.credit_note_prefix_for("c") == "CN"  # as before there were several entities
    assert catalog.invoice_prefix_for("someone-no-longer-listed") == "ACME"


def test_customers_are_billed_by_their_entity_with_its_own_sequences() -> None:
    document, found = check_document({
        "billing_entity": {"name": "Acme BV"},
        "billing_entities": [{"code": "fr", "name": "Acme SAS", "invoice_prefix": "FR", "locale": "fr_FR",
                              "rounding": "half_even"}],
        "plans": [PLAN],
        "customers": [{"reference": "a"}, {"reference": "b", "billing_entity": "fr"},
                      {"reference": "c", "billing_entity": "default"}],
    })
    assert found == []
    catalog = build_catalog(document)
    assert [catalog.invoice_prefix_for(c) for c in "abc"] == ["RC", "FR", "RC"]
    assert [catalog.credit_note_prefix_for(c) for c in "abc"] == ["CN", "FR-CN", "CN"]
    assert catalog.entity_for("b").locale == "fr_FR" and catalog.entity_for("b").rounding == "half_even"


def test_every_entity_problem_is_reported_with_its_path() -> None:
    found = problems({
        "billing_entity": {"name": "A", "address": {"lines": ["Hauptstr. 1"], "city": "Berlin", "country": "DE"},
                           "iban": "DE89 3704 0044 0532 0130 00", "bic": "COBADEFFXXX", "locale": "de_DE"},
        "billing_entities": [
            {"code": "fr", "invoice_prefix": "FR", "locale": "xx_QQ", "iban": "DE89370400440532013001",
             "bic": "NOTABIC", "address": {"lines": ["1 rue"], "city": "Paris", "country": "XX"}},
            {"code": "fr", "invoice_prefix": "RC"},
            {"code": "es", "invoice_prefix": "ES", "credit_note_prefix": "FR-CN"},
        ],
        "plans": [PLAN],
        "customers": [{"reference": "c", "billing_entity": "nope", "address": {"lines": [], "city": "X",
                                                                                "country": "de"}}],
    })
    assert found == [
        "billing_entities[0].address.country: unknown country 'XX' (expected an ISO 3166 alpha-2 code such as DE)",
        "billing_entities[0].iban: 'DE89370400440532013001' is not a valid IBAN: its check digits do not match "
        "(a typo?)",
        "billing_entities[0].bic: 'NOTABIC' is not a BIC (8 or 11 letters and digits, such as DEUTDEFF)",
        "billing_entities[0].locale: unknown locale 'xx_QQ' (expected a locale such as en_US, de_DE or fr_FR)",
        "customers[0].address.lines: List should have at least 1 item after validation, not 0",
        "customers[0].address.country: unknown country 'de' (expected an ISO 3166 alpha-2 code such as DE)",
        "billing_entities[1].code: 'fr' is already used by billing_entities[0]",
        "billing_entities[1].invoice_prefix: 'RC' is already the numbering prefix of billing_entity.invoice_prefix: "
        "each sequence needs its own",
        "billing_entities[2].credit_note_prefix: 'FR-CN' is already the numbering prefix of "
        "billing_entities[0].credit_note_prefix: each sequence needs its own",
        "customers[0].billing_entity: unknown billing entity 'nope' (known: default, es, fr)",
    ]


def test_a_hostile_footer_or_name_is_accepted_as_text() -> None:
    # markup and formulas are text: the PDF template escapes them, the XML writer too
    assert problems({"billing_entity": {"name": "<b>=1+1</b>", "footer": "<script>x</script>\nline two"},
                     "plans": [PLAN]}) == []


def _iban(country: str, bban: str) -> str:
    """A valid IBAN: the check digits computed (ISO 13616 mod 97)."""
    digits = "".join(str(int(char, 36)) for char in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


@given(bban=st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=11, max_size=30),
       country=st.sampled_from(["DE", "FR", "NL", "BE", "GB", "IT"]), position=st.integers(min_value=4),
       data=st.data())
def test_an_iban_is_accepted_exactly_when_its_check_digits_hold(bban: str, country: str, position: int,
                                                                 data: st.DataObject) -> None:
    valid = _iban(country, bban)
    assert iban(valid) == valid
    # one digit of the account mistyped: mod 97 catches every single-digit substitution
    digits = [index for index in range(4, len(valid)) if valid[index].isdigit()]
    assume(digits)
    index = digits[position % len(digits)]
    replacement = data.draw(st.sampled_from([c for c in "0123456789" if c != valid[index]]))
    typo = valid[:index] + replacement + valid[index + 1:]
    with pytest.raises(ValueError, match="check digits"):
        iban(typo)


def test_the_hand_checked_iban_of_the_iso_example() -> None:
    assert iban("GB82 WEST 1234 5698 7654 32") == "GB82WEST12345698765432"


# ------------------------------------------------------------------------------ files beside the catalog


def write_catalog(folder: Path, entity: str) -> Path:
    path = folder / "catalog.yaml"
    path.write_text(f"billing_entity: {entity}\nplans: [{{code: pro, currency: EUR}}]\n", encoding="utf-8")
    return path


def test_the_logo_and_template_are_read_into_the_catalog_version(tmp_path: Path) -> None:
    (tmp_path / "brand").mkdir()
    (tmp_path / "brand" / "logo.png").write_bytes(png())
    (tmp_path / "invoice.html").write_text("<p>{{ invoice.number }}</p>", encoding="utf-8")
    checked = check_catalog_file(write_catalog(tmp_path, "{logo: brand/logo.png, pdf_template: invoice.html}"))
    assert checked.problems == []
    entity = checked.document.billing_entity
    assert entity.logo_data == "data:image/png;base64," + base64.b64encode(png()).decode()
    assert entity.pdf_template_text == "<p>{{ invoice.number }}</p>"


@pytest.mark.parametrize(("files", "entity", "expected"), [
    ({}, "{logo: logo.png}", "billing_entity.logo: logo.png: no such file"),
    ({"logo.png": b"GIF89a"}, "{logo: logo.png}", "billing_entity.logo: logo.png: is not a PNG image"),
    ({"logo.png": png() + b"\0" * 300_000}, "{logo: logo.png}", "billing_entity.logo: logo.png: is larger than 256 KiB"),
    ({"logo.gif": b"GIF89a"}, "{logo: logo.gif}", "billing_entity.logo: logo.gif: must name a .png or .svg file"),
    ({"logo.svg": b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg>&a;</svg>'}, "{logo: logo.svg}",
     "billing_entity.logo: logo.svg: is not an SVG image (an <svg> root, without a DOCTYPE)"),
    ({}, "{logo: ../../etc/passwd.png}", "billing_entity.logo: ../../etc/passwd.png: must be inside the catalog's folder"),
    ({"t.html": b"<p>{% if %}</p>"}, "{pdf_template: t.html}",
     "billing_entity.pdf_template: t.html: line 1: Expected an expression, got 'end of statement block'"),
])
def test_files_an_entity_names_are_checked_when_the_catalog_is(tmp_path: Path, files: dict, entity: str,
                                                                  expected: str) -> None:
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    checked = check_catalog_file(write_catalog(tmp_path, entity))
    assert [str(problem) for problem in checked.problems] == [expected]


def test_a_catalog_sent_without_its_files_names_what_is_missing() -> None:
    # a request body has no folder: the logo cannot be read from it
    assert problems({"billing_entity": {"logo": "logo.png"}, "plans": [PLAN]}) == [
        "billing_entity.logo: the file was not read: a logo or template is read from a catalog file "
        "(`ratecard catalog apply FILE`), relative to its folder"]


def test_a_stored_version_with_its_logo_validates_again() -> None:
    # catalog edits re-check the stored document: the logo it carries is accepted as it is
    data = "data:image/png;base64," + base64.b64encode(png()).decode()
    assert problems({"billing_entity": {"logo": "logo.png", "logo_data": data}, "plans": [PLAN]}) == []
    assert problems({"billing_entity": {"logo_data": "data:text/html;base64,PHA+"}, "plans": [PLAN]}) == [
        "billing_entity.logo_data: must be a PNG or SVG data URI (ratecard fills it from `logo`)"]


def test_a_customers_periods_and_rounding_follow_its_entity() -> None:
    document, found = check_document({
        "billing_entity": {"timezone": "UTC", "rounding": "half_up"},
        "billing_entities": [{"code": "jp", "invoice_prefix": "JP", "timezone": "Asia/Tokyo", "rounding": "half_even",
                              "tax_rounding": "line"}],
        "plans": [PLAN],
        "customers": [{"reference": "tokyo", "billing_entity": "jp"}, {"reference": "london"}],
        "subscriptions": [{"reference": "t", "customer": "tokyo", "plan": "pro", "start": "2026-01-01"},
                          {"reference": "l", "customer": "london", "plan": "pro", "start": "2026-01-01"}],
    })
    assert found == []
    catalog = build_catalog(document)
    assert (catalog.subscriptions["t"].timezone, catalog.subscriptions["l"].timezone) == ("Asia/Tokyo", "UTC")
    tokyo, london = (catalog.pricing_for(catalog.subscriptions[s]) for s in "tl")
    assert (tokyo.rounding, tokyo.tax_rounding, london.rounding, london.tax_rounding) == \
        ("half_even", "line", "half_up", "invoice")
    raw = document.model_dump(mode="json")
    assert str(zone_of(raw, {"customer": "tokyo"})) == "Asia/Tokyo" and str(zone_of(raw, {"customer": "london"})) == "UTC"
