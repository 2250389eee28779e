"""What meters make of a property's JSON value: text forms (filters) and unique_count's keys."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ratecard.domain.json_values import PLAIN_NUMBER, is_plain_text, number_text, text_form, unique_key

D = Decimal


def test_a_number_reads_in_its_plain_decimal_form() -> None:
    assert number_text(D("1.50")) == "1.5"
    assert number_text(D("1E+2")) == "100"
    assert number_text(D("15E-1")) == "1.5"
    assert number_text(D("-0.0")) == "0"
    assert number_text(D("0E-7")) == "0"
    assert number_text(D("1E-19")) == "0.0000000000000000001"
    assert number_text(2**70) == "1180591620717411303424"
    assert number_text(D("-12.3400")) == "-12.34"
    assert number_text(1.5) == "1.5"


def test_text_forms_of_every_json_type() -> None:
    assert [text_form(v) for v in (True, False, 1, D("1.0"), "1", "1.0", "é")] == \
        ["true", "false", "1", "1", "1", "1.0", "é"]
    assert [text_form(v) for v in (None, {}, [1])] == [None, None, None]


def test_only_texts_no_number_or_boolean_has_are_plain() -> None:
    assert [is_plain_text(t) for t in ("eu", "gpt-4o", "1.0", "01", "1e2", "-0", "", "True")] == [True] * 8
    assert [is_plain_text(t) for t in ("1", "-2", "1.5", "0", "true", "false", "{x", "[1]")] == [False] * 8


def test_unique_keys_follow_the_rule() -> None:
    def distinct(*values: object) -> int:
        return len({unique_key(v) for v in values})

    assert distinct(1, D("1.0"), D("1e0"), 1.0) == 1
    assert distinct(1, True, "1", "true") == 4
    assert distinct(0, False, "") == 3
    assert distinct(D("1e2"), 100) == 1
    assert distinct(2**63, 2**63 + 1, 2**64 + 1, D("18446744073709551617.0")) == 3
    assert distinct({"a": 1, "b": [1, 2]}, {"b": [D("1.0"), 2], "a": 1}) == 1
    assert distinct([1, 2], [2, 1], '[1, 2]', {}, []) == 5
    assert distinct({"a": None}, {"a": "null"}, {}) == 3


@st.composite
def _bounded_decimals(draw: st.DrawFn) -> Decimal:
    digits = draw(st.integers(min_value=1, max_value=38))
    coefficient = draw(st.integers(min_value=0, max_value=10**digits - 1))
    return Decimal((draw(st.integers(0, 1)), tuple(map(int, str(coefficient))),
                    draw(st.integers(min_value=-56, max_value=19))))


@given(value=_bounded_decimals(), zeros=st.integers(min_value=0, max_value=5))
def test_equal_numbers_have_one_text_form_and_one_key(value: Decimal, zeros: int) -> None:
    sign, digits, exponent = value.as_tuple()
    padded = Decimal((sign, digits + (0,) * zeros, exponent - zeros))  # the same number, more zeros
    text = number_text(value)
    assert PLAIN_NUMBER.fullmatch(text)
    assert Decimal(text) == value
    assert number_text(padded) == text
    assert unique_key(padded) == unique_key(value)
    assert unique_key(text) != unique_key(value)
