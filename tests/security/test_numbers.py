"""Hostile numbers: one bound on every numeric property value, on every ingest path, and an
invoice run that goes on for every other customer when one customer's pricing fails.

Each test runs on SQLite and PostgreSQL (the `db_url` fixture); the CLI runs as a user would
(tests.e2e.harness), the API in process (like tests/api).
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratecard.domain.numbers import MAX_DIGITS, number_problem
from ratecard.store import open_store

from ..api.conftest import Api
from ..e2e.harness import Cli
from ..migrated import at_head

NOW = "2026-03-10T00:00:00Z"

CATALOG = """\
billing_entity: {name: Numbers BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
  - {code: n, aggregation: sum, field: n}
  - {code: level, aggregation: average, field: level}
plans:
  - code: pro
    currency: EUR
    interval: month
    charges:
      - {code: base, model: flat, amount: "10.00", timing: advance}
      - {code: tokens, meter: tokens, model: per_unit, unit_amount: "0.002"}
      - {code: n, meter: n, model: per_unit, unit_amount: "0"}
      - {code: level, meter: level, model: per_unit, unit_amount: "0"}
  - code: huge
    currency: EUR
    interval: month
    charges:
      - {code: tokens, meter: tokens, model: per_unit, unit_amount: "1"}
customers:
  - {reference: acme, name: Acme, country: NL, currency: EUR, tax_rate: "21"}
  - {reference: bob, name: Bob, country: NL, currency: EUR, tax_rate: "21"}
  - {reference: whale, name: Whale, country: NL, currency: EUR, tax_rate: "21"}
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2026-01-01}
  - {reference: bob-pro, customer: bob, plan: pro, start: 2026-01-01}
"""

# a plan whose unit price makes any real usage overflow exact pricing. `catalog check` refuses such a
# price now, but a catalog applied before the bound may hold one: the run must report it and go on
WHALE = (CATALOG.replace('unit_amount: "1"}', 'unit_amount: "1e40"}')
         + "  - {reference: whale-huge, customer: whale, plan: huge, start: 2026-01-01}\n")


def _event(event_id: str, customer: str, meter: str, properties_json: str) -> str:
    """One JSONL line with the properties written as raw JSON text (numbers no encoder would write)."""
    return (f'{{"id": "{event_id}", "customer": "{customer}", "meter": "{meter}", '
            f'"timestamp": "2026-01-20T10:00:00Z", "properties": {properties_json}}}')


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Cli:
    runner = Cli(tmp_path)
    runner.db = at_head(db_url)
    runner.now = NOW
    return runner


def _apply(cli: Cli, catalog: str = CATALOG) -> None:
    cli.ok("catalog", "apply", cli.write("catalog.yaml", catalog))


def _stored_before_the_bound(url: str, catalog: str) -> None:
    """Save a catalog as a version without `catalog check`, as one applied before catalog numbers
    were bounded (its shape is valid; only its numbers are out of range)."""
    from ratecard.catalog.load import parse_text
    from ratecard.catalog.schema import CatalogDocument
    from ratecard.store.catalogs import save_version

    store = open_store(url)
    try:
        save_version(store, CatalogDocument.model_validate(parse_text(catalog, "catalog.yaml")), 0)
    finally:
        store.dispose()


def _stored_ids(url: str) -> set[str]:
    from sqlalchemy import select

    from ratecard.store.schema import events

    store = open_store(url)
    try:
        with store.engine.connect() as connection:
            return set(connection.execute(select(events.c.id)).scalars())
    finally:
        store.dispose()


# ---------------------------------------------------------------- files (CLI)


@pytest.mark.parametrize("value", ["1e400", "1e60", "1e999999999", "-1e20", "1e-400",
                                   "1.234567890123456789012345678901234567890"])
def test_an_out_of_range_meter_value_is_rejected_and_every_customer_is_invoiced(cli: Cli, value: str) -> None:
    _apply(cli)
    lines = [_event("bad-1", "acme", "tokens", f'{{"tokens": {value}}}'),
             _event("ok-acme", "acme", "tokens", '{"tokens": 1000}'),
             _event("ok-bob", "bob", "tokens", '{"tokens": 500}')]
    path = cli.write("events.jsonl", "\n".join(lines) + "\n")
    result = cli("events", "import", path, "--json")
    assert result.code == 1, str(result)  # some events rejected
    report = result.json()
    assert report["stored"] == 2 and report["rejected"] == {"invalid_value": 1}, report
    rejection = report["rejections"][0]
    assert rejection["id"] == "bad-1" and "'tokens'" in rejection["message"], rejection
    assert _stored_ids(cli.db) == {"ok-acme", "ok-bob"}

    run = cli("invoices", "generate", "--until", "2026-02-01", "--json")
    assert run.code == 0, str(run)
    invoices = cli.ok("invoices", "list", "--json").json()
    assert {i["customer"] for i in invoices} == {"acme", "bob"}


@pytest.mark.parametrize("value", ["1e131072", "1e999999999", "-1e-131072", "12345678901234567890123456789012345678901"])
def test_any_numeric_property_is_bounded_not_only_the_meters_field(cli: Cli, value: str) -> None:
    """PostgreSQL's jsonb refuses such numbers: one used to lose the whole batch (exit 2, 0 stored)."""
    _apply(cli)
    lines = [_event("ok-1", "acme", "tokens", '{"tokens": 1}'),
             _event("note-1", "acme", "tokens", f'{{"tokens": 2, "note": {value}}}'),
             _event("nested-1", "bob", "tokens", f'{{"tokens": 3, "meta": {{"deep": [1, {value}]}}}}'),
             _event("ok-2", "bob", "tokens", '{"tokens": 4}')]
    report = cli("events", "import", cli.write("events.jsonl", "\n".join(lines) + "\n"), "--json").json()
    assert report["stored"] == 2 and report["rejected"] == {"invalid_value": 2}, report
    messages = {r["id"]: r["message"] for r in report["rejections"]}
    assert "'note'" in messages["note-1"] and "'meta.deep.1'" in messages["nested-1"], messages
    assert _stored_ids(cli.db) == {"ok-1", "ok-2"}


