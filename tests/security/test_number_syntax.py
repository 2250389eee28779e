"""Numbers written as text have one syntax on every path a user writes them in
(docs/security/numbers.md, "Numbers written as text"): an import rejects the one row with its
reason and stores the others, an HTTP request gets a 400 naming the field, a catalog is refused at
the number's path, a CLI option is refused naming the option.

Each test that touches a database runs on SQLite and PostgreSQL (the `db_url` fixture); the CLI
runs as a user would (tests.e2e.harness), the API in process (like tests/api)."""

from __future__ import annotations

import json

import pytest

from ..api.conftest import Api
from ..e2e.harness import Cli, assert_user_error
from . import test_numbers
from .test_api_hostile_money import _one_off_draft
from .test_numbers import CATALOG, NOW, _event, _stored_ids

# a cell written in a form Python's Decimal reads but no billing user means, and why it is refused
HOSTILE_CELLS = {
    "underscore": ("1_000", "no '_' between digits"),
    "arabic": ("١٢٣", "only the digits 0-9"),
    "fullwidth": ("１２", "only the digits 0-9"),
    "space": (" 5", "no spaces around"),
    "plus": ("+5", "no '+' sign"),
    "huge": ("1e400000", "out of range"),
    "tiny": ("1E-999999", "out of range"),
    "nan": ("NaN", "NaN and infinities"),
    "snan": ("sNaN", "NaN and infinities"),
    "zeros": ("007", "no leading zeros"),
}

cli = test_numbers.cli  # the fixture: the CLI as a user runs it, on a fresh database (both stores) at NOW


# ---------------------------------------------------------------- imports (CLI)


def test_a_csv_import_rejects_each_hostile_number_with_its_reason_and_stores_the_rest(cli: Cli) -> None:
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    rows = ["id,customer,meter,timestamp,tokens"]
    rows += [f'{name},acme,tokens,2026-01-20T10:00:00Z,"{cell}"' for name, (cell, _) in HOSTILE_CELLS.items()]
    rows += ["ok-1,acme,tokens,2026-01-20T10:00:00Z,12", "ok-2,bob,tokens,2026-01-20T10:00:00Z,1.5e3",
             "ok-3,bob,tokens,2026-01-20T10:00:00Z,-0.25"]
    result = cli("events", "import", cli.write("events.csv", "\n".join(rows) + "\n"), "--json")
    assert result.code == 1, str(result)  # some rows rejected
    report = result.json()
    assert report["stored"] == 3 and report["rejected"] == {"invalid_value": len(HOSTILE_CELLS)}, report
    messages = {rejection["id"]: rejection["message"] for rejection in report["rejections"]}
    for name, (_, why) in HOSTILE_CELLS.items():
        assert "'tokens'" in messages[name] and why in messages[name], (name, messages[name])
    assert _stored_ids(cli.db) == {"ok-1", "ok-2", "ok-3"}
    assert cli("invoices", "generate", "--until", "2026-02-01").code == 0


def test_a_jsonl_string_a_meter_sums_is_read_in_the_same_syntax(cli: Cli) -> None:
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    lines = [_event("full", "acme", "tokens", '{"tokens": "１２"}'),
             _event("under", "acme", "tokens", '{"tokens": "1_000"}'),
             _event("text-ok", "bob", "tokens", '{"tokens": "12.5"}'),
             _event("number-ok", "bob", "tokens", '{"tokens": 7}')]
    report = cli("events", "import", cli.write("events.jsonl", "\n".join(lines) + "\n"), "--json").json()
    assert report["stored"] == 2 and report["rejected"] == {"invalid_value": 2}, report
    assert _stored_ids(cli.db) == {"text-ok", "number-ok"}


# ---------------------------------------------------------------- the catalog (CLI)

PRICE = "plans[0].charges[1].unit_amount"  # CATALOG's "0.002"


@pytest.mark.parametrize(("written", "why"), [('"１０"', "only the digits 0-9"), ('"1_000"', "no '_'"),
                                              ("1_000.5", "no '_'"), ('" 10"', "no spaces around"),
                                              ("+0.5", "no '+' sign"), (".5", "digits on both sides"),
                                              ('"NaN"', "NaN and infinities")])
