"""Attacks on shadow launch, cutover and rollback, judged as a finance person would: every
service period is billed by exactly one system (ratecard live, or the legacy system, whose
periods ratecard keeps on shadow invoices), whatever the timezone, cycle, anchor or order of
promotions, rollbacks and invoice runs.

The reference for "exactly once" is an all-live run of the same catalog and events in a fresh
database: the lines of the live and shadow invoices together must be exactly its lines."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.billing.finalize import finalize_due
from ratecard.billing.run import generate_invoices, price_cut
from ratecard.domain.aggregation import Usage
from ratecard.domain.instants import to_micros
from ratecard.domain.rating import invoice_cuts
from ratecard.golive.cohorts import CohortError, add, cohort_status, create, parallel_run, promote
from ratecard.golive.cutover import CutoverRefused, apply_cutover, plan_cutover
from ratecard.golive.legacy import load_mapping, read_legacy
from ratecard.golive.rollback import rollback
from ratecard.ingest.importer import import_file
from ratecard.store.invoices import list_invoices
from ratecard.store.modes import BillingModes

from .scenario import catalog_document, current, workspace, write_jsonl

# ny   : monthly, New York, anchored on the 1st
# ber  : two subscriptions in Berlin: monthly on the 1st, and quarterly anchored on the 15th; both
#        charge api_calls, so the quarterly one bills only the calls that name it
# late : UTC, starts 2027-01-10, after every promotion in these tests
CATALOG = """
billing_entity: {name: Attack Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: api
    currency: EUR
    minimum: "12.00"
    charges:
      - {code: base, model: flat, amount: "10.00", timing: advance}
      - {code: support, model: flat, amount: "3.00", timing: arrears}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.50"}
  - code: q
    currency: EUR
    interval: quarter
    charges:
      - {code: qbase, model: flat, amount: "90.00", timing: advance}
      - {code: qcalls, meter: api_calls, model: per_unit, unit_amount: "0.25"}
customers:
  - {reference: ny, currency: EUR, tax_rate: "0", country: US, timezone: America/New_York}
  - {reference: ber, currency: EUR, tax_rate: "19", country: DE, timezone: Europe/Berlin}
  - {reference: late, currency: EUR, tax_rate: "0", country: NL}
subscriptions:
  - {reference: ny-m, customer: ny, plan: api, start: 2026-09-01}
  - {reference: ber-m, customer: ber, plan: api, start: 2026-09-01}
  - {reference: ber-q, customer: ber, plan: q, start: 2026-08-15, billing_anchor: 15, requires_reference: true}
  - {reference: late-m, customer: late, plan: api, start: 2027-01-10, billing_anchor: 10}
"""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _events() -> list[dict]:
    events = []
    for customer in ("ny", "ber", "late"):
        for month_start in (utc(2026, 9, 3), utc(2026, 10, 3), utc(2026, 11, 3), utc(2026, 12, 3),
                            utc(2027, 1, 12), utc(2027, 2, 3)):
            # one call right on the local month start, one inside the month
            for n, at in enumerate((month_start, month_start + timedelta(days=9))):
                events.append({"id": f"{customer}-{month_start:%Y%m}-{n}", "customer": customer,
                               "meter": "api_calls", "timestamp": at.isoformat().replace("+00:00", "Z")})
                if customer == "ber" and n == 1:  # ber's second call of a month is the quarterly plan's
                    events[-1]["subscription"] = "ber-q"
    return events


def _setup(url: str, folder: Path):  # noqa: ANN202 - (store, version, catalog)
    store, _ = workspace(url, CATALOG)
    version, catalog = current(store)
    import_file(store, catalog, write_jsonl(folder / f"events-{abs(hash(url))}.jsonl", _events()), utc(2027, 3, 1))
    return store, version, catalog


def _line_key(invoice, line) -> tuple:  # noqa: ANN001
    return (invoice.subscription, invoice.issue_date, line.code, line.service_start_ts, f"{line.amount:f}")


def _reference(folder: Path, until: date, now: datetime) -> Counter:
    """The lines an all-live run bills up to `until`: what live + shadow must add up to."""
    store, version, catalog = _setup(f"sqlite:///{folder / 'reference.db'}", folder)
    generate_invoices(store, catalog, version, until, now)
    lines = Counter(_line_key(i, line) for i in list_invoices(store) for line in i.lines)
    store.dispose()
    (folder / "reference.db").unlink()
    return lines


def _billed(store) -> tuple[Counter, dict]:  # noqa: ANN001
    """Lines of every invoice that is not void (live and shadow together), and the modes per period."""
    lines: Counter = Counter()
    modes: dict[tuple, set[str]] = {}
    for invoice in list_invoices(store):
        if invoice.status == "void":
            continue
        for line in invoice.lines:
            lines[_line_key(invoice, line)] += 1
            modes.setdefault((invoice.subscription, line.code, line.service_start_ts), set()).add(invoice.mode)
    return lines, modes


def assert_each_period_billed_once(store, folder: Path, until: date, now: datetime) -> None:  # noqa: ANN001
    billed, modes = _billed(store)
    expected = _reference(folder, until, now)
    assert billed - expected == Counter(), "billed by both systems (or twice)"
    assert expected - billed == Counter(), "billed by neither system"
    both = {key for key, found in modes.items() if len(found) > 1}
    assert not both, f"periods with both a live and a shadow line: {both}"


def _mode_of(store, subscription: str, code: str, start: datetime) -> set[str]:  # noqa: ANN001
    return {i.mode for i in list_invoices(store) if i.subscription == subscription and i.status != "void"
            for line in i.lines if line.code == code and line.service_start_ts == to_micros(start)}


def test_promotion_per_timezone_and_cycle_bills_every_period_once(db_url: str, tmp_path: Path) -> None:
    store, version, catalog = _setup(db_url, tmp_path)
    create(store, "live", "pilot", None, utc(2026, 8, 20))
    add(store, "live", catalog, "pilot", ["ny", "ber", "late"], utc(2026, 8, 20))
    generate_invoices(store, catalog, version, date(2026, 11, 1), utc(2026, 11, 2))
    # promoted on Nov 20: each customer goes live at its own next boundary, in its own zone
    promotion = promote(store, "live", catalog, "pilot", utc(2026, 11, 20), force=True)
    new_york, berlin = ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin")
    assert promotion.live_from == {
        "ny": to_micros(datetime(2026, 12, 1, tzinfo=new_york)),
        "ber": to_micros(datetime(2026, 12, 1, tzinfo=berlin)),  # the monthly boundary precedes Feb 15
        "late": to_micros(utc(2027, 1, 10)),  # no boundary before its start
    }
    generate_invoices(store, catalog, version, date(2027, 3, 1), utc(2027, 3, 2))
    assert_each_period_billed_once(store, tmp_path, date(2027, 3, 1), utc(2027, 3, 2))
    # the quarter that started before the promotion is the legacy system's, advance fee and usage
    assert _mode_of(store, "ber-q", "qbase", datetime(2026, 11, 15, tzinfo=berlin)) == {"shadow"}
    assert _mode_of(store, "ber-q", "qcalls", datetime(2026, 11, 15, tzinfo=berlin)) == {"shadow"}
    assert _mode_of(store, "ber-q", "qbase", datetime(2027, 2, 15, tzinfo=berlin)) == {"live"}
    # at the promotion boundary: November's arrears (support, usage, minimum) are the legacy
    # system's last bill; December's advance fee is ratecard's first live line
    assert _mode_of(store, "ny-m", "support", datetime(2026, 11, 1, tzinfo=new_york)) == {"shadow"}
    assert _mode_of(store, "ny-m", "base", datetime(2026, 12, 1, tzinfo=new_york)) == {"live"}
    assert all(i.mode == "live" for i in list_invoices(store) if i.customer == "late")

    # running again changes nothing; finalize --due never touches a shadow invoice
    again = generate_invoices(store, catalog, version, date(2027, 3, 1), utc(2027, 3, 2))
    assert (again.created, again.updated, again.removed) == (0, 0, 0)
    finalized = finalize_due(store, utc(2027, 3, 20), "RC").finalized
    assert finalized and all(i.mode == "live" for i in finalized)
    assert all(i.status == "draft" for i in list_invoices(store) if i.mode == "shadow")
    store.dispose()


def test_rollback_then_promote_again_with_drafts_cut_ahead(db_url: str, tmp_path: Path) -> None:
    """Drafts may be cut ahead (`--until` a near date). Rolling back must not leave a void
    invoice in the way of the next promotion: that period would be billed by neither system."""
    store, version, catalog = _setup(db_url, tmp_path)
    create(store, "live", "pilot", None, utc(2026, 8, 20))
    add(store, "live", catalog, "pilot", ["ny"], utc(2026, 8, 20))
    promote(store, "live", catalog, "pilot", utc(2026, 11, 20), force=True)
    generate_invoices(store, catalog, version, date(2027, 1, 1), utc(2026, 11, 25))  # December, January ahead
    report = rollback(store, "live", "pilot", utc(2026, 11, 26), "RC")
    assert report.issued == []
    generate_invoices(store, catalog, version, date(2027, 1, 1), utc(2026, 11, 26, 1))
    assert not [i for i in list_invoices(store) if i.customer == "ny" and i.mode == "live" and i.status == "draft"]
    # fixed the next day: promoted again, live from the same boundary (Dec 1 in New York)
    again = promote(store, "live", catalog, "pilot", utc(2026, 11, 27), force=True)
    assert again.live_from["ny"] == to_micros(datetime(2026, 12, 1, tzinfo=ZoneInfo("America/New_York")))
    generate_invoices(store, catalog, version, date(2027, 1, 1), utc(2026, 11, 27, 1))
    december = datetime(2026, 12, 1, tzinfo=ZoneInfo("America/New_York"))
    assert _mode_of(store, "ny-m", "base", december) == {"live"}
    assert_each_period_billed_once(store, tmp_path, date(2027, 1, 1), utc(2026, 11, 27, 1))
    store.dispose()


def test_rollback_on_the_boundary_day_in_new_york(db_url: str, tmp_path: Path) -> None:
    """The cron cuts `--until 2026-12-01` at 00:30 UTC: New York's Dec 1 boundary (05:00 UTC)
    is still ahead. Roll back at 00:45, promote again at 01:00: December is ratecard's."""
    store, version, catalog = _setup(db_url, tmp_path)
    create(store, "live", "pilot", None, utc(2026, 8, 20))
    add(store, "live", catalog, "pilot", ["ny"], utc(2026, 8, 20))
    promote(store, "live", catalog, "pilot", utc(2026, 11, 20), force=True)
    generate_invoices(store, catalog, version, date(2026, 12, 1), utc(2026, 12, 1, 0, 30))
    rollback(store, "live", "pilot", utc(2026, 12, 1, 0, 45), "RC")
    promote(store, "live", catalog, "pilot", utc(2026, 12, 1, 1), force=True)
    generate_invoices(store, catalog, version, date(2026, 12, 1), utc(2026, 12, 1, 6))
    assert_each_period_billed_once(store, tmp_path, date(2026, 12, 1), utc(2026, 12, 1, 6))
    store.dispose()


def test_promotion_exactly_on_a_boundary_waits_for_the_next_one(db_url: str, tmp_path: Path) -> None:
    store, version, catalog = _setup(db_url, tmp_path)
    create(store, "live", "pilot", None, utc(2026, 8, 20))
    add(store, "live", catalog, "pilot", ["ny"], utc(2026, 8, 20))
    boundary = datetime(2026, 12, 1, tzinfo=ZoneInfo("America/New_York"))
    promotion = promote(store, "live", catalog, "pilot", boundary, force=True)
    # "next boundary after the promotion": the one that is now has begun; the legacy system bills December
    assert promotion.live_from["ny"] == to_micros(datetime(2027, 1, 1, tzinfo=ZoneInfo("America/New_York")))
    generate_invoices(store, catalog, version, date(2027, 1, 1), utc(2027, 1, 2))
    assert _mode_of(store, "ny-m", "base", boundary) == {"shadow"}
    assert_each_period_billed_once(store, tmp_path, date(2027, 1, 1), utc(2027, 1, 2))
    store.dispose()


@pytest.mark.parametrize(("day", "aligned", "november", "december"), [
    (date(2026, 12, 1), True, "shadow", "live"),
    (date(2026, 12, 2), False, "shadow", "shadow"),  # inside December: the legacy system bills all of it
    (date(2026, 11, 30), False, "shadow", "live"),  # inside November: all of November is the legacy's
])
def test_cutover_on_and_off_a_boundary_with_a_cohort(db_url: str, tmp_path: Path, day: date, aligned: bool,
                                                     november: str, december: str) -> None:
    store, version, catalog = _setup(db_url, tmp_path)
    create(store, "live", "pilot", None, utc(2026, 8, 20))
    add(store, "live", catalog, "pilot", ["late"], utc(2026, 8, 20))
    plan = apply_cutover(store, "live", catalog, day, utc(2026, 11, 20))
    rows = {p.subscription: p for p in plan.subscriptions}
    assert rows["ny-m"].aligned is aligned and rows["ber-m"].aligned is aligned
    assert rows["late-m"].cohort == "pilot"  # follows its cohort, not the cutover
    generate_invoices(store, catalog, version, date(2027, 2, 1), utc(2027, 2, 2))
    assert_each_period_billed_once(store, tmp_path, date(2027, 2, 1), utc(2027, 2, 2))
    new_york = ZoneInfo("America/New_York")
    # off the boundary, the straddled period stays the legacy system's, in full
    assert _mode_of(store, "ny-m", "base", datetime(2026, 11, 1, tzinfo=new_york)) == {november}
    assert _mode_of(store, "ny-m", "support", datetime(2026, 11, 1, tzinfo=new_york)) == {november}
    assert _mode_of(store, "ny-m", "base", datetime(2026, 12, 1, tzinfo=new_york)) == {december}
    assert all(i.mode == "shadow" for i in list_invoices(store) if i.customer == "late")
    store.dispose()


def _legacy_file(path: Path, lines: str):  # noqa: ANN202
    path.write_text("customer,code,service_start,service_end,quantity,amount\n" + lines)
    return read_legacy(path, load_mapping(None))


def test_a_parallel_run_that_compares_nothing_is_not_a_clean_cycle(db_url: str, tmp_path: Path) -> None:
    store, version, catalog = _setup(db_url, tmp_path)
    create(store, "live", "pilot", None, utc(2026, 8, 20))
    add(store, "live", catalog, "pilot", ["ny"], utc(2026, 8, 20))
    generate_invoices(store, catalog, version, date(2026, 11, 1), utc(2026, 11, 2))
    legacy = _legacy_file(tmp_path / "other.csv", "ber,base,2026-10-01,2026-11-01,1,10.00\n")
    # two far-future cycles: nothing on either side; they must not make the cohort promotable
    for cycle in ("2030-01", "2030-02"):
        with pytest.raises(CohortError, match="nothing to compare"):
            parallel_run(store, "live", catalog, "pilot", legacy, "other.csv", utc(2026, 11, 3), cycle)
    (status,) = cohort_status(store, "live", "pilot")
    assert (status.runs, status.clean_streak) == ([], 0)
    with pytest.raises(CohortError, match="0 clean cycle"):
        promote(store, "live", catalog, "pilot", utc(2026, 11, 4))
    store.dispose()


@pytest.mark.parametrize("name", ["x" * 201, "a\x7fb", "a\u202eb", " pilot", "pilot ", "a\u2028b"])
def test_cohort_names_that_cannot_be_typed_back_are_refused(db_url: str, name: str) -> None:
    store, _ = workspace(db_url, CATALOG)
    with pytest.raises(CohortError, match="cohort name"):
        create(store, "live", name, None, utc(2026, 8, 20))
    assert cohort_status(store, "live") == []
    create(store, "live", "x" * 200, None, utc(2026, 8, 20))  # the longest name that fits
    assert [s.cohort.name for s in cohort_status(store, "live")] == ["x" * 200]
    store.dispose()


# ---- property: for any live_from, the live and shadow invoices of a cut partition its lines ----

_CATALOG = None


def _catalog():  # noqa: ANN202
    global _CATALOG
    if _CATALOG is None:
        from ratecard.catalog import build_catalog

        _CATALOG = build_catalog(catalog_document(CATALOG))
    return _CATALOG


@settings(max_examples=150, deadline=None)
@given(subscription=st.sampled_from(["ny-m", "ber-m", "ber-q", "late-m"]),
       offset_hours=st.integers(min_value=-24 * 200, max_value=24 * 400),
       shadow=st.booleans(), calls=st.integers(min_value=0, max_value=40))
def test_live_and_shadow_parts_partition_every_cut(subscription: str, offset_hours: int, shadow: bool,
                                                   calls: int) -> None:
    catalog = _catalog()
    spec = catalog.subscriptions[subscription]
    live_from = None if shadow else to_micros(utc(2026, 12, 1) + timedelta(hours=offset_hours))
    modes = BillingModes(customers={spec.customer: live_from})
    measured = {"api_calls": Usage(Decimal(calls), calls)}
    for cut in invoice_cuts(spec.schedule(), utc(2027, 12, 31).astimezone(spec.schedule().tz)):
        all_live = price_cut(catalog, 1, spec, cut, measured)
        split = price_cut(catalog, 1, spec, cut, measured, modes)
        whole = Counter((line.code, line.service_start_ts, line.amount) for r in all_live for line in r.lines)
        parts = Counter((line.code, line.service_start_ts, line.amount) for r in split for line in r.lines)
        assert parts == whole
        for record in split:
            assert record.lines, "an invoice part without lines"
            for line in record.lines:
                is_live = live_from is not None and line.service_start_ts >= live_from
                assert record.mode == ("live" if is_live else "shadow")
            assert record.total == sum((line.amount for line in record.lines), start=record.tax)
        assert len({r.mode for r in split}) == len(split)  # at most one invoice per mode


def test_cutover_plan_for_far_dates_does_not_crash(db_url: str) -> None:
    store, _ = workspace(db_url, CATALOG)
    _, catalog = current(store)
    for day in (date(1970, 1, 1), date(2999, 12, 31)):
        plan = plan_cutover(store, "live", catalog, day)
        assert len(plan.subscriptions) == 4
    store.dispose()


def test_moving_a_cutover_earlier_is_refused_once_the_legacy_system_billed_those_periods(
        db_url: str, tmp_path: Path) -> None:
    store, version, catalog = _setup(db_url, tmp_path)
    apply_cutover(store, "live", catalog, date(2026, 12, 1), utc(2026, 11, 20))
    generate_invoices(store, catalog, version, date(2026, 12, 1), utc(2026, 12, 2))
    # November was the legacy system's (its shadow invoices are dated Nov 1 and Dec 1, both past)
    with pytest.raises(CutoverRefused, match="ny-m: .*already billed by the legacy system"):
        apply_cutover(store, "live", catalog, date(2026, 11, 1), utc(2026, 12, 5))
    plan = plan_cutover(store, "live", catalog, date(2026, 11, 1), utc(2026, 12, 5))
    assert {risk.split(":")[0] for risk in plan.risks if "already billed by the legacy system" in risk} == {
        "ny-m", "ber-m", "ber-q"}
    # the same date again, or a later one, bills nothing twice
    apply_cutover(store, "live", catalog, date(2026, 12, 1), utc(2026, 12, 5))
    generate_invoices(store, catalog, version, date(2026, 12, 1), utc(2026, 12, 5))
    assert_each_period_billed_once(store, tmp_path, date(2026, 12, 1), utc(2026, 12, 5))
    # the team knows better (the legacy system stopped early): --force records it
    apply_cutover(store, "live", catalog, date(2026, 11, 1), utc(2026, 12, 5), force=True)
    generate_invoices(store, catalog, version, date(2026, 12, 1), utc(2026, 12, 5))
    assert _mode_of(store, "ny-m", "base", datetime(2026, 11, 1, tzinfo=ZoneInfo("America/New_York"))) == {"live"}
    assert_each_period_billed_once(store, tmp_path, date(2026, 12, 1), utc(2026, 12, 5))
    store.dispose()


def test_rolling_back_a_cutover_lists_every_invoice_issued_since_it_even_if_recorded_again(
        db_url: str, tmp_path: Path) -> None:
    store, version, catalog = _setup(db_url, tmp_path)
    apply_cutover(store, "live", catalog, date(2026, 12, 1), utc(2026, 11, 20))
    generate_invoices(store, catalog, version, date(2026, 12, 1), utc(2026, 12, 2))
    issued = [i for i in finalize_due(store, utc(2026, 12, 5), "RC").finalized if i.customer == "ny"]
    assert [(i.issue_date, i.mode) for i in issued] == [("2026-12-01", "live")]
    # someone records the same cutover again (or checks it with apply) a few days later
    apply_cutover(store, "live", catalog, date(2026, 12, 1), utc(2026, 12, 10))
    create(store, "live", "back", None, utc(2026, 12, 11))
    add(store, "live", catalog, "back", ["ny"], utc(2026, 12, 11))
    report = rollback(store, "live", "back", utc(2026, 12, 11), "RC")
    # December's fee went out from ratecard: it needs a credit note if the legacy system bills it
    assert [i.number for i in report.issued] == [issued[0].number]
    store.dispose()
