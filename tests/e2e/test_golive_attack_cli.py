"""Hostile and careful use of `cohort`, `cutover` and `rollback` through the real CLI: bad input
is one line on stderr with exit 2 and changes nothing; money moves between the systems without
a period billed twice or never."""

from __future__ import annotations

from pathlib import Path

from .harness import Cli, assert_user_error

CATALOG = """\
billing_entity: {name: Attack Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: api
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "10.00", timing: advance}
      - {code: support, model: flat, amount: "3.00", timing: arrears}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.50"}
customers:
  - {reference: ny, currency: EUR, tax_rate: "0", country: US, timezone: America/New_York}
  - {reference: ams, currency: EUR, tax_rate: "0", country: NL}
subscriptions:
  - {reference: ny-m, customer: ny, plan: api, start: 2026-09-01}
  - {reference: ams-m, customer: ams, plan: api, start: 2026-09-01}
"""


def _invoices(cli: Cli, customer: str) -> list[tuple[str, str, str, str]]:
    return sorted((i["issue_date"], i["mode"], i["status"], i["total"])
                  for i in cli.ok("invoices", "list", "--json").json() if i["customer"] == customer)


def test_bad_input_is_one_line_exit_2_and_changes_nothing(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    assert_user_error(cli("cohort", "add", "pilot", "ny"), 2, "catalog apply")  # before any catalog
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))

    # names that cannot be typed back (DEL shows as nothing), or do not fit the store
    for name in ("a\x7fb", "x" * 201):
        assert_user_error(cli("cohort", "create", name), 2, "cohort name")
    cli.ok("cohort", "create", "pilot")

    # customer lists: binary, unknown names (all or nothing); BOM, CRLF, a duplicate and an
    # indented comment: one customer, added once
    assert_user_error(cli("cohort", "add", "pilot", "--file", cli.write("bin.txt", b"\x00\xff\xfe\x81" * 500)),
                      2, "bin.txt", "UTF-8")
    assert_user_error(cli("cohort", "add", "pilot", "ams", "nobody"), 2, "nobody", "nothing added")
    listed = cli.write("customers.txt", "\ufeffny\r\nny\r\n   # the pilot\r\n".encode())
    assert cli.ok("cohort", "add", "pilot", "--file", listed, "--json").json() == {"cohort": "pilot", "added": ["ny"]}

    # a parallel run of a cycle nobody billed proves nothing: refused, not kept, not clean
    legacy = cli.write("legacy.csv", "customer,code,service_start,service_end,quantity,amount\n"
                                     "ams,base,2026-10-01,2026-11-01,1,10.00\n")
    assert_user_error(cli("cohort", "report", "pilot", legacy, "--cycle", "2030-01", "--json"), 2,
                      "nothing to compare", "2030-01")
    assert_user_error(cli("cohort", "promote", "pilot"), 2, "0 clean cycle")

    assert_user_error(cli("rollback", "--cohort", "nope", "--json"), 2, "nope")
    for day in ("2026-02-30", "9999-12-31"):  # the second used to crash the planner (date overflow)
        assert_user_error(cli("cutover", "apply", "--date", day), 2, day)
    (pilot,) = cli.ok("cohort", "list", "--json").json()
    assert (pilot["name"], pilot["members"], pilot["parallel_runs"], pilot["state"]) == (
        "pilot", {"ny": None}, 0, "shadow")


def test_rollback_and_promote_again_on_new_yorks_boundary_day(tmp_path: Path) -> None:
    """The invoice cron at 00:30 UTC on Dec 1 cuts New York's Dec 1 invoice, due at 05:00 UTC.
    A rollback at 00:45 and a promotion at 01:00 leave December with ratecard, billed once."""
    cli = Cli(tmp_path)
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    calls = "".join(f'{{"id": "c{m}-{n}", "customer": "ny", "meter": "api_calls", '
                    f'"timestamp": "2026-{m:02d}-10T12:00:00Z"}}\n' for m in (10, 11) for n in range(m - 8))
    cli.ok("events", "import", cli.write("events.jsonl", calls))
    cli.ok("cohort", "create", "pilot")
    cli.ok("cohort", "add", "pilot", "ny")
    promoted = cli.ok("cohort", "promote", "pilot", "--force", "--json").json()
    assert promoted["live_from"] == {"ny": "2026-12-01T05:00:00Z"}  # midnight in New York

    cli.now = "2026-12-01T00:30:00Z"
    cli.ok("invoices", "generate", "--until", "2026-12-01")
    cli.now = "2026-12-01T00:45:00Z"
    rolled = cli.ok("rollback", "--cohort", "pilot", "--json").json()
    assert (len(rolled["removed_drafts"]), rolled["voided_drafts"], rolled["final_invoices_since_promotion"]) == (
        1, [], [])
    cli.now = "2026-12-01T01:00:00Z"
    again = cli.ok("cohort", "promote", "pilot", "--force", "--json").json()
    assert again["live_from"] == {"ny": "2026-12-01T05:00:00Z"}

    cli.now = "2026-12-01T06:00:00Z"
    cli.ok("invoices", "generate", "--until", "2026-12-01")
    second = cli.ok("invoices", "generate", "--until", "2026-12-01", "--json").json()
    assert (second["created"], second["updated"], second["removed"]) == (0, 0, 0)
    # Sep, Oct, Nov: the legacy system's (advance fee on the 1st, arrears a month later); Dec's fee: ratecard's
    assert _invoices(cli, "ny") == [
        ("2026-09-01", "shadow", "draft", "10.00"),
        ("2026-10-01", "shadow", "draft", "13.00"),
        ("2026-11-01", "shadow", "draft", "14.00"),
        ("2026-12-01", "live", "draft", "10.00"),
        ("2026-12-01", "shadow", "draft", "4.50"),
    ]
    cli.now = "2026-12-20T00:00:00Z"
    finalized = cli.ok("invoices", "finalize", "--due", "--json").json()["finalized"]
    assert {(i["customer"], i["mode"]) for i in finalized} == {("ny", "live"), ("ams", "live")}


