"""A cached validator's late windows kept current by reading only the documents finalized since
(services.events.LateWindows), on SQLite and PostgreSQL.

Invoices are finalized in random order under several prefixes (one containing '-', one that is
the other's start, one whose numbers grow past 6 digits), corrections issue credit notes, and two
API processes refresh their caches at random moments. After every refresh a process's windows are
exactly those a full read of every final document gives, and it never read everything again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ratecard.api.caches import CatalogCache, CatalogState
from ratecard.billing.run import generate_invoices
from ratecard.domain.instants import to_micros
from ratecard.ingest.importer import import_file
from ratecard.ingest.validate import EventValidator
from ratecard.services.catalog import current_catalog
from ratecard.services.events import LateWindows
from ratecard.store import Store, open_store
from ratecard.store.catalog_state import fingerprint
from ratecard.store.catalogs import save_version
from ratecard.store.invoices import change_status, finalized_windows, list_invoices

from ..migrated import at_head
from .scenario import catalog_document, write_jsonl

CUSTOMERS = ("acme", "nyc", "zed")
# the invoice prefix per customer: 'A' is the start of 'A-B' ("A-B-000001" starts with "A-");
# W's sequence starts at 999,998 (below), so its numbers grow to 7 digits
PREFIXES = {"acme": "A-B", "nyc": "A", "zed": "W"}
START = date(2026, 1, 1)
UNTIL = date(2026, 5, 1)
NOW = datetime(2026, 5, 1, 0, 7, tzinfo=UTC)
EXAMPLES = count()


def catalog_text(changed: dict[str, int]) -> str:
    """basic (30.00 a month in advance, 1.00 a call) from Jan 1; a customer in `changed` moved to
    pro (60.00, 0.50 a call) on the 15th of that month, backdated: final periods are corrected by
    credit notes."""
    plans = "".join(f"  - {{code: {code}, currency: USD, charges: [{{code: base, model: flat, amount: \"{fee}\", "
                    f"timing: advance}}, {{code: calls, meter: api_calls, model: per_unit, unit_amount: \"{unit}\"}}]}}\n"
                    for code, fee, unit in (("basic", "30.00", "1.00"), ("pro", "60.00", "0.50")))
    customers = "".join(f"  - {{reference: {name}, tax_rate: \"0\", timezone: UTC}}\n" for name in CUSTOMERS)
    subscriptions = ""
    for name in CUSTOMERS:
        change = (f", changes: [{{at: 2026-{changed[name]:02d}-15, plan: pro, proration: prorate}}]"
                  if name in changed else "")
        subscriptions += f"  - {{reference: s-{name}, customer: {name}, plan: basic, start: {START}{change}}}\n"
    return ("billing_entity: {name: Windows Co, timezone: UTC, currency: USD, corrections: credit_note}\n"
            "meters:\n  - {code: api_calls, aggregation: count}\n"
            f"plans:\n{plans}customers:\n{customers}subscriptions:\n{subscriptions}")


class Workspace:
    """One example's environment: three customers invoiced Jan 1 - May 1, all drafts."""

    def __init__(self, store: Store, folder: Path) -> None:
        self.store = store
        self.environment = f"lw{next(EXAMPLES)}"
        self.now = NOW
        self.changed: dict[str, int] = {}
        with store.engine.begin() as connection:
            connection.execute(text("INSERT INTO invoice_sequences (environment, prefix, last_number) "
                                    "VALUES (:env, 'W', 999998)"), {"env": self.environment})
        save_version(store, catalog_document(catalog_text({})), 0, self.environment)
        _, catalog = current_catalog(store, self.environment)
        calls = [{"id": f"{name}-{month}", "customer": name, "meter": "api_calls",
                  "timestamp": f"2026-{month:02d}-10T12:00:00Z"} for name in CUSTOMERS for month in range(1, 5)]
        import_file(store, catalog, write_jsonl(folder / f"{self.environment}.jsonl", calls), NOW,
                    environment=self.environment)
        self.run()

    def run(self) -> None:
        self.now += timedelta(seconds=1)
        version, catalog = current_catalog(self.store, self.environment)
        report = generate_invoices(self.store, catalog, version, UNTIL, self.now, environment=self.environment)
        assert report.failures == []

    def drafts(self) -> list:
        return sorted(list_invoices(self.store, self.environment, status="draft"), key=lambda i: i.id)

    def finalize(self, pick: int) -> None:
        drafts = self.drafts()
        if drafts:
            chosen = drafts[pick % len(drafts)]
            self.now += timedelta(seconds=1)
            change_status(self.store, chosen.id, "final", to_micros(self.now), lambda customer: PREFIXES[customer],
                          self.environment)

    def correct(self, customer: str, month: int) -> None:
        """Move the customer to pro, backdated: a final period is credited (credit note, final at once)."""
        if customer in self.changed:
            return
        self.changed[customer] = month
        self.now += timedelta(seconds=1)
        save_version(self.store, catalog_document(catalog_text(self.changed)), to_micros(self.now), self.environment)
        self.run()

    def refresh(self, cache: CatalogCache) -> CatalogState:
        state = cache.current(self.store, self.environment, fingerprint(self.store, self.environment), self.now)
        assert state is not None
        return state

    def full(self) -> dict:
        return EventValidator(None, self.now, finalized_windows(self.store, self.environment)).finalized


