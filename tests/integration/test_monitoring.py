"""Ingestion figures per minute and missing-event alerts, on SQLite and PostgreSQL.

"Now" is passed in everywhere, so the tests move the clock instead of waiting."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from ratecard.billing.run import generate_invoices
from ratecard.golive.alerts import RuleError, create_rule, evaluate, remove_rule
from ratecard.golive.monitor import ingestion_minutes
from ratecard.golive.webhooks import create_endpoint
from ratecard.ingest.figures import flush
from ratecard.ingest.importer import import_file
from ratecard.store.invoices import change_status, list_invoices
from ratecard.store.monitoring import insert_open_alert, list_alerts, list_deliveries, resolve_alert

from .scenario import EVENTS, NOW, current, workspace, write_jsonl

T0 = datetime.fromisoformat("2026-11-20T12:00:00+00:00")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _calls(prefix: str, start: datetime, end: datetime, step: timedelta, customer: str = "acme") -> list[dict]:
    """One api_calls event every `step` in [start, end)."""
    out = []
    moment = start
    while moment < end:
        out.append({"id": f"{prefix}-{_iso(moment)}", "customer": customer, "meter": "api_calls",
                    "timestamp": _iso(moment)})
        moment += step
    return out


def test_per_minute_figures_after_imports_with_rejects_duplicates_unmatched_and_late(
        db_url: str, tmp_path: Path) -> None:
    store, version = workspace(db_url)
    _, catalog = current(store)
    first_minute = datetime.fromisoformat("2026-11-25T10:00:30+00:00")
    import_file(store, catalog, write_jsonl(tmp_path / "history.jsonl", EVENTS), first_minute)
    # January's invoice (cut at Feb 1) is final: January events imported later are late
    generate_invoices(store, catalog, version, date(2026, 3, 1), NOW)
    january = list_invoices(store)[1]
    change_status(store, january.id, "final", 1, "RC")

    second_minute = datetime.fromisoformat("2026-11-25T10:07:10+00:00")
    lines = [
        {"id": "new-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-02-10T12:00:00Z"},
        {"id": "new-2", "customer": "acme", "meter": "api_calls", "timestamp": "2026-02-11T12:00:00Z"},
        {"id": "e3", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-21T10:00:00Z"},  # stored before
        {"id": "new-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-02-10T12:00:00Z"},  # in file
        {"id": "who-1", "customer": "nobody", "meter": "api_calls", "timestamp": "2026-02-10T12:00:00Z"},
        {"id": "what-1", "customer": "acme", "meter": "nothing", "timestamp": "2026-02-10T12:00:00Z"},
        {"id": "late-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-25T12:00:00Z"},
        {"id": "no-ts", "customer": "acme", "meter": "api_calls"},
        {"id": "soon", "customer": "acme", "meter": "api_calls", "timestamp": "2026-12-25T12:00:00Z"},
    ]
    path = write_jsonl(tmp_path / "mixed.jsonl", lines)
    with path.open("ab") as handle:
        handle.write(b"{not json\n")
    report = import_file(store, catalog, path, second_minute)
    assert report.stored == 5 and report.duplicates == 2
    # as in the import report, flags count every event so flagged, a resent one included:
    # e3 was stored (late) before and is late again in this file
    assert report.flags["late"] == 2

    # a dry run counts nothing
    import_file(store, catalog, path, second_minute, dry_run=True)

    figures = ingestion_minutes(store, "live", second_minute, 60)
    assert [row["minute"] for row in figures["minutes"]] == ["2026-11-25T10:00:00Z", "2026-11-25T10:07:00Z"]
    first, second = figures["minutes"]
    assert first["accepted"] == len(EVENTS) and first["rejected"] == 0 and first["duplicates"] == 0
    assert second == {
        "minute": "2026-11-25T10:07:00Z",
        "accepted": 5,  # new-1, new-2, who-1, what-1, late-1
        "rejected": 3,
        "rejected_by_reason": {"missing_field": 1, "future_timestamp": 1, "invalid_json": 1},
        "duplicates": 2,  # e3 (already stored), new-1 (twice in the file)
        "unmatched": 2,
        "unmatched_by_reason": {"unknown_customer": 1, "unknown_meter": 1},
        "late": 2,  # late-1, and the resent e3 (the figures agree with the import report)
    }
    assert figures["totals"]["accepted"] == len(EVENTS) + 5
    assert figures["totals"]["rejected_by_reason"]["invalid_json"] == 1

    # the window ends with the current minute: ten minutes later the first minute is out of a 5-minute view
    later = ingestion_minutes(store, "live", second_minute + timedelta(minutes=2), 5)
    assert [row["minute"] for row in later["minutes"]] == ["2026-11-25T10:07:00Z"]
    # another environment sees nothing
    assert ingestion_minutes(store, "sandbox", second_minute, 60)["minutes"] == []
    # a re-import in the same minute adds up
    import_file(store, catalog, path, second_minute + timedelta(seconds=20))
    again = ingestion_minutes(store, "live", second_minute, 1)["minutes"][0]
    assert again["accepted"] == 5 and again["duplicates"] == 2 + 7 and again["rejected"] == 6
    store.dispose()


def test_silence_and_drop_alerts_open_once_and_resolve_when_events_come_back(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    # eight days of api_calls, one every ten minutes (6 an hour), up to T0
    history = _calls("h", T0 - timedelta(days=8), T0, timedelta(minutes=10))
    import_file(store, catalog, write_jsonl(tmp_path / "h.jsonl", history), T0)
    silence = create_rule(store, "live", T0, kind="silence", hours="6")
    drop = create_rule(store, "live", T0, kind="drop", fraction="0.5", window="1h", baseline="7d")
    create_endpoint(store, "live", "http://127.0.0.1:9/hook", None, T0, allow_private=True)

    # the rate holds: nothing to say
    quiet = evaluate(store, "live", T0)
    assert quiet.opened == [] and quiet.open == 0

    # an hour without events: 0 observed against 6 expected -> drop alert; 1 h is no 6 h silence
    first = evaluate(store, "live", T0 + timedelta(minutes=61))
    assert [(a["kind"], a["customer"], a["meter"]) for a in first.opened] == [("drop", "acme", "api_calls")]
    assert first.opened[0]["details"]["observed"] == 0
    assert first.opened[0]["details"]["expected"] == "6.0"
    assert "expected 6.0" in first.opened[0]["message"]

    # still dropping a few minutes later: the open alert is not raised again
    again = evaluate(store, "live", T0 + timedelta(minutes=70))
    assert again.opened == [] and again.resolved == [] and again.open == 1

    # six hours of silence: the silence rule fires once too
    silent = evaluate(store, "live", T0 + timedelta(hours=6, minutes=5))
    assert [(a["kind"], a["details"]["last_event_at"]) for a in silent.opened] == [("silence", "2026-11-20T11:50:00Z")]
    assert evaluate(store, "live", T0 + timedelta(hours=7)).opened == []
    rows, total = list_alerts(store, "live", "open")
    assert total == 2 and {r.kind for r in rows} == {"silence", "drop"}

    # events come back: both alerts resolve on the next run
    back = T0 + timedelta(hours=8)
    resumed = _calls("r", back - timedelta(hours=1), back, timedelta(minutes=10))
    import_file(store, catalog, write_jsonl(tmp_path / "r.jsonl", resumed), back)
    cleared = evaluate(store, "live", back)
    assert {a["kind"] for a in cleared.resolved} == {"silence", "drop"} and cleared.opened == []
    assert cleared.open == 0
    assert list_alerts(store, "live", "open") == ([], 0)
    assert list_alerts(store, "live", "resolved")[1] == 2

    # and silence again later opens a new alert (resolved ones stay in the history)
    reopened = evaluate(store, "live", back + timedelta(hours=6, minutes=1))
    assert {a["kind"] for a in reopened.opened} == {"silence", "drop"}
    assert list_alerts(store, "live")[1] == 4

    # every opening and resolution was queued for the endpoint, in order
    log = list(reversed(list_deliveries(store, "live", limit=None)))
    assert [d.event_type for d in log] == ["alert.opened", "alert.opened", "alert.resolved", "alert.resolved",
                                           "alert.opened", "alert.opened"]
    body = orjson.loads(log[0].body)
    assert body["type"] == "alert.opened" and body["data"]["kind"] == "drop" and body["data"]["rule"] == drop

    # removing a rule resolves its open alert
    resolved = remove_rule(store, "live", silence, back + timedelta(hours=7))
    assert resolved is not None and [a.kind for a in resolved] == ["silence"]
    assert remove_rule(store, "live", silence, back + timedelta(hours=7)) is None
    assert [r.kind for r in list_alerts(store, "live", "open")[0]] == ["drop"]
    store.dispose()


def test_rules_are_scoped_and_judged_only_with_enough_baseline(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    busy = _calls("busy", T0 - timedelta(days=8), T0, timedelta(minutes=10))  # 6 an hour
    sparse = [{**e, "meter": "tokens", "properties": {"tokens": 1}}  # 2 a day
              for e in _calls("sparse", T0 - timedelta(days=8), T0, timedelta(hours=12))]
    stranger = _calls("who", T0 - timedelta(days=8), T0, timedelta(minutes=10), customer="nobody")  # unmatched
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", busy + sparse + stranger), T0)
    create_rule(store, "live", T0, kind="silence", hours="1", customer="acme", meter="api_calls")
    create_rule(store, "live", T0, kind="silence", hours="1", customer="someone-else")
    # tokens' baseline predicts 1/12 of an event an hour: below --min-expected (default 5), not judged;
    # the unmatched customer's events are never judged
    create_rule(store, "live", T0, kind="drop", fraction="0.5", window="1h", baseline="7d")
    result = evaluate(store, "live", T0 + timedelta(hours=2))
    assert sorted((a["kind"], a["customer"], a["meter"]) for a in result.opened) == [
        ("drop", "acme", "api_calls"), ("silence", "acme", "api_calls")]

    with pytest.raises(RuleError, match="--hours is required"):
        create_rule(store, "live", T0, kind="silence")
    with pytest.raises(RuleError, match="--fraction"):
        create_rule(store, "live", T0, kind="drop", fraction="1.5")
    with pytest.raises(RuleError, match="--baseline 30m must be at least as long as --window 1h"):
        create_rule(store, "live", T0, kind="drop", fraction="0.5", window="1h", baseline="30m")
    with pytest.raises(RuleError, match="not a duration"):
        create_rule(store, "live", T0, kind="drop", fraction="0.5", window="an hour")
    with pytest.raises(RuleError, match="silence or drop"):
        create_rule(store, "live", T0, kind="spike")
    store.dispose()


def test_the_database_keeps_one_open_alert_per_rule_and_pair(db_url: str) -> None:
    """Two overlapping cron runs cannot open the same alert twice: the second insert is refused
    by the unique open_key, and a resolved alert frees the key."""
    store, _ = workspace(db_url)
    now_us = 1_000
    with store.engine.begin() as connection:
        first = insert_open_alert(connection, "live", 1, "silence", "acme", "api_calls", "m", "{}", now_us)
        assert first is not None
        assert insert_open_alert(connection, "live", 1, "silence", "acme", "api_calls", "m", "{}", now_us) is None
        # another rule, pair or environment is another alert
        assert insert_open_alert(connection, "live", 2, "silence", "acme", "api_calls", "m", "{}", now_us)
        assert insert_open_alert(connection, "sandbox", 1, "silence", "acme", "api_calls", "m", "{}", now_us)
        assert resolve_alert(connection, first, now_us + 1)
        assert not resolve_alert(connection, first, now_us + 2)  # already resolved
        assert insert_open_alert(connection, "live", 1, "silence", "acme", "api_calls", "m", "{}", now_us + 3)
    assert list_alerts(store, "live")[1] == 3
    store.dispose()


def test_counting_never_fails_an_import(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE ingestion_counters"))
    report = import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", EVENTS), NOW)
    flush()  # the figures cannot be written: a logged warning, no exception
    assert report.stored == len(EVENTS)
    store.dispose()


def test_a_reader_sees_the_counts_the_flush_timer_is_still_writing(db_url: str, monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    """The timer took this process's counts and is writing them (slowly, the machine is busy) when a
    reader asks for the figures: the reader's own flush waits for that write, so the figures it
    reads hold every event counted before it asked."""
    import threading
    import time
    from collections import Counter

    from ratecard.ingest import figures

    store, _ = workspace(db_url)
    try:
        slow, writing = figures.add_counters, threading.Event()

        def slow_add(*args, **kwargs):
            writing.set()
            time.sleep(0.5)
            return slow(*args, **kwargs)

        monkeypatch.setattr(figures, "add_counters", slow_add)
        figures.record(store, "live", NOW, Counter({("accepted", ""): 7}))
        timer = threading.Thread(target=figures.flush)  # what the timer runs once a second
        timer.start()
        assert writing.wait(10)
        read = ingestion_minutes(store, "live", NOW, 5)
        timer.join()
        assert read["totals"]["accepted"] == 7
    finally:
        store.dispose()



def test_a_drop_rule_with_a_long_fraction_or_min_expected_is_refused_naming_the_option(db_url: str) -> None:
    """The rule's fraction and min-expected are stored as written in 32-character columns: a number
    of more digits was an internal error on PostgreSQL (value too long) and was stored on SQLite.
    It is refused naming the option, exit 2, nothing stored; 20 digits are kept as written."""
    import os

    from ..e2e.harness import run_in_process

    store, _ = workspace(db_url)
    store.dispose()
    env = {**{k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"},
           "RATECARD_NOW": "2026-11-26T00:00:00Z", "NO_COLOR": "1"}

    def cli(*args: str) -> tuple[int, str, str]:
        return run_in_process([*args, "--db", db_url], env, Path.cwd())

    too_long = [("--fraction", "0.12345678901234567890123456789012345"),
                ("--fraction", "1.00000000000000000000000000000000000"),
                ("--min-expected", "1234567890123456789012345678901234567890")]
    for option, value in too_long:
        options = {"--fraction": "0.5", option: value}
        code, _, err = cli("alerts", "rules", "add", "--kind", "drop", *(part for pair in options.items() for part in pair))
        assert code == 2, err
        assert f"{option}: " in err and "(at most 20 digits)" in err and "Traceback" not in err, err
    code, out, _ = cli("alerts", "rules", "list", "--json")
    assert (code, orjson.loads(out)) == (0, [])
    code, out, err = cli("alerts", "rules", "add", "--kind", "drop", "--fraction", "0.12345678901234567890",
                         "--min-expected", "12345678901234567890", "--json")
    assert code == 0, err
    rule = orjson.loads(out)
    assert (rule["fraction"], rule["min_expected"]) == ("0.12345678901234567890", "12345678901234567890")
