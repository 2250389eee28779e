"""EventValidator.add_finalized: windows added in any number of steps give what one
set_finalized of them all gives, and an instant is late exactly when a window holds it."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from ratecard.ingest.validate import EventValidator

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SPANS = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 12)).map(lambda s: (s[0], s[0] + s[1])), max_size=8)
WINDOWS = st.dictionaries(st.sampled_from(["acme", "nyc", "zed"]), SPANS, max_size=3)


def test_an_added_window_joins_the_ones_it_touches() -> None:
    validator = EventValidator(None, NOW, {"acme": [(0, 10), (20, 30)]})
    validator.add_finalized({"acme": [(10, 20)], "nyc": [(5, 6)]})
    assert validator.finalized == {"acme": ([0], [30]), "nyc": ([5], [6])}
    assert validator.is_late("acme", 19) and not validator.is_late("acme", 30) and not validator.is_late("nyc", 6)


@given(first=WINDOWS, steps=st.lists(WINDOWS, max_size=4))
def test_windows_added_step_by_step_equal_all_of_them_set_at_once(first, steps) -> None:
    validator = EventValidator(None, NOW, first)
    everything: dict[str, list[tuple[int, int]]] = {customer: list(spans) for customer, spans in first.items()}
    for step in steps:
        validator.add_finalized(step)
        for customer, spans in step.items():
            everything.setdefault(customer, []).extend(spans)
    assert validator.finalized == EventValidator(None, NOW, everything).finalized
    for customer in ("acme", "nyc", "zed"):
        for instant in range(-1, 54):
            held = any(start <= instant < end for start, end in everything.get(customer, []))
            assert validator.is_late(customer, instant) == held
