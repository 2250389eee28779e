"""Large batches (more events than the group committer takes) are each written in a transaction of
their own, on SQLite on a connection a serving process keeps open between requests: concurrent
batches with shared ids store each event once, and each request is answered with its own outcome
(stored, duplicates, conflicts). On both stores."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from ratecard.services.rollups import check_rollups, rebuild_rollups
from ratecard.store import open_store
from ratecard.store.db import batch_writer
from ratecard.store.events import count_by_status

from ..migrated import at_head
from .conftest import Api


def test_concurrent_large_batches_store_each_event_once_and_list_each_conflict(api: Api) -> None:
    api.apply_catalog()
    store = open_store(api.url)
    rebuild_rollups(store, "live", datetime.now(UTC))  # kept by each batch's transaction: counts each event once

    def batch(number: int) -> list[dict]:
        # 200 events of its own, and 50 ids every batch sends: the same content, except batch 3's
        events = [{"id": f"own-{number}-{n}", "customer": "acme", "meter": "api_calls",
                   "timestamp": "2026-01-20T10:00:00Z"} for n in range(200)]
        events += [{"id": f"common-{n}", "customer": "acme", "meter": "api_calls",
                    "timestamp": "2026-01-20T11:00:00Z" if number == 3 else "2026-01-20T10:00:00Z"}
                   for n in range(50)]
        return events

    def send(number: int) -> dict:
        response = api.post("/v1/events", json=batch(number))
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(6)))
    assert sum(a["stored"] for a in answers) == 6 * 200 + 50
    assert sum(a["duplicates"] for a in answers) == 5 * 50
    winners = [n for n, a in enumerate(answers) if a["stored"] == 250]
    assert len(winners) == 1  # one request stored the common ids, the others hold duplicates of them
    # conflicts: the common events whose content differs from the winner's (batch 3's, or all but batch 3's)
    expected = [0 if n == winners[0] else 50 if (n == 3) != (winners[0] == 3) else 0 for n in range(6)]
    assert [len(a["conflicts"]) for a in answers] == expected
    assert [a["flags"].get("conflict", 0) for a in answers] == expected
    assert all(a["rejected"] == {} for a in answers)
    assert count_by_status(store, "live") == {"matched": 6 * 200 + 50}
    report = check_rollups(store, "live")
    assert report["ok"], report  # every roll-up row equals what the stored events give
    assert [item["rows"] > 0 for item in report["rollups"] if item["meter"] == "api_calls"] == [True]
    store.dispose()


def test_a_kept_writer_connection_closes_with_the_store(tmp_path: Path) -> None:
    """Batch writes keep their SQLite connections open between requests, until the store closes:
    then the last connection's close folds the write-ahead log back into the database."""
    url = at_head(f"sqlite:///{tmp_path / 'kept.db'}")
    store = open_store(url)
    writer = batch_writer(store)
    assert batch_writer(store) is writer  # one per process
    with writer.engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE scratch (n INTEGER)")
        connection.commit()
    assert Path(f"{tmp_path / 'kept.db'}-wal").exists()
    store.dispose()
    assert not Path(f"{tmp_path / 'kept.db'}-wal").exists()
    again = open_store(url)
    with again.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 0
    again.dispose()
