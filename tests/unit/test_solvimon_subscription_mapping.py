"""How Solvimon's subscription options map onto ratecard's terms: cancellation types onto `end` and
`end_proration`, a change of plan's timing onto `proration`, terms (Period) onto instants, a TRIAL
schedule onto `trial_days`. Worked examples, then properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.services.errors import Conflict, InvalidInput, MissingInput
from ratecard.services.resources.subscriptions import (
    CancelTerms,
    Term,
    after_term,
    cancel_terms,
    change_terms,
    trial_days_between,
)

NOW = datetime(2026, 5, 25, 12, 0, tzinfo=UTC)


def test_cancellation_types_onto_end_and_end_proration() -> None:
    june_15 = datetime(2026, 6, 15, tzinfo=UTC)
    term_end = datetime(2027, 1, 1, tzinfo=UTC)
    assert cancel_terms("NOW", NOW, None, None, None) == CancelTerms(NOW, False, False, "prorate")
    assert cancel_terms("DATE", NOW, june_15, None, "none") == CancelTerms(june_15, False, False, "none")
    assert cancel_terms("NEXT_BILLING_PERIOD", NOW, None, None, None) == CancelTerms(None, True, False, "prorate")
    assert cancel_terms("AFTER_INITIAL_TERM", NOW, None, term_end, None) == CancelTerms(term_end, False, False,
                                                                                       "prorate")
    assert cancel_terms("UNDO", NOW, None, None, None).undo
    with pytest.raises(MissingInput) as no_date:
        cancel_terms("DATE", NOW, None, None, None)
    assert no_date.value.field == "cancel_at"
    with pytest.raises(Conflict):  # no initial term to end after: 400 INVALID_OPERATION over HTTP
        cancel_terms("AFTER_INITIAL_TERM", NOW, None, None, None)


def test_change_timing_onto_proration() -> None:
    assert change_terms(None, None, None) == ("prorate", False)  # Solvimon's IMMEDIATE_PRO_RATA
    assert change_terms("IMMEDIATE_PRO_RATA", None, None) == ("prorate", False)
    assert change_terms("IMMEDIATE", None, None) == ("none", False)
    assert change_terms("NEXT_BILLING_PERIOD", None, None) == ("none", True)
    assert change_terms("IMMEDIATE", "invoice_now", None) == ("invoice_now", False)  # ratecard's own wins
    with pytest.raises(InvalidInput) as start:
        change_terms("NEXT_BILLING_PERIOD", None, NOW)
    assert start.value.field == "start_at"


def test_terms_and_trials_worked_by_hand() -> None:
    jan_31 = datetime(2026, 1, 31, tzinfo=UTC)
    assert after_term(jan_31, Term("MONTH", 1)) == datetime(2026, 2, 28, tzinfo=UTC)  # clamped to February's end
    assert after_term(jan_31, Term("MONTH", 13)) == datetime(2027, 2, 28, tzinfo=UTC)
    assert after_term(datetime(2028, 2, 29, tzinfo=UTC), Term("YEAR", 1)) == datetime(2029, 2, 28, tzinfo=UTC)
    assert after_term(jan_31, Term("WEEK", 2)) == datetime(2026, 2, 14, tzinfo=UTC)
    assert after_term(jan_31, Term("DAY", 1)) == datetime(2026, 2, 1, tzinfo=UTC)
    assert trial_days_between(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC)) == 14
    for end in (datetime(2026, 3, 1, 12, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)):
        with pytest.raises(InvalidInput):  # half a day, or no time at all
            trial_days_between(datetime(2026, 3, 1, tzinfo=UTC), end)


instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2190, 12, 31), timezones=st.just(UTC))


@settings(max_examples=60)
@given(instants, st.sampled_from(["DAY", "WEEK", "MONTH", "YEAR"]), st.integers(1, 120))
def test_a_term_always_ends_later_and_months_land_on_their_month(start: datetime, kind: str, value: int) -> None:
    end = after_term(start, Term(kind, value))
    assert end > start
    assert (end.hour, end.minute, end.second, end.microsecond) == (start.hour, start.minute, start.second,
                                                                    start.microsecond)
    if kind in ("MONTH", "YEAR"):
        months = value * (12 if kind == "YEAR" else 1)
        assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
        assert end.day == start.day or end.day < start.day and (end + timedelta(days=1)).day == 1


@settings(max_examples=60)
@given(st.sampled_from(["NOW", "DATE", "NEXT_BILLING_PERIOD", "AFTER_INITIAL_TERM"]), instants, instants,
       st.sampled_from([None, "prorate", "none"]))
def test_every_cancellation_ends_somewhere_and_keeps_the_proration_asked(kind: str, now: datetime, other: datetime,
                                                                       proration: str | None) -> None:
    terms = cancel_terms(kind, now, other, other, proration)
    assert not terms.undo and terms.proration == (proration or "prorate")
    assert (terms.at is None) == terms.at_period_end  # exactly one of: an instant, the period's end
    assert terms.at == {"NOW": now, "DATE": other, "AFTER_INITIAL_TERM": other}.get(kind)