def test_catalog_check_refuses_a_price_in_another_syntax_at_its_path(cli: Cli, written: str, why: str) -> None:
    catalog = cli.write("catalog.yaml", CATALOG.replace('unit_amount: "0.002"', f"unit_amount: {written}"))
    result = cli("catalog", "check", catalog, "--json", db=False)
    assert result.code == 1, str(result)
    problems = {problem["path"]: problem["message"] for problem in result.json()["problems"]}
    assert set(problems) == {PRICE} and why in problems[PRICE], problems


@pytest.mark.parametrize(("written", "why"), [("010", "no leading zeros"), ("0x10", "write digits"),
                                              ("1_000", "no '_'"), ("+10", "no '+' sign"), ("1:30", "write digits")])
def test_yaml_whole_numbers_are_read_as_written_not_as_yaml_1_1_reads_them(cli: Cli, written: str, why: str) -> None:
    # YAML 1.1 reads 010 as 8, 0x10 as 16 and 1:30 as 90: such an amount is refused, not reinterpreted
    text = CATALOG.replace('amount: "10.00"', f"amount: {written}")
    result = cli("catalog", "check", cli.write("catalog.yaml", text), "--json", db=False)
    assert result.code == 1, str(result)
    problems = {problem["path"]: problem["message"] for problem in result.json()["problems"]}
    assert set(problems) == {"plans[0].charges[0].amount"} and why in problems["plans[0].charges[0].amount"]


def test_catalog_apply_refuses_it_and_applies_nothing(cli: Cli) -> None:
    catalog = cli.write("catalog.yaml", CATALOG.replace('unit_amount: "0.002"', 'unit_amount: "０.００２"'))
    assert_user_error(cli("catalog", "apply", catalog), 2, PRICE, "only the digits 0-9", one_line=False)
    assert cli("catalog", "show", "--json").code != 0  # no catalog was applied


# ---------------------------------------------------------------- CLI options


@pytest.mark.parametrize(("option", "value", "why"), [("--fraction", "٠.٥", "only the digits 0-9 (ASCII): write 0.5"),
                                                     ("--fraction", "0_5", "no '_'"),
                                                     ("--fraction", "0,5", "1.5, not 1,5"),
                                                     ("--min-expected", "1,000", "write 1000, not 1,000"),
                                                     ("--min-expected", "1e400000", "out of range"),
                                                     # the ASCII form is refused too: it is not offered as what to write
                                                     ("--min-expected", "٠٠٧", "only the digits 0-9 (ASCII), and no "
                                                                               "leading zeros: write 7, not 007"),
                                                     ("--fraction", "٠,٥", "only the digits 0-9 (ASCII), and no ','")])
def test_an_alert_rule_option_in_another_syntax_is_refused_naming_it(cli: Cli, option: str, value: str,
                                                                     why: str) -> None:
    options = {"--fraction": "0.5", option: value}
    result = cli("alerts", "rules", "add", "--kind", "drop", *[part for item in options.items() for part in item])
    assert_user_error(result, 2, option, why)
    assert cli.ok("alerts", "rules", "list", "--json").json() == []


# ---------------------------------------------------------------- the HTTP API


