"""Shadow launch on both stores: cohorts, parallel runs, promotion at the next boundary,
rollback, promotion again; and the cutover planner."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ratecard.billing.finalize import finalize_due
from ratecard.billing.run import generate_invoices
from ratecard.golive.cohorts import CohortError, add, cohort_status, create, parallel_run, promote
from ratecard.golive.cutover import CutoverRefused, apply_cutover, plan_cutover
from ratecard.golive.legacy import load_mapping, read_legacy
from ratecard.golive.rollback import rollback
from ratecard.ingest.importer import import_file
from ratecard.store.invoices import change_status, list_invoices

from .scenario import current, workspace, write_jsonl

CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: api
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "10.00", timing: advance}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.50"}
customers:
  - {reference: pilot-a, currency: EUR, tax_rate: "0", country: NL}
  - {reference: other-b, currency: EUR, tax_rate: "0", country: NL}
subscriptions:
  - {reference: sub-a, customer: pilot-a, plan: api, start: 2026-09-01}
  - {reference: sub-b, customer: other-b, plan: api, start: 2026-09-01}
"""


def _calls(customer: str, month: int, count: int) -> list[dict]:
    return [{"id": f"{customer}-{month}-{n}", "customer": customer, "meter": "api_calls",
             "timestamp": f"2026-{month:02d}-10T12:00:00Z"} for n in range(count)]


def _legacy(path: Path, month: int, calls: int, base: str = "10.00") -> list:
    start, end = f"2026-{month:02d}-01", f"2026-{month + 1:02d}-01"
    path.write_text("customer,code,service_start,service_end,quantity,amount\n"
                    f"pilot-a,base,{start},{end},1,{base}\n"
                    f"pilot-a,calls,{start},{end},{calls},{Decimal(calls) * Decimal('0.50'):.2f}\n"
                    # another customer in the same export: outside the cohort, never compared
                    f"other-b,base,{start},{end},1,99.00\n")
    return read_legacy(path, load_mapping(None))


