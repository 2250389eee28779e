"""Monthly partitions of the events table on PostgreSQL: the migration that converts a table
holding events, partitions made ahead and split out of the default partition, archiving a
settled month (and refusing an unsettled one), and usage queries that read only their months.
SQLite keeps one table: the commands say so."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from ratecard.domain.instants import to_micros
from ratecard.services.backfills import open_backfill
from ratecard.services.errors import Conflict, InvalidInput, NotFound, Refused
from ratecard.services.partitions import create_partitions, detach_partition, partition_report
from ratecard.store import open_store
from ratecard.store.db import MIGRATIONS
from ratecard.store.meter_data import NewEvent, insert_meter_data

from ..conftest import _postgres_schema, _require_postgres
from ..e2e.harness import run_in_process
from ..migrated import at_head

PARTITIONS_REVISION = "0026"


def _us(moment: str | int) -> int:
    if isinstance(moment, int):
        return moment
    return to_micros(datetime.fromisoformat(moment.replace("Z", "+00:00")))


@pytest.fixture
def postgres_url(postgres_reason: str | None) -> Iterator[str]:
    """A fresh, empty PostgreSQL schema (these tests are about PostgreSQL's partitions)."""
    _require_postgres(postgres_reason)
    with _postgres_schema() as url:
        yield url


def _config(connection) -> Config:  # noqa: ANN001
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


# events held before the migration: (environment, id, timestamp, the partition it must land in)
HELD = [
    ("live", "far-past", "1999-03-10T08:00:00Z", "events_1999_03"),
    ("live", "jan-1", "2026-01-20T10:00:00Z", "events_2026_01"),
    ("live", "jan-last", "2026-01-31T23:59:59.999999Z", "events_2026_01"),
    ("live", "feb-first", "2026-02-01T00:00:00Z", "events_2026_02"),
    ("sandbox", "jan-1", "2026-02-03T00:00:00Z", "events_2026_02"),  # same id, other environment
    ("live", "mar-1", "2026-03-14T12:00:00Z", "events_2026_03"),
    ("live", "next-month", "2026-04-02T00:00:00Z", "events_2026_04"),  # future, inside the ahead months
    ("live", "far-future", "2099-07-01T00:00:00Z", "events_default"),  # future, past them
    ("live", "absurd", 9_000_000_000_000_000_000, "events_default"),  # past what a timestamp can hold
    ("live", "pre-epoch", -86_400_000_000, "events_default"),
]


def test_the_migration_moves_every_held_event_into_its_month(postgres_url: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATECARD_NOW", "2026-03-15T12:00:00Z")
    store = open_store(postgres_url, migrate=False)
    before = ScriptDirectory.from_config(_config(None)).get_revision(PARTITIONS_REVISION).down_revision
    with store.engine.begin() as connection:
        command.upgrade(_config(connection), before)
        for environment, event_id, moment, _ in HELD:
            connection.execute(text(
                "INSERT INTO events (environment, id, customer, meter, ts, properties, received_at, status, late) "
                "VALUES (:env, :id, 'acme', 'api_calls', :ts, CAST(:props AS JSONB), 1, 'matched', false)"),
                {"env": environment, "id": event_id, "ts": _us(moment), "props": f'{{"n": "{event_id}"}}'})
    with store.engine.begin() as connection:
        command.upgrade(_config(connection), "head")
    with store.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT tableoid::regclass::text, environment, id, ts, properties ->> 'n' FROM events")).all()
        ids_held = connection.execute(text("SELECT count(*) FROM event_ids")).scalar_one()
    assert sorted((partition, env, event_id, ts) for partition, env, event_id, ts, _ in rows) == sorted(
        (partition, env, event_id, _us(moment)) for env, event_id, moment, partition in HELD)
    assert all(event_id == kept for _, _, event_id, _, kept in rows)  # properties kept with their row
    assert ids_held == len(HELD)
    months = [p["month"] for p in partition_report(store) if p["kind"] == "month"]
    # every month holding events up to three months ahead, and the current one and three after it
    assert months == ["1999-03", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]

    # an id held in one month, sent again with a timestamp in another: kept as a duplicate only
    again = NewEvent("jan-1", "acme", "api_calls", _us("2026-03-01T00:00:00Z"), "{}", "matched", False)
    assert insert_meter_data(store, "live", [again], 2) == [1]
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM events WHERE id = 'jan-1'")).scalar_one() == 2  # live+sandbox

    # and back: one plain table again, every row kept
    with store.engine.begin() as connection:
        command.downgrade(_config(connection), before)
    with store.engine.connect() as connection:
        kind = connection.execute(text("SELECT relkind FROM pg_class WHERE oid = to_regclass('events')")).scalar_one()
        assert kind == "r"
        assert connection.execute(text("SELECT count(*) FROM events")).scalar_one() == len(HELD)
        assert connection.execute(text("SELECT to_regclass('event_ids')")).scalar_one() is None
    store.dispose()


def test_create_ahead_is_idempotent_and_splits_waiting_events_out_of_the_default(postgres_url: str) -> None:
    store = open_store(at_head(postgres_url))
    # an event of a month that has no partition yet waits in the default partition
    waiting = NewEvent("waiting", "acme", "api_calls", _us("2030-05-06T00:00:00Z"), "{}", "matched", False)
    assert insert_meter_data(store, "live", [waiting], 1) == [None]
    first = create_partitions(store, datetime(2030, 4, 20, tzinfo=UTC), 2)
    assert [made["month"] for made in first["created"]] == ["2030-04", "2030-05", "2030-06"]
    assert [made["moved"] for made in first["created"]] == [0, 1, 0]
    again = create_partitions(store, datetime(2030, 4, 20, tzinfo=UTC), 2)
    assert again["created"] == [] and again["existing"] == ["2030-04", "2030-05", "2030-06"]
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT tableoid::regclass::text FROM events WHERE id = 'waiting'")
                                  ).scalar_one() == "events_2030_05"
    # the id is still held after its move: sent again in another month, it is a duplicate
    moved = NewEvent("waiting", "acme", "api_calls", _us("2030-06-06T00:00:00Z"), "{}", "matched", False)
    assert insert_meter_data(store, "live", [moved], 2) == [1]
    listed = {p["name"]: p for p in partition_report(store, exact=True)}
    assert listed["events_2030_05"]["rows"] == 1 and listed["events_2030_05"]["start"] == "2030-05-01T00:00:00Z"
    assert listed["events_2030_05"]["end"] == "2030-06-01T00:00:00Z"
    assert listed["events_default"]["rows"] == 0
    with pytest.raises(InvalidInput):
        create_partitions(store, datetime(2030, 4, 20, tzinfo=UTC), 37)
    store.dispose()


CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: pro
    currency: EUR
    interval: month
    charges:
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.10"}
customers:
  - {reference: acme, name: Acme Inc, country: NL, currency: EUR, tax_rate: "0", timezone: UTC}
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2031-01-01, billing_anchor: 1}
"""


def _cli(url: str, *args: str, now: str = "2031-03-10T00:00:00Z") -> tuple[int, str, str]:
    """`ratecard ARGS --db URL` in process: (exit code, stdout, stderr)."""
    env = {**{k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"}, "RATECARD_NOW": now}
    return run_in_process([*args, "--db", url], env, Path.cwd())


def test_a_month_is_archived_only_once_settled(postgres_url: str, tmp_path: Path) -> None:
    url = at_head(postgres_url)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "a1", "customer": "acme", "meter": "api_calls", "timestamp": "2031-01-05T00:00:00Z"}\n'
        '{"id": "a2", "customer": "acme", "meter": "api_calls", "timestamp": "2031-01-25T00:00:00Z"}\n'
        '{"id": "u1", "customer": "nobody", "meter": "api_calls", "timestamp": "2031-01-26T00:00:00Z"}\n'
        '{"id": "b1", "customer": "acme", "meter": "api_calls", "timestamp": "2031-02-05T00:00:00Z"}\n',
        encoding="utf-8")
    assert _cli(url, "catalog", "apply", str(catalog))[0] == 0
    code, out, _ = _cli(url, "events", "partitions", "create", "--ahead", "1", now="2031-01-01T00:00:00Z")
    assert code == 0, out
    assert _cli(url, "events", "import", str(events))[0] == 0

    # January: a1, a2 matched, u1 unmatched, nothing invoiced yet -> refused, nothing changes
    code, out, err = _cli(url, "events", "partitions", "detach", "2031-01")
    assert code == 1
    assert "1 event(s) are unmatched" in err and "2 matched event(s)" in err
    code, out, _ = _cli(url, "events", "partitions", "detach", "2031-01", "--dry-run", "--json")
    assert code == 1
    assert '"unmatched": 1' in out and '"unfinalized": 2' in out

    # January finalized, u1 deleted: settled; a dry run says so and changes nothing
    assert _cli(url, "invoices", "generate", "--until", "2031-02-01")[0] == 0
    store = open_store(url)
    with store.engine.connect() as connection:
        drafts = connection.execute(text("SELECT draft_number FROM invoices WHERE status = 'draft'")).scalars().all()
    store.dispose()
    assert drafts
    for number in drafts:
        code, out, err = _cli(url, "invoices", "finalize", f"DRAFT-{number}")
        assert code == 0, out + err
    code, out, err = _cli(url, "events", "partitions", "detach", "2031-01")
    assert code == 1 and "1 event(s) are unmatched" in err and "matched event(s)" not in err
    store = open_store(url)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE events SET status = 'deleted', deleted_at = 1 WHERE id = 'u1'"))
    store.dispose()
    code, out, _ = _cli(url, "events", "partitions", "detach", "2031-01", "--dry-run")
    assert code == 0 and "settled" in out
    # February: b1 billed by no final invoice yet; March has not ended
    assert _cli(url, "events", "partitions", "detach", "2031-02")[0] == 1
    assert _cli(url, "events", "partitions", "detach", "2031-03")[0] == 1

    # a pending backfill over January would bill it at close: refused until it is closed or reverted
    store = open_store(url)
    pending = open_backfill(store, datetime(2031, 1, 20, tzinfo=UTC), datetime(2031, 2, 10, tzinfo=UTC),
                            datetime(2031, 3, 10, tzinfo=UTC))
    store.dispose()
    code, out, err = _cli(url, "events", "partitions", "detach", "2031-01")
    assert code == 1 and "1 pending backfill(s) start before it ends" in err
    assert _cli(url, "backfill", "revert", pending["id"])[0] == 0

    code, out, _ = _cli(url, "events", "partitions", "detach", "2031-01")
    assert code == 0 and "events_archive_2031_01" in out
    code, out, _ = _cli(url, "events", "partitions", "list", "--json", "--exact")
    assert code == 0
    listed = {row["name"]: row for row in json.loads(out)}
    assert listed["events_archive_2031_01"]["kind"] == "archived" and listed["events_archive_2031_01"]["rows"] == 3
    assert "events_2031_01" not in listed
    store = open_store(url)
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM events WHERE id IN ('a1', 'a2')")).scalar_one() == 0
    # an archived event's id is still held: sent again (any month), it is not stored again
    again = NewEvent("a1", "acme", "api_calls", _us("2031-02-07T00:00:00Z"), "{}", "matched", False)
    assert insert_meter_data(store, "live", [again], 2) == [1]
    # a backfill over an archived month would recompute its final invoices without the archived events
    with pytest.raises(Conflict):
        open_backfill(store, datetime(2030, 12, 20, tzinfo=UTC), datetime(2031, 1, 2, tzinfo=UTC),
                      datetime(2031, 3, 10, tzinfo=UTC))
    with pytest.raises(NotFound):
        detach_partition(store, "2031-01", datetime(2031, 3, 10, tzinfo=UTC))
    with pytest.raises(Refused):
        detach_partition(store, "2031-02", datetime(2031, 3, 10, tzinfo=UTC))
    store.dispose()
    assert _cli(url, "events", "partitions", "detach", "31-01")[0] == 2


def test_the_partition_commands_say_sqlite_keeps_one_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ratecard.db'}"
    for args in (("list",), ("create", "--ahead", "3"), ("detach", "2026-01")):
        code, _, err = _cli(url, "events", "partitions", *args)
        assert code == 2 and "PostgreSQL only" in err


def _explained(store, sql: str, params: dict) -> str:  # noqa: ANN001
    with store.engine.connect() as connection:
        return "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {sql}"), params))


def test_a_period_usage_query_reads_only_its_months(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The invoice run's and the preview's usage statements, captured as they run, planned again
    with EXPLAIN: the partitions they scan are the period's month only."""
    from ratecard.catalog import MeterSpec
    from ratecard.store.usage import Window, aggregate_usage, few_windows_usage

    store = open_store(at_head(postgres_url))
    create_partitions(store, datetime(2031, 1, 1, tzinfo=UTC), 5)
    stored = [NewEvent(f"e{n}", "acme", "api_calls", _us(f"2031-0{n}-10T00:00:00Z"), "{}", "matched", False)
              for n in range(1, 7)]
    insert_meter_data(store, "live", stored, 1)
    with store.engine.begin() as connection:
        connection.execute(text("ANALYZE events"))
    captured: list[tuple[str, dict]] = []

    from sqlalchemy import event as sqlalchemy_event

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:  # noqa: ANN001
        if " events e" in statement:
            captured.append((statement, parameters))

    meter = MeterSpec(code="api_calls", aggregation="count", field=None, filters={}, source=None)
    march = Window(1, "acme", _us("2031-03-01T00:00:00Z"), _us("2031-04-01T00:00:00Z"))
    sqlalchemy_event.listen(store.engine, "before_cursor_execute", capture)
    usage = aggregate_usage(store, [march], [meter])
    few = few_windows_usage(store, [march], [meter])
    sqlalchemy_event.remove(store.engine, "before_cursor_execute", capture)
    assert usage[(1, "api_calls")].events == 1 and few[(1, "api_calls")].events == 1
    assert len(captured) >= 2
    for statement, parameters in captured:
        if "usage_windows" in statement:  # the run's temporary windows table is gone: recreate it to plan
            with store.engine.begin() as connection:
                connection.execute(text("CREATE TEMP TABLE IF NOT EXISTS usage_windows (key BIGINT PRIMARY KEY, "
                                        "customer VARCHAR(256), start_ts BIGINT, end_ts BIGINT, "
                                        "subscription VARCHAR(256), unnamed SMALLINT)"))
                plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))
        else:
            with store.engine.connect() as connection:
                plan = "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))
        scanned = set(re.findall(r"\bevents_(?:\d{4}_\d{2}|default)\b", plan))
        assert scanned == {"events_2031_03"}, plan
    store.dispose()


def test_the_database_holds_every_partitioned_events_object_after_a_plain_migration(postgres_url: str) -> None:
    """A database migrated from empty has the id table, both triggers and a default partition."""
    store = open_store(postgres_url)
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        triggers = {row[0] for row in connection.execute(text(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass('events') AND NOT tgisinternal"))}
        kind = connection.execute(text("SELECT relkind FROM pg_class WHERE oid = to_regclass('events')")).scalar_one()
    engine.dispose()
    assert triggers == {"events_claim_id", "events_release_id"} and kind == "p"
    assert any(p["kind"] == "default" for p in partition_report(store))
    store.dispose()