@pytest.fixture
def api(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("RATECARD_NOW", NOW)
    return api


def _refused(response, field: str, why: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == field and why in body["message"], body


@pytest.mark.parametrize("name", sorted(HOSTILE_CELLS))
def test_solvimon_ingest_answers_400_naming_the_field(api: Api, name: str) -> None:
    api.apply_catalog(CATALOG)
    written, why = HOSTILE_CELLS[name]
    event = {"reference": "solvimon-0001", "customer_reference": "acme", "meter_reference": "tokens",
             "timestamp": "2026-01-20T10:00:00Z", "meter_values": [{"reference": "tokens", "number": written}]}
    _refused(api.post("/v1/ingest/meter-data", json=event), "meter_values.0.number", why)
    assert _stored_ids(api.url) == set()
    fine = {**event, "meter_values": [{"reference": "tokens", "number": "1000"}]}
    assert api.post("/v1/ingest/meter-data", json=fine).status_code == 201


def test_post_events_rejects_the_one_event_and_stores_the_rest(api: Api) -> None:
    api.apply_catalog(CATALOG)
    lines = [_event("ok-1", "acme", "tokens", '{"tokens": "5"}'), _event("bad-1", "acme", "tokens", '{"tokens": "1_000"}'),
             _event("ok-2", "bob", "tokens", '{"tokens": 7}')]
    response = api.post("/v1/events", content=("[" + ",".join(lines) + "]").encode(),
                        headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["stored"] == 2 and body["rejected"] == {"invalid_value": 1}, body
    assert "no '_'" in body["errors"][0]["message"], body
    assert _stored_ids(api.url) == {"ok-1", "ok-2"}


LIMITED = CATALOG.replace("meters:\n", "features:\n  - {code: quota, type: number, meter: tokens}\nmeters:\n", 1)


@pytest.mark.parametrize(("written", "why"), [("+5", "no '+' sign"), ("1_000", "no '_'"), ("１２", "only the digits"),
                                              (" 5 ", "no spaces around"), ("1e400000", "out of range")])
def test_a_usage_limit_in_another_syntax_answers_400_naming_the_field(api: Api, written: str, why: str) -> None:
    api.apply_catalog(LIMITED)
    calculations = api.get("/v1/meter-value-calculations").json()["data"]
    meter = next(item["id"] for item in calculations if item["reference"] == "tokens")
    body = {"customer_id": "acme", "meter_value_calculation_id": meter, "scope": "SELF", "limit": {"number": written}}
    _refused(api.post("/v1/usage-limits", json=body), "limit.number", why)
    assert api.post("/v1/usage-limits", json={**body, "limit": {"number": "5"}}).status_code == 201


def test_a_catalog_posted_with_a_price_in_another_syntax_answers_400_at_its_path(api: Api) -> None:
    yaml = {"content-type": "application/yaml"}
    bad = CATALOG.replace('unit_amount: "0.002"', 'unit_amount: "1_000"')
    _refused(api.post("/v1/catalog", content=bad.encode(), headers=yaml), PRICE, "no '_'")
    assert api.get("/v1/catalog").status_code == 404  # nothing was applied
    as_json = json.dumps({"plans": [{"code": "p", "currency": "EUR", "charges": [
        {"code": "c", "model": "flat", "amount": "١٠", "timing": "advance"}]}]})
    checked = api.post("/v1/catalog/check", content=as_json.encode(), headers={"content-type": "application/json"})
    assert checked.status_code == 200 and checked.json()["valid"] is False, checked.text
    assert [p["path"] for p in checked.json()["problems"]] == ["plans[0].charges[0].amount"], checked.text


@pytest.mark.parametrize(("line", "field", "why"), [
    ({"pricing_type": "FLAT", "volume": {"number": "3"}, "pricing_band": {"amount": {"quantity": "1_000"}}},
     "pricing_band.amount.quantity", "no '_'"),
    ({"pricing_type": "FLAT", "volume": {"number": "３"}, "pricing_band": {"amount": {"quantity": "10"}}},
     "volume.number", "only the digits"),
    ({"pricing_type": "FIXED", "pricing_band": {"amount": {"quantity": "+10"}}}, "pricing_band.amount.quantity",
     "no '+' sign"),
])
def test_a_one_off_line_in_another_syntax_answers_400_and_the_draft_stays_as_it_was(api: Api, line: dict, field: str,
                                                                                    why: str) -> None:
    draft = _one_off_draft(api)
    _refused(api.post(f"/v1/invoices/{draft}/lines", json=line), field, why)
    assert api.get(f"/v1/invoices/{draft}").json()["invoice_amount_including_tax"]["quantity"] == "0.00"
    fine = {"pricing_type": "FIXED", "pricing_band": {"amount": {"quantity": "10"}}}
    assert api.post(f"/v1/invoices/{draft}/lines", json=fine).status_code in (200, 201)
