"""Every event is billed at most once, by one subscription: the subscription it names, else the
customer's subscription that takes unnamed events. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Text, cast, select

from ratecard.domain.aggregation import Sample, aggregate
from ratecard.domain.instants import to_micros
from ratecard.ingest.importer import ImportReport, import_file, import_records
from ratecard.ingest.records import RawEvent
from ratecard.ingest.reprocess import reprocess
from ratecard.services.catalog import apply_catalog
from ratecard.services.errors import InvalidInput
from ratecard.store import open_store, usage
from ratecard.store.catalogs import save_version
from ratecard.store.schema import events
from ratecard.store.usage import Window, aggregate_usage

from ..migrated import at_head
from .scenario import NOW, catalog_document, current, workspace, write_jsonl

CATALOG = """
billing_entity: {timezone: UTC, currency: EUR}
meters:
  - {code: calls, aggregation: count}
  - {code: tokens, aggregation: sum, field: tokens}
  - {code: users, aggregation: unique_count, field: user}
  - {code: seats, aggregation: weighted_sum, field: delta}
  - {code: gb, aggregation: max, field: gb}
plans:
  - code: api
    currency: EUR
    charges:
      - {code: calls, meter: calls, model: per_unit, unit_amount: "0.10"}
      - {code: tokens, meter: tokens, model: per_unit, unit_amount: "0.01"}
      - {code: users, meter: users, model: per_unit, unit_amount: "1"}
      - {code: seats, meter: seats, model: per_unit, unit_amount: "5"}
  - {code: storage, currency: EUR, charges: [{code: gb, meter: gb, model: per_unit, unit_amount: "1"}]}
customers:
  - {reference: acme, currency: EUR}
  - {reference: globex, currency: EUR}
subscriptions:
  - {reference: acme-old, customer: acme, plan: api, start: 2026-01-01, end: %(old_end)s}
  - {reference: acme-new, customer: acme, plan: api, start: 2026-01-10%(new_flags)s}
  - {reference: acme-storage, customer: acme, plan: storage, start: 2026-01-01, end: 2026-01-20}
  - {reference: globex-api, customer: globex, plan: api, start: 2026-01-01}
"""
WARNED = CATALOG % {"old_end": "2026-01-20", "new_flags": ", requires_reference: true"}
REFUSED = CATALOG % {"old_end": "2026-01-20", "new_flags": ""}


def us(day: str) -> int:
    return to_micros(datetime.fromisoformat(f"{day}T00:00:00+00:00"))


# the windows an invoice run gives the store for January (what billing passes: the subscription,
# and whether it takes events naming none = not requires_reference)
OLD = Window(0, "acme", us("2026-01-01"), us("2026-01-20"), "acme-old", True)
NEW = Window(1, "acme", us("2026-01-10"), us("2026-02-01"), "acme-new", False)


def event(event_id: str, meter: str, day: str, subscription: object = None, **properties: object) -> dict:
    document = {"id": event_id, "customer": "acme", "meter": meter, "timestamp": f"{day}T12:00:00Z",
                "properties": properties}
    if subscription is not None:
        document["subscription"] = subscription
    return document


def stored(store, environment: str = "live") -> dict[str, tuple[str, str | None]]:
    """id -> (status, subscription named) of every stored event."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(events.c.id, events.c.status, events.c.subscription)
                                  .where(events.c.environment == environment))
        return {event_id: (status, named) for event_id, status, named in rows}


def both_ways(store, windows: list[Window], meters: list, environment: str = "live") -> dict:
    """aggregate_usage as a few windows (joined) and as a large run (spans) computes it: the same."""
    joined = aggregate_usage(store, windows, meters, environment)
    original = usage.SCAN_FROM_WINDOWS
    usage.SCAN_FROM_WINDOWS = 0
    try:
        spanned = aggregate_usage(store, windows, meters, environment)
    finally:
        usage.SCAN_FROM_WINDOWS = original
    assert spanned == joined
    return joined


