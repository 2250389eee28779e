"""An invoice run shared by several workers bills exactly what a run of one process bills.

Each example builds one workspace twice in one database, as two environments: `s<n>` is billed by
`generate_invoices` in one call, `p<n>` by a shared run whose items several simulated workers claim
in a random order and batch size, some of them "dying" with their claims (never completing), which
others take over once the lease ran out. The invoices (amounts, lines, statuses, corrections) must
be the same, the same draft numbers taken (unique; a draft the run removes leaves its number unused
in either run), and the same final numbers given, gapless, each once.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ratecard.billing.claims import bill_share, merge_reports, parse_until, plan_items
from ratecard.billing.run import generate_invoices
from ratecard.domain.instants import to_micros
from ratecard.ingest.importer import import_file
from ratecard.services.catalog import current_catalog
from ratecard.services.invoice_runs import run_report, start_run, work_on_run
from ratecard.store import Store, open_store
from ratecard.store.catalogs import save_version
from ratecard.store.invoices import change_status, existing_cuts, list_invoices
from ratecard.store.run_claims import (
    claim_items,
    complete_items,
    extend_leases,
    finish_run,
    get_run,
    release_items,
    run_progress,
)

from ..migrated import at_head
from .scenario import catalog_document, write_jsonl

NOW = datetime(2026, 11, 26, tzinfo=UTC)
EXAMPLES = count()
LEASE = 10_000_000  # µs; the simulated clock moves past it to let a "dead" worker's claims go

PLANS = """
meters:
  - {code: tokens, aggregation: sum, field: tokens}
  - {code: calls, aggregation: count}
plans:
  - code: pro
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "49.00", timing: advance}
      - code: tokens
        meter: tokens
        model: graduated
        tiers: [{up_to: 1000, unit_amount: "0"}, {up_to: null, unit_amount: "0.002", flat_amount: "5"}]
      - {code: calls, meter: calls, model: per_unit, unit_amount: "0.10"}
  - code: metered
    currency: EUR
    minimum: "20.00"
    charges:
      - {code: tokens, meter: tokens, model: per_unit, unit_amount: "0.001"}
