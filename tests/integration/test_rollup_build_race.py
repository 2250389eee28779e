"""A roll-up built while events keep arriving counts each event once, on SQLite and PostgreSQL.

The build registers the roll-up (`building`), waits for the open writers, then rebuilds each
customer in a transaction of its own: its rows deleted, its events read and added up. An event
of that customer whose insert commits inside that transaction, after the rows were deleted and
before the events are read, must be counted once: by its insert (which made the row) or by the
build, not by both."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from ratecard.services.rollups import check_rollups, rebuild_rollups
from ratecard.store import rollups as rollup_writes
from ratecard.store.events import EventWriter

from .scenario import NOW, workspace
from .test_rollups import CATALOG, HAND, _event, _import


@pytest.mark.parametrize("moment", ["2026-03-01T05:10:00Z",  # an hour of its own
                                    "2026-03-01T00:20:00Z"])  # an hour the customer's events fill too
def test_an_event_stored_while_its_customer_is_rebuilt_is_counted_once(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    store, _ = workspace(db_url, CATALOG)
    try:
        _import(store, tmp_path, HAND)
        real = rollup_writes._events
        writers: list[threading.Thread] = []
        writing = threading.Event()  # the writer has read and checked its event and starts its transaction
        real_write = EventWriter.write

        def write(self: EventWriter, rows: Any) -> int:
            writing.set()
            return real_write(self, rows)

        monkeypatch.setattr(EventWriter, "write", write)

        def events(connection: Any, postgres: bool, environment: str, streams: Any, customer: str | None,
                   start_us: int | None, end_us: int | None) -> Any:
            if customer == "acme" and not writers:
                # acme's rows of this roll-up are deleted (not committed yet): an event of acme is
                # stored meanwhile by another writer, which sees the roll-up building
                writer = threading.Thread(target=_import, args=(store, tmp_path, [
                    _event("while-building", moment, 4, "z")]))
                writers.append(writer)
                writer.start()
                if store.is_postgres:
                    writer.join(5)  # its insert commits inside this transaction
                else:
                    # one writer at a time: its transaction waits for this one (BEGIN IMMEDIATE);
                    # it only had to get that far (this waited the whole 5 s on SQLite before)
                    writing.wait(5)
            return real(connection, postgres, environment, streams, customer, start_us, end_us)

        monkeypatch.setattr(rollup_writes, "_events", events)
        rebuild_rollups(store, "live", NOW)
        monkeypatch.setattr(rollup_writes, "_events", real)
        for writer in writers:
            writer.join(60)
        assert writers and not writers[0].is_alive()
        report = check_rollups(store, "live")
        differing = {item["meter"]: item["differences"] for item in report["rollups"] if item["differences"]}
        assert report["ok"], differing
    finally:
        store.dispose()
