"""The validator refuses an event whose timestamp falls in an archived month (`archived_period`),
bounds included as the partitions have them: [first day 00:00 UTC, first day of the next month)."""

from __future__ import annotations

from datetime import UTC, datetime

from ratecard.ingest.records import RawEvent, Rejection
from ratecard.ingest.validate import EventValidator
from ratecard.store.partitions import archived_spans

NOW = datetime(2031, 3, 10, tzinfo=UTC)


def _checked(validator: EventValidator, moment: str) -> str:
    result = validator.check(RawEvent("e-1", "acme", "tokens", moment, {}, 1))
    return result.reason if isinstance(result, Rejection) else "stored"


def test_the_archived_months_bounds_are_the_partitions():
    # '2031_01' names [2031-01-01T00:00Z, 2031-02-01T00:00Z): 1924992000 s and 1927670400 s after the epoch
    assert archived_spans("2031_01") == [(1_924_992_000_000_000, 1_927_670_400_000_000)]
    assert archived_spans("") == [] and archived_spans(None) == []  # type: ignore[arg-type]
    validator = EventValidator(None, NOW, archived=archived_spans("2030_11,2031_01"))
    assert _checked(validator, "2030-12-31T23:59:59.999999Z") == "stored"  # December is not archived
    assert _checked(validator, "2031-01-01T00:00:00Z") == "archived_period"
    assert _checked(validator, "2031-01-01T00:30:00+01:00") == "stored"  # 2030-12-31T23:30Z
    assert _checked(validator, "2031-01-31T23:59:59.999999Z") == "archived_period"
    assert _checked(validator, "2031-02-01T00:00:00Z") == "stored"
    assert _checked(validator, "2030-11-15T00:00:00Z") == "archived_period"
    refused = validator.check(RawEvent("e-2", "acme", "tokens", "2031-01-15T08:00:00Z", {}, 7))
    assert isinstance(refused, Rejection) and refused.event_id == "e-2"
    assert refused.message == ("line 7: field 'timestamp': 2031-01-15T08:00:00Z is in 2031-01, a month archived "
                               "(detached from the events): no event can be stored in it any more")
    validator.set_archived([])  # re-attached: January takes events again
    assert _checked(validator, "2031-01-15T08:00:00Z") == "stored"


def test_a_guard_name_that_is_no_month_names_no_archived_month():
    """Only ratecard's guards (events_default_archived_YYYY_MM, a real month) name archived months:
    a constraint an operator gave a look-alike name (a 13th month, a word) is left out instead of
    failing every fingerprint read."""
    assert archived_spans("2031_01,2031_13,2031_00,manual,2031_1") == [(1_924_992_000_000_000, 1_927_670_400_000_000)]
