"""Group commit: concurrent small writes share one transaction, each request gets its own answer,
only after its events are committed; a failing request fails alone; a catalog that moved
meanwhile is never used stale. On both stores."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ratecard.ingest.group_commit import CommitterClosed, GroupCommitter
from ratecard.services.catalog import apply_catalog
from ratecard.store import open_store
from ratecard.store.events import count_by_status, stored_contents

from ..integration.scenario import CATALOG
from ..migrated import at_head
from .conftest import Api


def row(event_id: str, customer: object = "acme", env: str = "live") -> tuple:
    return (env, event_id, customer, "api_calls", 1_768_900_000_000_000, "{}", 1_768_900_000_000_001, "matched",
            False, None)


def test_concurrent_writes_share_one_transaction_each_with_its_own_outcome(db_url: str) -> None:
    store = open_store(at_head(db_url))
    committer = GroupCommitter(store, max_events=1_000, max_wait=10.0)
    try:
        before = committer.write("live", [row("held-before")], None)
        assert before.inserted == [True] and committer.batches == 1
        jobs = [[row(f"r{n}-a"), row(f"r{n}-b")] for n in range(8)]
        jobs[1].append(row("shared"))
        jobs[2].append(row("shared", customer="other"))  # the same id with other content: a conflict
        jobs[3].append(row("held-before"))
        jobs[4].append(row("r4-a"))  # its own duplicate, inside one request
        announced = threading.Barrier(len(jobs))
        outcomes: list = [None] * len(jobs)

        def send(number: int) -> None:
            with committer.announced():
                announced.wait(timeout=30)  # every request is validating: the writer waits for them all
                outcomes[number] = committer.write("live", jobs[number], None)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert committer.batches == 2  # the eight requests: one transaction
        shared = [outcomes[1].inserted[-1], outcomes[2].inserted[-1]]
        assert sorted(shared) == [False, True]  # the first to arrive stored it, the other holds a duplicate
        loser = outcomes[1] if not shared[0] else outcomes[2]
        assert "shared" in loser.held
        assert outcomes[3].inserted == [True, True, False] and "held-before" in outcomes[3].held
        assert outcomes[4].inserted == [True, True, False]
        assert sum(o.new for o in outcomes) == 8 * 2 + 1
        assert sum(count_by_status(store, "live").values()) == 1 + 8 * 2 + 1
    finally:
        committer.close()
        store.dispose()


def test_a_failing_request_fails_alone_and_nothing_acknowledged_is_lost(db_url: str) -> None:
    store = open_store(at_head(db_url))
    committer = GroupCommitter(store, max_events=1_000, max_wait=10.0)
    try:
        jobs = [[row(f"ok{n}")] for n in range(4)]
        jobs[2] = [row("bad-1"), row("bad-2", customer=object())]  # a value the driver cannot send: an error
        announced = threading.Barrier(len(jobs))
        answers: list = [None] * len(jobs)

        def send(number: int) -> None:
            with committer.announced():
                announced.wait(timeout=30)
                try:
                    answers[number] = committer.write("live", jobs[number], None)
                except Exception as exc:  # noqa: BLE001 - what the request would answer 500 for
                    answers[number] = exc

        with ThreadPoolExecutor(len(jobs)) as pool:
            list(pool.map(send, range(len(jobs))))
        assert isinstance(answers[2], Exception)
        acknowledged = [f"ok{n}" for n in (0, 1, 3)]
        assert all(answers[n].inserted == [True] for n in (0, 1, 3))
        stored = stored_contents(store, "live", [*acknowledged, "bad-1", "bad-2"])
        assert sorted(stored) == acknowledged  # every acknowledged event, none of the failed request
        again = committer.write("live", [row("after")], None)  # the writer carries on
        assert again.inserted == [True]
    finally:
        committer.close()
        store.dispose()


def test_concurrent_single_event_requests_store_each_event_once(api: Api) -> None:
    api.apply_catalog()
    events = [{"id": f"c{n % 30}", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"}
              for n in range(60)]  # each id sent twice, concurrently

    def send(event: dict) -> dict:
        response = api.post("/v1/events", json=[event])
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, events))
    assert sum(a["stored"] for a in answers) == 30
    assert sum(a["duplicates"] for a in answers) == 30
    store = open_store(api.url)
    assert count_by_status(store, "live") == {"matched": 30}
    store.dispose()


@pytest.mark.parametrize("route", ["/v1/events", "/v1/ingest/meter-data"])
def test_an_event_is_checked_against_the_catalog_applied_since_the_last_request(api: Api, route: str,
                                                                                tmp_path: Path) -> None:
    api.apply_catalog()

    def send(event_id: str) -> dict:
        if route == "/v1/events":
            body = [{"id": event_id, "customer": "newco", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"}]
            return api.post(route, json=body).json()
        answer = api.post(route, json={"reference": event_id, "customer_reference": "newco",
                                       "meter_reference": "api_calls", "timestamp": "2026-01-20T10:00:00Z"})
        assert answer.status_code == 201, answer.text
        return answer.json()

    first = send("before-newco-1")
    # a catalog applied by another process: this server's caches learn it only from the database
    other = open_store(api.url)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG.replace(
        "subscriptions:",
        "  - {reference: newco, name: NewCo, country: DE, currency: EUR, tax_rate: \"19\", timezone: UTC}\n"
        "subscriptions:\n  - {reference: newco-pro, customer: newco, plan: pro, start: 2026-01-15, billing_anchor: 1}"
    ), encoding="utf-8")
    apply_catalog(other, catalog, datetime.now(UTC))  # the CLI's own path
    other.dispose()
    second = send("after-newco-01")
    if route == "/v1/events":
        assert first["flags"] == {"unknown_customer": 1} and second["flags"] == {}
    else:
        assert first["processed_details"]["type"] == "NOT_MATCHED"
        assert second["processed_details"]["type"] == "DEFAULT"


def test_acknowledged_events_are_committed_durably(db_url: str) -> None:
    """An answer is sent once its event is committed, and a commit is on disk when it returns:
    SQLite syncs its log at every commit (synchronous=FULL, not NORMAL, which syncs only at
    checkpoints), on the group committer's connection as on every other; PostgreSQL waits
    for the WAL flush (synchronous_commit on, which ratecard never turns off)."""
    store = open_store(at_head(db_url))
    committer = GroupCommitter(store)
    try:
        assert committer.write("live", [row("durable-1")], None).inserted == [True]
        setting = "SHOW synchronous_commit" if store.is_postgres else "PRAGMA synchronous"
        expected = "on" if store.is_postgres else 2  # 2: FULL
        connections = [committer._connect(), store.engine.connect()]
        for connection in connections:
            assert connection.exec_driver_sql(setting).scalar() == expected
        connections[1].close()
    finally:
        committer.close()
        store.dispose()


def test_two_writers_store_each_event_once_and_answer_each_request(db_url: str) -> None:
    """Two writer threads (PostgreSQL's default in a server) take batches from one queue: the
    same id sent by several requests at once is stored once, every other request holds it."""
    store = open_store(at_head(db_url))
    committer = GroupCommitter(store, max_wait=0.0, writers=2)
    try:
        with ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(lambda n: committer.write("live", [row(f"w{n % 8}"), row(f"own{n}")], None),
                                     range(48)))
        assert sum(o.new for o in outcomes) == 8 + 48
        assert all(o.inserted[1] for o in outcomes)  # each request's own event
        assert sorted(o.inserted[0] for o in outcomes).count(True) == 8  # each shared id stored by one request
        assert sum(count_by_status(store, "live").values()) == 8 + 48
        assert committer.batches >= 2
    finally:
        committer.close()
        store.dispose()
    assert committer._connections == []  # every writer's connection closed


def test_requests_of_one_turn_of_the_event_loop_share_a_transaction_answered_after_it(db_url: str) -> None:
    """`wait` (the single-event lane's way in): the requests an event loop runs in one turn go to
    the writer together, so they share one transaction; each future is answered with its own
    outcome, and only once its rows are committed (another connection reads them)."""
    store = open_store(at_head(db_url))
    committer = GroupCommitter(store, max_wait=0.0)

    async def send() -> list:
        jobs = [[row(f"turn{n}")] for n in range(6)]
        jobs[5] = [row("turn0")]  # the id another request of the same turn sends: held, not stored twice
        futures = [committer.wait("live", rows, None) for rows in jobs]
        outcomes = []
        for future, rows in zip(futures, jobs, strict=True):
            outcome = await future
            assert rows[0][1] in stored_contents(store, "live", [rows[0][1]])  # committed before answered
            outcomes.append(outcome)
        return outcomes

    try:
        outcomes = asyncio.run(send())
        assert committer.batches == 1
        assert [o.inserted for o in outcomes] == [[True]] * 5 + [[False]]
        assert "turn0" in outcomes[5].held
        assert sum(count_by_status(store, "live").values()) == 5
    finally:
        committer.close()
        store.dispose()


def test_a_failing_request_on_the_event_loop_fails_alone(db_url: str) -> None:
    store = open_store(at_head(db_url))
    committer = GroupCommitter(store, max_wait=0.0)

    async def send() -> list:
        futures = [committer.wait("live", [row("loop-ok1")], None),
                   committer.wait("live", [row("loop-bad", customer=object())], None),
                   committer.wait("live", [row("loop-ok2")], None)]
        return await asyncio.gather(*futures, return_exceptions=True)

    try:
        answers = asyncio.run(send())
        assert isinstance(answers[1], Exception)
        assert answers[0].inserted == [True] and answers[2].inserted == [True]
        assert sorted(stored_contents(store, "live", ["loop-ok1", "loop-bad", "loop-ok2"])) == ["loop-ok1", "loop-ok2"]
    finally:
        committer.close()
        store.dispose()


def test_a_request_on_the_event_loop_after_close_is_refused_unwritten(db_url: str) -> None:
    store = open_store(at_head(db_url))
    committer = GroupCommitter(store)
    committer.close()

    async def send() -> object:
        return await committer.wait("live", [row("too-late")], None)

    try:
        with pytest.raises(CommitterClosed):
            asyncio.run(send())
        assert stored_contents(store, "live", ["too-late"]) == {}
    finally:
        store.dispose()


def test_events_written_before_and_after_a_rollup_is_built_are_each_counted_in_it_once(db_url: str) -> None:
    """PostgreSQL writes a batch in one self-committing statement only while no roll-up is to be
    maintained; once one is built, the committer's batches go the usual way, which maintains it.
    Either way the roll-up equals the raw events (both stores)."""
    from ratecard.services.rollups import check_rollups, rebuild_rollups

    from ..integration.scenario import workspace

    store, _ = workspace(db_url, CATALOG)
    committer = GroupCommitter(store, max_wait=0.0)
    try:
        assert committer.write("live", [row("before-1"), row("before-2")], None).inserted == [True, True]
        rebuild_rollups(store, "live", datetime.now(UTC))
        for number in range(3):
            outcome = committer.write("live", [row(f"after-{number}"), row("before-1")], None)
            assert outcome.inserted == [True, False] and "before-1" in outcome.held
        report = check_rollups(store, "live")
        assert [item["rows"] > 0 for item in report["rollups"] if item["meter"] == "api_calls"] == [True]
        assert report["ok"], report  # every roll-up row equals what the raw events give
        assert sum(count_by_status(store, "live").values()) == 5
    finally:
        committer.close()
        store.dispose()


def test_a_request_checked_against_an_older_catalog_writes_nothing(db_url: str, tmp_path: Path) -> None:
    """The fingerprint a request was checked against is compared with the current one in the
    statement that writes it: after a catalog change, nothing of it is stored and it is answered
    stale with the current fingerprint, while a request checked against the current one is stored."""
    from ratecard.store.catalog_state import fingerprint

    from ..integration.scenario import workspace

    store, _ = workspace(db_url, CATALOG)
    committer = GroupCommitter(store, max_wait=0.0)
    try:
        before = fingerprint(store, "live")
        assert committer.write("live", [row("fresh-1")], before).inserted == [True]
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(CATALOG.replace("subscriptions:", "  - {reference: newco, name: NewCo, country: DE, "
                                           "currency: EUR, tax_rate: \"19\", timezone: UTC}\nsubscriptions:"),
                           encoding="utf-8")
        apply_catalog(store, catalog, datetime.now(UTC))
        after = fingerprint(store, "live")
        assert after != before
        stale = committer.write("live", [row("stale-1"), row("stale-2")], before)
        assert stale.stale == after and stale.new == 0
        assert committer.write("live", [row("fresh-2")], after).inserted == [True]
        assert stored_contents(store, "live", ["stale-1", "stale-2", "fresh-1", "fresh-2"]).keys() == {"fresh-1",
                                                                                                      "fresh-2"}
    finally:
        committer.close()
        store.dispose()


def test_a_dropped_connection_after_the_events_are_stored_keeps_each_solvimon_event_once(db_url: str) -> None:
    """The connection that looks up the ids already held has been dropped by the server (an idle
    timeout, a restart) while the events of the batch were stored: the request is still answered
    with what was stored, and an event sent once is never kept as a duplicate of itself."""
    from sqlalchemy import text

    store = open_store(at_head(db_url))
    committer = GroupCommitter(store, max_wait=0.0)
    try:
        committer.write("live", [row("held")], None, keep_duplicates=True)
        committer.write("live", [row("held")], None, keep_duplicates=True)  # a duplicate record of it
        if store.is_postgres:  # the server ends the connection the writer looks held ids up on
            pids = [c.connection.driver_connection.info.backend_pid for c in committer._connections
                    if not c.connection.driver_connection.autocommit]
            with store.engine.connect() as admin:
                for pid in pids:
                    admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                admin.commit()
        outcome = committer.write("live", [row("new"), row("held")], None, keep_duplicates=True)
        assert outcome.inserted == [True, False]
        assert outcome.duplicates[0] is None and outcome.duplicates[1] is not None
        with store.engine.connect() as connection:
            kept = dict(connection.execute(text("SELECT id, count(*) FROM event_duplicates GROUP BY id")).all())
        assert kept == {"held": 2}  # "new" was sent once: no duplicate record of it
        assert sorted(stored_contents(store, "live", ["new", "held"])) == ["held", "new"]
    finally:
        committer.close()
        store.dispose()


def test_a_lone_event_after_the_server_dropped_the_writers_connections_is_stored(db_url: str) -> None:
    """Every connection the group committer holds has been ended by the server (an idle timeout,
    a restart) since its last write: the next single event is written on a new connection, not
    answered with the lost connection's error; a request whose rows fail still fails alone."""
    from sqlalchemy import text

    store = open_store(at_head(db_url))
    committer = GroupCommitter(store, max_wait=0.0)
    try:
        assert committer.write("live", [row("before")], None).inserted == [True]
        if store.is_postgres:
            pids = [c.connection.driver_connection.info.backend_pid for c in committer._connections]
            with store.engine.connect() as admin:
                for pid in pids:
                    admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                admin.commit()
        assert committer.write("live", [row("after")], None).inserted == [True]
        with pytest.raises(Exception):  # noqa: B017, PT011 - a value the driver cannot send: its own error
            committer.write("live", [row("bad", customer=object())], None)
        assert sorted(stored_contents(store, "live", ["before", "after", "bad"])) == ["after", "before"]
    finally:
        committer.close()
        store.dispose()
