"""Events of an archived month are refused, one by one, as `archived_period` (PostgreSQL).

January 2031 is billed final and detached by `ratecard events partitions detach`; then an event
of January is refused on every ingestion path while one of February in the same batch is stored:
the file import, `POST /v1/events` (a batch, and a single event), Solvimon's meter-data ingest,
including by a server started before the detach. Nothing of January lands in the default
partition, so the archive can still be re-attached by `ratecard events partitions attach`,
after which January takes events again. SQLite has no partitions: nothing changes there."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from ratecard.ingest.group_commit import GroupCommitter
from ratecard.ingest.log import Delivery
from ratecard.services.catalog import current_catalog
from ratecard.services.errors import Conflict
from ratecard.services.event_log import WorkerStats, _Catalogs, _store_deliveries
from ratecard.services.events import EventValidator, decode_event, import_batch
from ratecard.services.meter_data import store_events
from ratecard.store import Store, open_store
from ratecard.store.catalog_state import fingerprint
from ratecard.store.db import MIGRATIONS
from ratecard.store.meter_data import NewEvent

from ..api.live_server import Server, create_key
from ..conftest import _postgres_schema, _require_postgres
from ..e2e.harness import run_in_process
from ..migrated import at_head

NOW = "2031-03-10T00:00:00Z"
JANUARY = (int(datetime(2031, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000,
           int(datetime(2031, 2, 1, tzinfo=UTC).timestamp()) * 1_000_000)
CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
plans:
  - code: pro
    currency: EUR
    interval: month
    charges:
      - {code: tokens, meter: tokens, model: per_unit, unit_amount: "0.10"}
customers:
  - {reference: acme, name: Acme Inc, country: NL, currency: EUR, tax_rate: "0", timezone: UTC}
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2031-01-01, billing_anchor: 1}
"""
# the refusal a January event gets, after its line or position
REFUSAL = "is in 2031-01, a month archived (detached from the events): no event can be stored in it any more"


@pytest.fixture
def postgres_url(postgres_reason: str | None) -> Iterator[str]:
    _require_postgres(postgres_reason)
    with _postgres_schema() as url:
        yield url


