"""An event id is stored once even when it is sent again with a timestamp in another month, by
every path that stores events: the HTTP API (single events through the group committer, large
batches through COPY), Solvimon's meter-data ingestion, file import, backfill close, and the
JetStream worker. On PostgreSQL events is partitioned by month, so the two timestamps fall in two
partitions and the table's own key cannot see the repeat (store/partitions.py); SQLite must agree.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from ratecard.services.partitions import create_partitions
from ratecard.store import open_store
from ratecard.store.meter_data import NewEvent, insert_meter_data

from ..integration.scenario import CATALOG
from .conftest import Api
from .test_event_log import stream  # noqa: F401 - the fixture: a JetStream stream of the test's own

JAN, FEB, MAR = "2026-01-20T10:00:00Z", "2026-02-20T10:00:00Z", "2026-03-20T10:00:00Z"


def _event(event_id: str, moment: str) -> dict:
    return {"id": event_id, "customer": "acme", "meter": "api_calls", "timestamp": moment}


def _with_month_partitions(url: str) -> None:
    """On PostgreSQL, partitions for January to March 2026, so each month is a table of its own."""
    if url.startswith("postgresql"):
        store = open_store(url)
        create_partitions(store, datetime(2026, 1, 1, tzinfo=UTC), 2)
        store.dispose()


def stored_once(url: str, *ids: str) -> dict[str, list[int]]:
    """id -> the timestamps (µs) stored under it in the live environment."""
    store = open_store(url)
    try:
        with store.engine.connect() as connection:
            names = ", ".join(f":i{n}" for n in range(len(ids)))
            rows = connection.execute(text(f"SELECT id, ts FROM events WHERE environment = 'live' AND id IN ({names})"),
                                      {f"i{n}": event_id for n, event_id in enumerate(ids)})
            found: dict[str, list[int]] = {}
            for event_id, ts in rows:
                found.setdefault(event_id, []).append(ts)
            return found
    finally:
        store.dispose()


def _jsonl(*events: tuple[str, str]) -> str:
    return "".join(json.dumps(_event(event_id, moment)) + "\n" for event_id, moment in events)


def _us(moment: str) -> int:
    return int(datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp() * 1_000_000)


def test_events_endpoint_single_events_and_batches(api: Api) -> None:
    _with_month_partitions(api.url)
    api.apply_catalog()
    first = api.post("/v1/events", json=[_event("x", JAN)]).json()
    again = api.post("/v1/events", json=[_event("x", FEB)]).json()  # another month: another partition
    assert (first["stored"], again["stored"], again["duplicates"]) == (1, 0, 1)
    # a small batch (group commit) holding one id twice, in two months
    small = api.post("/v1/events", json=[_event("y", FEB), _event("y", MAR), _event("x", MAR)]).json()
    assert (small["stored"], small["duplicates"]) == (1, 2)
    # a large batch (COPY, then the staging path once a held id is found)
    fresh = [_event(f"big-{n}", (JAN, FEB, MAR)[n % 3]) for n in range(147)]
    large = api.post("/v1/events", json=[_event("z", JAN), _event("z", FEB), _event("x", JAN), *fresh]).json()
    assert (large["stored"], large["duplicates"]) == (148, 2)
    found = stored_once(api.url, "x", "y", "z")
    assert found == {"x": [_us(JAN)], "y": [_us(FEB)], "z": [_us(JAN)]}


def test_solvimon_meter_data_single_and_many(api: Api) -> None:
    _with_month_partitions(api.url)
    api.apply_catalog()

    def item(reference: str, moment: str) -> dict:
        return {"reference": reference, "customer_reference": "acme", "meter_reference": "api_calls",
                "timestamp": moment}

    first = api.post("/v1/ingest/meter-data", json=item("meter-data-m", JAN))
    assert first.status_code == 201, first.text
    repeat = api.post("/v1/ingest/meter-data", json=item("meter-data-m", FEB))
    assert repeat.status_code == 201 and repeat.json()["processed_details"]["type"] == "DUPLICATE"
    batch = [item("meter-data-n", FEB), item("meter-data-n", MAR), item("meter-data-m", MAR)]
    many = api.post("/v1/ingest/meter-datas", json={"meter_datas": batch})
    assert many.status_code == 201
    assert [d["processed_details"]["type"] for d in many.json()["meter_datas"]] == ["DEFAULT", "DUPLICATE",
                                                                                    "DUPLICATE"]
    assert stored_once(api.url, "meter-data-m", "meter-data-n") == {"meter-data-m": [_us(JAN)],
                                                                   "meter-data-n": [_us(FEB)]}


def test_meter_data_written_alone_file_import_and_backfill_close(db_url: str, tmp_path: Path) -> None:
    """The paths without the server: Solvimon's insert without a group committer, `events import`
    (a file, then another file), and a backfill closed over an id stored in another month."""
    from ratecard.services.backfills import close, open_backfill
    from ratecard.services.catalog import apply_catalog
    from ratecard.services.events import import_events

    from ..migrated import at_head

    url = at_head(db_url)
    _with_month_partitions(url)
    store = open_store(url)
    now = datetime(2026, 4, 1, tzinfo=UTC)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    apply_catalog(store, catalog, now)

    alone = [NewEvent("s", "acme", "api_calls", _us(JAN), "{}", "matched", False),
             NewEvent("s", "acme", "api_calls", _us(FEB), "{}", "matched", False)]
    assert insert_meter_data(store, "live", alone, 1) == [None, 1]
    assert insert_meter_data(store, "live", [NewEvent("s", "acme", "api_calls", _us(MAR), "{}", "matched",
                                                      False)], 2) == [2]

    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text(_jsonl(("f", JAN)), "utf-8")
    second.write_text(_jsonl(("f", FEB), ("g", FEB), ("g", MAR)), "utf-8")
    assert import_events(store, first, now).report.stored == 1
    assert import_events(store, second, now).report.stored == 1

    backfill_file = tmp_path / "backfill.jsonl"
    backfill_file.write_text(_jsonl(("f", MAR), ("h", MAR)), "utf-8")
    created = open_backfill(store, datetime(2026, 3, 1, tzinfo=UTC), now, now)
    import_events(store, backfill_file, now, backfill=created["id"])
    closed = close(store, created["id"], now)
    assert (closed["events"]["added"], closed["events"]["already_stored"]) == (1, 1)
    store.dispose()
    assert stored_once(url, "s", "f", "g", "h") == {"s": [_us(JAN)], "f": [_us(JAN)], "g": [_us(FEB)],
                                                     "h": [_us(MAR)]}


def test_the_jetstream_worker(db_url: str, tmp_path: Path, stream: str) -> None:  # noqa: F811 - the fixture above
    """One id sent through two streams (JetStream's own deduplication is per stream), a month
    apart: each stream's worker stores what it reads, and the store keeps the id once."""
    from ratecard.ingest.log import LogSettings, Publisher
    from ratecard.ingest.records import RawEvent

    from ..migrated import at_head
    from .test_event_log import NATS_URL, Worker, _jetstream_call, wait_for_ids

    url = at_head(db_url)
    _with_month_partitions(url)
    other = f"{stream}_B"

    async def publish(name: str, events: list[dict]) -> None:
        import nats

        from ratecard.ingest.log import ensure_stream

        settings = LogSettings(NATS_URL, stream=name)
        connection = await nats.connect(NATS_URL)
        await ensure_stream(connection.jetstream(), settings)  # as `ratecard serve --log` makes it
        await connection.close()
        publisher = Publisher(settings)
        await publisher.publish("live", [(e["id"], RawEvent(e["id"], e["customer"], e["meter"], e["timestamp"]))
                                         for e in events])
        await publisher.close()

    try:
        for name, events in ((stream, [_event("w", JAN), _event("w1", JAN)]),
                             (other, [_event("w", FEB), _event("w2", FEB)])):
            asyncio.run(publish(name, events))
            worker = Worker(url, name, tmp_path, name).start()
            try:
                wait_for_ids(url, {e["id"] for e in events}, [worker])
            finally:
                worker.stop()
    finally:
        asyncio.run(_jetstream_call("delete", other))
    assert stored_once(url, "w", "w1", "w2") == {"w": [_us(JAN)], "w1": [_us(JAN)], "w2": [_us(FEB)]}


def test_concurrent_writers_of_one_id_in_two_months_store_it_once(api: Api) -> None:
    """Single events racing through the group committer, and bulk batches racing through COPY,
    each id sent in two months at once: every id stored once."""
    from concurrent.futures import ThreadPoolExecutor

    from ratecard.store.events import EventWriter

    _with_month_partitions(api.url)
    api.apply_catalog()
    singles = [_event(f"race-{n % 20}", (JAN, FEB)[n // 20]) for n in range(40)]

    def send(event: dict) -> int:
        response = api.post("/v1/events", json=[event])
        assert response.status_code == 200, response.text
        return response.json()["stored"]

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(send, singles)) == 20

    def rows(moment: str, order: int) -> list[tuple]:
        ids = [f"bulk-{n}" for n in range(500)][::order]
        return [("live", event_id, "acme", "api_calls", _us(moment), "{}", 1, "matched", False, None) for event_id in ids]

    store = open_store(api.url)

    def write(batch: list[tuple]) -> int:
        with EventWriter(store) as writer:
            return writer.write(batch)

    try:
        with ThreadPoolExecutor(2) as pool:
            assert sum(pool.map(write, [rows(JAN, 1), rows(MAR, -1)])) == 500
    finally:
        store.dispose()
    found = stored_once(api.url, *{e["id"] for e in singles}, *(f"bulk-{n}" for n in range(500)))
    assert len(found) == 520 and all(len(stamps) == 1 for stamps in found.values())
