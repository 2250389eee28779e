"""Edges of the archived months (PostgreSQL; test_archived_month_refusals.py has the paths).

January 2031 billed final and detached by `ratecard events partitions detach`, as there. Here:
the instants at the month's bounds written with offsets that cross into it or out of it, the
sandbox environment (the partitions, and so the guard, are shared by the environments), another
schema of the same database (a deployment per schema: one's archive must not refuse the other's
events), and a backfill closed over the month before it was archived, whose revert would bill the
month again from the events still attached (none): refused, as opening one over it is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from ratecard.api.app import create_app
from ratecard.store import open_store
from ratecard.store.keys import create_key

from ..conftest import _postgres_schema
from ..migrated import at_head
from .test_archived_month_refusals import (
    CATALOG,
    NOW,
    REFUSAL,
    _archived,
    _cli,
    _default_rows_of_january,
    _detach_january,
    _event,
    _january_billed_final,
    _jsonl,
    _migrate_0027_again,
    postgres_url,  # noqa: F401 - the fixture
)


def _ids(url: str, environment: str = "live") -> set[str]:
    store = open_store(url)
    with store.engine.connect() as connection:
        found = set(connection.execute(text("SELECT id FROM events WHERE environment = :env"),
                                       {"env": environment}).scalars().all())
    store.dispose()
    return found


def test_instants_at_the_months_bounds_are_judged_in_utc_whatever_their_offset(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("RATECARD_NOW", NOW)
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    _detach_january(url)
    instants = {
        "first-us": "2031-01-01T00:00:00Z",  # January's first microsecond
        "last-us": "2031-01-31T23:59:59.999999Z",  # its last
        "into-from-feb": "2031-02-01T00:30:00+01:00",  # 2031-01-31T23:30Z: written in February, in January
        "into-from-dec": "2030-12-31T23:30:00-01:00",  # 2031-01-01T00:30Z
        "out-to-feb": "2031-01-31T23:30:00-01:00",  # 2031-02-01T00:30Z: written in January, in February
        "out-to-dec": "2031-01-01T00:30:00+01:00",  # 2030-12-31T23:30Z
        "feb-first-us": "2031-02-01T00:00:00Z",
        "dec-last-us": "2030-12-31T23:59:59.999999Z",
    }
    late = _jsonl(tmp_path / "bounds.jsonl", *(_event(name, moment) for name, moment in instants.items()))
    code, out, err = _cli(url, "events", "import", str(late), "--json")
    assert code == 1, out + err
    report = json.loads(out)
    assert report["rejected"] == {"archived_period": 4}
    assert {(r["id"], r["reason"]) for r in report["rejections"]} == {
        ("first-us", "archived_period"), ("last-us", "archived_period"),
        ("into-from-feb", "archived_period"), ("into-from-dec", "archived_period")}
    refused = {r["id"]: r["message"] for r in report["rejections"]}
    assert refused["into-from-feb"] == f"line 3: field 'timestamp': 2031-02-01T00:30:00+01:00 {REFUSAL}"
    assert _ids(url) == {"out-to-feb", "out-to-dec", "feb-first-us", "dec-last-us"}
    assert _default_rows_of_january(url) == 0

    # the same through the API (a batch, and one event at a time: the single-event lane)
    store = open_store(url)
    _, key = create_key(store, "live", 0, "bounds")
    store.dispose()
    with TestClient(create_app(url)) as client:
        headers = {"X-API-KEY": key}
        batch = client.post("/v1/events", headers=headers, json=[
            _event("api-first-us", "2031-01-01T00:00:00Z"), _event("api-out-to-feb", "2031-01-31T23:30:00-01:00")])
        assert batch.status_code == 200, batch.text
        assert (batch.json()["stored"], batch.json()["rejected"]) == (1, {"archived_period": 1})
        for name, moment, stored in (("api-into", "2031-02-01T00:30:00+01:00", 0),
                                     ("api-out", "2031-01-01T00:30:00+01:00", 1)):
            one = client.post("/v1/events", headers=headers, json=[_event(name, moment)])
            assert one.status_code == 200 and one.json()["stored"] == stored, one.text
    assert {"api-out-to-feb", "api-out"} <= _ids(url) and not {"api-first-us", "api-into"} & _ids(url)


def test_the_sandbox_refuses_an_archived_months_events_too(postgres_url: str, tmp_path: Path,  # noqa: F811
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The detach is judged on the live environment's billing, but the month's partition (and the
    default partition's guard) holds every environment's events: a sandbox event of January is
    refused with its reason, with or without a sandbox catalog, not failed as a whole write."""
    monkeypatch.setenv("RATECARD_NOW", NOW)
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    store = open_store(url)
    _, sandbox = create_key(store, "sandbox", 0, "sandbox")
    store.dispose()
    headers = {"X-API-KEY": sandbox}
    with TestClient(create_app(url)) as client:
        warm = client.post("/v1/events", headers=headers, json=[_event("sb-warm", "2031-02-02T00:00:00Z")])
        assert warm.status_code == 200 and warm.json()["stored"] == 1, warm.text  # no sandbox catalog yet
        _detach_january(url)
        for round_ in ("no-catalog", "catalog"):
            one = client.post("/v1/events", headers=headers, json=[_event(f"sb-jan-{round_}", "2031-01-20T00:00:00Z")])
            assert one.status_code == 200, one.text
            assert one.json()["rejected"] == {"archived_period": 1}, one.text
            batch = client.post("/v1/events", headers=headers, json=[
                _event(f"sb-jan2-{round_}", "2031-01-21T00:00:00Z"), _event(f"sb-feb-{round_}", "2031-02-03T00:00:00Z")])
            assert batch.status_code == 200, batch.text
            assert (batch.json()["stored"], batch.json()["rejected"]) == (1, {"archived_period": 1})
            applied = client.post("/v1/catalog", headers={**headers, "content-type": "application/yaml"},
                                  content=CATALOG.encode())
            assert applied.status_code in (200, 201), applied.text
    assert _ids(url, "sandbox") == {"sb-warm", "sb-feb-no-catalog", "sb-feb-catalog"}
    assert _default_rows_of_january(url) == 0