def test_catalog_apply_refuses_the_overlap_and_takes_it_with_requires_reference(db_url: str, tmp_path: Path) -> None:
    store = open_store(at_head(db_url))
    refused = tmp_path / "refused.yaml"
    refused.write_text(REFUSED, encoding="utf-8")
    with pytest.raises(InvalidInput) as raised:
        apply_catalog(store, refused, NOW)
    assert any("subscriptions[1]" in detail and "acme-old" in detail and "'calls'" in detail
               for detail in raised.value.details)
    warned = tmp_path / "warned.yaml"
    warned.write_text(WARNED, encoding="utf-8")
    assert apply_catalog(store, warned, NOW)["version"] == 1
    store.dispose()


def test_each_event_is_billed_by_the_subscription_it_names_or_the_one_taking_unnamed_events(
        db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, WARNED)
    _, catalog = current(store)
    sent = [
        event("e1", "calls", "2026-01-15"),  # names none: acme-old takes it (acme-new requires a name)
        event("e2", "calls", "2026-01-15", "acme-new"),
        event("e3", "calls", "2026-01-15", "acme-old"),
        event("e4", "calls", "2026-01-25"),  # acme-old ended; acme-new only takes events naming it
        event("e5", "calls", "2026-01-25", "acme-old"),  # named, but acme-old has ended
        event("e6", "calls", "2026-01-15", "globex-api"),  # another customer's subscription
        event("e7", "calls", "2026-01-15", "nope"),
        event("e8", "calls", "2026-01-15", "acme-storage"),  # its plan does not charge calls
        event("e9", "calls", "2026-01-25", "acme-new"),
        event("e10", "calls", "2026-01-05", "acme-new"),  # before acme-new starts
        event("bad-1", "calls", "2026-01-15", 42),
        event("bad-2", "calls", "2026-01-15", "x" * 257),
        event("bad-3", "calls", "2026-01-15", ""),
    ]
    report = import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", sent), NOW)
    assert report.rejected == {"invalid_value": 3}
    assert all("subscription" in r.message for r in report.rejections)
    status = stored(store)
    assert {i for i, (s, _) in status.items() if s == "matched"} == {"e1", "e2", "e3", "e9"}
    assert status["e5"] == ("no_subscription", "acme-old")  # kept with its name, for reprocessing
    [acme] = report.outside_by_customer()
    assert {reason: n for reason, n in acme.items() if n and reason != "customer"} == {
        "reference_required": 1, "named_subscription_not_active": 2, "unknown_subscription": 2,
        "named_subscription_without_meter": 1}

    calls = [catalog.meters["calls"]]
    billed = both_ways(store, [OLD, NEW], calls)
    assert (billed[(0, "calls")].events, billed[(1, "calls")].events) == (2, 2)  # e1, e3 | e2, e9
    # windows naming no subscription still take every event of the customer, as before
    legacy = aggregate_usage(store, [Window(0, "acme", OLD.start_us, OLD.end_us),
                                     Window(1, "acme", NEW.start_us, NEW.end_us)], calls)
    assert (legacy[(0, "calls")].events, legacy[(1, "calls")].events) == (3, 4)
    store.dispose()


