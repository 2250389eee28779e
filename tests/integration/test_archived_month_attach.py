"""`ratecard events partitions attach YYYY-MM` re-attaches an archived month (PostgreSQL).

January 2031 billed final and detached, as in test_archived_month_refusals.py; then the attach
makes the archive January's partition again and drops its guard in one transaction: January's
event is read again, a new January event is stored (not `archived_period`), the catalog
fingerprint no longer names the month. `--dry-run` changes nothing; each refusal exits 2 with one
line and changes nothing; January events stored in the default partition before the guard
existed move into the archive first (refused when the archive holds one of their ids); a dropped
archive needs --without-archive, which drops the guard alone. SQLite has no partitions: refused."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from ratecard.store import open_store

from ..migrated import at_head
from .test_archived_month_refusals import (
    JANUARY,
    _archived,
    _cli,
    _default_rows_of_january,
    _detach_january,
    _event,
    _january_billed_final,
    _jsonl,
    _stored_ids,
    postgres_url,  # noqa: F401 - the fixture
)


def _sql(url: str, *statements: str, **params: int) -> list:
    store = open_store(url)
    found: list = []
    with store.engine.begin() as connection:
        for statement in statements:
            result = connection.execute(text(statement), params)
            found.append(result.all() if result.returns_rows else None)
    store.dispose()
    return found


def _tables(url: str) -> list:
    return _sql(url, "SELECT c.relname, EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) FROM pg_class c "
                     "WHERE c.relname IN ('events_2031_01', 'events_archive_2031_01') "
                     "AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = to_regclass('events')) "
                     "ORDER BY 1")[0]


def _listed(url: str) -> list[str]:
    code, out, err = _cli(url, "events", "list", "--limit", "0", "--json")
    assert code == 0, out + err
    return sorted(event["id"] for event in json.loads(out))


def _import_january(url: str, tmp_path: Path, event_id: str) -> dict:
    code, out, err = _cli(url, "events", "import", str(_jsonl(tmp_path / f"{event_id}.jsonl",
                                                               _event(event_id, "2031-01-20T00:00:00Z"))), "--json")
    assert code in (0, 1), out + err
    return json.loads(out)


def _guard_not_valid_with_a_stray(url: str, event_id: str) -> None:
    """A January event in the default partition, as versions before the guard stored it, and the
    guard the migration adds then (not validated)."""
    _sql(url, "ALTER TABLE events_default DROP CONSTRAINT events_default_archived_2031_01",
         "INSERT INTO events (environment, id, customer, meter, ts, properties, received_at, status, late) "
         f"VALUES ('live', '{event_id}', 'acme', 'tokens', :ts, '{{\"tokens\": 1}}', 1, 'matched', true)",
         "ALTER TABLE events_default ADD CONSTRAINT events_default_archived_2031_01 "
         f"CHECK (ts < {JANUARY[0]} OR ts >= {JANUARY[1]}) NOT VALID", ts=JANUARY[0] + 7)


def test_detach_then_attach_reads_the_month_again_and_takes_its_events(postgres_url: str,  # noqa: F811
                                                                        tmp_path: Path) -> None:
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    _detach_january(url)
    assert _listed(url) == [] and _archived(url) == "2031_01"
    assert _import_january(url, tmp_path, "jan-refused")["rejected"] == {"archived_period": 1}

    code, out, err = _cli(url, "events", "partitions", "attach", "2031-01")
    assert code == 0, out + err
    assert "attached" in out and "events_archive_2031_01 as the partition events_2031_01 (1 event(s))" in out
    assert "guard dropped" in out and "events_default_archived_2031_01" in out
    assert _tables(url) == [("events_2031_01", True)]
    assert _archived(url) == ""  # what every server's next fingerprint read tells it
    assert _listed(url) == ["jan-billed"]
    code, out, err = _cli(url, "events", "partitions", "list", "--json")
    assert code == 0 and ("events_2031_01", "month") in {(p["name"], p["kind"]) for p in json.loads(out)}, out + err
    # a January event is stored again, in January's partition
    report = _import_january(url, tmp_path, "jan-again")
    assert report["rejected"] == {} and report["stored"] == 1, report
    assert _listed(url) == ["jan-again", "jan-billed"] and _default_rows_of_january(url) == 0
    # the month can be archived again (the late event billed first: it is not settled)
    code, out, err = _cli(url, "events", "partitions", "attach", "2031-01")
    assert code == 2 and "2031-01 is not archived" in out + err


def test_attach_json_document(postgres_url: str, tmp_path: Path) -> None:  # noqa: F811
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    _detach_january(url)
    code, out, err = _cli(url, "events", "partitions", "attach", "2031-01", "--json")
    assert code == 0, out + err
    assert json.loads(out) == {
        "month": "2031-01", "archive": "events_archive_2031_01", "partition": "events_2031_01", "rows": 1,
        "moved": 0, "to_move": 0, "guard": "events_default_archived_2031_01", "guard_dropped": True,
        "attached": True, "without_archive": False, "rollups_refreshed": [], "dry_run": False}


def test_dry_run_says_what_it_would_do_and_changes_nothing(postgres_url: str, tmp_path: Path) -> None:  # noqa: F811
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    _detach_january(url)
    _guard_not_valid_with_a_stray(url, "jan-stray")
    code, out, err = _cli(url, "events", "partitions", "attach", "2031-01", "--dry-run")
    assert code == 0, out + err
    assert "dry run: nothing changed" in out and "would move" in out and "1 event(s) of the month" in out
    assert "would attach" in out and "would drop guard" in out
    code, out, err = _cli(url, "events", "partitions", "attach", "2031-01", "--dry-run", "--json")
    document = json.loads(out)
    assert (document["dry_run"], document["to_move"], document["moved"], document["attached"],
            document["guard_dropped"]) == (True, 1, 0, False, False)
    assert _tables(url) == [("events_archive_2031_01", False)]
    assert _archived(url) == "2031_01" and _default_rows_of_january(url) == 1
    assert _import_january(url, tmp_path, "jan-refused")["rejected"] == {"archived_period": 1}


def test_stray_default_rows_of_the_month_move_into_the_archive(postgres_url: str, tmp_path: Path) -> None:  # noqa: F811
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    _detach_january(url)
    _guard_not_valid_with_a_stray(url, "jan-stray")
    code, out, err = _cli(url, "events", "partitions", "attach", "2031-01", "--json")
    assert code == 0, out + err
    document = json.loads(out)
    assert (document["moved"], document["attached"], document["guard_dropped"]) == (1, True, True)
    assert _default_rows_of_january(url) == 0
    assert _sql(url, "SELECT id FROM events_2031_01 ORDER BY id")[0] == [("jan-billed",), ("jan-stray",)]
    assert _listed(url) == ["jan-billed", "jan-stray"]
    # its id is still claimed: sent again, a duplicate, not stored twice
    assert _sql(url, "SELECT count(*) FROM event_ids WHERE id = 'jan-stray'")[0] == [(1,)]
    code, out, err = _cli(url, "events", "import", str(_jsonl(tmp_path / "again.jsonl",
                                                               _event("jan-stray", "2031-01-20T00:00:00Z"))), "--json")
    assert json.loads(out)["stored"] == 0, out + err


def test_refusals_exit_2_and_change_nothing(postgres_url: str, tmp_path: Path) -> None:  # noqa: F811
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)

    def refused(*args: str) -> str:
        code, out, err = _cli(url, "events", "partitions", "attach", *args)
        assert code == 2 and out == "", out + err
        assert len(err.strip().splitlines()) == 1, err
        return err

    assert "expected a month as YYYY-MM, got '2031-13'" in refused("2031-13")
    # not archived: a month with its partition, a month never made
    assert "2031-01 is not archived" in refused("2031-01")
    assert "2031-07 is not archived" in refused("2031-07")
    _detach_january(url)
    # a stray whose id the archive holds too (two versions of one event, stored before event_ids
    # claimed each id once: its claim trigger is bypassed here to stand for that): refused, by count
    _sql(url, "ALTER TABLE events_default DROP CONSTRAINT events_default_archived_2031_01",
         "SET LOCAL session_replication_role = replica",
         "INSERT INTO events_default (environment, id, customer, meter, ts, properties, received_at, status, late) "
         "VALUES ('live', 'jan-billed', 'acme', 'tokens', :ts, '{\"tokens\": 1}', 1, 'matched', true)",
         "ALTER TABLE events_default ADD CONSTRAINT events_default_archived_2031_01 "
         f"CHECK (ts < {JANUARY[0]} OR ts >= {JANUARY[1]}) NOT VALID", ts=JANUARY[0] + 9)
    assert "1 event(s) of 2031-01 in the default partition have ids the archive" in refused("2031-01")
    assert "1 event(s) of 2031-01" in refused("2031-01", "--dry-run")
    _sql(url, "SET LOCAL session_replication_role = replica",  # its id stays claimed: the archive's
         "DELETE FROM events_default WHERE id = 'jan-billed'")
    # a partition (here a table of its name) exists already
    _sql(url, "CREATE TABLE events_2031_01 (LIKE events)")
    assert "a table events_2031_01 exists already" in refused("2031-01")
    _sql(url, "DROP TABLE events_2031_01")
    # the archive holds a row outside January (an operator's edit): ATTACH would fail, refused
    _sql(url, "INSERT INTO events_archive_2031_01 (environment, id, customer, meter, ts, properties, received_at, "
              "status, late) VALUES ('live', 'feb-stray', 'acme', 'tokens', :ts, '{}', 1, 'matched', false)",
         ts=JANUARY[1])
    assert "events_archive_2031_01 holds rows outside 2031-01; nothing was attached" in refused("2031-01")
    _sql(url, "DELETE FROM events_archive_2031_01 WHERE id = 'feb-stray'")
    assert _tables(url) == [("events_archive_2031_01", False)] and _archived(url) == "2031_01"
    # the archive dropped by the operator: only --without-archive drops the guard alone
    _sql(url, "DROP TABLE events_archive_2031_01")
    assert "--without-archive" in refused("2031-01")
    assert _archived(url) == "2031_01"
    code, out, err = _cli(url, "events", "partitions", "attach", "2031-01", "--without-archive", "--dry-run")
    assert code == 0 and "would drop guard" in out and _archived(url) == "2031_01", out + err
    code, out, err = _cli(url, "events", "partitions", "attach", "2031-01", "--without-archive", "--json")
    assert code == 0, out + err
    document = json.loads(out)
    assert (document["attached"], document["guard_dropped"], document["without_archive"]) == (False, True, True)
    assert _archived(url) == ""
    assert _import_january(url, tmp_path, "jan-after")["stored"] == 1
    assert "jan-after" in _stored_ids(url)


def test_sqlite_has_no_partitions_to_attach(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    code, out, err = _cli(url, "events", "partitions", "attach", "2031-01")
    assert code == 2 and "partitioned by month on PostgreSQL only" in err and "attach" in err, out + err


def test_roll_ups_are_kept_by_an_attach_and_recomputed_without_the_archive(postgres_url: str,  # noqa: F811
                                                                          tmp_path: Path) -> None:
    """The detach leaves January's roll-up rows, the attach too (the same events come back);
    without the archive, the rows of its gone events are recomputed from the events left (none)."""
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    code, out, err = _cli(url, "rollups", "rebuild")
    assert code == 0, out + err
    january = "SELECT count(*) FROM usage_rollups WHERE hour >= :start AND hour < :end"
    assert _sql(url, january, start=JANUARY[0], end=JANUARY[1])[0] == [(1,)]
    _detach_january(url)
    code, out, err = _cli(url, "events", "partitions", "attach", "2031-01", "--json")
    assert code == 0 and json.loads(out)["rollups_refreshed"] == [], out + err
    assert _sql(url, january, start=JANUARY[0], end=JANUARY[1])[0] == [(1,)]
    _detach_january(url)
    _sql(url, "DROP TABLE events_archive_2031_01")
    code, out, err = _cli(url, "events", "partitions", "attach", "2031-01", "--without-archive")
    assert code == 0 and "recompute" not in out and "roll-ups" in out, out + err
    assert _sql(url, january, start=JANUARY[0], end=JANUARY[1])[0] == [(0,)]
