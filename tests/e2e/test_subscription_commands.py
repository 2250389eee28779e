"""`ratecard subscriptions create|change|cancel|list|show`, run in process (Typer's CliRunner around
the console entry point, so exit codes and stderr are what a user gets) on a SQLite file."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ratecard.cli import main
from ratecard.store.catalogs import load_version

from ..integration.scenario import workspace

NOW = "2026-02-10T12:00:00Z"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ratecard.db'}"
    store, _ = workspace(url)
    store.dispose()
    return url


def ratecard(db: str, *args: str, now: str = NOW) -> Run:
    runner = CliRunner()
    with runner.isolation(env={"RATECARD_NOW": now, "RATECARD_DATABASE_URL": db}) as (out, err, _):
        code = main(["subscriptions", *args])
        sys.stdout.flush()  # emit_json writes through the text wrapper the isolation puts there
        sys.stderr.flush()
        return Run(code, out.getvalue().decode(), err.getvalue().decode())


def version(db: str) -> int:
    from ratecard.store import open_store

    store = open_store(db)
    try:
        return load_version(store)[0]
    finally:
        store.dispose()


def test_change_dry_run_then_for_real(db: str) -> None:
    dry = ratecard(db, "change", "acme-pro", "--at", "2026-03-01", "--override", "base.amount=39.00", "--dry-run")
    assert dry.code == 0, dry.err
    assert "from 2026-03-01: plan 'pro' with overrides base.amount=39.00, proration prorate" in dry.out
    assert "dry run: nothing stored (would be catalog version 2; now 1)" in dry.out
    assert "next invoice of acme-pro (live) issued 2026-03-01" in dry.out
    assert version(db) == 1

    done = ratecard(db, "change", "acme-pro", "--at", "2026-03-01", "--override", "base.amount=39.00", "--json")
    assert done.code == 0, done.err
    body = done.json()
    assert (body["stored"], body["catalog_version"]) == (True, 2)
    assert body["subscription"]["changes"][0]["overrides"] == {"base": {"amount": "39.00"}}
    assert version(db) == 2


def test_refusals_and_their_exit_codes(db: str) -> None:
    invalid = ratecard(db, "change", "acme-pro", "--at", "2026-03-01", "--plan", "enterprise")
    assert invalid.code == 1
    assert "error: subscriptions[0].changes[0].plan: unknown plan 'enterprise'" in invalid.err
    assert "nothing was stored" in invalid.err

    assert ratecard(db, "change", "acme-pro", "--at", "2026-04-01", "--plan", "pro",
                    "--override", "base.amount=30").code == 0
    earlier = ratecard(db, "change", "acme-pro", "--at", "2026-03-01T00:00:00+01:00", "--override", "base.amount=35")
    assert earlier.code == 1 and "--at:" in earlier.err and "replace-later" in earlier.err

    bad_instant = ratecard(db, "cancel", "acme-pro", "--at", "next week")
    assert bad_instant.code == 2 and "--at:" in bad_instant.err
    both = ratecard(db, "cancel", "acme-pro", "--at", "2026-03-01", "--at-period-end")
    assert both.code == 2
    unknown = ratecard(db, "cancel", "nope", "--at-period-end")
    assert unknown.code == 2 and "'nope' does not exist" in unknown.err
    no_customer = ratecard(db, "create", "ghost-1", "--customer", "ghost", "--plan", "pro")
    assert no_customer.code == 2 and "--customer:" in no_customer.err and "catalog apply" in no_customer.err
    bad_override = ratecard(db, "create", "acme-2", "--customer", "acme", "--plan", "pro", "--override", "base=1")
    assert bad_override.code == 2 and "--override:" in bad_override.err
    assert version(db) == 2


def test_create_cancel_list_and_show(db: str) -> None:
    created = ratecard(db, "create", "acme-2", "--customer", "acme", "--plan", "pro", "--start", "2026-03-01",
                       "--requires-reference",
                       "--anchor", "1")
    assert created.code == 0, created.err
    assert "stored as catalog version 2 (was 1)" in created.out

    cancelled = ratecard(db, "cancel", "acme-pro", "--at-period-end", "--proration", "none")
    assert cancelled.code == 0, cancelled.err
    assert "ends at 2026-03-01T00:00:00+01:00 (the end of the current period), proration none" in cancelled.out

    listed = ratecard(db, "list", "--customer", "acme")
    assert listed.code == 0
    rows = {line.split()[1]: line for line in listed.out.splitlines() if line.strip().startswith(("│", "|"))
            and "acme" in line}
    assert "active" in rows["acme-pro"] and "2026-03-01T00:00:00+01:00" in rows["acme-pro"]
    assert "scheduled" in rows["acme-2"]

    shown = ratecard(db, "show", "acme-pro", "--json")
    body = shown.json()
    assert (body["end"], body["end_proration"], body["status"]) == ("2026-03-01T00:00:00+01:00", "none", "active")
    assert [v["version"] for v in body["versions"]] == [1, 3]
    table = ratecard(db, "show", "acme-pro")
    assert table.code == 0 and "(ends)" in table.out and "catalog versions" in table.out

    later = ratecard(db, "show", "acme-pro", "--json", now="2026-03-05T00:00:00Z")
    assert later.json()["status"] == "ended"
