"""Continuous roll-ups: the usage read from them equals the usage read from the raw events, on both
stores, for every aggregation, after inserts, duplicates, late events, edits and deletes; windows
whose boundaries fall inside an hour take their edge hours from the raw events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from ratecard.billing.run import charged_meters
from ratecard.domain.instants import to_micros
from ratecard.ingest.importer import import_file
from ratecard.services.rollups import check_rollups, rebuild_rollups, rollup_status
from ratecard.store import Store
from ratecard.store import rollup_reads as rollups_module
from ratecard.store import rollups as rollup_writes
from ratecard.store import usage as usage_module
from ratecard.store.meter_data import apply_matches, soft_delete
from ratecard.store.rollup_reads import usage_from_rollups
from ratecard.store.usage import Window, aggregate_usage, few_windows_usage

from .scenario import EVERY_AGGREGATION, NOW, current, workspace, write_jsonl
from .test_split_property import _fresh

CATALOG = """
meters:
""" + EVERY_AGGREGATION + """  - {code: m_eu, aggregation: sum, field: v, source: s, filters: {region: [eu]}}
plans:
  - code: p
    currency: EUR
    charges:
      - {code: c_sum, meter: m_sum, model: per_unit, unit_amount: "1"}
      - code: c_split
        meter: m_sum
        model: per_unit
        unit_amount: "1"
        filters:
          - {code: eu, match: {region: [eu]}, unit_amount: "2"}
        group_by: [u]
      - code: c_level
        meter: m_weighted
        model: per_unit
        unit_amount: "1"
        filters:
          - {code: eu, match: {region: [eu]}, unit_amount: "2"}
        group_by: [u]
customers:
  - {reference: acme, currency: EUR}
  - {reference: globex, currency: EUR}
subscriptions:
  - {reference: acme-p, customer: acme, plan: p, start: 2026-01-01}
  - {reference: acme-q, customer: acme, plan: p, start: 2026-01-01, requires_reference: true}
  - {reference: globex-p, customer: globex, plan: p, start: 2026-01-01}
"""

DAY = datetime(2026, 3, 1, tzinfo=UTC)


def _meters(store: Store) -> list:
    _, catalog = current(store)
    return [*catalog.meters.values(), *(m for m in charged_meters(catalog, catalog.subscriptions.values())
                                        if m.split is not None)]


@contextmanager
def _raw_only() -> Iterator[None]:
    """The usage path with every roll-up ignored: the raw events' usage, the reference."""
    original = usage_module.usage_from_rollups
    usage_module.usage_from_rollups = lambda store, windows, meters, environment: ({}, list(meters))
    try:
        yield
    finally:
        usage_module.usage_from_rollups = original


def _both(store: Store, windows: Sequence[Window]) -> tuple[dict, dict]:
    meters = _meters(store)
    rolled, rest = usage_from_rollups(store, windows, meters, "live")
    assert rest == [], [m.code for m in rest]  # every meter was read from its roll-up
    # the same when SQL adds up the whole hours (an invoice run's many windows on one calendar)
    original = rollups_module.GROUPED_FROM
    rollups_module.GROUPED_FROM = 1
    try:
        assert usage_from_rollups(store, windows, meters, "live")[0] == rolled
    finally:
        rollups_module.GROUPED_FROM = original
    with _raw_only():
        raw = aggregate_usage(store, windows, meters)
    return rolled, raw


def _import(store: Store, folder: Path, events: list[dict[str, Any]]) -> None:
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(folder / f"{uuid.uuid4().hex}.jsonl", events), NOW)


def _event(event_id: str, at: str, v: Any, u: str, region: str | None = None, customer: str = "acme",
           subscription: str | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"v": v, "u": u}
    if region is not None:
        properties["region"] = region
    event = {"id": event_id, "customer": customer, "meter": "s", "timestamp": at, "properties": properties}
    if subscription is not None:
        event["subscription"] = subscription
    return event


HAND = [
    _event("e1", "2026-03-01T00:10:00Z", 5, "a"),
    _event("e2", "2026-03-01T00:40:00Z", "2.50", "b", "eu"),
    _event("e3", "2026-03-01T01:20:00Z", -1, "a"),
    _event("e4", "2026-03-01T01:20:00Z", 7, "c"),  # same instant as e3: the greater id is the latest
    _event("e5", "2026-03-01T02:05:00Z", 3, "a", "eu"),
]


