"""How a shared invoice run is cut into items and batches, and how the batches' reports add up."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from ratecard.billing.claims import merge_reports, parse_until
from ratecard.billing.run import RunReport
from ratecard.services.invoice_runs import MAX_CHUNK, chunk_for


def test_batches_are_a_quarter_of_a_workers_share_on_postgresql_and_the_whole_run_on_sqlite() -> None:
    assert chunk_for(10_000, 2, postgres=True) == 500  # 1,250 capped
    assert chunk_for(2_000, 2, postgres=True) == 250  # 8 batches: 4 per worker
    assert chunk_for(30, 4, postgres=True) == 2  # ceil(30 / 16)
    assert chunk_for(1, 8, postgres=True) == 1
    assert chunk_for(0, 2, postgres=True) == 1  # an empty run still has a batch size
    assert chunk_for(2_000, 2, postgres=False) == 2_000  # one writer: one pass


@given(items=st.integers(0, 100_000), workers=st.integers(1, 64))
def test_batches_are_the_smallest_that_give_each_worker_four_at_most(items: int, workers: int) -> None:
    chunk = chunk_for(items, workers, postgres=True)
    assert 1 <= chunk <= MAX_CHUNK
    if chunk < MAX_CHUNK and items:
        assert chunk * workers * 4 >= items > (chunk - 1) * workers * 4


def test_until_comes_back_as_it_was_given() -> None:
    assert parse_until("2026-04-01") == date(2026, 4, 1)
    assert parse_until("2026-04-01T12:00:00+00:00") == datetime(2026, 4, 1, 12, tzinfo=UTC)


def test_batch_reports_add_up_and_failed_items_are_failures() -> None:
    first = RunReport(until="2026-04-01", subscriptions=2, cuts=5, created=4, skipped_final=1).as_dict()
    first["removals"] = [{"invoice": "DRAFT-9", "id": 9, "subscription": "s9", "boundary": "2026-02-01T00:00:00Z",
                          "mode": "live", "reason": "its subscription is no longer in the catalog"}]
    second = RunReport(until="2026-04-01", subscriptions=1, cuts=3, updated=2, unchanged=1, removed=1).as_dict()
    second["failures"] = [{"customer": "b", "subscription": "sb", "boundary": "2026-03-01T00:00:00Z",
                           "charge": "tokens", "reason": "bad tiers"}]
    merged = merge_reports("2026-04-01", [second, first], [("a", ["sa", "sa2"], "OperationalError: gone")])
    assert {name: merged[name] for name in ("subscriptions", "cuts", "created", "updated", "unchanged",
                                             "skipped_final", "removed")} == {
        "subscriptions": 3, "cuts": 8, "created": 4, "updated": 2, "unchanged": 1, "skipped_final": 1, "removed": 1}
    assert merged["removals"] == first["removals"] and merged["dry_run"] is False
    assert [(f["customer"], f["subscription"], f["reason"]) for f in merged["failures"]] == [
        ("a", "sa", "not billed: OperationalError: gone"), ("a", "sa2", "not billed: OperationalError: gone"),
        ("b", "sb", "bad tiers")]
