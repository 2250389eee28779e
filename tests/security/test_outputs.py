"""What the CLI and the API write: data is printed as text (never Rich markup), CSV cells are never
spreadsheet formulas, and an output never destroys an input, the database or the previous output."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml

from ratecard.catalog.schema import CatalogDocument
from ratecard.outputs import OutputError, csv_cell, csv_text, replace_atomically, write_output
from ratecard.store import open_store
from ratecard.store.catalogs import save_version
from tests.api.conftest import Api, api  # noqa: F401 - the `api` fixture (SQLite and PostgreSQL)
from tests.e2e.harness import Cli, assert_user_error, jsonl

# `[/b]` closes a tag nobody opened (Rich raises), `[link=…]` would be a terminal hyperlink, and the
# plan's codes, the subscription and the customer's name begin like spreadsheet formulas.
HOSTILE_CATALOG = """\
billing_entity: {name: E2E Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
plans:
  - code: pro
    currency: EUR
    interval: month
    charges:
      - {code: "=HYPERLINK(\\"http://evil.example\\";\\"x\\")", meter: tokens, model: per_unit, unit_amount: "0.10",
         description: "@SUM(A1:A9)"}
customers:
  - {reference: "[/b]", name: "+Acme", country: NL, currency: EUR, tax_rate: "21"}
  - {reference: "[link=https://evil.example]click[/link]", name: Evil, country: NL, currency: EUR}
subscriptions:
  - {reference: "-sub", customer: "[/b]", plan: pro, start: 2026-01-01, billing_anchor: 1}
  - {reference: link-sub, customer: "[link=https://evil.example]click[/link]", plan: pro, start: 2026-12-01}
"""
FORMULA_CODE = '=HYPERLINK("http://evil.example";"x")'
QUOTED_FORMULA = '"' + FORMULA_CODE.replace('"', '""') + '"'  # as a CSV cell
LINK_CUSTOMER = "[link=https://evil.example]click[/link]"
# -125 tokens at 0.10: the line and the invoice are negative amounts, which must stay numbers
EVENTS = jsonl({"id": "e1", "customer": "[/b]", "meter": "tokens", "timestamp": "2026-01-05T00:00:00Z",
                "properties": {"tokens": -125}})


def _billed(cli: Cli) -> None:
    cli.ok("catalog", "apply", cli.write("catalog.yaml", HOSTILE_CATALOG))
    cli.ok("events", "import", cli.write("events.jsonl", EVENTS))
    cli.ok("invoices", "generate", "--until", "2026-02-01")


@pytest.fixture
def hostile(db_url: str, tmp_path: Path) -> Cli:
    """The CLI on a database (both stores) holding a draft whose texts are markup and formulas."""
    cli = Cli(tmp_path)
    cli.db = db_url
    _billed(cli)
    return cli


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _assert_invoice_csv(text: str) -> None:
    rows = _rows(text)
    assert len(rows) == 1, text
    row = rows[0]
    assert row["customer"] == "[/b]"
    assert row["subscription"] == "'-sub"
    assert row["code"] == "'" + FORMULA_CODE
    assert row["description"] == "'@SUM(A1:A9)"
    # numbers, negative ones included, are written as they are
    assert (row["quantity"], row["amount"], row["subtotal"], row["total"]) == ("-125", "-12.50", "-12.50", "-15.13")


# ----------------------------------------------------------------------------- data is never markup

def test_markup_in_customer_references_prints_literally(hostile: Cli) -> None:
    listed = hostile.ok("invoices", "list")
    assert "[/b]" in listed.out
    shown = hostile.ok("invoices", "show", "DRAFT-1")
    assert "[/b]" in shown.out and "-sub" in shown.out
    check = hostile("golive", "check")
    assert check.code == 1, str(check)  # the customer without a tax rate blocks go-live: a finding, not a crash
    assert "internal error" not in check.err, str(check)
    assert LINK_CUSTOMER in check.out, str(check)
    assert "\x1b]8;" not in check.out  # never a terminal hyperlink


def test_markup_in_a_legacy_cell_prints_literally(hostile: Cli) -> None:
    legacy = hostile.write("legacy.csv", "customer,code,service_start,service_end,quantity,amount\n"
                                         "[/x],calls,2026-01-01,2026-02-01,1,2.00\n"
                                         "[/x],calls,2026-01-01,2026-02-01,1,3.00\n")
    result = hostile("reconcile", legacy)
    assert "internal error" not in result.err, str(result)
    assert result.code == 1, str(result)  # differences found
    assert "[/x]" in result.out + result.err, str(result)


def test_markup_in_a_file_name_prints_literally(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    result = cli("events", "import", cli.write("[/b]events.jsonl", "{\n"))
    assert "internal error" not in result.err, str(result)
    assert "[/b]events.jsonl" in result.out + result.err, str(result)


# ----------------------------------------------------------------------------- CSV formula injection

def test_csv_cells_beginning_like_a_formula_are_neutralised() -> None:
    for text in ("=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1", "-", "+", "=", "-12.50x", "\uff1d1"):
        assert csv_cell(text) == "'" + text
    # a carriage return (like every control character but tab and newline) is written visibly: the
    # cell then begins with a backslash, no formula
    assert csv_cell("\r=1") == "\\x0d=1" and csv_cell("=1\x1b[2J") == "'=1\\x1b[2J"
    for text in ("-12.50", "+3", "0", "12", "acme", "", "a=b", "1e5", " =1"):
        assert csv_cell(text) == text
    assert csv_cell(None) is None
    assert csv_text(["a", "=b"], [["-1", "=2"]]) == "a,'=b\n-1,'=2\n"


def test_cli_invoice_export_neutralises_formulas(hostile: Cli) -> None:
    _assert_invoice_csv(hostile.ok("invoices", "export", "--format", "csv").out)
    hostile.ok("invoices", "export", "--format", "csv", "--out", "invoices.csv")
    _assert_invoice_csv((hostile.folder / "invoices.csv").read_text(encoding="utf-8"))


def test_api_invoice_export_neutralises_formulas(api: Api, tmp_path: Path) -> None:  # noqa: F811
    cli = Cli(tmp_path)
    cli.db = api.url
    _billed(cli)
    response = api.get("/v1/exports/invoices", params={"format": "csv"})
    assert response.status_code == 200, response.text
    _assert_invoice_csv(response.text)


def test_reconcile_csv_report_neutralises_formulas(hostile: Cli) -> None:
    legacy = hostile.write("legacy.csv", "customer,code,service_start,service_end,quantity,amount\n"
                                         f"{QUOTED_FORMULA},calls,2026-01-01,2026-02-01,1,3.00\n"
                                         f"[/b],{QUOTED_FORMULA},2026-01-01,2026-02-01,-125,-15.00\n")
    result = hostile("reconcile", legacy, "--out", "report.csv")
    assert result.code == 1, str(result)
    rows = _rows((hostile.folder / "report.csv").read_text(encoding="utf-8"))
    assert rows, str(result)
    assert {row["customer"] for row in rows} >= {"'" + FORMULA_CODE, "[/b]"}
    assert all(not row[name].startswith(("=", "@", "+")) for row in rows for name in row if row[name])
    # ratecard -12.50 against legacy -15.00: negative numbers, written as they are
    amounts = [(row["ratecard"], row["legacy"], row["delta"]) for row in rows if row["field"] == "amount"]
    assert amounts == [("-12.50", "-15.00", "-2.50")], rows


# ----------------------------------------------------------------------------- outputs never destroy inputs

def test_rejects_file_that_is_the_input_is_refused(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    content = '{"id": "bad"}\n{"also": "bad"}\n'
    events = cli.write("rj.jsonl", content)
    for same in ("rj.jsonl", "./rj.jsonl", str(events), "../" + tmp_path.name + "/rj.jsonl"):
        assert_user_error(cli("events", "import", "rj.jsonl", "--rejects", same), 2, "--rejects", "input")
        assert events.read_text(encoding="utf-8") == content
    (tmp_path / "link.jsonl").hardlink_to(events)
    assert_user_error(cli("events", "import", "rj.jsonl", "--rejects", "link.jsonl"), 2, "--rejects")
    assert events.read_text(encoding="utf-8") == content


def test_an_output_that_is_the_database_is_refused(tmp_path: Path) -> None:
    cli = Cli(tmp_path, "ccx.db")
    _billed(cli)
    database = tmp_path / "ccx.db"
    before = database.read_bytes()
    for out in ("ccx.db", str(database), "ccx.db-wal", "ccx.db-shm"):
        assert_user_error(cli("invoices", "export", "--out", out), 2, "--out", "database")
        assert_user_error(cli("events", "import", "events.jsonl", "--rejects", out), 2, "--rejects", "database")
    assert database.read_bytes() == before
    assert cli.ok("invoices", "list", "--json").json()[0]["number"] == "DRAFT-1"


def test_reconcile_report_that_is_the_legacy_file_is_refused(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    _billed(cli)
    content = "customer,code,service_start,service_end,quantity,amount\n[/b],x,2026-01-01,2026-02-01,1,3.00\n"
    legacy = cli.write("legacy.csv", content)
    assert_user_error(cli("reconcile", "legacy.csv", "--out", "legacy.csv"), 2, "--out", "input")
    assert legacy.read_text(encoding="utf-8") == content


def test_a_failed_command_leaves_the_previous_output_intact(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    _billed(cli)
    previous = cli.write("rejects.jsonl", "previous rejects\n")
    export = cli.write("invoices.csv", "previous export\n")
    # the input cannot be read: the command fails after --rejects was named
    assert_user_error(cli("events", "import", "missing.jsonl", "--rejects", "rejects.jsonl"), 2)
    assert previous.read_text(encoding="utf-8") == "previous rejects\n"
    assert_user_error(cli("invoices", "export", "--format", "csv", "--out", "invoices.csv",
                          db=f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}"), 2)
    assert export.read_text(encoding="utf-8") == "previous export\n"
    assert sorted(path.name for path in tmp_path.iterdir() if ".partial" in path.name) == []


def test_a_write_failing_halfway_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(ZeroDivisionError), replace_atomically("--out", target) as handle:
        handle.write("half of the new report\n")
        raise ZeroDivisionError
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["report.csv"]
    write_output("--out", target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n"
    with pytest.raises(OutputError, match="cannot be written"):
        write_output("--out", tmp_path / "no-such-folder" / "x.csv", "x")


ESCAPE_CATALOG = """\
billing_entity: {name: E2E Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
plans:
  - {code: pro, currency: EUR, charges: [{code: tokens, meter: tokens, model: per_unit, unit_amount: "0.10",
                                          description: "tokens \\e]0;owned\\a"}]}
customers:
  - {reference: esc, name: "clear\\e[2J", country: NL, currency: EUR}
subscriptions:
  - {reference: esc-sub, customer: esc, plan: pro, start: 2026-01-01, billing_anchor: 1}
"""


def test_terminal_escape_sequences_in_data_are_shown_not_obeyed(tmp_path: Path) -> None:
    """ESC (and every control character but newline and tab) in a charge's description is printed
    as a visible \\x1b, in tables and in messages: data never recolours,
    clears or retitles the operator's terminal. Such a catalog is refused when applied now (its path
    named); one stored before that rule is still read, and this is what its data looks like."""
    cli = Cli(tmp_path)
    refused = cli("catalog", "apply", cli.write("catalog.yaml", ESCAPE_CATALOG))
    assert refused.code == 2 and "plans[0].charges[0].description: must not contain control characters" in refused.err
    assert "\x1b" not in refused.err
    store = open_store(cli.db)
    try:
        save_version(store, CatalogDocument.model_validate(yaml.safe_load(ESCAPE_CATALOG)), 0)
    finally:
        store.engine.dispose()
    cli.ok("invoices", "generate", "--until", "2026-02-01")
    shown = cli.ok("invoices", "show", "DRAFT-1")
    assert "\x1b" not in shown.out and "\x07" not in shown.out
    assert "\\x1b]0;owned\\x07" in shown.out


GROUPED_CATALOG = """\
billing_entity: {name: E2E Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
plans:
  - {code: pro, currency: EUR, charges: [{code: tokens, meter: tokens, model: per_unit, unit_amount: "0.10",
                                          description: Tokens, group_by: [region]}]}
customers:
  - {reference: acme, country: NL, currency: EUR}
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2026-01-01, billing_anchor: 1}
"""


def test_escape_sequences_from_events_are_shown_not_obeyed_in_csv_exports(tmp_path: Path) -> None:
    """An event's property value names its group on the invoice line (`Tokens (region …)`): a value
    holding ESC or BEL reaches the CSV export written as visible \\xNN, like the terminal shows it,
    on stdout (the operator's terminal) and in the file."""
    cli = Cli(tmp_path)
    cli.ok("catalog", "apply", cli.write("catalog.yaml", GROUPED_CATALOG))
    cli.ok("events", "import", cli.write("events.jsonl", jsonl(
        {"id": "e1", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-05T00:00:00Z",
         "properties": {"tokens": 5, "region": "eu\x1b]0;owned\x07\x1b[2J\r\x9b"}})))
    cli.ok("invoices", "generate", "--until", "2026-02-01")
    printed = cli.ok("invoices", "export", "--format", "csv").out
    cli.ok("invoices", "export", "--format", "csv", "--out", "drafts.csv")
    written = (tmp_path / "drafts.csv").read_text(encoding="utf-8")
    for text in (printed, written):
        assert not any(char in text for char in "\x1b\x07\r\x9b")
        (line,) = [row for row in csv.DictReader(io.StringIO(text)) if row["code"] == "tokens"]
        assert line["description"] == "Tokens (region eu\\x1b]0;owned\\x07\\x1b[2J\\x0d\\x9b)"