def _at(text: str) -> int:
    return to_micros(datetime.fromisoformat(text))


def test_hand_computed_usage_from_rollups_with_half_hour_edges(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    try:
        _import(store, tmp_path, HAND)
        rebuild_rollups(store, "live", NOW)
        assert {item["state"] for item in rollup_status(store, "live")} == {"ready"}
        # [00:30, 02:30): a +05:30 midnight, say; e1 is before it (weighted_sum's level), e2..e5 inside
        half = Window(0, "acme", _at("2026-03-01T00:30:00+00:00"), _at("2026-03-01T02:30:00+00:00"))
        whole = Window(1, "acme", _at("2026-03-01T00:00:00+00:00"), _at("2026-03-01T02:00:00+00:00"))
        rolled, raw = _both(store, [half, whole])
        assert rolled == raw
        expected_half = {"m_count": D(4), "m_sum": D("11.5"), "m_max": D(7), "m_min": D(-1), "m_unique": D(3),
                         "m_latest": D(3), "m_average": D("2.875"), "m_eu": D("5.5"),
                         # level 5 for 600 s, 7.5 for 2400 s, 13.5 for 2700 s, 16.5 for 1500 s, over 7200 s
                         "m_weighted": D("11.416666666667")}
        expected_whole = {"m_count": D(4), "m_sum": D("13.5"), "m_max": D(7), "m_min": D(-1), "m_unique": D(3),
                          "m_latest": D(7), "m_average": D("3.375"), "m_eu": D("2.5"), "m_weighted": D("8.25")}
        for code, quantity in expected_half.items():
            assert rolled[(0, code)].quantity == quantity, code
        for code, quantity in expected_whole.items():
            assert rolled[(1, code)].quantity == quantity, code
        split_code = next(code for _, code in rolled if code.startswith("m_sum\x1f"))
        split = {key: usage.quantity for key, usage in rolled[(0, split_code)].parts}
        assert split == {("eu", ("b",)): D("2.50"), ("eu", ("a",)): D(3), (None, ("a",)): D(-1), (None, ("c",)): D(7)}
        # a window inside one hour reads only raw events
        inside = Window(2, "acme", _at("2026-03-01T01:10:00+00:00"), _at("2026-03-01T01:50:00+00:00"))
        rolled, raw = _both(store, [inside])
        assert rolled == raw and rolled[(2, "m_latest")].quantity == D(7)
        # one preview's few windows read the same
        assert few_windows_usage(store, [half, whole], _meters(store)) == aggregate_usage(store, [half, whole],
                                                                                          _meters(store))
    finally:
        store.dispose()


def test_duplicates_count_once_and_deletes_and_edits_leave_the_rollups(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, CATALOG)
    try:
        rebuild_rollups(store, "live", NOW)  # nothing yet: ready at once, then kept at ingest
        _import(store, tmp_path, HAND)
        _import(store, tmp_path, [*HAND, _event("e6", "2026-03-01T05:00:00Z", 4, "d")])  # five duplicates, one new
        window = Window(0, "acme", _at("2026-03-01T00:00:00+00:00"), _at("2026-03-02T00:00:00+00:00"))
        rolled, raw = _both(store, [window])
        assert rolled == raw
        assert rolled[(0, "m_count")].quantity == 6 and rolled[(0, "m_sum")].quantity == D("20.5")
        soft_delete(store, "live", "e4", 1)  # the max and the latest leave with it
        apply_matches(store, "live", [("e5", "matched", '{"v": 30, "u": "z"}', False)])
        rolled, raw = _both(store, [window])
        assert rolled == raw
        assert rolled[(0, "m_max")].quantity == 30 and rolled[(0, "m_latest")].quantity == 4
        assert check_rollups(store, "live")["ok"]
    finally:
        store.dispose()


def test_check_finds_a_rollup_row_that_differs_from_the_events(db_url: str, tmp_path: Path) -> None:
    from sqlalchemy import text

    store, _ = workspace(db_url, CATALOG)
    try:
        _import(store, tmp_path, HAND)
        rebuild_rollups(store, "live", NOW)
        assert check_rollups(store, "live")["ok"]
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE usage_rollups SET events = events + 1 WHERE hour = :hour"),
                               {"hour": _at("2026-03-01T02:00:00+00:00")})
        report = check_rollups(store, "live")
        assert not report["ok"]
        assert any("2 events" in line for item in report["rollups"] for line in item["differences"])
        # the hour as people read it, not the stored microseconds
        assert any("hour 2026-03-01T02:00:00Z " in line for item in report["rollups"] for line in item["differences"])
    finally:
        store.dispose()


