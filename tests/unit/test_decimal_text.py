"""The one syntax of a number written as text (docs/security/numbers.md, "Numbers written as
text"): JSON's number grammar, within the bound of the exact arithmetic. domain.money.to_decimal
is the parser every user-input path shares."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.domain.money import EXACT_PRECISION, MAX_DECIMAL_TEXT, MoneyError, format_decimal, to_decimal
from ratecard.domain.numbers import number_problem

D = Decimal
SETTINGS = settings(max_examples=300, deadline=None)

# what each hostile form is refused for (the reason a user reads)
HOSTILE = [
    ("1_000", "no '_' between digits"),
    ("1_000.50", "no '_' between digits"),
    ("١٢٣", "only the digits 0-9 (ASCII): write 123"),  # Arabic-Indic digits: Python's Decimal reads 123
    ("１２", "only the digits 0-9 (ASCII): write 12"),  # fullwidth digits: Python's Decimal reads 12
    ("٠.٥", "only the digits 0-9 (ASCII): write 0.5"),
    ("٠٠٧", "only the digits 0-9 (ASCII), and no leading zeros: write 7, not 007"),  # not "write 007"
    ("١,٥", "only the digits 0-9 (ASCII), and no ',' or space between digits"),  # not "write 1,5"
    ("१०", "only the digits 0-9"),  # Devanagari
    ("12\u00a0", "no spaces around"),  # a no-break space after
    (" 5", "no spaces around"),
    ("5 ", "no spaces around"),
    ("\t5\n", "no spaces around"),
    ("5\n", "no spaces around"),
    ("+5", "no '+' sign"),
    ("+0.5", "no '+' sign"),
    ("NaN", "NaN and infinities"),
    ("-nan", "NaN and infinities"),
    ("sNaN", "NaN and infinities"),
    ("Infinity", "NaN and infinities"),
    ("-Infinity", "NaN and infinities"),
    ("inf", "NaN and infinities"),
    ("1e400000", "out of range"),
    ("1E-999999", "out of range"),
    ("0E-999999", "out of range"),
    ("1e999999999999999999999999", "out of range"),  # Python's Decimal cannot even read this one
    ("-1e50", "out of range"),
    ("1" * 51, "out of range"),  # 51 significant digits
    ("0." + "0" * 50 + "1", "out of range"),  # a digit past the 50th decimal place
    ("1" * (MAX_DECIMAL_TEXT + 1), "at most 100 characters"),
    ("007", "no leading zeros"),
    ("-01.5", "no leading zeros"),
    (".5", "digits on both sides of '.'"),
    ("5.", "digits on both sides of '.'"),
    ("", "it is empty"),
    ("   ", "it is empty"),
    ("1,5", "no ',' or space between digits, and '.' as the decimal point: write 1000, not 1,000; 1.5, not 1,5"),
    ("1,000", "no ',' or space between digits"),
    ("-1 000.50", "no ',' or space between digits"),
    ("1.2.3", "write digits"),
    ("--5", "write digits"),
    ("0x1F", "write digits"),
    ("1e", "write digits"),
    ("1e+", "write digits"),
    ("5 EUR", "write digits"),
    ("12\x00", "write digits"),
    ("١e٣", "only the digits 0-9"),
]


@pytest.mark.parametrize(("text", "why"), HOSTILE, ids=[repr(text)[:30] for text, _ in HOSTILE])
def test_hostile_forms_are_refused_with_their_reason(text: str, why: str) -> None:
    with pytest.raises(MoneyError) as refused:
        to_decimal(text)
    assert why in str(refused.value)


# hand-computed: the text and the exact value it stands for
ACCEPTED = [
    ("0", D(0)),
    ("-0", D(0)),
    ("12.50", D("12.50")),
    ("-3", D(-3)),
    ("0.000001", D("0.000001")),
    ("1e3", D(1000)),
    ("1E+3", D(1000)),
    ("2.5e-3", D("0.0025")),
    ("1e49", D(10) ** 49),  # the largest power of ten below the bound
    ("9" * 50, D(10**50 - 1)),  # 50 significant digits
    ("0." + "0" * 49 + "1", D(1).scaleb(-50)),  # the 50th decimal place
    ("10." + "0" * 60, D(10)),  # trailing zeros change no value: they do not count against the bound
    ("1e-0000000005", D("0.00001")),  # JSON allows leading zeros in the exponent
]


@pytest.mark.parametrize(("text", "value"), ACCEPTED)
def test_numbers_in_the_syntax_are_read_exactly(text: str, value: Decimal) -> None:
    assert to_decimal(text) == value


def test_the_scale_written_is_kept() -> None:
    assert str(to_decimal("49.00")) == "49.00"


@pytest.mark.parametrize("value", [D("NaN"), D("sNaN"), D("-Infinity"), D("1E+400000"), D("0E-999999"), 10**50,
                                   -(10**50), 10**5000], ids=lambda value: type(value).__name__)
def test_parsed_numbers_are_held_to_the_same_bound(value: object) -> None:
    # JSON documents give Decimals and ints: the same values as their text would be refused
    with pytest.raises(MoneyError):
        to_decimal(value)


def test_a_caller_may_hold_the_number_to_its_own_bound() -> None:
    assert to_decimal("1e40") == D("1e40")  # inside the exact arithmetic's bound
    with pytest.raises(MoneyError) as refused:
        to_decimal("1e40", bound=number_problem)  # the bound of event and catalog numbers
    assert "1e-19 <= |value| < 1e20" in str(refused.value)
    assert to_decimal("1e400000", bound=None) == D("1e400000")  # the caller checks the range itself
    with pytest.raises(MoneyError, match="out of range"):
        to_decimal("1e1000000", bound=None)  # but an exponent beyond the decimal context's is not read


# --------------------------------------------------------------------------------------------
# properties, against a reference written independently of the parser: the grammar spelled out
# as a regular expression and the value computed as a fraction from the digits

REFERENCE = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?", re.ASCII)


FAR = Fraction(10) ** 1000  # stands for any value too far out to compute (1e999999)


def reference_value(text: str) -> Fraction | None:
    """The value the grammar gives `text`, or None when it is not in the grammar."""
    match = REFERENCE.fullmatch(text)
    if match is None:
        return None
    sign, whole, fraction, exponent = match.groups()
    digits = int(whole + (fraction or ""))
    power = int(exponent or 0) - len(fraction or "")
    if digits == 0:
        return Fraction(0)
    if abs(power) > 1000:
        return FAR if power > 0 else 1 / FAR
    value = Fraction(digits) * (Fraction(10) ** power)
    return -value if sign else value


def inside_bound(value: Fraction) -> bool:
    if value == 0:
        return True
    scaled = value * 10**EXACT_PRECISION
    if scaled.denominator != 1 or abs(value) >= 10**EXACT_PRECISION:
        return False
    significant = str(abs(scaled.numerator)).rstrip("0")
    return len(significant) <= EXACT_PRECISION


NUMBER_LIKE = st.text(alphabet="0123456789-+.eE_ \u0660\uff11", max_size=30)
HOSTILE_TEXT = st.one_of(NUMBER_LIKE, st.text(max_size=30), st.sampled_from([text for text, _ in HOSTILE]))


@SETTINGS
@given(HOSTILE_TEXT)
def test_any_text_accepted_is_in_the_grammar_with_the_grammars_value(text: str) -> None:
    try:
        parsed = to_decimal(text)
    except MoneyError:
        return
    expected = reference_value(text)
    assert expected is not None, f"{text!r} was accepted but is not in the grammar"
    assert Fraction(parsed) == expected
    assert inside_bound(expected)


IN_GRAMMAR = st.from_regex(REFERENCE, fullmatch=True).filter(lambda text: len(text) <= MAX_DECIMAL_TEXT)


@SETTINGS
@given(IN_GRAMMAR)
def test_text_in_the_grammar_is_refused_only_outside_the_bound(text: str) -> None:
    expected = reference_value(text)
    assert expected is not None
    try:
        parsed = to_decimal(text)
    except MoneyError as refused:
        assert "out of range" in str(refused)
        assert expected == 0 or not inside_bound(expected)
        return
    assert Fraction(parsed) == expected


ASCII_DECIMALS = st.builds(lambda digits, places: D(digits).scaleb(-places),
                           st.integers(-(10**30), 10**30), st.integers(0, 20))


@SETTINGS
@given(ASCII_DECIMALS)
def test_a_decimal_written_plainly_or_as_python_writes_it_round_trips(number: Decimal) -> None:
    plain = format(number, "f")
    assert to_decimal(plain) == number
    assert to_decimal(format_decimal(number)) == number
    assert to_decimal(str(to_decimal(plain))) == number  # str() writes 1E-7 or 1E+3: in the grammar too
