"""Bad input through the real `ratecard` executable: what a user sees, and what is kept.

For every case: ratecard's exit code (1 = ran and found problems, 2 = usage or input
error), no traceback and no "internal error", one sentence on stderr that names the file, the
line and the field, and nothing already stored is lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .harness import CATALOG, Cli, assert_user_error, event, jsonl, lines_by_code

BIG = "x" * 10_000

# ---------------------------------------------------------------------------------------------
# catalog files


INVALID_YAML = """\
billing_entity: {name: Broken BV}
plans:
  - code: pro
    currency: EUR
   interval: month
"""  # line 5 is indented one space short

INVALID_JSON = """\
{
  "plans": [
    {"code": "pro", "currency": "EUR",, "interval": "month"}
  ]
}
"""  # line 3: two commas


@pytest.mark.parametrize(
    ("name", "content", "needles"),
    [
        pytest.param("empty.yaml", "", ("empty",), id="empty"),
        pytest.param("missing.yaml", None, ("no such file",), id="missing"),
        pytest.param("folder.yaml", "DIR", ("directory",), id="directory"),
        pytest.param("invalid.yaml", INVALID_YAML, ("line 5",), id="invalid-yaml"),
        pytest.param("invalid.json", INVALID_JSON, ("line 3",), id="invalid-json"),
        pytest.param("array.json", '[{"plans": []}]\n', ("mapping",), id="json-array-top-level"),
        pytest.param("list.yaml", "- plans\n- meters\n", ("mapping",), id="yaml-list-top-level"),
        pytest.param("latin1.yaml", b"billing_entity:\n  name: Acme\n  country: Caf\xe9\nplans: []\n",
                     ("line 3",), id="not-utf8"),
    ],
)
def test_catalog_file_is_refused_with_exit_2(cli: Cli, name: str, content: str | bytes | None,
                                              needles: tuple[str, ...]) -> None:
    path = cli.folder / name
    if content == "DIR":
        path.mkdir()
    elif content is not None:
        cli.write(name, content)
    result = cli("catalog", "check", path, db=False)
    assert_user_error(result, 2, str(path), *needles)
    assert result.out == ""


MANY_PROBLEMS = """\
billing_entity: {name: Broken BV, timezone: UTC, currency: EURO}
meters:
  - {code: tokens, aggregation: summ, field: tokens}
  - {code: calls, aggregation: sum}
plans:
  - code: pro
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "-5"}
      - code: usage
        meter: calls
        model: graduated
        tiers:
          - {up_to: 1000, unit_amount: "0"}
          - {up_to: 500, unit_amount: "0.002"}
          - {up_to: null, unit_amount: "abc"}
      - {code: calls, meter: nosuch, model: per_unit, unit_amount: "0.1"}
customers:
  - {reference: acme, tax_rate: "150"}
subscriptions:
  - {reference: acme-pro, customer: ghost, plan: pro, start: 2026-01-01, billing_anchor: 40}
"""
# each of these is a problem of its own; a user fixing the file wants all of them at once
MANY_PROBLEMS_PATHS = {
    "billing_entity.currency",  # EURO
    "meters[0].aggregation",  # summ
    "meters[1].field",  # sum needs a field
    "plans[0].charges[0].amount",  # negative
    "plans[0].charges[1].tiers[1].up_to",  # 500 after 1000
    "plans[0].charges[1].tiers[2].unit_amount",  # "abc"
    "plans[0].charges[2].meter",  # unknown meter nosuch
    "customers[0].tax_rate",  # 150 %
    "subscriptions[0].customer",  # unknown customer ghost
    "subscriptions[0].billing_anchor",  # 40
}


def test_catalog_check_lists_every_problem_with_its_path(cli: Cli) -> None:
    catalog = cli.write("broken.yaml", MANY_PROBLEMS)
    result = cli("catalog", "check", catalog, "--json", db=False)
    assert result.code == 1, str(result)
    assert "Traceback" not in result.err
    report = result.json()
    assert report["valid"] is False
    paths = [problem["path"] for problem in report["problems"]]
    assert not MANY_PROBLEMS_PATHS - set(paths), f"problems not reported: {MANY_PROBLEMS_PATHS - set(paths)}\n{result}"
    assert len(paths) == len(set(paths)), "one problem per path"
    for problem in report["problems"]:
        assert problem["message"], problem
    # the tiers are there: a problem inside one tier must not turn into "tiers is required"
    assert not [p for p in report["problems"]
                if p["path"] == "plans[0].charges[1].tiers" and "required" in p["message"]], str(result)


def test_catalog_check_prints_every_path_in_full_for_a_human(cli: Cli) -> None:
    """Without --json, read from a pipe (80 columns): each problem's path must be printed whole,
    so the user can find it (never cut to 'plans[0].charges[1].tiers[2].unit_a…')."""
    catalog = cli.write("broken.yaml", MANY_PROBLEMS)
    reported = {p["path"] for p in cli("catalog", "check", catalog, "--json", db=False).json()["problems"]}
    human = cli("catalog", "check", catalog, db=False)
    assert human.code == 1, str(human)
    assert "Traceback" not in human.err
    assert str(catalog) in human.out + human.err
    cut = sorted(path for path in reported if path not in human.out)
    assert not cut, f"paths not printed in full: {cut}\n{human}"


def test_catalog_problems_inside_a_broken_item_are_still_reported(cli: Cli) -> None:
    """A plan with a bad currency still has its charges checked; a subscription with a bad start
    still has its customer reference checked."""
    catalog = cli.write("broken.yaml", """\
