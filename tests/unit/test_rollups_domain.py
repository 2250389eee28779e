"""The roll-ups' partial aggregates: however a period's events are cut into buckets, merging the
buckets gives the quantity the event-by-event aggregation gives, for every aggregation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from ratecard.domain.aggregation import AGGREGATIONS, Sample, aggregate
from ratecard.domain.instants import to_micros
from ratecard.domain.rollups import HOUR_US, Partial, RollupRule, hour_after, hour_of, merged, weighted

START = datetime(2026, 3, 1, tzinfo=UTC)
VALUES = st.one_of(st.integers(min_value=-10**20, max_value=10**20),
                   st.decimals(min_value=-10**6, max_value=10**6, places=6, allow_nan=False, allow_infinity=False))
EVENTS = st.lists(st.tuples(st.integers(min_value=0, max_value=5 * 3600), VALUES,
                            st.sampled_from(["a", "b", "é", "a-1", "b0"])), min_size=1, max_size=25)


def _partial(aggregation: str, events: list[tuple[int, str, D]]) -> Partial:
    partial = Partial()
    for ts, event_id, value in events:
        partial.add(aggregation, ts, event_id, value)
    return partial


@given(events=EVENTS, cuts=st.lists(st.integers(min_value=0, max_value=25), max_size=5))
def test_merged_buckets_give_the_event_by_event_quantity(events: list, cuts: list[int]) -> None:
    # distinct ids (the store's key); the same instant may repeat, so ties are broken by the id
    rows = [(to_micros(START + timedelta(seconds=second)), f"{name}{index}", D(value))
            for index, (second, value, name) in enumerate(events)]
    ordered = sorted(rows, key=lambda row: (row[0], row[1]))
    bounds = sorted({0, len(rows), *(cut % (len(rows) + 1) for cut in cuts)})
    for aggregation in AGGREGATIONS:
        if aggregation == "weighted_sum":
            continue
        buckets = [_partial(aggregation, rows[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
        samples = [Sample(START, value) for _, _, value in ordered]  # latest: the last given wins ties
        expected = aggregate(aggregation, samples if aggregation != "latest" else
                             [Sample(datetime.fromtimestamp(ts / 1e6, UTC), value) for ts, _, value in ordered])
        found = merged(buckets).usage(aggregation)
        if aggregation == "latest":
            assert found.quantity == ordered[-1][2]
        else:
            assert found.quantity == expected.quantity, aggregation
        assert found.events == len(rows)


@given(events=EVENTS, prior=VALUES, start_second=st.integers(min_value=0, max_value=3600),
       length=st.integers(min_value=1, max_value=6 * 3600))
def test_weighted_sum_from_sums_equals_the_level_walk(events: list, prior: object, start_second: int,
                                                       length: int) -> None:
    start, end = START + timedelta(seconds=start_second), START + timedelta(seconds=start_second + length)
    inside = [(START + timedelta(seconds=second), D(value)) for second, value, _ in events
              if start <= START + timedelta(seconds=second) < end]
    partial = _partial("weighted_sum", [(to_micros(at), "e", value) for at, value in inside])
    expected = aggregate("weighted_sum", [Sample(at, value) for at, value in inside], start, end, D(prior))
    assert weighted(D(prior), partial, to_micros(start), to_micros(end)) == expected.quantity


def test_hand_computed_weighted_sum_and_hours() -> None:
    # level 2 before; +3 at 00:30 and -1 at 01:00 over [00:00, 02:00): 2 for 30 min, 5 for 30, 4 for 60
    partial = _partial("weighted_sum", [(to_micros(START + timedelta(minutes=30)), "x", D(3)),
                                        (to_micros(START + timedelta(hours=1)), "y", D(-1))])
    assert weighted(D(2), partial, to_micros(START), to_micros(START + timedelta(hours=2))) == D("3.75")
    moment = to_micros(START + timedelta(minutes=90))
    assert (hour_of(moment), hour_after(moment)) == (to_micros(START) + HOUR_US, to_micros(START) + 2 * HOUR_US)
    assert hour_after(to_micros(START)) == to_micros(START)


def test_a_rule_counts_by_filter_field_and_dimension() -> None:
    from ratecard.domain.pricing import ChargeFilter

    plain = RollupRule(frozenset({"s"}), "sum", "v", (("region", frozenset({"eu"})),))
    assert plain.contribution({"v": 2, "region": "eu"}) == ("", D(2))
    assert plain.contribution({"v": 2, "region": "us"}) is None  # the meter's filter
    assert plain.contribution({"v": "2", "region": "eu"}) is None  # a string is no number
    assert plain.contribution({"v": True, "region": "eu"}) is None  # nor is true
    split = RollupRule(frozenset({"s"}), "sum", "v", (), True,
                       (ChargeFilter("gold", (("tier", frozenset({"gold"})),), None),), ("u",))  # type: ignore[arg-type]
    assert split.contribution({"v": 1, "tier": "gold", "u": 7}) == ('["gold",["7"]]', D(1))
    assert split.contribution({"v": 1, "u": None}) == ("[null,[null]]", D(1))
    assert split.contribution({"u": "a"}) == ("-", None)  # no value: present, counted nowhere