"""


def catalog_text(customers: int, dropped: set[int], corrections: str) -> str:
    """`customers` customers, each with a subscription; customer 0 moves from pro to metered on Feb 15
    (two subscriptions, one after the other). `dropped`: subscriptions left out (their drafts go)."""
    lines = ["billing_entity: {name: X BV, country: NL, timezone: UTC, currency: EUR, "
             f"corrections: {corrections}}}", PLANS, "customers:"]
    for number in range(customers):
        lines.append(f"  - {{reference: c{number}, name: C{number}, country: NL, currency: EUR, "
                     f"tax_rate: \"{(21, 9, 0)[number % 3]}\"}}")
    lines.append("subscriptions:")
    for number in range(customers):
        if number in dropped:
            continue
        plan = "pro" if number % 2 else "metered"
        start = date(2026, 1, 1 + number % 20)
        if number == 0:
            lines.append("  - {reference: s0, customer: c0, plan: pro, start: 2026-01-01, end: 2026-02-15, "
                         "billing_anchor: 1}")
            lines.append("  - {reference: s0b, customer: c0, plan: metered, start: 2026-02-15, billing_anchor: 1}")
        else:
            lines.append(f"  - {{reference: s{number}, customer: c{number}, plan: {plan}, start: {start}, "
                         "billing_anchor: 1}")
    return "\n".join(lines) + "\n"


def events(seed: int, customers: int, prefix: str, months: tuple[int, ...], size: int) -> list[dict]:
    chance = random.Random(seed)
    return [{"id": f"{prefix}{number}", "customer": f"c{chance.randrange(customers)}",
             "meter": chance.choice(("tokens", "calls")),
             "timestamp": f"2026-{chance.choice(months):02d}-{chance.randint(1, 28):02d}T{chance.randint(0, 23):02d}"
                          ":00:00Z",
             "properties": {"tokens": chance.randint(1, 900)}} for number in range(size)]


def prepare(store: Store, environment: str, tmp_path: Path, seed: int, customers: int, dropped: set[int],
            corrections: str) -> None:
    """Both environments alike: catalog, January and February events, a run to Feb 1, the cuts before
    Feb 1 finalized; then late January events, March events and a catalog without `dropped`."""
    save_version(store, catalog_document(catalog_text(customers, set(), corrections)), 0, environment)
    _, catalog = current_catalog(store, environment)
    path = write_jsonl(tmp_path / f"{environment}-1.jsonl", events(seed, customers, "a", (1, 2), customers * 12))
    import_file(store, catalog, path, NOW, environment=environment)
    version, catalog = current_catalog(store, environment)
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW, environment=environment)
    for invoice in list_invoices(store, environment, status="draft"):
        if invoice.mode == "live" and invoice.issue_date < "2026-02-01":
            change_status(store, invoice.id, "final", to_micros(NOW), "INV", environment)
    save_version(store, catalog_document(catalog_text(customers, dropped, corrections)), 1, environment)
    _, catalog = current_catalog(store, environment)
    path = write_jsonl(tmp_path / f"{environment}-2.jsonl", events(seed + 1, customers, "b", (1, 3), customers * 6))
    import_file(store, catalog, path, NOW + timedelta(hours=1), environment=environment)


def content(store: Store, environment: str) -> dict:
    """Every invoice by its cut, without what names it (id, numbers): what the customer is billed."""
    found = list_invoices(store, environment)
    keys = {invoice.id: (invoice.subscription, invoice.boundary_ts, invoice.mode, invoice.kind, invoice.revision)
            for invoice in found}
    result = {}
    for invoice in found:
        key = keys[invoice.id]
        if invoice.kind != "invoice":  # corrections issued on their own: one per subscription and kind
            key = (invoice.subscription, invoice.kind, invoice.total)
        assert key not in result, f"two invoices for {key}"
        result[key] = (invoice.status, invoice.customer, invoice.currency, invoice.subtotal, invoice.tax,
                       invoice.total, invoice.tax_rate, invoice.issue_date, invoice.catalog_version,
                       keys.get(invoice.corrects), [line.__dict__ for line in invoice.lines])
    return result


def numbers(store: Store, environment: str) -> tuple[list[int], dict[str, list[int]]]:
    """(draft numbers sorted, final numbers by prefix sorted)."""
    found = list_invoices(store, environment)
    finals: dict[str, list[int]] = {}
    for invoice in found:
        if invoice.number:
            prefix, _, digits = invoice.number.rpartition("-")
            finals.setdefault(prefix, []).append(int(digits))
    return sorted(invoice.draft_number for invoice in found), {p: sorted(n) for p, n in finals.items()}


def simulate_workers(store: Store, run_id: int, chance: random.Random, workers: int) -> int:
    """Claim and bill the run's items with `workers` simulated workers in a random order and batch
    size; a worker may "die" holding its claims, taken over once the simulated clock passes its
    lease. Returns how many claims were taken over."""
    run = get_run(store, run_id)
    assert run is not None
    version, catalog = run.catalog_version, current_catalog(store, run.environment)[1]
    clock, taken_over, alive = 1_000_000, 0, [f"w{n}" for n in range(workers)]
    dead: set[str] = set()
    while not run_progress(store, run_id).finished:
        worker = chance.choice(alive)
        claimed = claim_items(store, run_id, worker, chance.randint(1, 3), clock, clock + LEASE)
        if not claimed:
            clock += LEASE + 1  # only dead workers' claims are left: their leases run out
            continue
        taken_over += sum(1 for item in claimed if item.attempts > 1)
        if len(alive) > 1 and chance.random() < 0.25:
            alive.remove(worker)  # dies holding its claims (its writes, if any, are lost with it)
            dead.add(worker)
            continue
        references = [reference for item in claimed for reference in item.subscriptions]
        report = bill_share(store, catalog, version, parse_until(run.until), NOW, run.environment, references)
        done = complete_items(store, run_id, worker, [item.position for item in claimed], f"b{clock}-{worker}",
                              report.as_dict(), clock)
        assert done == len(claimed)
        clock += 1
    assert finish_run(store, run_id, clock)
    return taken_over


# no shrinking: an example takes seconds; the failing one is reported as found
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(seed=st.integers(0, 10_000), customers=st.integers(1, 7), workers=st.integers(1, 4),
       drop=st.booleans(), corrections=st.sampled_from(["next_invoice", "credit_note"]))
def test_shared_run_bills_what_one_process_bills(db_url: str, tmp_path: Path, seed: int, customers: int,
                                                 workers: int, drop: bool, corrections: str) -> None:
    store = open_store(at_head(db_url))
    example = next(EXAMPLES)
    alone, shared = f"s{example}", f"p{example}"
    dropped = {customers - 1} if drop and customers > 1 else set()
    for environment in (alone, shared):
        prepare(store, environment, tmp_path, seed, customers, dropped, corrections)

    version, catalog = current_catalog(store, alone)
    serial = generate_invoices(store, catalog, version, date(2026, 4, 1), NOW, environment=alone).as_dict()
    run = start_run(store, date(2026, 4, 1), NOW, shared, workers)
    simulate_workers(store, run.id, random.Random(seed), workers)
    merged = run_report(store, get_run(store, run.id))

    assert content(store, shared) == content(store, alone)
    drafts, finals = numbers(store, shared)
    serial_drafts, serial_finals = numbers(store, alone)
    # a removed draft takes its number with it in either run; the shared run takes no other number
    assert len(set(drafts)) == len(drafts) == len(serial_drafts) and drafts[-1:] == serial_drafts[-1:]
    assert finals == serial_finals
    assert all(found == list(range(1, len(found) + 1)) for found in finals.values())
    for name in ("subscriptions", "cuts", "created", "updated", "unchanged", "skipped_final", "removed"):
        assert merged[name] == serial[name], name
    assert len(merged["corrections"]) == len(serial["corrections"])
    def removals(report: dict) -> list:  # ids differ between the two environments
        return sorted((r["subscription"], r["boundary"], r["mode"], r["invoice"], r["reason"]) for r in report["removals"])

    assert removals(merged) == removals(serial)
    assert merged["run"]["done"] == merged["run"]["items"] and merged["run"]["failed"] == 0
    store.dispose()


def _workspace(db_url: str, tmp_path: Path, customers: int = 6) -> tuple[Store, int]:
    store = open_store(at_head(db_url))
    prepare(store, "live", tmp_path, 7, customers, {customers - 1}, "next_invoice")
    return store, start_run(store, date(2026, 4, 1), NOW, "live", 2, lease=5.0, chunk=2).id


def test_items_are_customers_then_the_drafts_of_subscriptions_gone(db_url: str, tmp_path: Path) -> None:
    store, run_id = _workspace(db_url, tmp_path, customers=4)
    _, catalog = current_catalog(store)
    # c0 has two subscriptions, billed together; s3 left the catalog with a draft (Feb 1) to remove
    assert plan_items(catalog, existing_cuts(store, "live")) == [
        ("c0", ["s0", "s0b"]), ("c1", ["s1"]), ("c2", ["s2"]), (None, ["s3"])]
    items = claim_items(store, run_id, "w", 100, 1, 2)
    assert [(item.customer, item.subscriptions) for item in items] == [
        ("c0", ("s0", "s0b")), ("c1", ("s1",)), ("c2", ("s2",)), (None, ("s3",))]


def test_two_workers_never_claim_the_same_item(db_url: str, tmp_path: Path) -> None:
    """Many claims at once from threads: each item goes to exactly one of them."""
    store, run_id = _workspace(db_url, tmp_path, customers=7)
    got: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def claim(worker: str) -> None:
        start.wait()
        mine = got.setdefault(worker, [])
        while batch := claim_items(store, run_id, worker, 1, 1, 10**15):
            mine += [item.position for item in batch]

    threads = [threading.Thread(target=claim, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    positions = [position for mine in got.values() for position in mine]
    assert sorted(positions) == list(range(7))  # c0…c5 and the dropped s6's draft: each once


def test_a_lease_that_ran_out_is_taken_over_and_the_late_worker_completes_nothing(db_url: str,
                                                                                   tmp_path: Path) -> None:
    store, run_id = _workspace(db_url, tmp_path)
    first = claim_items(store, run_id, "slow", 2, 100, 200)
    assert [item.position for item in first] == [0, 1]
    held = claim_items(store, run_id, "other", 2, 150, 10**6)
    assert [item.position for item in held] == [2, 3]  # held items are skipped
    assert extend_leases(store, run_id, "slow", 300) == 2  # the heartbeat moves both leases
    assert [item.position for item in claim_items(store, run_id, "other", 1, 299, 10**6)] == [4]
    taken = claim_items(store, run_id, "rescuer", 5, 301, 999)  # slow's leases ran out at 300
    assert [(item.position, item.attempts) for item in taken] == [(0, 2), (1, 2), (5, 1)]
    assert complete_items(store, run_id, "slow", [0, 1], "late", merge_reports("2026-04-01", []), 400) == 0
    assert complete_items(store, run_id, "rescuer", [0, 1], "b1", merge_reports("2026-04-01", []), 400) == 2
    assert run_progress(store, run_id).done == 2


def test_an_item_failing_again_and_again_is_reported_not_retried_forever(db_url: str, tmp_path: Path) -> None:
    store, run_id = _workspace(db_url, tmp_path)
    for attempt in range(1, 4):
        (item,) = claim_items(store, run_id, "w", 1, 1, 2)
        assert (item.position, item.attempts) == (0, attempt)
        failed = release_items(store, run_id, "w", [0], "OperationalError: boom", 3, 5)
        assert failed == (1 if attempt == 3 else 0)
    assert claim_items(store, run_id, "w", 1, 1, 2)[0].position == 1  # the failed one is not claimed again
    run = get_run(store, run_id)
    release_items(store, run_id, "w", [1], "stopped", 99, 5)
    report = work_on_run(store, run)  # bills the rest
    assert report.items == run.items - 1 and report.finished_run
    merged = run_report(store, get_run(store, run_id))
    assert merged["run"]["failed"] == 1
    assert merged["failures"] == [{"customer": "c0", "subscription": reference, "boundary": None, "charge": None,
                                   "reason": "not billed: OperationalError: boom"} for reference in ("s0", "s0b")]


def test_the_run_is_closed_once_by_the_worker_that_finishes_it(db_url: str, tmp_path: Path) -> None:
    store, run_id = _workspace(db_url, tmp_path)
    run = get_run(store, run_id)
    claim_items(store, run_id, "gone", 1, 1, 2)  # a claim whose lease is long over
    assert not finish_run(store, run_id, 3)  # an item is still claimed
    tally = work_on_run(store, run, wait_for_others=True)  # takes over the stale claim too
    assert tally.items == run.items and tally.finished_run
    assert get_run(store, run_id).status == "done"
    assert not finish_run(store, run_id, 4)
    merged = run_report(store, get_run(store, run_id))
    assert merged["created"] > 0 and merged["removed"] == 1  # the dropped subscription's Feb 1 draft
    assert merged["removals"][0]["reason"] == "its subscription is no longer in the catalog"


def test_a_second_shared_run_waits_for_the_open_one(db_url: str, tmp_path: Path) -> None:
    from ratecard.services.errors import Refused

    store, run_id = _workspace(db_url, tmp_path)
    with pytest.raises(Refused) as refused:
        start_run(store, date(2026, 4, 1), NOW, "live", 2)
    assert f"invoice run {run_id}" in str(refused.value) and f"--run {run_id}" in str(refused.value)


def test_money_of_a_shared_run_by_hand(db_url: str, tmp_path: Path) -> None:
    """Two customers, hand-priced, billed by two workers: the amounts are the rules', not the split's."""
    store = open_store(at_head(db_url))
    save_version(store, catalog_document(
        "billing_entity: {name: X BV, country: NL, timezone: UTC, currency: EUR}\n" + PLANS +
        "customers:\n"
        "  - {reference: a, name: A, country: NL, currency: EUR, tax_rate: \"21\"}\n"
        "  - {reference: b, name: B, country: NL, currency: EUR, tax_rate: \"0\"}\n"
        "subscriptions:\n"
        "  - {reference: sa, customer: a, plan: pro, start: 2026-01-01, billing_anchor: 1}\n"
        "  - {reference: sb, customer: b, plan: metered, start: 2026-01-01, billing_anchor: 1}\n"), 0)
    _, catalog = current_catalog(store)
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", [
        {"id": "1", "customer": "a", "meter": "tokens", "timestamp": "2026-01-05T00:00:00Z",
         "properties": {"tokens": 1500}},
        {"id": "2", "customer": "a", "meter": "calls", "timestamp": "2026-01-06T00:00:00Z"},
        {"id": "3", "customer": "b", "meter": "tokens", "timestamp": "2026-01-07T00:00:00Z",
         "properties": {"tokens": 30000}},
    ]), NOW)
    run = start_run(store, date(2026, 2, 1), NOW, "live", 2, chunk=1)
    first, second = claim_items(store, run.id, "w1", 1, 1, 10**15), claim_items(store, run.id, "w2", 1, 1, 10**15)
    for worker, claimed in (("w2", second), ("w1", first)):  # the second customer is written first
        report = bill_share(store, catalog, run.catalog_version, date(2026, 2, 1), NOW, "live",
                            claimed[0].subscriptions)
        complete_items(store, run.id, worker, [claimed[0].position], worker, report.as_dict(), 5)
    invoices = {(invoice.subscription, invoice.issue_date): invoice for invoice in list_invoices(store)}
    # sa at Feb 1: base 49.00 (Feb, advance); tokens 1500: 500 x 0.002 + 5 = 6.00; calls 1 x 0.10;
    # subtotal 55.10, tax 21% = 11.571 -> 11.57, total 66.67
    feb = invoices[("sa", "2026-02-01")]
    assert (feb.subtotal, feb.tax, feb.total) == (Decimal("55.10"), Decimal("11.57"), Decimal("66.67"))
    # sb at Feb 1: tokens 30000 x 0.001 = 30.00 >= the 20.00 minimum; no tax
    assert invoices[("sb", "2026-02-01")].total == Decimal("30.00")
    assert invoices[("sa", "2026-01-01")].total == Decimal("59.29")  # 49.00 + 21% (10.29)
    # written in the order the workers finished: sb's drafts took the first numbers, gapless
    assert sorted(invoice.draft_number for invoice in invoices.values()) == [1, 2, 3]
    assert invoices[("sb", "2026-02-01")].draft_number == 1
