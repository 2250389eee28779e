"""What the CLI says when it is given something it cannot use, or reports what it did: an error
about a positional argument names it as typed (EMAIL, MONTH), never as an option the command does
not have; numbers and files past what the command can take are refused as bad usage (exit 2)
rather than ending in an internal error or a hang. Run in process against SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from ..e2e.harness import run_in_process
from ..migrated import at_head


def _cli(url: str, *args: str) -> tuple[int, str, str]:
    env = {**{k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"},
           "RATECARD_NOW": "2026-12-02T09:00:00Z", "NO_COLOR": "1"}
    return run_in_process([*args, "--db", url], env, Path.cwd())


def test_a_bad_argument_is_named_as_typed_and_a_bad_option_as_an_option(db_url: str) -> None:
    url = at_head(db_url)

    code, _, err = _cli(url, "users", "create", '=HYPERLINK("x")', "--role", "viewer")
    assert code == 2
    assert "error: EMAIL: '=HYPERLINK(\"x\")' is not an e-mail address" in err
    assert "--email" not in err

    code, _, err = _cli(url, "events", "partitions", "detach", "2026-13")
    assert code == 2
    assert "error: MONTH: expected a month as YYYY-MM, got '2026-13'" in err
    assert "--month" not in err

    code, _, err = _cli(url, "invoices", "generate", "--until", "1e400")
    assert code == 2
    assert "error: --until: '1e400' is not a date" in err


def test_an_absurd_limit_is_refused_as_bad_usage(db_url: str) -> None:
    """A --limit past what the database can hold was an internal error (an integer overflow in the
    query); it is refused before anything is read, and 0 still lists everything."""
    url = at_head(db_url)
    for command in (("events", "list"), ("alerts", "list"), ("webhooks", "deliveries")):
        code, _, err = _cli(url, *command, "--limit", "99999999999999999999999999")
        assert code == 2, (command, err)
        assert "--limit" in err and "1000000000" in err and "internal error" not in err
        code, out, err = _cli(url, *command, "--limit", "0", "--json")
        assert code == 0 and out.strip() == "[]", (command, err)
        assert _cli(url, *command, "--limit", "1000000000")[0] == 0


def test_an_id_past_the_integer_column_is_refused_as_bad_usage(db_url: str) -> None:
    """Ids of rules, webhook endpoints, deliveries and invoice runs are INTEGER columns: a number
    past 2**31 - 1 made an internal error (an overflow in the query) on both stores."""
    url = at_head(db_url)
    too_big = "2147483648"
    for command in (("alerts", "rules", "remove", too_big), ("webhooks", "remove", too_big),
                    ("webhooks", "retry", too_big), ("webhooks", "deliveries", "--endpoint", too_big),
                    ("worker", "--invoices", "--run", too_big)):
        code, _, err = _cli(url, *command)
        assert code == 2, (command, err)
        assert "2147483647" in err and "internal error" not in err, (command, err)
    code, _, err = _cli(url, "alerts", "rules", "remove", "2147483647")
    assert code == 2 and "there is no alert rule 2147483647" in err


def test_serve_refuses_an_impossible_port_or_worker_count(db_url: str) -> None:
    """`ratecard serve --port 99999` announced http://127.0.0.1:99999 and then hung without
    listening; an impossible port, or more server processes than a machine runs, is bad usage."""
    url = at_head(db_url)
    for option, value, bound in (("--port", "99999", "65535"), ("--port", "0", "1"), ("--workers", "100000", "64")):
        code, out, err = _cli(url, "serve", option, value)
        assert code == 2, (option, value, out, err)
        assert option in err and bound in err
        assert "ratecard API on" not in out + err


def test_a_catalog_read_from_an_endless_file_is_refused_at_the_size_limit(db_url: str, tmp_path: Path) -> None:
    """A device or pipe reports no size: `catalog check /dev/zero` read forever. The read stops at
    the catalog's size limit (10 MiB) and refuses the file; a catalog from a pipe still works."""
    url = at_head(db_url)
    code, _, err = _cli(url, "catalog", "apply", "/dev/zero")
    assert code == 2 and "error: /dev/zero: is larger than 10485760 bytes" in err, err
    env = {**{k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"}, "NO_COLOR": "1"}
    code, _, err = run_in_process(["catalog", "check", "/dev/zero"], env, tmp_path)  # reads no database
    assert code == 2 and "error: /dev/zero: is larger than 10485760 bytes" in err, err
    code, out, _ = _cli(url, "events", "list", "--json")
    assert code == 0 and out.strip() == "[]"


def test_worker_refuses_a_stats_file_that_is_a_directory_before_it_starts(db_url: str, tmp_path: Path) -> None:
    """`ratecard worker --log … --stats DIR` ended in an internal error after writing DIR.tmp
    beside the folder; the option is checked like any other output file, before the log is read."""
    url = at_head(db_url)
    folder = tmp_path / "stats"
    folder.mkdir()
    code, _, err = _cli(url, "worker", "--log", "nats://127.0.0.1:1", "--stats", str(folder))
    assert code == 2 and f"error: --stats {folder}: is a directory, not a file" in err, err
    assert "internal error" not in err and not (tmp_path / "stats.tmp").exists()


def test_serve_refuses_event_log_options_without_the_log(db_url: str) -> None:
    """`ratecard serve --log-stream NAME` without --log started the embedded server and ignored the
    stream without a word; the log's options are refused without --log."""
    url = at_head(db_url)
    for option, value in (("--log-stream", "OTHER_EVENTS"), ("--log-dedup-window", "60")):
        code, out, err = _cli(url, "serve", option, value)
        assert code == 2, (option, out, err)
        assert "go with --log URL" in err and "ratecard API on" not in out + err


def test_a_shared_run_reports_its_customers_billed_on_either_store(db_url: str, tmp_path: Path) -> None:
    """`invoices generate --workers 2` names the run and how many customers were billed; on SQLite,
    where this process bills the run alone (as stderr says first), it no longer credits "the workers"."""
    url = at_head(db_url)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("""
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: pro
    currency: EUR
    interval: month
    charges:
      - {code: base, model: flat, amount: "10.00"}
customers:
  - {reference: acme, name: Acme, country: NL, tax_rate: "0"}
  - {reference: beta, name: Beta, country: NL, tax_rate: "0"}
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2026-10-01}
  - {reference: beta-pro, customer: beta, plan: pro, start: 2026-10-01}
""", encoding="utf-8")
    assert _cli(url, "catalog", "apply", str(catalog))[0] == 0
    code, out, err = _cli(url, "invoices", "generate", "--until", "2026-11-01", "--workers", "2")
    assert code == 0, err
    assert "invoices up to 2026-11-01: 4 created" in out
    assert "invoice run 1: 2 of 2 customers billed" in err and "by the workers" not in err
    if url.startswith("sqlite"):
        assert "SQLite has one writer: the run is billed by this process alone" in err


def test_demo_names_what_is_wrong_with_its_examples_folder(db_url: str, tmp_path: Path) -> None:
    """`ratecard demo --examples X` told to `run make demo` whatever was missing, even when X was
    not a folder or had no catalog (which `make demo` does not make); only missing events are
    what `make demo` generates."""
    url = at_head(db_url)
    not_a_folder = tmp_path / "catalog.yaml"
    not_a_folder.write_text("plans: []\n", encoding="utf-8")
    code, _, err = _cli(url, "demo", "--examples", str(tmp_path / "nowhere"))
    assert code == 2 and "nowhere: not a folder; give the example workspace folder" in err
    code, _, err = _cli(url, "demo", "--examples", str(not_a_folder))
    assert code == 2 and "catalog.yaml: not a folder" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _cli(url, "demo", "--examples", str(empty))
    assert code == 2 and "empty/catalog.yaml: missing; give the example workspace folder" in err
    assert "make demo" not in err
    (empty / "catalog.yaml").write_text("plans: []\n", encoding="utf-8")
    code, _, err = _cli(url, "demo", "--examples", str(empty))
    assert code == 2 and "empty/events.jsonl: missing; run `make demo`" in err


def test_subscriptions_import_names_the_line_of_a_start_that_is_not_a_date(db_url: str, tmp_path: Path) -> None:
    """A `start` (or `end`, `bill_from`) that is neither a date, an RFC 3339 datetime nor a Unix
    timestamp was an internal error (ValueError, or an overflow for a huge timestamp)."""
    url = at_head(db_url)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("""
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
plans:
  - code: pro
    currency: EUR
    interval: month
    charges:
      - {code: base, model: flat, amount: "10.00"}
""", encoding="utf-8")
    assert _cli(url, "catalog", "apply", str(catalog))[0] == 0
    for field, value in (("start", "99999-10-01"), ("start", "99999999999999999999"), ("end", "next week")):
        rows = {"start": "2026-10-01", "end": "2027-10-01", field: value}
        csv_file = tmp_path / "subs.csv"
        csv_file.write_text("reference,customer,plan,start,end\n"
                            f"s1,acme,pro,{rows['start']},{rows['end']}\n", encoding="utf-8")
        code, _, err = _cli(url, "subscriptions", "import", str(csv_file), "--dry-run")
        assert code == 2, (field, value, err)
        assert f"subs.csv: line 2: field '{field}': '{value}' is not a date (2026-10-01)" in err
        assert "internal error" not in err


def test_subscriptions_import_names_the_csv_line_and_column_of_a_new_customers_problem(
        db_url: str, tmp_path: Path) -> None:
    """A customer the file adds is checked with the catalog: its problems (an unknown currency,
    a tax rate that is not a number) name the CSV line and the column that holds the value, not a catalog path."""
    url = at_head(db_url)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("""
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
plans:
  - {code: pro, currency: EUR, charges: [{code: base, model: flat, amount: "10.00"}]}
customers:
  - {reference: known, currency: EUR}
""", encoding="utf-8")
    mapping = tmp_path / "columns.yaml"
    mapping.write_text("columns: {reference: Id, customer: Customer, plan: Plan, start: Since, currency: Cur, "
                       "tax_rate: Tax}\n", encoding="utf-8")
    assert _cli(url, "catalog", "apply", str(catalog))[0] == 0
    csv_file = tmp_path / "subs.csv"
    csv_file.write_text("Id,Customer,Plan,Since,Cur,Tax\n"
                        "s1,known,pro,2026-10-01,,\n"
                        "s2,fresh,pro,2026-10-01,EUROS,21\n"
                        "s3,other,pro,2026-10-01,EUR,lots\n", encoding="utf-8")
    code, _, err = _cli(url, "subscriptions", "import", str(csv_file), "--mapping", str(mapping))
    assert code == 2, err
    assert "subs.csv: line 3: field currency (column 'Cur'): unknown currency 'EUROS'" in err
    assert "subs.csv: line 4: field tax_rate (column 'Tax'):" in err
    assert "customers[" not in err and "2 problem(s); nothing was imported" in err


def test_a_file_that_never_ends_is_refused_not_read_into_memory(db_url: str) -> None:
    """A device or a pipe with no end (here /dev/zero) given where a file is read whole: refused
    once past the most ratecard reads of it, with the file named; memory stays bounded."""
    url = at_head(db_url)
    code, _, err = _cli(url, "reconcile", "legacy.csv", "--mapping", "/dev/zero")
    assert code != 0 and "/dev/zero" in err and "larger than" in err, err
    code, _, err = _cli(url, "reconcile", "/dev/zero")
    assert code != 0 and "/dev/zero" in err and "larger than" in err, err