def test_a_changed_meter_is_read_raw_until_rebuilt(db_url: str, tmp_path: Path) -> None:
    from ratecard.store.catalogs import save_version

    from .scenario import catalog_document

    store, version = workspace(db_url, CATALOG)
    try:
        _import(store, tmp_path, HAND)
        rebuild_rollups(store, "live", NOW)
        save_version(store, catalog_document(CATALOG.replace("filters: {region: [eu]}}", "filters: {u: [a]}}")),
                     version)
        window = Window(0, "acme", _at("2026-03-01T00:00:00+00:00"), _at("2026-03-02T00:00:00+00:00"))
        _, catalog = current(store)
        rolled, rest = usage_from_rollups(store, [window], [catalog.meters["m_eu"]], "live")
        assert rolled == {} and [m.code for m in rest] == ["m_eu"]  # a new definition, not ready: raw
        assert aggregate_usage(store, [window], [catalog.meters["m_eu"]])[(0, "m_eu")].quantity == D(7)
        plan = rebuild_rollups(store, "live", NOW, dry_run=True)
        assert [item["meters"] for item in plan["build"]] == ["m_eu"] and len(plan["drop"]) == 1
        rebuild_rollups(store, "live", NOW)
        rolled, rest = usage_from_rollups(store, [window], [catalog.meters["m_eu"]], "live")
        assert rest == [] and rolled[(0, "m_eu")].quantity == D(7)
    finally:
        store.dispose()


# ---------------------------------------------------------------- stateful property, both stores

CUSTOMERS = ("acme", "globex", "nobody")  # nobody: not in the catalog, never matched
NAMED = (None, None, "acme-p", "acme-q", "globex-p")
VALUES = st.one_of(st.integers(min_value=-1000, max_value=10**6),
                   st.decimals(min_value=-100, max_value=100, places=3, allow_nan=False, allow_infinity=False)
                   .map(str), st.just(None), st.just("x"))
EVENTS = st.lists(st.tuples(st.sampled_from(CUSTOMERS), st.integers(min_value=-6, max_value=60),
                            st.sampled_from([0, 15, 30, 45]), VALUES, st.sampled_from(["a", "b", 1, "1"]),
                            st.sampled_from([None, "eu", "us"]), st.sampled_from(NAMED),
                            st.integers(min_value=0, max_value=40)),
                  min_size=1, max_size=8)
# windows: whole hours, a +05:30 boundary, a +05:45 boundary, a proration cut inside an hour
WINDOWS = [
    Window(0, "acme", to_micros(DAY), to_micros(DAY + timedelta(days=2))),
    Window(1, "acme", to_micros(DAY + timedelta(hours=5, minutes=30)), to_micros(DAY + timedelta(hours=29, minutes=30)),
           "acme-p", True),
    Window(2, "acme", to_micros(DAY + timedelta(hours=5, minutes=45)), to_micros(DAY + timedelta(hours=48)),
           "acme-q", False),
    Window(3, "globex", to_micros(DAY + timedelta(hours=7, minutes=17, seconds=3)),
           to_micros(DAY + timedelta(hours=7, minutes=59))),
    Window(4, "globex", to_micros(DAY + timedelta(hours=3)), to_micros(DAY + timedelta(hours=40, minutes=30))),
]


