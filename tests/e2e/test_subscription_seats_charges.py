"""`ratecard subscriptions change --quantity`, `create --quantity --trial-days` and `charge`, run in
process on a SQLite file: what a user reads, the exit codes, and what the catalog then holds."""

from __future__ import annotations

from .test_subscription_commands import db, ratecard, version  # noqa: F401 (db is a fixture)


def test_change_the_seats_from_an_instant(db: str) -> None:  # noqa: F811
    done = ratecard(db, "change", "acme-pro", "--at", "2026-02-16", "--quantity", "5", "--json")
    assert done.code == 0, done.err
    body = done.json()
    assert body["subscription"]["changes"] == [{"at": "2026-02-16", "plan": "pro", "overrides": None,
                                                "proration": "prorate", "quantity": 5}]
    assert body["subscription"]["quantity_now"] == 1  # now is Feb 10
    shown = ratecard(db, "show", "acme-pro")
    assert "│ 2026-02-16 │ pro  │ 5     │" in shown.out

    same = ratecard(db, "change", "acme-pro", "--at", "2026-02-20", "--quantity", "5")
    assert same.code == 2
    assert "already plan 'pro' with 5 seat(s); nothing to change" in same.err
    for bad in ("0", "1000001"):
        refused = ratecard(db, "change", "acme-pro", "--at", "2026-02-20", "--quantity", bad)
        assert refused.code == 2
        assert "--quantity: must be a whole number of seats from 1 to 1000000" in refused.err
    assert version(db) == 2


def test_a_one_off_charge_dry_run_then_for_real(db: str) -> None:  # noqa: F811
    dry = ratecard(db, "charge", "acme-pro", "--code", "setup", "--amount", "500.00", "--at", "2026-03-01",
                   "--description", "Set-up fee", "--dry-run")
    assert dry.code == 0, dry.err
    assert "acme-pro: one-off charge 'setup' of 500.00 due 2026-03-01 (on the first invoice at or after it)" in dry.out
    assert "dry run: nothing stored (would be catalog version 2; now 1)" in dry.out
    assert version(db) == 1

    done = ratecard(db, "charge", "acme-pro", "--code", "setup", "--amount", "500.00", "--at", "2026-03-01",
                    "--description", "Set-up fee", "--json")
    assert done.code == 0, done.err
    assert done.json()["subscription"]["one_off"] == [{"code": "setup", "amount": "500.00", "description": "Set-up fee",
                                                        "at": "2026-03-01", "quantity": "1"}]
    hours = ratecard(db, "charge", "acme-pro", "--code", "workshop", "--amount", "120.00", "--quantity", "7.5")
    assert hours.code == 0, hours.err
    assert "one-off charge 'workshop' of 7.5 x 120.00 due 2026-02-10T12:00:00Z" in hours.out
    shown = ratecard(db, "show", "acme-pro")
    assert "│ 2026-03-01           │ setup    │ 1        │ 500.00 │ Set-up fee  │" in shown.out

    again = ratecard(db, "charge", "acme-pro", "--code", "setup", "--amount", "5.00")
    assert again.code == 2
    assert "has a one-off charge 'setup' already" in again.err
    bad = ratecard(db, "charge", "acme-pro", "--code", "extra", "--amount", "12x")
    assert bad.code == 1
    assert "error: subscriptions[0].one_off[2].amount: '12x' is not a decimal number" in bad.err
    early = ratecard(db, "charge", "acme-pro", "--code", "extra", "--amount", "1.00", "--at", "2025-12-01")
    assert early.code == 1
    assert "error: subscriptions[0].one_off[2].at: must not be before the subscription's start" in early.err
    assert version(db) == 3


def test_create_with_seats_and_a_trial(db: str) -> None:  # noqa: F811
    done = ratecard(db, "create", "acme-team", "--customer", "acme", "--plan", "pro", "--start", "2026-03-01",
                    "--quantity", "3", "--trial-days", "14", "--requires-reference")
    assert done.code == 0, done.err
    assert ("acme-team: new subscription of customer 'acme' to plan 'pro' from 2026-03-01, 3 seat(s), trial of "
            "14 day(s)") in done.out
    shown = ratecard(db, "show", "acme-team", "--json").json()
    assert (shown["quantity"], shown["trial_days"], shown["trial_end"]) == (3, 14, "2026-03-15T00:00:00+01:00")
    refused = ratecard(db, "create", "acme-long", "--customer", "acme", "--plan", "pro", "--trial-days", "1000",
                       "--requires-reference")
    assert refused.code == 1
    assert "error: subscriptions[2].trial_days:" in refused.err
