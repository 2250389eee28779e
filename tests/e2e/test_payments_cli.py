"""`ratecard payments ...` and `ratecard invoices send|deliveries` as a user runs them, against the
Stripe stand-in and a local SMTP server; the crash case kills a real `ratecard payments run`."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..integration.payments_workspace import PAYMENTS_CATALOG
from ..smtp_inbox import Inbox, local_smtp
from ..stripe_standin import StripeStandIn
from .harness import RATECARD, Cli, command_environment


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    cli.write("catalog.yaml", PAYMENTS_CATALOG)
    cli.ok("catalog", "apply", "catalog.yaml")
    cli.ok("invoices", "generate", "--until", "2026-02-01")
    cli.ok("invoices", "finalize", "DRAFT-1")
    return cli


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with local_smtp(monkeypatch) as inbox:
        yield inbox


def test_a_declined_card_then_a_retry_then_a_bank_transfer_refused(cli: Cli, stripe_standin: StripeStandIn) -> None:
    assert [p["status"] for p in cli.ok("payments", "list", "--json").json()] == ["pending"]
    stripe_standin.script["cus_acme"] = ["declined"]
    ran = cli.ok("payments", "run")
    assert "payments: failed 1" in ran.out
    listed = cli.ok("payments", "list")
    assert "RC-000001" in listed.out and "insufficient funds" in listed.out
    retried = cli.ok("payments", "retry", "RC-000001")
    assert retried.out.strip() == "RC-000001: succeeded"
    refused = cli("payments", "mark-paid", "RC-000001", "--reference", "TR-1")
    assert refused.code == 2 and "paid already" in refused.err and "Traceback" not in refused.err
    assert cli.ok("payments", "list", "--status", "succeeded", "--json").json()[0]["attempts"] == 2


def test_a_bank_transfer_is_marked_paid(cli: Cli) -> None:
    paid = cli.ok("payments", "mark-paid", "RC-000001", "--reference", "NL-0042", "--json").json()
    assert (paid["status"], paid["method"], paid["reference"]) == ("succeeded", "manual", "NL-0042")
    assert cli("payments", "list", "--status", "nope").code == 2


def test_marked_paid_through_its_draft_reference_names_the_invoice_number(cli: Cli) -> None:
    paid = cli.ok("payments", "mark-paid", "DRAFT-1", "--reference", "NL-0043")  # DRAFT-1 became RC-000001
    assert paid.out.strip() == "RC-000001: paid (NL-0043)"
    assert cli.ok("payments", "list", "--status", "succeeded", "--json").json()[0]["invoice"] == "RC-000001"


def test_without_a_stripe_key_payments_run_exits_1_and_says_why(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RATECARD_STRIPE_API_KEY", raising=False)
    result = cli("payments", "run")
    assert result.code == 1 and "RATECARD_STRIPE_API_KEY" in result.err


def test_a_run_killed_after_the_charge_never_charges_twice(cli: Cli, stripe_standin: StripeStandIn) -> None:
    stripe_standin.stall.set()
    process = subprocess.Popen([str(RATECARD), "payments", "run", "--db", cli.db], cwd=cli.folder,
                               env=command_environment(cli.now), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not stripe_standin.executed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stripe_standin.executed, "the charge never reached Stripe"
    finally:
        process.kill()  # the customer is charged; ratecard never heard the answer
        process.wait(10)
    stripe_standin.stall.clear()
    stripe_standin.release.set()
    assert cli.ok("payments", "list", "--json").json()[0]["in_flight"] is True
    assert cli.ok("payments", "run", "--json").json()["payments"] == {"succeeded": 1}
    (key,) = stripe_standin.executed
    assert stripe_standin.executed[key] == 1 and stripe_standin.requests[key] == 2
    assert len(stripe_standin.succeeded_charges()) == 1


def test_an_invoice_is_emailed_and_the_log_shows_it(cli: Cli, smtp: Inbox) -> None:
    sent = cli.ok("invoices", "send", "RC-000001")
    assert sent.out.strip() == "RC-000001: sent to ap@acme.example"
    hostile = cli("invoices", "send", "RC-000001", "--to", "x@y.example\r\nBcc: all@y.example")
    assert hostile.code == 2 and "not one email address" in hostile.err
    log = cli.ok("invoices", "deliveries", "RC-000001", "--json").json()
    assert [(d["recipient"], d["status"]) for d in log] == [("ap@acme.example", "sent"), (None, "failed")]
    assert "ap@acme.example" in cli.ok("invoices", "deliveries").out
    assert [recipients for _, recipients, _ in smtp.messages] == [["ap@acme.example"]]