def test_moving_the_cutover_earlier_over_billed_periods_is_refused(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    cli.now = "2026-11-20T00:00:00Z"
    cli.ok("cutover", "apply", "--date", "2026-12-01")
    cli.now = "2026-12-02T00:00:00Z"
    cli.ok("invoices", "generate", "--until", "2026-12-01")
    refused = cli("cutover", "apply", "--date", "2026-11-01")
    assert_user_error(refused, 1, "ams-m", "already billed by the legacy system", "--force", one_line=False)
    # nothing was recorded: November stays the legacy system's (its advance fee and arrears)
    assert ("2026-11-01", "shadow", "draft", "13.00") in _invoices(cli, "ams")


def test_rollback_dry_run_shows_what_it_would_do_and_changes_nothing(tmp_path: Path) -> None:
    """A rollback voids drafts and removes drafts cut ahead: `--dry-run` lists the same drafts and
    the final invoices to correct as the real rollback then does, and changes nothing (the cohort
    stays live, every invoice keeps its status)."""
    cli = Cli(tmp_path)
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    cli.now = "2026-09-20T00:00:00Z"
    cli.ok("cohort", "create", "pilot")
    cli.ok("cohort", "add", "pilot", "ams")
    cli.ok("cohort", "promote", "pilot", "--force")
    cli.now = "2026-11-02T00:00:00Z"
    cli.ok("invoices", "generate", "--until", "2026-12-01")  # Dec 1 is cut ahead of its date
    live = [i for i in cli.ok("invoices", "list", "--json").json() if i["customer"] == "ams" and i["mode"] == "live"]
    october = next(i for i in live if i["issue_date"] == "2026-10-01")
    cli.ok("invoices", "finalize", october["number"])
    before = _invoices(cli, "ams")

    dry = cli.ok("rollback", "--cohort", "pilot", "--dry-run", "--json").json()
    assert dry["dry_run"] is True
    assert (len(dry["voided_drafts"]), len(dry["removed_drafts"]), len(dry["final_invoices_since_promotion"])) == (
        1, 1, 1)
    assert _invoices(cli, "ams") == before
    assert cli.ok("cohort", "list", "--json").json()[0]["state"] == "live"
    text = cli.ok("rollback", "--cohort", "pilot", "--dry-run")
    assert "dry run, nothing was changed" in text.out and "would put 1 customer(s) back in shadow" in text.out

    done = cli.ok("rollback", "--cohort", "pilot", "--json").json()
    assert done["dry_run"] is False
    assert {key: done[key] for key in ("voided_drafts", "removed_drafts", "final_invoices_since_promotion")} == {
        key: dry[key] for key in ("voided_drafts", "removed_drafts", "final_invoices_since_promotion")}
    assert _invoices(cli, "ams") != before


def test_a_legacy_export_with_bad_rows_names_every_one_in_one_refusal(tmp_path: Path) -> None:
    """Three bad rows in an export: one refusal (exit 2) names each row's line and reason, so one
    run shows everything to fix; more than ten are counted, not listed."""
    cli = Cli(tmp_path)
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    good = "ams,base,2026-10-01,2026-11-01,1,10.00\n"
    legacy = cli.write("legacy.csv", "customer,code,service_start,service_end,quantity,amount\n" + good
                       + "ams,base,2026-13-01,2026-11-01,1,10.00\n" + good
                       + "ams,,2026-10-01,2026-11-01,1,10.00\n"
                       + 'ams,calls,2026-10-01,2026-11-01,1,"1,500"\n')
    refused = cli("reconcile", legacy)
    assert_user_error(refused, 2, "3 row(s) cannot be read", "line 3: field 'service_start'",
                      "line 5: field 'code' is empty", "line 6: field 'amount'")
    many = cli.write("many.csv", "customer,code,service_start,service_end,quantity,amount\n"
                     + "ams,base,2026-10-01,2026-11-01,1,ten\n" * 25)
    assert_user_error(cli("reconcile", many), 2, "25 row(s) cannot be read", "line 11:", "and 15 more")
    assert "line 12:" not in cli("reconcile", many).err
