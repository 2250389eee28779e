"""The import's timestamp reading (`timestamp_micros`, worked out from the fields) gives the instant
`parse_timestamp` gives, or its very reason, for every text: valid or not, any zone, any date."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ratecard.domain.instants import EPOCH, MICROSECOND
from ratecard.ingest.validate import parse_timestamp, timestamp_micros


def _reference(value: object) -> int | str:
    moment = parse_timestamp(value)
    return moment if isinstance(moment, str) else (moment - EPOCH) // MICROSECOND


DIGITS = st.text("0123456789", min_size=1, max_size=3)
FIELDS = st.tuples(st.integers(0, 10000), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
                   st.integers(0, 61), st.integers(0, 61), st.one_of(st.none(), st.text("0123456789", min_size=1,
                                                                                       max_size=10)),
                   st.sampled_from(["Z", "z", "", "+", "-"]), st.integers(0, 25), st.integers(0, 61),
                   st.sampled_from(["T", "t", " ", "_"]), st.sampled_from(["", " ", "\t", "\n"]))


@settings(max_examples=3000)
@given(FIELDS)
@example((2026, 2, 29, 0, 0, 0, None, "Z", 0, 0, "T", ""))  # no such day
@example((2024, 2, 29, 23, 59, 59, "9999999", "+", 23, 59, "T", " "))
@example((1, 1, 1, 0, 0, 0, None, "+", 23, 59, "T", ""))  # before the epoch, and before year 1 in UTC
@example((9999, 12, 31, 23, 59, 59, "999999", "-", 23, 59, "T", ""))
@example((2026, 10, 1, 24, 0, 0, None, "Z", 0, 0, "T", ""))
@example((2026, 10, 1, 12, 0, 60, None, "Z", 0, 0, "T", ""))
@example((2026, 10, 1, 12, 0, 0, None, "+", 24, 0, "T", ""))
def test_the_same_instant_or_reason_as_parse_timestamp(fields: tuple) -> None:
    year, month, day, hour, minute, second, fraction, zone, offset_hours, offset_minutes, separator, pad = fields
    text = f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d}"
    if fraction is not None:
        text += f".{fraction}"
    if zone in ("+", "-"):
        text += f"{zone}{offset_hours:02d}:{offset_minutes:02d}"
    else:
        text += zone
    text = pad + text + pad
    assert timestamp_micros(text) == _reference(text), text


@given(st.one_of(st.text(max_size=40), st.integers(), st.none(), st.floats(allow_nan=False)))
def test_any_other_value_is_judged_as_parse_timestamp_judges_it(value: object) -> None:
    assert timestamp_micros(value) == _reference(value)


def test_a_plain_utc_instant() -> None:
    moment = datetime(2026, 10, 1, 12, 30, 15, 250000, tzinfo=UTC)
    assert timestamp_micros("2026-10-01T12:30:15.25Z") == (moment - EPOCH) // MICROSECOND
    assert timestamp_micros("2026-10-01T14:30:15.25+02:00") == (moment - EPOCH) // MICROSECOND


@settings(max_examples=2000)
@given(st.sampled_from(["2026-10-01T12", "2026-10-01t12", "2026-10-01 12", "2024-02-29T23"]),
       st.text(":0123456789.Zz+-٣² \t", max_size=16))
def test_an_hour_read_before_then_any_tail_is_judged_as_parse_timestamp_judges_it(hour: str, tail: str) -> None:
    """Once an hour has been read, an instant starting with it is read from its tail alone: any
    tail (non-ASCII digits, a tenth digit of fraction, a minute 60, no zone) reads the same."""
    assert timestamp_micros(f"{hour}:00:00Z") == _reference(f"{hour}:00:00Z")  # the hour is read once
    text = hour + tail
    assert timestamp_micros(text) == _reference(text), text


def test_after_its_hour_was_read_an_instant_is_read_the_same() -> None:
    for text in ("2026-10-01T12:30:15Z", "2026-10-01T12:30:15.123456789Z", "2026-10-01T12:59:59.9z",
                 "2026-10-01T12:60:00Z", "2026-10-01T12:30:60Z", "2026-10-01T12:3٣:15Z", "2026-10-01T12:30:15.Z",
                 "2026-10-01T12:30:15.1234567890Z", "2026-10-01T12:30:15", "2026-10-01T12:30:15Z ",
                 "2026-10-01T12:30:15+01:00", "2026-10-01T12:30Z", "2026-10-01T12:30:1Z"):
        assert timestamp_micros("2026-10-01T12:00:00Z") == _reference("2026-10-01T12:00:00Z")
        assert timestamp_micros(text) == _reference(text), text