def test_the_same_bound_on_csv_files(cli: Cli) -> None:
    _apply(cli)
    csv = ("id,customer,meter,timestamp,tokens\n"
           "c1,acme,tokens,2026-01-20T10:00:00Z,1e400\n"
           "c2,acme,tokens,2026-01-20T10:00:00Z,12\n")
    report = cli("events", "import", cli.write("events.csv", csv), "--json").json()
    assert report["stored"] == 1 and report["rejected"] == {"invalid_value": 1}, report
    assert cli("invoices", "generate", "--until", "2026-02-01").code == 0


def test_integers_near_the_64_bit_limit_add_up_exactly(cli: Cli) -> None:
    """SQLite adds JSON integers as 64-bit integers: 2^63-1 plus 1 used to stop every run."""
    _apply(cli)
    lines = [_event("n1", "acme", "n", '{"n": 9223372036854775807}'),
             _event("n2", "acme", "n", '{"n": 1}'),
             _event("n3", "acme", "level", '{"level": 9223372036854775807}'),
             _event("n4", "acme", "level", '{"level": 9223372036854775807}'),
             _event("b1", "bob", "tokens", '{"tokens": 1}')]
    assert cli.ok("events", "import", cli.write("events.jsonl", "\n".join(lines) + "\n"), "--json").json()[
        "stored"] == 5
    cli.ok("invoices", "generate", "--until", "2026-02-01")
    invoices = cli.ok("invoices", "list", "--json").json()
    acme = next(i for i in invoices if i["customer"] == "acme" and i["issue_date"] == "2026-02-01")
    lines_by_code = {line["code"]: line for line in acme["lines"]}
    assert Decimal(lines_by_code["n"]["quantity"]) == 9223372036854775808
    assert Decimal(lines_by_code["level"]["quantity"]) == 9223372036854775807


