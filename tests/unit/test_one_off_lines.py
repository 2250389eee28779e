"""The rules a one-off invoice line is checked by before any money is computed: its service period
and its decimal numbers (services.one_off_invoices).

Service period (the invoice's date is where a period without start_at starts):
  start and end given: start <= end;
  start_at alone: it ends at the later of start_at and the invoice's date;
  end_at alone: it starts at the invoice's date, so end_at must not precede that date;
  neither: the invoice's date.
Hand-computed: an invoice dated 2026-11-26T00:00Z, end_at 2026-11-25T00:00Z alone is refused on
end_at; end_at 2026-11-26T00:00Z alone is the period 26 Nov -> 26 Nov.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratecard.services.errors import InvalidInput
from ratecard.services.one_off_invoices import MAX_DECIMALS, line_input, service_period

AT = datetime(2026, 11, 26, tzinfo=UTC)
INSTANTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


def test_a_lone_end_before_the_invoice_date_is_refused_on_end_at() -> None:
    with pytest.raises(InvalidInput) as refused:
        service_period(None, AT - timedelta(days=1), AT)
    assert refused.value.field == "end_at" and "2026-11-26" in str(refused.value)
    assert service_period(None, AT, AT) == (AT, AT)
    assert service_period(None, AT + timedelta(days=3), AT) == (AT, AT + timedelta(days=3))
    assert service_period(AT - timedelta(days=30), AT - timedelta(days=1), AT) == \
        (AT - timedelta(days=30), AT - timedelta(days=1))  # a past period given whole is fine
    assert service_period(AT - timedelta(days=30), None, AT) == (AT - timedelta(days=30), AT)
    assert service_period(AT + timedelta(days=2), None, AT) == (AT + timedelta(days=2), AT + timedelta(days=2))
    assert service_period(None, None, AT) == (AT, AT)


@given(start=st.none() | INSTANTS, end=st.none() | INSTANTS, at=INSTANTS)
def test_a_service_period_never_ends_before_it_starts(start: datetime | None, end: datetime | None,
                                                      at: datetime) -> None:
    try:
        begins, ends = service_period(start, end, at)
    except InvalidInput as refused:
        assert refused.field == "end_at"
        assert (start is not None and end is not None and end < start) or (start is None and end is not None
                                                                           and end < at)
        return
    assert begins <= ends
    assert begins == (start if start is not None else at)
    assert end is None or ends == end


def test_trailing_zeros_past_the_scale_are_taken_when_the_value_is_exact() -> None:
    line = line_input(description="Set-up", unit_amount="10.0000000000000", quantity="2.50000000000000000")
    assert (line.unit_amount, line.quantity) == (Decimal("10"), Decimal("2.5"))
    assert f"{line.unit_amount:f}" == "10.000000000000" and f"{line.quantity:f}" == "2.500000000000"
    for text in ("10.0000000000001", "0.0000000000001", "1E-13"):  # past the 12 decimals allowed: refused
        with pytest.raises(InvalidInput) as refused:
            line_input(description="Set-up", unit_amount=text)
        assert refused.value.field == "unit_amount" and f"{MAX_DECIMALS} decimals" in str(refused.value)


EXACT = st.decimals(min_value=Decimal(0), max_value=Decimal(10) ** 12 - 1, places=MAX_DECIMALS,
                    allow_nan=False, allow_infinity=False)


@given(value=EXACT, zeros=st.integers(min_value=0, max_value=60))
def test_any_exact_amount_with_trailing_zeros_is_accepted_as_the_same_value(value: Decimal, zeros: int) -> None:
    text = f"{value:f}"
    padded = text + ("" if "." in text or not zeros else ".") + "0" * zeros
    plain = line_input(description="x", unit_amount=text).unit_amount
    taken = line_input(description="x", unit_amount=padded).unit_amount
    assert taken == plain == value
    assert -taken.as_tuple().exponent <= MAX_DECIMALS  # kept at most at the allowed scale