def _machine(url: str, folder: Path) -> type[RuleBasedStateMachine]:
    class Rollups(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.store, _ = workspace(_fresh(url, str(folder), "r"), CATALOG)
            self.ids: list[str] = []
            # built on the empty database (so every later insert goes through the ingest hook), or later
            self.built = False

        @initialize(early=st.booleans())
        def start(self, early: bool) -> None:
            if early:
                self.build()

        @rule(drawn=EVENTS, duplicate=st.booleans())
        def import_events(self, drawn: list, duplicate: bool) -> None:
            events = []
            for customer, hour, minute, v, u, region, named, again in drawn:
                event_id = self.ids[again % len(self.ids)] if duplicate and self.ids else f"e{len(self.ids)}"
                if event_id not in self.ids:
                    self.ids.append(event_id)
                at = DAY + timedelta(hours=hour, minutes=minute)  # hour < 0 and re-sent hours: late arrivals
                event = _event(event_id, at.isoformat(), v, u, region, customer, named)
                events.append(event)
            _import(self.store, folder, events)

        @rule()
        def build(self) -> None:
            rebuild_rollups(self.store, "live", NOW)
            self.built = True

        @rule(index=st.integers(min_value=0, max_value=40))
        def delete(self, index: int) -> None:
            if self.ids:
                soft_delete(self.store, "live", self.ids[index % len(self.ids)], 1)

        @rule(index=st.integers(min_value=0, max_value=40), v=VALUES, u=st.sampled_from(["a", "z"]))
        def edit(self, index: int, v: Any, u: str) -> None:
            """A reprocess rewrites an event's properties (and matches it)."""
            if self.ids:
                properties = '{"v": %s, "u": "%s"}' % (  # noqa: UP031
                    "null" if v is None else f'"{v}"' if v == "x" else v, u)
                apply_matches(self.store, "live", [(self.ids[index % len(self.ids)], "matched", properties, False)])

        @invariant()
        def rollups_equal_raw_events(self) -> None:
            if not self.built:
                return
            rolled, raw = _both(self.store, WINDOWS)
            assert rolled == raw

        def teardown(self) -> None:
            self.store.dispose()

    return Rollups


@pytest.mark.slow
def test_rollups_equal_raw_events_under_random_changes(db_url: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # every write through the bulk paths, as an import's batches go: the counts, sums and averages
    # folded by one SQL statement, the other roll-ups in Python (PostgreSQL: COPY and one upsert)
    monkeypatch.setattr(rollup_writes, "COPY_FROM_ROWS", 1)
    monkeypatch.setattr(rollup_writes, "SET_BASED_FROM", 1)
    run_state_machine_as_test(
        _machine(db_url, tmp_path),
        settings=settings(max_examples=15, stateful_step_count=6, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))



def test_a_replacing_backfill_and_its_revert_keep_the_rollups_exact(db_url: str, tmp_path: Path) -> None:
    from ratecard.golive.backfill import close_backfill, import_target, revert_backfill
    from ratecard.store.backfills import create_backfill

    store, _ = workspace(db_url, CATALOG)
    try:
        _import(store, tmp_path, HAND)
        rebuild_rollups(store, "live", NOW)
        window = Window(0, "acme", _at("2026-03-01T00:00:00+00:00"), _at("2026-03-02T00:00:00+00:00"))
        before = _both(store, [window])[0]
        # [00:30, 01:30) of acme replaced by one event: e2, e3 and e4 move aside
        backfill = create_backfill(store, "live", _at("2026-03-01T00:30:00+00:00"), _at("2026-03-01T01:30:00+00:00"),
                                   "acme", True, 1)
        _, catalog = current(store)
        validator, writer_factory = import_target(store, catalog, NOW, backfill.id)
        import_file(store, catalog, write_jsonl(tmp_path / "bf.jsonl", [_event("b1", "2026-03-01T01:00:00Z", 100, "q")]),
                    NOW, validator=validator, writer_factory=writer_factory)
        close_backfill(store, backfill.id, NOW)
        rolled, raw = _both(store, [window])
        assert rolled == raw
        assert rolled[(0, "m_sum")].quantity == D(108) and rolled[(0, "m_latest")].quantity == 3  # 5 + 100 + 3
        revert_backfill(store, backfill.id, NOW)
        rolled, raw = _both(store, [window])
        assert rolled == raw == before
    finally:
        store.dispose()


def test_a_forced_rebuild_clears_rows_of_customers_with_no_events_left(db_url: str, tmp_path: Path) -> None:
    from sqlalchemy import text

    store, _ = workspace(db_url, CATALOG)
    try:
        _import(store, tmp_path, HAND)
        rebuild_rollups(store, "live", NOW)
        with store.engine.begin() as connection:  # every event of acme gone behind the roll-ups' back
            connection.execute(text("UPDATE events SET status = 'unknown_customer'"))
        assert not check_rollups(store, "live")["ok"]
        rebuild_rollups(store, "live", NOW, meter="m_sum")
        report = {item["meter"]: item for item in check_rollups(store, "live")["rollups"]}
        assert report["m_sum"]["differences"] == [] and report["m_sum"]["rows"] == 0
    finally:
        store.dispose()