def test_a_customer_whose_pricing_fails_is_reported_and_the_others_are_invoiced(cli: Cli) -> None:
    _stored_before_the_bound(cli.db, WHALE)
    lines = [_event("w1", "whale", "tokens", '{"tokens": 99999999999999999999}'),
             _event("a1", "acme", "tokens", '{"tokens": 1000}')]
    cli.ok("events", "import", cli.write("events.jsonl", "\n".join(lines) + "\n"))
    text = cli("invoices", "generate", "--until", "2026-02-01")
    assert text.code == 1, str(text)
    assert "internal error" not in text.err and "Traceback" not in text.err, str(text)
    assert "whale" in text.err and "whale-huge" in text.err and "tokens" in text.err, str(text)
    run = cli("invoices", "generate", "--until", "2026-02-01", "--json")
    assert run.code == 1, str(run)
    failures = run.json()["failures"]
    assert len(failures) == 1
    failure = failures[0]
    assert (failure["customer"], failure["subscription"], failure["charge"]) == ("whale", "whale-huge", "tokens")
    assert failure["boundary"].startswith("2026-02-01") and failure["reason"], failure
    invoices = cli.ok("invoices", "list", "--json").json()
    assert {i["customer"] for i in invoices} == {"acme", "bob"}


# ---------------------------------------------------------------- catalog numbers

WHALE_PRICE = "plans[1].charges[0].unit_amount"  # where WHALE's 1e40 sits