def _by(store, customer: str) -> list[tuple[str, str, str, str]]:  # noqa: ANN001
    return [(i.issue_date, i.mode, i.status, f"{i.total:f}") for i in list_invoices(store) if i.customer == customer]


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_shadow_promote_rollback_promote(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    version, catalog = current(store)
    create(store, "live", "pilot", "first customers", at(8, 20))
    assert add(store, "live", catalog, "pilot", ["pilot-a"], at(8, 20)) == ["pilot-a"]
    events = _calls("pilot-a", 9, 4) + _calls("other-b", 9, 2) + _calls("pilot-a", 10, 6) + _calls("pilot-a", 11, 8)
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", events), at(11, 25))

    # September and October in shadow: computed, never finalized; the other customer is live
    generate_invoices(store, catalog, version, date(2026, 10, 1), at(10, 2))
    assert finalize_due(store, at(10, 2), "RC").finalized and all(
        i.mode == "shadow" and i.status == "draft" for i in list_invoices(store) if i.customer == "pilot-a")
    with pytest.raises(Exception, match="shadow"):
        shadow = next(i for i in list_invoices(store) if i.customer == "pilot-a")
        change_status(store, shadow.id, "final", 0, "RC")

    run_id, cycle, result = parallel_run(store, "live", catalog, "pilot", _legacy(tmp_path / "sep.csv", 9, 4),
                                         "sep.csv", at(10, 3))
    assert (cycle, result.matched, result.differences) == ("2026-09", 2, [])
    with pytest.raises(CohortError, match="1 clean cycle"):
        promote(store, "live", catalog, "pilot", at(10, 3))

    generate_invoices(store, catalog, version, date(2026, 11, 1), at(11, 2))
    _, _, dirty = parallel_run(store, "live", catalog, "pilot", _legacy(tmp_path / "oct.csv", 10, 5), "oct.csv",
                               at(11, 3))
    assert [(d.code, d.field, d.cause) for d in dirty.differences if d.field == "quantity"] == [
        ("calls", "quantity", "unexplained")]
    _, _, clean = parallel_run(store, "live", catalog, "pilot", _legacy(tmp_path / "oct2.csv", 10, 6), "oct2.csv",
                               at(11, 4))
    assert clean.differences == []
    (status,) = cohort_status(store, "live", "pilot")
    assert (status.state, status.clean_streak, len(status.runs)) == ("shadow", 2, 3)

    # promotion takes effect at the next boundary: December 1
    promotion = promote(store, "live", catalog, "pilot", at(11, 20))
    assert promotion.live_from == {"pilot-a": int(datetime(2026, 12, 1, tzinfo=UTC).timestamp()) * 1_000_000}
    generate_invoices(store, catalog, version, date(2026, 12, 1), at(12, 1, 10))
    december = [(i.mode, [(line.code, line.service_start) for line in i.lines]) for i in list_invoices(store)
                if i.customer == "pilot-a" and i.issue_date == "2026-12-01"]
    # November's usage was billed by the legacy system (shadow); December's fee is ratecard's
    assert sorted(december) == [("live", [("base", "2026-12-01")]), ("shadow", [("calls", "2026-11-01")])]
    finalized = finalize_due(store, at(12, 1, 10), "RC").finalized
    assert {(i.customer, i.mode, f"{i.total:f}") for i in finalized} >= {("pilot-a", "live", "10.00")}

    # January 1: a live draft (December usage, none here, and January's fee); then roll back
    generate_invoices(store, catalog, version, date(2027, 1, 1), datetime(2027, 1, 1, 1, tzinfo=UTC))
    live_drafts = [i for i in list_invoices(store) if i.customer == "pilot-a" and i.mode == "live"
                   and i.status == "draft"]
    assert [i.issue_date for i in live_drafts] == ["2027-01-01"]
    report = rollback(store, "live", "pilot", datetime(2027, 1, 1, 2, tzinfo=UTC), "RC")
    assert [i.id for i in report.voided] == [live_drafts[0].id]
    assert [(i.issue_date, f"{i.total:f}") for i in report.issued] == [("2026-12-01", "10.00")]
    (status,) = cohort_status(store, "live", "pilot")
    assert status.state == "rolled back"

    # back in shadow: the January cut is recomputed as a shadow invoice, the voided one stays void
    generate_invoices(store, catalog, version, date(2027, 1, 1), datetime(2027, 1, 1, 3, tzinfo=UTC))
    january = sorted((i.mode, i.status) for i in list_invoices(store)
                     if i.customer == "pilot-a" and i.issue_date == "2027-01-01")
    assert january == [("live", "void"), ("shadow", "draft")]
    # December's fee is on a final live invoice: ratecard billed it, so it never lands on a shadow one
    december_again = sorted((i.mode, i.status, [(line.code, line.service_start) for line in i.lines])
                            for i in list_invoices(store) if i.customer == "pilot-a" and i.issue_date == "2026-12-01")
    assert december_again == [("live", "final", [("base", "2026-12-01")]),
                              ("shadow", "draft", [("calls", "2026-11-01")])]
    assert all(i.customer != "pilot-a" for i in finalize_due(store, datetime(2027, 1, 2, tzinfo=UTC), "RC").finalized)

    # promote again: live from the next boundary, February 1
    # the clean cycles from before the rollback no longer count: it must earn promotion again
    with pytest.raises(CohortError, match="0 clean cycle"):
        promote(store, "live", catalog, "pilot", datetime(2027, 1, 5, tzinfo=UTC))
    again = promote(store, "live", catalog, "pilot", datetime(2027, 1, 5, tzinfo=UTC), force=True)
    assert again.forced
    assert again.live_from["pilot-a"] == int(datetime(2027, 2, 1, tzinfo=UTC).timestamp()) * 1_000_000
    (status,) = cohort_status(store, "live", "pilot")
    assert status.state == "live" and status.cohort.rolled_back_at is None
    store.dispose()


def test_cohort_membership_rules(db_url: str) -> None:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    create(store, "live", "one", None, at(8, 1))
    create(store, "live", "two", None, at(8, 1))
    with pytest.raises(CohortError, match="already exists"):
        create(store, "live", "one", None, at(8, 1))
    with pytest.raises(CohortError, match="unknown customer.*nobody"):
        add(store, "live", catalog, "one", ["pilot-a", "nobody"], at(8, 1))
    assert cohort_status(store, "live", "one")[0].cohort.members == {}  # all or nothing
    add(store, "live", catalog, "one", ["pilot-a"], at(8, 1))
    assert add(store, "live", catalog, "one", ["pilot-a"], at(8, 1)) == []  # idempotent
    with pytest.raises(CohortError, match=r"pilot-a \(in one\)"):
        add(store, "live", catalog, "two", ["pilot-a"], at(8, 1))
    with pytest.raises(CohortError, match="no cohort 'three'"):
        add(store, "live", catalog, "three", ["other-b"], at(8, 1))
    with pytest.raises(CohortError, match="not promoted"):
        rollback(store, "live", "one", at(8, 2), "RC")
    store.dispose()


BERLIN_CATALOG = CATALOG.replace(
    "  - {reference: other-b, currency: EUR, tax_rate: \"0\", country: NL}",
    "  - {reference: other-b, currency: EUR, tax_rate: \"0\", country: DE, timezone: Europe/Berlin}\n"
    "  - {reference: mid-c, currency: EUR, tax_rate: \"0\", country: NL}",
) + "  - {reference: sub-c, customer: mid-c, plan: api, start: 2026-09-15}\n"


def test_cutover_plan_and_apply(db_url: str) -> None:
    store, _ = workspace(db_url, BERLIN_CATALOG)
    version, catalog = current(store)
    plan = plan_cutover(store, "live", catalog, date(2026, 12, 1))
    rows = {p.subscription: p for p in plan.subscriptions}
    # Dec 1 is a boundary of the two monthly subscriptions anchored on the 1st, in their own zones
    assert rows["sub-a"].aligned and rows["sub-b"].aligned and rows["sub-b"].timezone == "Europe/Berlin"
    assert rows["sub-a"].ratecard_from == date(2026, 12, 1)
    # sub-c is anchored on the 15th: Dec 1 falls inside Nov 15 → Dec 15, which the legacy system bills
    assert not rows["sub-c"].aligned
    assert rows["sub-c"].straddling == (date(2026, 11, 15), date(2026, 12, 15))
    assert rows["sub-c"].ratecard_from == date(2026, 12, 15) and rows["sub-c"].risks
    assert (plan.aligned, plan.proposal.aligned) == (2, 2)
    assert plan.proposal.day == date(2026, 12, 1)  # ties broken by closeness to the date asked

    # a final invoice from ratecard before the cutover: that period would be billed twice
    generate_invoices(store, catalog, version, date(2026, 9, 1), at(9, 2))
    first = next(i for i in list_invoices(store) if i.subscription == "sub-a")
    change_status(store, first.id, "final", 0, "RC")
    with pytest.raises(CutoverRefused, match="sub-a"):
        apply_cutover(store, "live", catalog, date(2026, 12, 1), at(11, 20))
    apply_cutover(store, "live", catalog, date(2026, 12, 1), at(11, 20), force=True)

    generate_invoices(store, catalog, version, date(2026, 12, 1), at(12, 1, 23))
    sub_b = {(i.issue_date, i.mode) for i in list_invoices(store) if i.subscription == "sub-b"}
    # Berlin's December starts at 23:00 UTC on Nov 30: its advance fee is ratecard's, not legacy's
    assert ("2026-12-01", "live") in sub_b and ("2026-11-01", "shadow") in sub_b
    sub_c = {(i.issue_date, i.mode) for i in list_invoices(store) if i.subscription == "sub-c"}
    assert ("2026-11-15", "shadow") in sub_c and all(mode == "shadow" for _, mode in sub_c)

    # rolling back a full cutover, customer by customer: a fresh cohort, then rollback
    create(store, "live", "back", None, at(12, 2))
    add(store, "live", catalog, "back", ["other-b"], at(12, 2))
    report = rollback(store, "live", "back", at(12, 2), "RC")
    assert [(i.subscription, i.issue_date) for i in report.voided] == [("sub-b", "2026-12-01")]
    assert report.issued == []  # nothing of other-b's was finalized since the cutover
    store.dispose()


def test_a_backfill_after_a_rollback_corrects_only_what_ratecard_billed(db_url: str, tmp_path: Path) -> None:
    from ratecard.domain.instants import to_micros
    from ratecard.golive.backfill import close_backfill, import_target
    from ratecard.store.backfills import create_backfill

    store, _ = workspace(db_url, CATALOG)
    version, catalog = current(store)
    create(store, "live", "pilot", None, at(10, 1))
    add(store, "live", catalog, "pilot", ["pilot-a"], at(10, 1))
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", _calls("pilot-a", 11, 4)), at(11, 25))
    promote(store, "live", catalog, "pilot", at(11, 20), force=True)  # live from December 1
    generate_invoices(store, catalog, version, date(2026, 12, 1), at(12, 1, 10))
    (december,) = [i for i in finalize_due(store, at(12, 1, 10), "RC").finalized if i.customer == "pilot-a"]
    assert (december.mode, f"{december.total:f}") == ("live", "10.00")
    rollback(store, "live", "pilot", at(12, 2), "RC")

    # November's usage was the legacy system's: a backfill of it changes the shadow invoice only,
    # and December's fee, billed by ratecard, is not credited because the customer is shadow now
    backfill = create_backfill(store, "live", to_micros(at(11, 1, 0)), to_micros(at(12, 1, 0)), None, False,
                               to_micros(at(12, 3)))
    validator, writer_factory = import_target(store, catalog, at(12, 3), backfill.id)
    extra = [{**event, "id": f"bf-{n}"} for n, event in enumerate(_calls("pilot-a", 11, 2))]
    import_file(store, catalog, write_jsonl(tmp_path / "bf.jsonl", extra), at(12, 3), validator=validator,
                writer_factory=writer_factory)
    close_backfill(store, backfill.id, at(12, 3))
    assert [i for i in list_invoices(store) if i.kind == "credit_note"] == []
    shadow = next(i for i in list_invoices(store) if i.customer == "pilot-a" and i.issue_date == "2026-12-01"
                  and i.mode == "shadow")
    assert [(line.code, f"{line.quantity:f}") for line in shadow.lines] == [("calls", "6")]
    store.dispose()


def test_a_parallel_run_on_an_export_of_utc_instants_is_clean_for_a_berlin_customer(db_url: str,
                                                                                  tmp_path: Path) -> None:
    """A Berlin customer's October starts at 2026-09-30T22:00:00Z, November at 2026-10-31T23:00:00Z
    (after the switch back from summer time). October's lines written as UTC instants are found to
    be October without --cycle (not September), and a full export reconciled for October is clean:
    November's line, written on Oct 31, is not taken for an October line ratecard lacks."""
    catalog_text = CATALOG.replace("{reference: pilot-a, currency: EUR, tax_rate: \"0\", country: NL}",
                                   "{reference: pilot-a, currency: EUR, tax_rate: \"0\", country: DE, "
                                   "timezone: Europe/Berlin}")
    store, _ = workspace(db_url, catalog_text)
    version, catalog = current(store)
    create(store, "live", "pilot", "", at(8, 20))
    add(store, "live", catalog, "pilot", ["pilot-a"], at(8, 20))
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", _calls("pilot-a", 10, 4)), at(11, 25))
    generate_invoices(store, catalog, version, date(2026, 12, 1), at(12, 2))
    path = tmp_path / "legacy.csv"
    path.write_text("customer,code,service_start,service_end,quantity,amount\n"
                    "pilot-a,base,2026-09-30T22:00:00Z,2026-10-31T23:00:00Z,1,10.00\n"
                    "pilot-a,calls,2026-09-30T22:00:00Z,2026-10-31T23:00:00Z,4,2.00\n"
                    "pilot-a,base,2026-10-31T23:00:00Z,2026-11-30T23:00:00Z,1,10.00\n")
    legacy = read_legacy(path, load_mapping(None))
    _, cycle, result = parallel_run(store, "live", catalog, "pilot", legacy[:2], str(path), at(12, 2))
    assert cycle == "2026-10"
    assert result.differences == [] and result.matched == 2
    _, cycle, result = parallel_run(store, "live", catalog, "pilot", legacy, str(path), at(12, 2), "2026-10")
    assert result.differences == [] and result.matched == 2