def test_a_month_archived_in_another_schema_is_not_archived_here(postgres_url: str,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    """Two deployments in one database, a schema each (the URL's search_path): January archived
    in one refuses nothing in the other, whose January still takes events and can be archived in
    turn."""
    archived = at_head(postgres_url)
    _january_billed_final(archived, tmp_path)
    _detach_january(archived)
    with _postgres_schema() as other_url:
        other = at_head(other_url)
        assert _archived(other) == ""
        (tmp_path / "other").mkdir()
        _january_billed_final(other, tmp_path / "other")  # its partitions created, January billed there
        late = _jsonl(tmp_path / "late.jsonl", _event("jan-other", "2031-01-20T12:00:00Z"))
        code, out, err = _cli(other, "events", "import", str(late), "--json")
        assert code == 0 and json.loads(out)["stored"] == 1, out + err
        assert _ids(other) == {"jan-billed", "jan-other"}
        # the archived schema is untouched by the other's
        assert _archived(archived) == "2031_01"
        code, out, _ = _cli(archived, "events", "import", str(late), "--json")
        assert code == 1 and json.loads(out)["rejected"] == {"archived_period": 1}


def test_a_table_named_like_an_archive_of_no_month_is_no_archived_month(postgres_url: str,  # noqa: F811
                                                                        tmp_path: Path) -> None:
    """A plain table an operator named events_archive_2031_13 (or _0000_01) is no archive: the
    partitions listing, a new backfill and migration 0027 read past it, as the fingerprint reads
    past a guard of such a name. Each was an internal error (month must be in 1..12)."""
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    store = open_store(url)
    with store.engine.begin() as connection:
        connection.execute(text("CREATE TABLE events_archive_2031_13 (note text)"))
        connection.execute(text("CREATE TABLE events_archive_0000_01 (note text)"))
    store.dispose()
    code, out, err = _cli(url, "events", "partitions", "list", "--json")
    assert code == 0, out + err
    assert not [p for p in json.loads(out) if p["kind"] == "archived"]
    code, out, err = _cli(url, "backfill", "create", "--from", "2031-02-01", "--to", "2031-02-10", "--id-only")
    assert code == 0 and out.strip(), out + err
    _detach_january(url)  # a real archive is listed as ever
    code, out, err = _cli(url, "events", "partitions", "list", "--json")
    assert code == 0, out + err
    assert [p["name"] for p in json.loads(out) if p["kind"] == "archived"] == ["events_archive_2031_01"]
    # migration 0027, which guards the months archived before it, reads past them too
    store = open_store(url)
    _migrate_0027_again(store)
    store.dispose()
    assert _archived(url) == "2031_01"


@pytest.fixture
def closed_backfill(postgres_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:  # noqa: F811
    """January billed final, then a backfill over 10-20 January (5 tokens more) closed: January's
    final invoice corrected; then January archived."""
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    code, out, err = _cli(url, "backfill", "create", "--from", "2031-01-10", "--to", "2031-01-20", "--id-only")
    assert code == 0, out + err
    backfill = out.strip()
    extra = _jsonl(tmp_path / "bf.jsonl", _event("jan-bf", "2031-01-12T00:00:00Z", tokens=5))
    code, out, err = _cli(url, "events", "import", str(extra), "--backfill", backfill)
    assert code == 0, out + err
    code, out, err = _cli(url, "backfill", "close", backfill)
    assert code == 0, out + err
    _detach_january(url)
    yield url, backfill


def _documents(url: str) -> list[tuple[str, str]]:
    store = open_store(url)
    with store.engine.connect() as connection:
        found = [tuple(row) for row in connection.execute(text("SELECT kind, status FROM invoices ORDER BY id"))]
    store.dispose()
    return found


def test_a_backfill_closed_over_a_month_since_archived_is_not_reverted(closed_backfill: tuple[str, str]) -> None:
    """Reverting it would recompute January's final invoice from the events still attached (none:
    they are in the archive) and credit the whole month: refused, naming the month, nothing
    changed; re-attaching the archive first is the way."""
    url, backfill = closed_backfill
    before = _documents(url)
    code, out, err = _cli(url, "backfill", "revert", backfill)
    assert code == 2, out + err
    assert "covers or precedes archived month(s) 2031-01" in out + err
    assert _documents(url) == before
    code, out, err = _cli(url, "backfill", "show", backfill, "--json")
    assert code == 0 and json.loads(out)["status"] == "closed", out + err


@pytest.mark.slow
def test_a_detach_while_two_servers_store_events_loses_none_and_stores_none_in_the_month(
        postgres_url: str, tmp_path: Path) -> None:  # noqa: F811
    """Two servers (each with its own group committer and caches) take single events and small
    batches of January and February while the CLI detaches January: every request is answered
    (no 5xx), every February event is stored, every January event is either stored before the
    detach (so in the archive) or refused as archived_period, and none lands in the default
    partition (the requests go through the group commits, which answer stale what was checked
    before the detach)."""
    import threading

    import httpx

    from ..api.live_server import Server
    from ..api.live_server import create_key as cli_key

    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    key = cli_key(url)
    answers: list[tuple[int, dict]] = []
    sent: dict[str, str] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def load(base_url: str, name: str) -> None:
        with httpx.Client(base_url=base_url, headers={"X-API-KEY": key}, timeout=60) as client:
            n = 0
            while not stop.is_set() or n < 20:
                n += 1
                events = [_event(f"{name}-{n}-jan", f"2031-01-{1 + n % 28:02d}T03:00:00Z"),
                          _event(f"{name}-{n}-feb", f"2031-02-{1 + n % 28:02d}T03:00:00Z")]
                body = events[n % 2:n % 2 + 1] if n % 3 else events  # single events, and pairs
                answer = client.post("/v1/events", json=body)
                with lock:
                    answers.append((answer.status_code, answer.json()))
                    for event in body:
                        sent[event["id"]] = event["timestamp"][:7]

    with Server(url, tmp_path / "one.log", env={"RATECARD_NOW": NOW}) as one, \
            Server(url, tmp_path / "two.log", env={"RATECARD_NOW": NOW}) as two:
        threads = [threading.Thread(target=load, args=(server.base_url, name))
                   for server, name in ((one, "a"), (two, "b"), (one, "c"), (two, "d"))]
        for thread in threads:
            thread.start()
        try:
            while len(answers) < 60 and all(thread.is_alive() for thread in threads):
                stop.wait(0.005)  # under load, January's events being stored, when the detach starts
            _detach_january(url)
        finally:
            stop.set()
            for thread in threads:
                thread.join(120)
    assert answers and all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200][:3]
    refused = {error["id"]: error["reason"] for _, answer in answers for error in answer["errors"]}
    assert set(refused.values()) == {"archived_period"}, "the load went on after the detach"
    store = open_store(url)
    with store.engine.connect() as connection:
        live = set(connection.execute(text("SELECT id FROM events")).scalars().all())
        archived = set(connection.execute(text("SELECT id FROM events_archive_2031_01")).scalars().all())
    store.dispose()
    for event_id, month in sent.items():
        if month == "2031-02":
            assert event_id in live and event_id not in refused, event_id
        else:
            assert (event_id in archived) != (event_id in refused), event_id
    assert len(archived) > 1 and refused  # January's events stored before the detach, and refused after it
    assert _default_rows_of_january(url) == 0


def test_sqlite_has_no_archived_months_and_takes_every_months_events(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """No partitions on SQLite: the fingerprint names no archived month, the detach is refused as
    PostgreSQL's only, and an event of any month is stored (file import, API)."""
    monkeypatch.setenv("RATECARD_NOW", NOW)
    url = f"sqlite:///{tmp_path / 'ratecard.db'}"
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    assert _cli(url, "catalog", "apply", str(catalog))[0] == 0
    code, out, err = _cli(url, "events", "partitions", "detach", "2031-01")
    assert code == 2 and "partitioned by month on PostgreSQL only" in out + err
    old = _jsonl(tmp_path / "old.jsonl", _event("jan-sqlite", "2031-01-01T00:00:00Z"))
    code, out, err = _cli(url, "events", "import", str(old), "--json")
    assert code == 0 and json.loads(out)["stored"] == 1, out + err
    assert _archived(url) == ""
    store = open_store(url)
    _, key = create_key(store, "live", 0, "sqlite")
    store.dispose()
    with TestClient(create_app(url)) as client:
        one = client.post("/v1/events", headers={"X-API-KEY": key}, json=[_event("jan-api", "2031-01-31T23:59:59Z")])
        assert one.status_code == 200 and one.json()["stored"] == 1, one.text


def _january_and_february_billed_final_february_archived(url: str, tmp_path: Path) -> None:
    """January and February each billed on a final invoice; February then archived."""
    _january_billed_final(url, tmp_path)
    feb = _jsonl(tmp_path / "feb.jsonl", _event("feb-billed", "2031-02-05T00:00:00Z", tokens=20))
    code, out, err = _cli(url, "events", "import", str(feb))
    assert code == 0, out + err
    assert _cli(url, "invoices", "generate", "--until", "2031-03-01")[0] == 0
    store = open_store(url)
    with store.engine.connect() as connection:
        [draft] = connection.execute(text("SELECT draft_number FROM invoices WHERE status = 'draft'")).scalars().all()
    store.dispose()
    code, out, err = _cli(url, "invoices", "finalize", f"DRAFT-{draft}")
    assert code == 0, out + err
    code, out, err = _cli(url, "events", "partitions", "detach", "2031-02")
    assert code == 0 and "events_archive_2031_02" in out, out + err


def test_a_backfill_before_an_archived_month_is_refused(postgres_url: str, tmp_path: Path) -> None:  # noqa: F811
    """Closing (or reverting) a backfill corrects every final invoice cut after its window starts:
    over January with February archived, February's final invoice would be recomputed from the
    events still attached (none: they are in the archive) and credited whole. A backfill whose
    window starts before an archived month ends is refused, naming the month, as one over it is."""
    url = at_head(postgres_url)
    _january_and_february_billed_final_february_archived(url, tmp_path)
    code, out, err = _cli(url, "backfill", "create", "--from", "2031-01-10", "--to", "2031-01-20", "--id-only")
    assert code == 2, out + err
    assert "archived month(s) 2031-02" in err and "events partitions attach" in err
    assert _documents(url) == [("invoice", "final"), ("invoice", "final")]


def test_a_month_a_pending_backfill_would_recompute_is_not_archived(postgres_url: str,  # noqa: F811
                                                                    tmp_path: Path) -> None:
    """A backfill pending over January would, once closed, correct February's final invoice too:
    February cannot be archived while it is pending (nothing detached), as a month the backfill
    overlaps cannot."""
    url = at_head(postgres_url)
    _january_billed_final(url, tmp_path)
    code, out, err = _cli(url, "backfill", "create", "--from", "2031-01-10", "--to", "2031-01-20", "--id-only")
    assert code == 0, out + err
    feb = _jsonl(tmp_path / "feb.jsonl", _event("feb-billed", "2031-02-05T00:00:00Z", tokens=20))
    assert _cli(url, "events", "import", str(feb))[0] == 0
    assert _cli(url, "invoices", "generate", "--until", "2031-03-01")[0] == 0
    store = open_store(url)
    with store.engine.connect() as connection:
        [draft] = connection.execute(text("SELECT draft_number FROM invoices WHERE status = 'draft'")).scalars().all()
    store.dispose()
    assert _cli(url, "invoices", "finalize", f"DRAFT-{draft}")[0] == 0
    code, out, err = _cli(url, "events", "partitions", "detach", "2031-02")
    assert code != 0 and "1 pending backfill(s)" in out + err, out + err
    assert _archived(url) == ""
