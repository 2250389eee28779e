"""The same event id with other content: the first write wins, and the report says so.

An id already held (stored before, or earlier in the same file or request) is never stored
again and is flagged `duplicate`; with other content (customer, meter, timestamp, properties)
it is also flagged `conflict` and listed with its line, the stored event unchanged. Each test
runs on SQLite and PostgreSQL (the `db_url` fixture).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..api.conftest import Api
from ..e2e.harness import CATALOG, Cli, event, jsonl
from ..migrated import at_head


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Cli:
    runner = Cli(tmp_path)
    runner.db = at_head(db_url)
    runner.ok("catalog", "apply", runner.write("catalog.yaml", CATALOG))
    return runner




def stored(cli: Cli, event_id: str) -> dict:
    (found,) = [e for e in cli.ok("events", "list", "--json").json() if e["id"] == event_id]
    return found


@pytest.mark.parametrize("dry_run", [False, True])
def test_same_id_same_content_in_one_file_is_a_duplicate(cli: Cli, dry_run: bool) -> None:
    path = cli.write("a.jsonl", jsonl(
        event("c-1", "tokens", "2026-01-20T00:00:00Z", tokens=5, note="x"),
        event("c-2", "tokens", "2026-01-20T00:00:00Z", tokens=1),
        # the same event again: key order and number spelling are not content
        {"timestamp": "2026-01-20T00:00:00Z", "id": "c-1", "meter": "tokens", "customer": "acme",
         "properties": {"note": "x", "tokens": 5.0}},
    ))
    report = cli.ok("events", "import", path, "--json", *(["--dry-run"] if dry_run else [])).json()
    assert report["duplicates"] == 1 and report["flags"].get("duplicate") == 1, report  # every id already held
    assert report["flags"].get("conflict", 0) == 0 and report["conflicts"] == [], report


@pytest.mark.parametrize("dry_run", [False, True])
def test_same_id_other_content_in_one_file_is_a_listed_conflict(cli: Cli, dry_run: bool) -> None:
    path = cli.write("a.jsonl", jsonl(
        event("c-1", "tokens", "2026-01-20T00:00:00Z", tokens=5),
        event("c-1", "tokens", "2026-01-20T00:00:00Z", tokens=6),  # other properties
        event("c-1", "tokens", "2026-01-21T00:00:00Z", tokens=5),  # other timestamp
        event("c-1", "tokens", "2026-01-20T00:00:00Z", tokens=5),  # the same: a duplicate
    ))
    report = cli.ok("events", "import", path, "--json", *(["--dry-run"] if dry_run else [])).json()
    assert report["stored"] == (0 if dry_run else 1), report
    assert report["duplicates"] == 3, report  # every id already held, as before
    # `duplicate` counts every id already held, as before; `conflict` those with other content
    assert report["flags"].get("duplicate") == 3 and report["flags"].get("conflict") == 2, report
    assert report["conflicts"] == [{"id": "c-1", "line": 2}, {"id": "c-1", "line": 3}], report
    if not dry_run:
        first = stored(cli, "c-1")
        assert first["timestamp"].startswith("2026-01-20") and first["properties"] == {"tokens": 5}, first


def test_conflict_across_imports_keeps_the_stored_event(cli: Cli) -> None:
    cli.ok("events", "import", cli.write("a.jsonl", jsonl(
        event("c-1", "tokens", "2026-01-20T00:00:00Z", tokens=5),
        event("c-2", "tokens", "2026-01-20T00:00:00Z", tokens=7))))
    before = stored(cli, "c-1")
    again = cli.write("b.jsonl", jsonl(
        event("c-2", "tokens", "2026-01-20T00:00:00Z", tokens=7),  # a duplicate
        event("c-1", "tokens", "2026-01-20T00:00:00Z", customer="globex", tokens=5),  # a conflict
        event("c-3", "tokens", "2026-01-20T00:00:00Z", tokens=1),
    ))
    dry = cli.ok("events", "import", again, "--json", "--dry-run").json()
    report = cli.ok("events", "import", again, "--json").json()
    for result in (dry, report):
        assert result["duplicates"] == 2 and result["flags"].get("duplicate") == 2, result
        assert result["flags"].get("conflict") == 1, result
        assert result["conflicts"] == [{"id": "c-1", "line": 2}], result
    assert report["stored"] == 1
    assert stored(cli, "c-1") == before
    table = cli.ok("events", "import", again)
    assert "conflict" in table.out and "line 2" in table.err and "c-1" in table.err, str(table)


def test_post_events_tells_conflicts_from_duplicates(api: Api) -> None:
    api.apply_catalog()
    first = {"id": "p-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T00:00:00Z"}
    assert api.post("/v1/events", json=[first]).json()["stored"] == 1
    other = dict(first, timestamp="2026-01-21T00:00:00Z")
    answer = api.post("/v1/events", json=[first, other, dict(first, id="p-2")]).json()
    assert (answer["stored"], answer["duplicates"]) == (1, 2), answer
    assert answer["flags"].get("duplicate") == 2 and answer["flags"].get("conflict") == 1, answer
    assert answer["conflicts"] == [{"index": 2, "id": "p-1"}], answer