def test_every_aggregation_splits_the_events_between_the_subscriptions(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, WARNED)
    _, catalog = current(store)
    sent = [
        event("t1", "tokens", "2026-01-12", tokens="1.5"),
        event("t2", "tokens", "2026-01-12", "acme-new", tokens="2.25"),
        event("t3", "tokens", "2026-01-15", "acme-old", tokens=4),
        event("t4", "tokens", "2026-01-25", "acme-new", tokens="0.1"),
        event("u1", "users", "2026-01-11", user="ann"),
        event("u2", "users", "2026-01-11", "acme-new", user="bob"),
        event("u3", "users", "2026-01-12", "acme-new", user="ann"),
        event("u4", "users", "2026-01-13", "acme-old", user="cy"),
        event("s1", "seats", "2026-01-05", delta=2),
        event("s2", "seats", "2026-01-15", "acme-new", delta=3),
        event("s3", "seats", "2026-01-16", delta=1),
    ]
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", sent), NOW)
    meters = [catalog.meters[code] for code in ("tokens", "users", "seats")]
    billed = both_ways(store, [OLD, NEW], meters)
    assert billed[(0, "tokens")].quantity == Decimal("5.5") and billed[(0, "tokens")].events == 2
    assert billed[(1, "tokens")].quantity == Decimal("2.35") and billed[(1, "tokens")].events == 2
    assert (billed[(0, "users")].quantity, billed[(1, "users")].quantity) == (2, 2)  # ann, cy | bob, ann

    def level(window: Window, deltas: list[tuple[str, int]]) -> object:
        samples = [Sample(datetime.fromisoformat(f"{day}T12:00:00+00:00"), Decimal(delta)) for day, delta in deltas]
        start, end = (datetime.fromtimestamp(t / 1e6, UTC) for t in (window.start_us, window.end_us))
        return aggregate("weighted_sum", samples, start, end, Decimal(0))

    assert billed[(0, "seats")] == level(OLD, [("2026-01-05", 2), ("2026-01-16", 1)])
    assert billed[(1, "seats")] == level(NEW, [("2026-01-15", 3)])
    store.dispose()


def test_a_customer_whose_events_all_name_one_subscription_needs_no_join(db_url: str, tmp_path: Path) -> None:
    """The span roll-up tells from each customer's row whether a window takes all its events,
    none, or part (then the join counts them): every case agrees with the few-windows path."""
    store, _ = workspace(db_url, WARNED)
    _, catalog = current(store)
    sent = [{**event("g1", "calls", "2026-01-15", "globex-api"), "customer": "globex"},
            {**event("g2", "calls", "2026-01-16", "globex-api"), "customer": "globex"},
            {**event("g3", "calls", "2026-01-17"), "customer": "globex"}]
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", sent), NOW)
    january = (us("2026-01-01"), us("2026-02-01"))
    windows = [Window(0, "globex", *january, "globex-api", True),  # all three
               Window(1, "globex", *january, "globex-api", False),  # the two naming it
               Window(2, "globex", *january, "globex-other", False),  # none
               Window(3, "globex", *january, "globex-other", True)]  # the one naming none
    billed = both_ways(store, windows, [catalog.meters["calls"]])
    assert {key: value.events for (key, _), value in billed.items()} == {0: 3, 1: 2, 3: 1}
    store.dispose()


def test_reprocessing_keeps_the_subscription_an_event_names(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, WARNED)
    _, catalog = current(store)
    sent = [event("late-named", "calls", "2026-01-25", "acme-old"), event("late-unnamed", "calls", "2026-01-25")]
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", sent), NOW)
    assert stored(store)["late-named"] == ("no_subscription", "acme-old")
    # acme-old now runs to February: both become billable by it, the named one keeping its name
    save_version(store, catalog_document(CATALOG % {"old_end": "2026-02-01",
                                                    "new_flags": ", requires_reference: true"}), 1)
    _, catalog = current(store)
    assert reprocess(store, catalog, NOW)["matched"] == 2
    assert stored(store) == {"late-named": ("matched", "acme-old"), "late-unnamed": ("matched", None)}
    store.dispose()