def _cli(url: str, *args: str, now: str = NOW) -> tuple[int, str, str]:
    env = {**{k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"}, "RATECARD_NOW": now}
    return run_in_process([*args, "--db", url], env, Path.cwd())


def _event(event_id: str, moment: str, tokens: int = 10) -> dict:
    return {"id": event_id, "customer": "acme", "meter": "tokens", "timestamp": moment, "properties": {"tokens": tokens}}


def _jsonl(path: Path, *events: dict) -> Path:
    path.write_text("".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")
    return path


def _january_billed_final(url: str, tmp_path: Path) -> None:
    """January's one event (10 tokens) billed on a final invoice: the month is settled."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    assert _cli(url, "catalog", "apply", str(catalog))[0] == 0
    assert _cli(url, "events", "partitions", "create", "--ahead", "2", now="2031-01-01T00:00:00Z")[0] == 0
    code, out, err = _cli(url, "events", "import", str(_jsonl(tmp_path / "jan.jsonl",
                                                               _event("jan-billed", "2031-01-05T00:00:00Z"))))
    assert code == 0, out + err
    assert _cli(url, "invoices", "generate", "--until", "2031-02-01")[0] == 0
    store = open_store(url)
    with store.engine.connect() as connection:
        drafts = connection.execute(text("SELECT draft_number FROM invoices WHERE status = 'draft'")).scalars().all()
    store.dispose()
    assert len(drafts) == 1
    code, out, err = _cli(url, "invoices", "finalize", f"DRAFT-{drafts[0]}")
    assert code == 0, out + err


def _detach_january(url: str) -> None:
    code, out, err = _cli(url, "events", "partitions", "detach", "2031-01")
    assert code == 0 and "events_archive_2031_01" in out, out + err


def _migrate_0027_again(store: Store) -> None:
    """Migration 0027 (which guards the months archived before it) down and up again on the store."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0026")
        command.upgrade(config, "head")


def _default_rows_of_january(url: str) -> int:
    store = open_store(url)
    with store.engine.connect() as connection:
        found = connection.execute(text("SELECT count(*) FROM events_default WHERE ts >= :start AND ts < :end"),
                                   {"start": JANUARY[0], "end": JANUARY[1]}).scalar_one()
    store.dispose()
    return found


def _reattach_january(url: str) -> None:
    """`ratecard events partitions attach` (test_archived_month_attach.py has its cases)."""
    code, out, err = _cli(url, "events", "partitions", "attach", "2031-01")
    assert code == 0 and "events_default_archived_2031_01" in out, out + err


def _archived(url: str) -> str:
    """The archived months the live environment's fingerprint names (what every server reads)."""
    store = open_store(url)
    try:
        return fingerprint(store, "live").archived
    finally:
        store.dispose()


def _stored_ids(url: str) -> set[str]:
    store = open_store(url)
    with store.engine.connect() as connection:
        found = set(connection.execute(text("SELECT id FROM events")).scalars().all())
    store.dispose()
    return found


def test_a_file_import_refuses_the_archived_months_events_and_stores_the_rest(postgres_url: str,
                                                                               tmp_path: Path) -> None:
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    _detach_january(url)

    late = _jsonl(tmp_path / "late.jsonl", _event("jan-late", "2031-01-20T12:00:00Z"),
                  _event("feb-1", "2031-02-03T00:00:00Z"))
    code, out, err = _cli(url, "events", "import", str(late), "--json")
    assert code == 1  # an event was rejected
    report = json.loads(out)
    assert report["stored"] == 1 and report["rejected"] == {"archived_period": 1}
    assert report["rejections"] == [{"line": 1, "id": "jan-late", "reason": "archived_period",
                                     "message": f"line 1: field 'timestamp': 2031-01-20T12:00:00Z {REFUSAL}"}]
    code, out, err = _cli(url, "events", "import", str(late))
    assert code == 1 and "archived_period" in out + err  # the text report names the reason too
    assert _stored_ids(url) == {"feb-1"}
    assert _default_rows_of_january(url) == 0

    # the archive re-attached by `partitions attach`: January takes events again
    _reattach_january(url)
    code, out, err = _cli(url, "events", "import", str(late), "--json")
    assert code == 0, out + err
    assert json.loads(out)["stored"] == 1 and json.loads(out)["duplicates"] == 1
    assert _stored_ids(url) == {"jan-billed", "jan-late", "feb-1"}


def test_the_group_commit_refuses_rows_checked_before_the_detach(postgres_url: str, tmp_path: Path) -> None:
    """A server that validated a January event before the detach does not store it: its
    fingerprint (read before) is no longer current, so the rows are answered stale, nothing
    written, and checked again against the new one (which names January)."""
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    store = open_store(url)
    before = fingerprint(store, "live")
    assert before.archived == ""
    _detach_january(url)
    assert fingerprint(store, "live").archived == "2031_01"
    row = ("live", "jan-stale", "acme", "tokens", JANUARY[0] + 3_600_000_000, '{"tokens": 5}', 1, "matched", True,
           None)
    committer = GroupCommitter(store)
    try:
        outcome = committer.write("live", [row], before)
    finally:
        committer.close()
    assert outcome.stale is not None and outcome.stale.archived == "2031_01" and outcome.new == 0
    assert "jan-stale" not in _stored_ids(url)
    assert _default_rows_of_january(url) == 0
    store.dispose()


def test_a_batch_checked_before_the_detach_and_written_alone_after_it_is_refused_whole(
        postgres_url: str, tmp_path: Path) -> None:
    """No group commit to check it again (a batch of over 100 events, a file import): the month's
    guard refuses the write; the caller is told to send it again, nothing of it stored."""
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    store = open_store(url)
    catalog = current_catalog(store, "live")[1]
    now = datetime(2031, 3, 10, tzinfo=UTC)
    checked_before = EventValidator(catalog, now)  # a validator that has not seen the detach
    _detach_january(url)
    records = [decode_event(1, json.dumps(_event("feb-3", "2031-02-06T00:00:00Z")).encode()),
               decode_event(2, json.dumps(_event("jan-late-3", "2031-01-25T00:00:00Z")).encode())]
    with pytest.raises(Conflict, match="send it again"):
        import_batch(store, "live", now, records, False, checked_before, catalog)
    # Solvimon's events written alone (no group commit), checked so before the detach
    checked = [NewEvent("jan-late-4", "acme", "tokens", JANUARY[0] + 60_000_000, '{"tokens": 1}', "matched", True)]
    with pytest.raises(Conflict, match="send it again"):
        store_events(store, "live", now, checked)
    store.dispose()
    assert _stored_ids(url) == set()  # feb-3 neither: the batch is written whole or not at all
    assert _default_rows_of_january(url) == 0


def test_the_event_log_worker_refuses_the_months_events_it_pulls(postgres_url: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`ratecard worker` checks what it pulls again with its own cached validator: one that was
    built before the detach refuses January's events after it, and stores the rest."""
    monkeypatch.setenv("RATECARD_NOW", NOW)
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    store = open_store(url)
    catalogs, stats = _Catalogs(), WorkerStats()

    def pulled(*events: dict) -> list[Delivery]:
        return [Delivery(None, "live", decode_event(n, json.dumps(e).encode()), None) for n, e in enumerate(events, 1)]

    _store_deliveries(store, catalogs, pulled(_event("feb-w1", "2031-02-07T00:00:00Z")), stats)  # built, cached
    _detach_january(url)
    _store_deliveries(store, catalogs, pulled(_event("jan-w", "2031-01-27T00:00:00Z"),
                                              _event("feb-w2", "2031-02-08T00:00:00Z")), stats)
    store.dispose()
    assert (stats.stored, stats.rejected) == (2, 1)
    assert _stored_ids(url) == {"feb-w1", "feb-w2"}


def test_a_server_started_before_the_detach_refuses_the_months_events(postgres_url: str, tmp_path: Path) -> None:
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    key = create_key(url)
    headers = {"X-API-KEY": key}

    def solvimon(reference: str, moment: str) -> dict:
        return {"reference": reference, "customer_reference": "acme", "meter_reference": "tokens",
                "timestamp": moment, "meter_values": [{"reference": "tokens", "number": "2"}]}

    with Server(url, tmp_path / "serve.log", env={"RATECARD_NOW": NOW}) as server, \
            httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        # the key cached, the catalog built (its fingerprint seen), before the detach
        warm = client.post("/v1/events", json=[_event("feb-warm", "2031-02-01T00:00:00Z")])
        assert warm.status_code == 200 and warm.json()["stored"] == 1, warm.text
        assert client.post("/v1/ingest/meter-data", json=solvimon("warm-solvimon-1", "2031-02-02T00:00:00Z")
                           ).status_code == 201

        _detach_january(url)  # by the CLI, in another process than the server

        # one event (the single-event lane's request)
        single = client.post("/v1/events", json=[_event("jan-late-1", "2031-01-22T00:00:00Z")])
        assert single.status_code == 200, single.text
        answer = single.json()
        assert answer["stored"] == 0 and answer["rejected"] == {"archived_period": 1}
        assert answer["errors"][0]["reason"] == "archived_period"
        assert answer["errors"][0]["message"] == f"line 1: field 'timestamp': 2031-01-22T00:00:00Z {REFUSAL}"
        # a batch: the January event refused, the February one stored
        batch = client.post("/v1/events", json=[_event("jan-late-2", "2031-01-23T00:00:00Z"),
                                                _event("feb-2", "2031-02-04T00:00:00Z")])
        assert batch.status_code == 200, batch.text
        answer = batch.json()
        assert (answer["stored"], answer["rejected"]) == (1, {"archived_period": 1})
        assert [(error["index"], error["id"], error["reason"]) for error in answer["errors"]] == \
            [(1, "jan-late-2", "archived_period")]
        # Solvimon's meter-data: one event is refused with a 400 naming the reason
        refused = client.post("/v1/ingest/meter-data", json=solvimon("jan-late-solvimon", "2031-01-24T00:00:00Z"))
        assert refused.status_code == 400, refused.text
        error = refused.json()
        assert (error["code"], error["field"]) == ("INVALID_FIELD", "timestamp")
        assert error["message"] == f"field 'timestamp': 2031-01-24T00:00:00+00:00 {REFUSAL} (archived_period)"
        stored = client.post("/v1/ingest/meter-data", json=solvimon("feb-late-solvimon", "2031-02-05T00:00:00Z"))
        assert stored.status_code == 201, stored.text

        assert _stored_ids(url) == {"feb-warm", "warm-solvimon-1", "feb-2", "feb-late-solvimon"}
        assert _default_rows_of_january(url) == 0

        # re-attached by `partitions attach` (another process): the running server takes January's events again
        _reattach_january(url)
        again = client.post("/v1/events", json=[_event("jan-late-1", "2031-01-22T00:00:00Z")])
        assert again.status_code == 200 and again.json()["stored"] == 1, again.text
    assert "jan-late-1" in _stored_ids(url)


def test_the_migration_guards_a_month_archived_before_it(postgres_url: str, tmp_path: Path) -> None:
    """A month detached before the guard existed (its constraint dropped here to stand for that),
    whose late event the default partition took meanwhile: migration 0027 guards it (not
    validated, the late row is the operator's to move), and January's events are refused again;
    `partitions create` refuses to make a new partition for it, and a backfill over it is refused
    even once the archive table is dropped."""
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    _detach_january(url)
    store = open_store(url)
    with store.engine.begin() as connection:
        connection.execute(text("ALTER TABLE events_default DROP CONSTRAINT events_default_archived_2031_01"))
        connection.execute(text(
            "INSERT INTO events (environment, id, customer, meter, ts, properties, received_at, status, late) "
            "VALUES ('live', 'jan-before-0027', 'acme', 'tokens', :ts, '{\"tokens\": 1}', 1, 'matched', true)"),
            {"ts": JANUARY[0] + 1})
    _migrate_0027_again(store)
    with store.engine.connect() as connection:
        validated = connection.execute(text(
            "SELECT convalidated FROM pg_constraint WHERE conrelid = to_regclass('events_default') "
            "AND conname = 'events_default_archived_2031_01'")).scalars().all()  # this schema's, not a neighbour's
    assert validated == [False]
    assert fingerprint(store, "live").archived == "2031_01"

    late = _jsonl(tmp_path / "late.jsonl", _event("jan-after-0027", "2031-01-26T00:00:00Z"))
    code, out, _ = _cli(url, "events", "import", str(late), "--json")
    assert code == 1 and json.loads(out)["rejected"] == {"archived_period": 1}
    code, out, err = _cli(url, "events", "partitions", "create", "--ahead", "2", now="2031-01-01T00:00:00Z")
    assert code == 2 and "2031-01 is archived (events_archive_2031_01); re-attach the archive instead" in out + err
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE events_archive_2031_01"))
    code, out, err = _cli(url, "backfill", "create", "--from", "2031-01-10", "--to", "2031-02-10")
    assert code == 2 and "the window covers or precedes archived month(s) 2031-01 (detached from events)" in out + err
    store.dispose()