meters:
  - {code: calls, aggregation: count}
plans:
  - code: pro
    currency: EURO
    charges:
      - {code: calls, meter: nosuch, model: per_unit, unit_amount: "0.1"}
customers:
  - {reference: acme}
subscriptions:
  - {reference: s1, customer: ghost, plan: pro, start: "2026-13-01"}
""")
    result = cli("catalog", "check", catalog, "--json", db=False)
    assert result.code == 1, str(result)
    paths = {problem["path"] for problem in result.json()["problems"]}
    expected = {"plans[0].currency", "plans[0].charges[0].meter", "subscriptions[0].start",
                "subscriptions[0].customer"}
    assert not expected - paths, f"problems not reported: {expected - paths}\n{result}"


def test_applying_a_broken_catalog_keeps_the_previous_version(cli: Cli) -> None:
    good = cli.write("catalog.yaml", CATALOG)
    assert cli.ok("catalog", "apply", good, "--json").json()["version"] == 1
    cli.ok("events", "import", cli.write("e.jsonl", jsonl(event("a-1", "calls", "2026-01-20T00:00:00Z"))))
    cli.ok("invoices", "generate", "--until", "2026-02-01")
    before = cli.ok("invoices", "export").json()

    # a catalog with problems: every problem listed on stderr with its path, exit 2, nothing stored
    broken = cli.write("broken.yaml", MANY_PROBLEMS)
    result = cli("catalog", "apply", broken, "--json")
    assert_user_error(result, 2, str(broken), "plans[0].charges[0].amount", "customers[0].tax_rate",
                      one_line=False)
    assert result.out == "", "--json prints no result document for a refused apply"
    # a file that does not parse
    assert_user_error(cli("catalog", "apply", cli.write("bad.yaml", INVALID_YAML)), 2, "line 5")

    # the active catalog is still version 1: re-applying it creates nothing new
    assert cli.ok("catalog", "apply", good, "--json").json() == {"file": str(good), "version": 1,
                                                                 "created": False}
    run = cli.ok("invoices", "generate", "--until", "2026-02-01", "--json").json()
    assert (run["created"], run["updated"]) == (0, 0)
    assert cli.ok("invoices", "export").json() == before


# ---------------------------------------------------------------------------------------------
# events files


@pytest.mark.parametrize(
    ("name", "content", "extra", "needles"),
    [
        pytest.param("missing.jsonl", None, (), ("no such file",), id="missing"),
        pytest.param("folder.jsonl", "DIR", (), ("directory",), id="directory"),
        pytest.param("nometer.csv", "id,customer,timestamp,tokens\nx-1,acme,2026-01-20T00:00:00Z,5\n", (),
                     ("line 1", "'meter'"), id="csv-header-without-meter"),
        pytest.param("events.xml", "<events/>\n", (), ("xml",), id="unknown-format"),
        pytest.param("array.json", '[\n{"id": "x-1", "customer": "acme",\n "meter": "calls", '
                                   '"timestamp": "2026-01-20T00:00:00Z"},\n{"id": "x-2" "customer": "acme"}\n]\n',
                     (), ("line 4",), id="json-array-malformed-on-line-4"),
        pytest.param("ok.jsonl", jsonl(event("x-1", "calls", "2026-01-20T00:00:00Z")),
                     ("--rejects", "{folder}/no-such-folder/rejects.jsonl"),
                     ("--rejects", "no-such-folder/rejects.jsonl"), id="rejects-into-missing-folder"),
    ],
)
def test_events_file_is_refused_with_exit_2(cli: Cli, name: str, content: str | bytes | None,
                                            extra: tuple[str, ...], needles: tuple[str, ...]) -> None:
    path = cli.folder / name
    if content == "DIR":
        path.mkdir()
    elif content is not None:
        cli.write(name, content)
    options = [option.format(folder=cli.folder) for option in extra]
    result = cli("events", "import", path, *options, "--json")
    # the file at fault is named: the events file, or the --rejects file when that one fails
    assert_user_error(result, 2, *(needles if extra else (str(path), *needles)))
    assert result.out == "", "--json prints no report when the file is refused"


def test_csv_line_that_is_not_utf8_is_rejected_on_its_own(cli: Cli) -> None:
    # a bad byte on line 3 rejects line 3 (named), and the rows around it are still imported
    cli.write("latin1.csv", b"id,customer,meter,timestamp,note\n"
                            b"x-1,acme,calls,2026-01-20T00:00:00Z,fine\n"
                            b"x-2,acme,calls,2026-01-21T00:00:00Z,caf\xe9\n"
                            b"x-3,acme,calls,2026-01-22T00:00:00Z,fine\n")
    result = cli("events", "import", cli.folder / "latin1.csv", "--json")
    assert result.code == 1, result
    report = result.json()
    assert report["rejected"] == {"invalid_json": 1}
    assert report["rejections"][0]["line"] == 3 and "UTF-8" in report["rejections"][0]["message"]
    assert report["stored"] == 2
    assert "Traceback" not in result.err


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.csv"])
def test_empty_events_file_imports_nothing(cli: Cli, name: str) -> None:
    report = cli.ok("events", "import", cli.write(name, ""), "--json").json()
    assert (report["read"], report["accepted"], report["stored"], report["rejected"]) == (0, 0, 0, {})


def test_jsonl_with_non_utf8_bytes_names_the_line(cli: Cli) -> None:
    path = cli.write("latin1.jsonl", (
        jsonl(event("n-1", "calls", "2026-01-20T00:00:00Z")).encode()
        + b'{"id": "n-2", "customer": "acme", "meter": "calls", "timestamp": "2026-01-20T00:00:00Z",'
          b' "properties": {"note": "caf\xe9"}}\n'
        + jsonl(event("n-3", "calls", "2026-01-21T00:00:00Z")).encode()
    ))
    result = cli("events", "import", path)
    assert result.code in (1, 2), str(result)  # the line rejected (1) or the file refused (2)
    assert "Traceback" not in result.err and "internal error" not in result.err, str(result)
    assert str(path) in result.err and "line 2" in result.err, str(result)
    if result.code == 1:
        # the line is rejected on its own; the good lines around it are stored
        again = cli.ok("events", "import", cli.write("good.jsonl", jsonl(
            event("n-1", "calls", "2026-01-20T00:00:00Z"), event("n-3", "calls", "2026-01-21T00:00:00Z"))),
            "--dry-run", "--json").json()
        assert again["duplicates"] == 2


def test_jsonl_with_utf8_byte_order_mark_is_read(cli: Cli) -> None:
    """Windows tools write a BOM; the CSV reader skips it, the JSONL reader must too."""
    path = cli.write("bom.jsonl", b"\xef\xbb\xbf" + jsonl(event("b-1", "calls", "2026-01-20T00:00:00Z")).encode())
    result = cli("events", "import", path, "--json")
    assert result.code == 0, str(result)
    assert result.json()["stored"] == 1


# one line per kind of bad event; line numbers are the file's, counted from 1
BAD_EVENTS = [
    (event("ok-1", "calls", "2026-01-20T00:00:00Z"), None, None),
    (event("f-2", "calls", "2027-01-01T00:00:00Z"), "future_timestamp", "timestamp"),
    (event("f-3", "calls", "2026-01-20T00:00:00"), "invalid_timestamp", "timestamp"),  # no zone
    ({"id": {"a": 1}, "customer": "acme", "meter": "calls", "timestamp": "2026-01-20T00:00:00Z"},
     "invalid_value", "'id'"),
    ({"id": "f-5", "customer": "acme", "meter": "calls", "timestamp": "2026-01-20T00:00:00Z",
      "properties": [1, 2]}, "invalid_value", "properties"),
    (event(BIG, "calls", "2026-01-20T00:00:00Z"), "invalid_value", "'id'"),
    (event("f-7", "calls", "2026-01-20T00:00:00Z", customer=BIG), "invalid_value", "'customer'"),
    (event("f-8", BIG, "2026-01-20T00:00:00Z"), "invalid_value", "'meter'"),
    (event("f-9", "calls", BIG), "invalid_timestamp", "timestamp"),
    (event("ok-10", "calls", "2026-01-20T00:00:00Z", note=BIG), None, None),  # a long property is fine
    (event("f-11", "tokens", "2026-01-20T00:00:00Z", tokens="lots"), "invalid_value", "'tokens'"),
    ("{broken json", "invalid_json", None),
    ([1, 2], "invalid_json", None),
    ({"id": "f-14", "customer": "acme", "timestamp": "2026-01-20T00:00:00Z"}, "missing_field", "'meter'"),
    ({"id": "f-15", "customer": 42, "meter": "calls", "timestamp": "2026-01-20T00:00:00Z"},
     "invalid_value", "'customer'"),
    (event("f-16", "calls", "2026-01-20"), "invalid_timestamp", "timestamp"),  # a date, no time, no zone
    (event("ok-17", "tokens", "2026-01-20T00:00:00Z", tokens="250"), None, None),  # numeric string: a number
]


def _bad_events_file(cli: Cli) -> Path:
    text = "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item, _, _ in BAD_EVENTS)
    return cli.write("bad.jsonl", text)


def test_bad_events_are_rejected_line_by_line(cli: Cli) -> None:
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    path = _bad_events_file(cli)
    rejects = cli.folder / "rejects.jsonl"
    result = cli("events", "import", path, "--rejects", rejects, "--json")
    assert result.code == 1, str(result)
    assert "Traceback" not in result.err
    report = result.json()
    expected = {n: (reason, field) for n, (_, reason, field) in enumerate(BAD_EVENTS, start=1) if reason}
    got = {r["line"]: r for r in report["rejections"]}
    assert {n: r["reason"] for n, r in got.items()} == {n: reason for n, (reason, _) in expected.items()}
    for n, (_, field) in expected.items():
        message = got[n]["message"]
        assert f"line {n}" in message, message
        if field:
            assert field in message, message
        assert len(message) < 500, f"line {n}: the message repeats the whole 10,000-character value"
    assert (report["read"], report["stored"]) == (len(BAD_EVENTS), 3)  # ok-1, ok-10, ok-17
    assert sum(report["rejected"].values()) == len(expected)
    written = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["reason"]) for r in written] == [(n, reason) for n, (reason, _) in expected.items()]

    # what a human sees (dry run: nothing more is written): one line per rejection, naming file and line
    human = cli("events", "import", path, "--dry-run")
    assert human.code == 1, str(human)
    assert "Traceback" not in human.err
    rejected_lines = [line for line in human.err.splitlines() if line.startswith("rejected:")]
    assert len(rejected_lines) == len(expected), str(human)
    for line, n in zip(rejected_lines, expected, strict=True):
        assert str(path) in line and f"line {n}:" in line, line
        assert len(line) < 500, f"a rejection line is {len(line)} characters long"


def test_csv_rows_with_missing_cells_are_rejected_by_line_and_column(cli: Cli) -> None:
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    path = cli.write("cells.csv", (
        "id,customer,meter,timestamp,tokens\n"
        "m-1,acme,tokens,2026-01-20T00:00:00Z,10\n"  # line 2: fine
        "m-2,acme,,2026-01-20T00:00:00Z,10\n"  # line 3: meter empty
        "m-3,acme,tokens\n"  # line 4: timestamp (and tokens) cells missing
        ",acme,calls,2026-01-20T00:00:00Z,\n"  # line 5: id empty
        "m-5,acme,tokens,2026-01-20T00:00:00Z,\n"  # line 6: the tokens property is empty
    ))
    result = cli("events", "import", path, "--json")
    assert result.code == 1, str(result)
    assert "Traceback" not in result.err
    report = result.json()
    got = {r["line"]: (r["reason"], r["message"]) for r in report["rejections"]}
    assert set(got) == {3, 4, 5, 6}, str(result)
    for n, field in ((3, "'meter'"), (4, "'timestamp'"), (5, "'id'"), (6, "'tokens'")):
        reason, message = got[n]
        assert reason == "missing_field" and f"line {n}" in message and field in message, (n, reason, message)
    assert report["stored"] == 1


def test_duplicate_ids_are_counted_once_within_and_across_files(cli: Cli) -> None:
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    first = cli.write("a.jsonl", jsonl(
        event("d-1", "calls", "2026-01-20T00:00:00Z"),
        event("d-1", "calls", "2026-01-21T00:00:00Z"),  # same id in the same file
        event("d-2", "calls", "2026-01-22T00:00:00Z"),
    ))
    report = cli.ok("events", "import", first, "--json").json()
    assert (report["read"], report["stored"], report["duplicates"]) == (3, 2, 1)
    second = cli.write("b.csv", "id,customer,meter,timestamp\nd-1,acme,calls,2026-01-23T00:00:00Z\n"
                                "d-3,acme,calls,2026-01-24T00:00:00Z\n")
    report = cli.ok("events", "import", second, "--json").json()
    assert (report["read"], report["stored"], report["duplicates"]) == (2, 1, 1)

    cli.ok("invoices", "generate", "--until", "2026-02-01")
    (invoice,) = [i for i in cli.ok("invoices", "list", "--json").json() if i["issue_date"] == "2026-02-01"]
    # calls: d-1, d-2, d-3 = 3 x 0.10 = 0.30; base 49.00; tokens 0 -> 0.00
    # subtotal 49.30; tax 49.30 x 0.21 = 10.353 -> 10.35; total 59.65
    calls = lines_by_code(invoice)["calls"]
    assert (calls["quantity"], calls["amount"]) == ("3", "0.30")
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("49.30", "10.35", "59.65")


CATALOG_V2 = (
    CATALOG
    .replace("meters:\n", "meters:\n  - {code: storage, aggregation: max, field: gb}\n")
    .replace('      - {code: calls, meter: calls, model: per_unit, unit_amount: "0.10"}\n',
             '      - {code: calls, meter: calls, model: per_unit, unit_amount: "0.10"}\n'
             '      - {code: storage, meter: storage, model: per_unit, unit_amount: "1.00"}\n')
    .replace("customers:\n", "customers:\n  - {reference: globex, name: Globex, currency: EUR}\n")
    + "  - {reference: globex-pro, customer: globex, plan: pro, start: 2026-01-01, billing_anchor: 1}\n"
)


def test_unknown_customer_and_meter_are_kept_and_matched_after_reprocess(cli: Cli) -> None:
    assert "storage" in CATALOG_V2 and "globex-pro" in CATALOG_V2
    events = cli.write("events.jsonl", jsonl(
        event("u-1", "calls", "2026-01-20T00:00:00Z"),  # acme: known in v1
        event("u-2", "calls", "2026-01-20T00:00:00Z", customer="globex"),  # customer unknown until v2
        event("u-3", "storage", "2026-01-20T00:00:00Z", gb=7),  # meter unknown until v2
    ))
    # no catalog yet: stored, every one unmatched, and the report says so
    report = cli.ok("events", "import", events, "--json").json()
    assert (report["stored"], report["flags"].get("unknown_customer")) == (3, 3)
    assert "warning" in report

    cli.ok("catalog", "apply", cli.write("v1.yaml", CATALOG))
    result = cli.ok("events", "reprocess", "--json").json()
    assert (result["checked"], result["matched"]) == (3, 1)
    assert result["still_unmatched"] == {"unknown_customer": 1, "unknown_meter": 1}

    cli.ok("invoices", "generate", "--until", "2026-02-01")
    invoices = cli.ok("invoices", "export").json()
    assert {i["customer"] for i in invoices} == {"acme"}, "unmatched events are never billed"
    (february,) = [i for i in invoices if i["issue_date"] == "2026-02-01"]
    assert set(lines_by_code(february)) == {"base", "tokens", "calls"}
    assert lines_by_code(february)["calls"]["quantity"] == "1"

    assert cli.ok("catalog", "apply", cli.write("v2.yaml", CATALOG_V2), "--json").json()["version"] == 2
    result = cli.ok("events", "reprocess", "--json").json()
    assert (result["checked"], result["matched"], result["still_unmatched"]) == (2, 2, {})

    cli.ok("invoices", "generate", "--until", "2026-02-01")
    invoices = {(i["customer"], i["issue_date"]): i for i in cli.ok("invoices", "export").json()}
    # acme at 2026-02-01: base 49.00 + tokens 0.00 + calls 1 x 0.10 + storage max 7 GB x 1.00 = 56.10
    #   tax 56.10 x 0.21 = 11.781 -> 11.78; total 67.88
    acme = invoices[("acme", "2026-02-01")]
    assert lines_by_code(acme)["storage"]["quantity"] == "7"
    assert (acme["subtotal"], acme["tax"], acme["total"]) == ("56.10", "11.78", "67.88")
    # globex (no tax rate): 2026-01-01 base 49.00; 2026-02-01 base 49.00 + calls 0.10 = 49.10
    assert invoices[("globex", "2026-01-01")]["total"] == "49.00"
    globex = invoices[("globex", "2026-02-01")]
    assert (lines_by_code(globex)["calls"]["quantity"], globex["total"]) == ("1", "49.10")


# ---------------------------------------------------------------------------------------------
# invoice commands and the database


def test_invoice_command_errors_and_nothing_stored_is_lost(cli: Cli) -> None:
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    cli.ok("events", "import", cli.write("e.jsonl", jsonl(
        event("k-1", "calls", "2026-01-20T00:00:00Z"), event("k-2", "tokens", "2026-01-21T00:00:00Z", tokens=1500))))
    cli.ok("invoices", "generate", "--until", "2026-02-01")
    before = cli.ok("invoices", "export").json()
    assert [i["number"] for i in before] == ["DRAFT-1", "DRAFT-2"]

    assert_user_error(cli("invoices", "generate", "--until", "garbage"), 2, "--until", "garbage")
    assert_user_error(cli("invoices", "generate", "--until", "2026-02-01T00:00:00"), 2, "--until")
    shown = cli("invoices", "show", "999", "--json")
    assert_user_error(shown, 2, "999")
    assert shown.out == ""
    assert_user_error(cli("invoices", "list", "--status", "bogus"), 2, "--status", "bogus")
    assert_user_error(cli("invoices", "export", "--status", "bogus"), 2, "--status", "bogus")
    assert_user_error(cli("invoices", "export", "--format", "xml"), 2, "--format", "xml")
    # failed imports of whole files against the same database
    assert_user_error(cli("events", "import", cli.write("h.csv", "id,customer\nk-9,acme\n")), 2, "h.csv")

    # nothing already stored changed: same events (the drafts do not move), same invoices
    run = cli.ok("invoices", "generate", "--until", "2026-02-01", "--json").json()
    assert (run["created"], run["updated"]) == (0, 0)
    assert cli.ok("invoices", "export").json() == before

    # finalizing several invoices is all or nothing: an unknown one means none is finalized
    result = cli("invoices", "finalize", "DRAFT-1", "999")
    assert_user_error(result, 2, "999")
    statuses = [(i["number"], i["status"]) for i in cli.ok("invoices", "list", "--json").json()]
    assert statuses == [("DRAFT-1", "draft"), ("DRAFT-2", "draft")], (
        f"exit 2 but DRAFT-1 was finalized anyway: {statuses}\n{result}")


def test_database_errors(cli: Cli) -> None:
    missing = cli.folder / "no-such-folder"
    for args in (("invoices", "list"),
                 ("events", "import", cli.write("e.jsonl", jsonl(event("z-1", "calls", "2026-01-20T00:00:00Z"))))):
        assert_user_error(cli(*args, db=f"sqlite:///{missing}/x.db"), 2, str(missing))
    assert not missing.exists(), "a failed command must not create the folder"

    assert_user_error(cli("invoices", "list", db=f"sqlite:///{cli.folder}"), 2, str(cli.folder))
    assert_user_error(cli("invoices", "list", db="nonsense://nowhere"), 2, "nonsense://nowhere")

    # a database without a catalog
    assert_user_error(cli("invoices", "generate", "--until", "2026-02-01"), 2, "catalog apply")
    assert_user_error(cli("events", "reprocess"), 2, "catalog apply")

    # a file that is not a database: refused in one sentence, and left untouched
    notes = cli.write("notes.txt", "not a database\n")
    assert_user_error(cli("invoices", "list", db=f"sqlite:///{notes}"), 2, str(notes))
    assert notes.read_text(encoding="utf-8") == "not a database\n"


def test_until_more_than_a_year_ahead_is_refused(cli: Cli) -> None:
    # a typo such as 2062 for 2026 would otherwise cut one draft per period for decades
    result = cli("invoices", "generate", "--until", "2062-01-01")
    assert_user_error(result, 2, "--until", "2062-01-01", "more than a year ahead")


# ---------------------------------------------------------------------------------------------
# a database that does not exist


@pytest.mark.parametrize("command", [("invoices", "list"), ("invoices", "show", "DRAFT-1"),
                                     ("events", "list"), ("golive", "check"), ("subscriptions", "list")])
def test_a_read_command_on_a_mistyped_sqlite_database_is_refused_not_shown_empty(
        cli: Cli, command: tuple[str, ...]) -> None:
    cli.write("catalog.yaml", CATALOG)
    cli.ok("catalog", "apply", "catalog.yaml", db="sqlite:///billing.db")  # a write creates the file
    assert cli(*command, db="sqlite:///billing.db").code in (0, 1, 2)

    typo = cli(*command, db="sqlite:///biling.db")
    assert_user_error(typo, 2, "no database at biling.db", "--db")
    assert typo.out == ""
    assert not (cli.folder / "biling.db").exists()  # and no stray empty database is left behind


# ---------------------------------------------------------------------------------------------
# the same action twice (a retried script, a double click)


def test_finalizing_or_voiding_twice_says_it_is_done_already_and_under_which_number(cli: Cli) -> None:
    cli.write("catalog.yaml", CATALOG)
    cli.ok("catalog", "apply", "catalog.yaml")
    cli.ok("invoices", "generate", "--until", "2026-03-01")
    cli.ok("invoices", "finalize", "DRAFT-1")
    cli.ok("invoices", "void", "DRAFT-2")

    again = cli("invoices", "finalize", "DRAFT-1")
    assert_user_error(again, 2, "invoice DRAFT-1 is final already as RC-000001; nothing was changed")
    by_number = cli("invoices", "finalize", "RC-000001")
    assert_user_error(by_number, 2, "invoice RC-000001 is final already; nothing was changed")
    voided = cli("invoices", "void", "DRAFT-2")
    assert_user_error(voided, 2, "invoice DRAFT-2 is void already; nothing was changed")
    assert "RC-000002" not in cli.ok("invoices", "list").out  # no number was used up


def test_demo_with_a_wrong_examples_folder_leaves_no_empty_database_behind(cli: Cli) -> None:
    refused = cli("demo", "--examples", cli.folder / "nowhere", db="sqlite:///demo.db")
    assert_user_error(refused, 2, "nowhere", "not a folder")
    assert not (cli.folder / "demo.db").exists()


# ---------------------------------------------------------------------------------------------
# free text kept with what it names


def test_a_key_name_or_a_cohort_description_too_long_is_refused_on_both_stores(cli: Cli, db_url: str) -> None:
    """A key's name fits its column (200 characters; PostgreSQL once answered a longer one with an
    internal error, SQLite kept 100,000 characters) and a cohort's description is bounded too."""
    assert_user_error(cli("keys", "create", "--name", "k" * 201, db=db_url), 2, "--name", "200")
    cli.ok("keys", "create", "--name", "k" * 200, db=db_url)
    assert [key["name"] for key in cli.ok("keys", "list", "--json", db=db_url).json()] == ["k" * 200]

    refused = cli("cohort", "create", "pilot", "--description", "d" * 2001, db=db_url)
    assert_user_error(refused, 2, "--description", "2000")
    assert_user_error(cli("cohort", "create", "pilot", "--description", "one\x1b[2Jtwo", db=db_url),
                      2, "--description")
    cli.ok("cohort", "create", "pilot", "--description", "d" * 2000, db=db_url)
