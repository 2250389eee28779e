"""The event log's message ids: JetStream's deduplication key for an event, safe in a NATS header."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratecard.ingest.log import LogError, LogSettings, message_id


def test_a_plain_id_is_kept_readable_and_scoped_by_environment() -> None:
    assert message_id("live", "evt-0001") == "live:evt-0001"
    assert message_id("sandbox", "evt-0001") == "sandbox:evt-0001"


def test_an_id_a_header_cannot_carry_is_hashed() -> None:
    spaced = message_id("live", "order 42")
    assert spaced.startswith("live:sha256:") and len(spaced) == len("live:sha256:") + 64
    assert message_id("live", "order 42") == spaced  # the same id, the same key: resends are dropped
    assert message_id("live", "x" * 201).startswith("live:sha256:")
    assert message_id("live", "x" * 200) == "live:" + "x" * 200
    # an id shaped like a hash is hashed too: it can never take another id's key
    assert message_id("live", spaced.removeprefix("live:")) != spaced


@given(st.text(min_size=1, max_size=300), st.text(min_size=1, max_size=300))
def test_keys_are_header_safe_and_distinct_for_distinct_ids(first: str, second: str) -> None:
    for event_id in (first, second):
        key = message_id("live", event_id)
        assert key.isascii() and key.isprintable() and " " not in key and len(key) <= 205
    if first != second:
        assert message_id("live", first) != message_id("live", second)
    assert message_id("live", first) != message_id("sandbox", first)


@pytest.mark.parametrize(("settings", "message"), [
    ({"url": "http://127.0.0.1:4222"}, "--log http://127.0.0.1:4222: give a NATS URL, nats://host:4222"),
    ({"url": "nats://127.0.0.1:4222", "stream": "events.live"},
     "--log-stream 'events.live': letters, digits, '-' and '_' only, at most 64"),
    ({"url": "nats://127.0.0.1:4222", "dedup_window": 0.5}, "--log-dedup-window: between 1 second and 7 days"),
])
def test_settings_are_checked_with_a_sentence(settings: dict, message: str) -> None:
    with pytest.raises(LogError) as refused:
        LogSettings(**settings)
    assert str(refused.value) == message


def test_subjects_are_per_environment_under_the_stream() -> None:
    settings = LogSettings("nats://127.0.0.1:4222", stream="RATECARD_EVENTS")
    assert settings.subjects == ["RATECARD_EVENTS.>"]
    assert settings.subject("live") == "RATECARD_EVENTS.live"