# a finalization is followed by a refresh of process 0 or 1, or of none (the next refresh then
# finds several new documents)
STEPS = st.lists(st.one_of(
    st.tuples(st.just("finalize"), st.integers(min_value=0, max_value=30), st.sampled_from([0, 1, None])),
    st.tuples(st.just("refresh"), st.integers(min_value=0, max_value=1)),
    st.tuples(st.just("correct"), st.sampled_from(CUSTOMERS), st.integers(min_value=1, max_value=4)),
), min_size=4, max_size=20)


@pytest.fixture
def store(db_url: str):
    opened = open_store(at_head(db_url))
    yield opened
    opened.dispose()


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
def test_windows_read_since_equal_a_full_read_after_every_refresh(store: Store, tmp_path: Path, steps) -> None:
    space = Workspace(store, tmp_path)
    processes = [CatalogCache(), CatalogCache()]
    for process in processes:  # warmed before anything is final (W's sequence alone counts)
        assert space.refresh(process).validator.finalized == {}
    for step in steps:
        if step[0] == "correct":
            space.correct(step[1], step[2])
            continue
        if step[0] == "finalize":
            space.finalize(step[1])
        refreshed = step[-1]
        if refreshed is not None:
            assert space.refresh(processes[refreshed]).validator.finalized == space.full()
    for process in processes:
        state = space.refresh(process)
        assert state.validator.finalized == space.full()
        assert state.late.full_reads == 1  # the warm-up; every later refresh read only what was new


def test_numbers_past_six_digits_and_prefixes_sharing_a_start_are_each_read_once(store: Store, tmp_path: Path) -> None:
    space = Workspace(store, tmp_path)
    process = CatalogCache()
    space.refresh(process)
    for customer in ("zed", "nyc", "acme"):
        for draft in [draft for draft in space.drafts() if draft.customer == customer][:3]:
            space.now += timedelta(seconds=1)
            change_status(store, draft.id, "final", to_micros(space.now), lambda owner: PREFIXES[owner],
                          space.environment)
            assert space.refresh(process).validator.finalized == space.full()
    space.correct("acme", 2)
    space.correct("zed", 1)
    state = space.refresh(process)
    assert state.validator.finalized == space.full()
    assert set(state.validator.finalized) == set(CUSTOMERS)
    numbers = {invoice.number for invoice in list_invoices(store, space.environment, status="final")}
    assert {"W-999999", "W-1000000", "W-1000001", "A-000001", "A-B-000001"} <= numbers
    assert any(number.startswith("CN-") for number in numbers)  # the corrections' credit notes
    assert state.late.full_reads == 1


def test_a_fingerprint_read_before_the_last_refresh_reads_nothing_again(store: Store, tmp_path: Path) -> None:
    space = Workspace(store, tmp_path)
    late, validator = LateWindows(), EventValidator(None, NOW)
    space.finalize(1)
    older = fingerprint(store, space.environment).finals  # one request reads this ...
    space.finalize(1)
    newer = fingerprint(store, space.environment).finals  # ... another this, and refreshes first
    late.refresh(store, space.environment, validator, newer)
    late.refresh(store, space.environment, validator, older)
    late.refresh(store, space.environment, validator, newer)
    assert (validator.finalized, late.full_reads) == (space.full(), 1)


def _finalized(store: Store, environment: str) -> list:
    return sorted(list_invoices(store, environment, status="final"), key=lambda i: i.number)


def test_a_restored_database_is_read_again_whole(store: Store, tmp_path: Path) -> None:
    space = Workspace(store, tmp_path)
    process = CatalogCache()
    acme = [draft for draft in space.drafts() if draft.customer == "acme"]
    for draft in acme[:3]:
        change_status(store, draft.id, "final", 1, "P", space.environment)
    assert space.refresh(process).late.full_reads == 1

    # the database is restored to before P-000003 was final: its count goes down, read whole
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE invoices SET status = 'draft', number = NULL, finalized_at = NULL "
                                "WHERE environment = :env AND number = 'P-000003'"), {"env": space.environment})
        connection.execute(text("UPDATE invoice_sequences SET last_number = 2 WHERE environment = :env AND prefix = 'P'"),
                           {"env": space.environment})
    state = space.refresh(process)
    assert (state.validator.finalized, state.late.full_reads) == (space.full(), 2)

    # restored again to before P-000002, then two others are finalized: P-000002 is another
    # document now, so what was read up to it does not hold: read whole
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE invoices SET status = 'draft', number = NULL, finalized_at = NULL "
                                "WHERE environment = :env AND number = 'P-000002'"), {"env": space.environment})
        connection.execute(text("UPDATE invoice_sequences SET last_number = 1 WHERE environment = :env AND prefix = 'P'"),
                           {"env": space.environment})
    nyc = [draft for draft in space.drafts() if draft.customer == "nyc"]
    for draft in nyc[:2]:
        change_status(store, draft.id, "final", 2, "P", space.environment)
    state = space.refresh(process)
    assert [invoice.customer for invoice in _finalized(store, space.environment)] == ["acme", "nyc", "nyc"]
    assert (state.validator.finalized, state.late.full_reads) == (space.full(), 3)
    # acme's January calls (on the document P-000002 was before) are no longer billed by a final
    # invoice: only nyc's are (P-000001 is acme's opening invoice, a fee in advance and no usage)
    assert set(state.validator.finalized) == {"nyc"}