def test_catalog_check_refuses_a_price_out_of_range_with_its_path(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from ratecard.cli import main

    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(WHALE.replace('amount: "10.00"', 'amount: "1e-400"'), encoding="utf-8")
    assert main(["catalog", "check", str(catalog), "--json"]) == 1
    problems = {p["path"]: p["message"] for p in json.loads(capsys.readouterr().out)["problems"]}
    assert set(problems) == {WHALE_PRICE, "plans[0].charges[0].amount"}, problems
    assert "1E+40 is out of range" in problems[WHALE_PRICE] and "1e-19 <= |value| < 1e20" in problems[WHALE_PRICE]
    assert main(["catalog", "check", str(catalog)]) == 1
    assert WHALE_PRICE in capsys.readouterr().out
    assert main(["catalog", "apply", str(catalog), "--db", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    assert WHALE_PRICE in capsys.readouterr().err


# ---------------------------------------------------------------- the HTTP API


@pytest.fixture
def api(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """The shared in-process client with "now" pinned (read per request)."""
    monkeypatch.setenv("RATECARD_NOW", NOW)
    return api


def _post_events(api: Api, *lines: str):
    return api.post("/v1/events", content=("[" + ",".join(lines) + "]").encode(),
                    headers={"content-type": "application/json"})


def test_api_rejects_out_of_range_numbers_per_event_and_stores_the_rest(api: Api) -> None:
    api.apply_catalog(CATALOG)
    response = _post_events(api, _event("ok-1", "acme", "tokens", '{"tokens": 5}'),
                            _event("note-1", "acme", "tokens", '{"tokens": 1, "note": 1e131072}'),
                            _event("big-1", "bob", "tokens", '{"tokens": 1e400}'),
                            _event("ok-2", "bob", "tokens", '{"tokens": 7}'))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stored"] == 2 and body["rejected"] == {"invalid_value": 2}, body
    errors = {error["index"]: error for error in body["errors"]}
    assert errors[2]["reason"] == "invalid_value" and "'note'" in errors[2]["message"], errors
    assert errors[3]["reason"] == "invalid_value" and "'tokens'" in errors[3]["message"], errors
    assert _stored_ids(api.url) == {"ok-1", "ok-2"}
    run = api.post("/v1/invoice-runs", json={"until": "2026-02-01"})
    assert run.status_code == 200 and run.json()["failures"] == [], run.text


def test_api_invoice_run_lists_failures_and_answers_200(api: Api) -> None:
    _stored_before_the_bound(api.url, WHALE)
    assert _post_events(api, _event("w1", "whale", "tokens", '{"tokens": 99999999999999999999}'),
                        _event("a1", "acme", "tokens", '{"tokens": 10}')).json()["stored"] == 2
    run = api.post("/v1/invoice-runs", json={"until": "2026-02-01"})
    assert run.status_code == 200, run.text
    failures = run.json()["failures"]
    assert [(f["customer"], f["subscription"], f["charge"]) for f in failures] == [("whale", "whale-huge", "tokens")]
    exported = api.get("/v1/exports/invoices").json()
    assert {i["customer"] for i in exported} == {"acme", "bob"}


def test_the_api_refuses_catalog_numbers_out_of_range_with_their_path(api: Api) -> None:
    yaml = {"content-type": "application/yaml"}
    checked = api.post("/v1/catalog/check", content=WHALE.encode(), headers=yaml)
    assert checked.status_code == 200 and checked.json()["valid"] is False, checked.text
    assert [p["path"] for p in checked.json()["problems"]] == [WHALE_PRICE]
    applied = api.post("/v1/catalog", content=WHALE.encode(), headers=yaml)
    assert applied.status_code == 400 and applied.json()["field"] == WHALE_PRICE, applied.text
    assert api.get("/v1/catalog").status_code == 404  # nothing was applied


def test_solvimon_ingest_uses_the_same_bound(api: Api) -> None:
    api.apply_catalog(CATALOG)
    event = {"reference": "solvimon-0001", "customer_reference": "acme", "meter_reference": "tokens",
             "timestamp": "2026-01-20T10:00:00Z", "meter_values": [{"reference": "tokens", "number": "1e25"}]}
    refused = api.post("/v1/ingest/meter-data", json=event)
    assert refused.status_code == 400 and refused.json()["field"] == "meter_values.0.number", refused.text
    assert "1e-19 <= |value| < 1e20" in refused.json()["message"]
    inside = {**event, "meter_values": [{"reference": "tokens", "number": "99999999999999999999"}]}
    assert api.post("/v1/ingest/meter-data", json=inside).status_code == 201


# ---------------------------------------------------------------- the property


def test_the_bound_is_the_documented_one() -> None:
    assert number_problem(Decimal("9" * 20)) is None
    assert number_problem(Decimal("1e20")) is not None
    assert number_problem(Decimal("-1e-19")) is None
    assert number_problem(Decimal("1e-20")) is not None
    assert number_problem(Decimal("0E-57")) is None and number_problem(Decimal("0.000")) is None
    # a zero's written exponent is stored as well: PostgreSQL's jsonb numeric refuses 0E-20000
    assert number_problem(Decimal("0E-58")) is not None and number_problem(Decimal("0E-20000")) is not None
    assert number_problem(Decimal("0E+58")) is not None
    assert number_problem(Decimal("1." + "1" * (MAX_DIGITS - 1))) is None
    assert number_problem(Decimal("1." + "1" * MAX_DIGITS)) is not None
    assert number_problem(10**20 - 1) is None and number_problem(-(10**20)) is not None


# any JSON number text: a JSON integer, fraction and exponent of any length, or a float as Python writes it
_number_text = st.one_of(
    st.from_regex(r"\A-?(0|[1-9][0-9]{0,45})(\.[0-9]{1,45})?([eE][+-]?[0-9]{1,9})?\Z"),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_number_text)
def test_any_number_is_stored_and_billed_or_rejected_invalid_value(api: Api, text: str) -> None:
    """For any JSON number: the event is rejected invalid_value, or stored and every run prices it (or
    reports only that customer), invoicing the other customer."""
    if not _stored_ids(api.url):
        api.apply_catalog(CATALOG)
    json.loads(text)  # a JSON number
    tag = uuid.uuid4().hex
    body = _post_events(api, _event(f"p-{tag}", "acme", "tokens", f'{{"tokens": {text}, "note": {text}}}'),
                        _event(f"b-{tag}", "bob", "tokens", '{"tokens": 1}'))
    assert body.status_code == 200, body.text
    result = body.json()
    assert result["stored"] + result["duplicates"] + sum(result["rejected"].values()) == 2, result
    assert set(result["rejected"]) <= {"invalid_value"}, result
    run = api.post("/v1/invoice-runs", json={"until": "2026-02-01"})
    assert run.status_code == 200, run.text
    assert all(f["customer"] == "acme" for f in run.json()["failures"]), run.text
    exported = api.get("/v1/exports/invoices").json()
    assert "bob" in {i["customer"] for i in exported}