def test_every_format_carries_the_subscription_named(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, WARNED)
    _, catalog = current(store)
    with (tmp_path / "e.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "customer", "meter", "timestamp", "subscription", "region"])
        writer.writerow(["csv-1", "acme", "calls", "2026-01-15T12:00:00Z", "acme-new", "eu"])
        writer.writerow(["csv-2", "acme", "calls", "2026-01-15T12:00:00Z", "", "eu"])
    pq.write_table(pa.table({"id": ["pq-1", "pq-2"], "customer": ["acme", "acme"], "meter": ["calls", "calls"],
                             "timestamp": ["2026-01-15T12:00:00Z"] * 2, "subscription": ["acme-old", None]}),
                   tmp_path / "e.parquet")
    (tmp_path / "e.json").write_bytes(orjson.dumps([event("arr-1", "calls", "2026-01-15", "acme-new")]))
    solvimon = {"reference": "sv-1", "customer_reference": "acme", "meter_reference": "calls",
                "timestamp": "2026-01-15T12:00:00Z", "pricing_plan_subscription_reference": "acme-new"}
    write_jsonl(tmp_path / "sv.jsonl", [solvimon])
    for name in ("e.csv", "e.parquet", "e.json", "sv.jsonl"):
        report = import_file(store, catalog, tmp_path / name, NOW)
        assert report.rejected == {}, (name, report.rejections)
    assert stored(store) == {"csv-1": ("matched", "acme-new"), "csv-2": ("matched", None),
                             "pq-1": ("matched", "acme-old"), "pq-2": ("matched", None),
                             "arr-1": ("matched", "acme-new"), "sv-1": ("matched", "acme-new")}
    with store.engine.connect() as connection:  # the subscription column is not a property
        assert connection.execute(select(cast(events.c.properties, Text)).where(events.c.id == "csv-1")
                                  ).scalar_one().replace(" ", "") == '{"region":"eu"}'
    store.dispose()


def test_the_same_id_naming_another_subscription_is_a_conflict(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url, WARNED)
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "a.jsonl", [event("e1", "calls", "2026-01-15", "acme-old")]),
                NOW)
    again = [event("e1", "calls", "2026-01-15", "acme-new"), event("e1", "calls", "2026-01-15", "acme-old")]
    for dry_run in (True, False):
        report = import_file(store, catalog, write_jsonl(tmp_path / "b.jsonl", again), NOW, dry_run=dry_run)
        assert (report.duplicates, report.flags.get("conflict")) == (2, 1)
    assert stored(store)["e1"] == ("matched", "acme-old")  # the first write stays
    store.dispose()


# events of acme at random times around January, naming nothing, one of its subscriptions, or others
DRAWN = st.lists(st.tuples(st.integers(min_value=0, max_value=38 * 24 - 1),
                           st.sampled_from([None, "acme-old", "acme-new", "acme-storage", "globex-api", "bogus"]),
                           st.sampled_from(["calls", "tokens"])), max_size=40)


def test_no_event_is_counted_twice_over_overlapping_subscriptions(db_url: str) -> None:
    """Property: the counts over both subscriptions' windows add up to the billable events."""
    store, _ = workspace(db_url, WARNED)
    _, catalog = current(store)
    meters = [catalog.meters["calls"], catalog.meters["tokens"]]
    start = datetime(2025, 12, 25, tzinfo=UTC)

    @settings(max_examples=25, deadline=None)
    @given(drawn=DRAWN, spans=st.booleans())
    def check(drawn: list, spans: bool) -> None:
        environment = f"p{uuid.uuid4().hex[:10]}"  # each example its own events
        raws = [RawEvent(f"e{i}", "acme", meter, (start + timedelta(hours=hour)).isoformat(),
                         {"tokens": 1} if meter == "tokens" else {}, i, named)
                for i, (hour, named, meter) in enumerate(drawn)]
        import_records(store, catalog, raws, NOW, ImportReport("drawn", False), environment=environment,
                       background=False)
        original = usage.SCAN_FROM_WINDOWS
        usage.SCAN_FROM_WINDOWS = 0 if spans else original
        try:
            billed = aggregate_usage(store, [OLD, NEW], meters, environment)
        finally:
            usage.SCAN_FROM_WINDOWS = original
        status = stored(store, environment)
        for meter in ("calls", "tokens"):
            billable = [i for i, (_, _, m) in enumerate(drawn) if m == meter and status[f"e{i}"][0] == "matched"]
            counted = sum(billed[(key, meter)].events for key in (0, 1) if (key, meter) in billed)
            assert counted == len(billable)
            # and each went to the window of the subscription it names, or to acme-old when it names none
            for key, owner in ((0, "acme-old"), (1, "acme-new")):
                mine = [i for i in billable if (drawn[i][1] or "acme-old") == owner]
                assert (billed[(key, meter)].events if (key, meter) in billed else 0) == len(mine)

    try:
        check()
    finally:
        store.dispose()
