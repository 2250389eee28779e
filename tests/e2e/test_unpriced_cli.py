"""Through the real `ratecard` executable: an event its subscription takes but no charge counts is
reported by the dry run, listed by `events list --status unpriced` and warned about by `golive check`."""

from __future__ import annotations

import orjson

from ..integration.test_unpriced_events import CATALOG, EVENTS
from .harness import Cli


def test_unpriced_events_through_the_cli(cli: Cli) -> None:
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    events = cli.write("events.jsonl", b"".join(orjson.dumps(e) + b"\n" for e in EVENTS))
    dry = cli.ok("events", "import", events, "--dry-run")
    assert "flag: unpriced" in dry.out
    assert "unpriced: acme / tokens: 2 event(s), filtered out (no invoice line counts them)" in dry.err
    assert "unpriced: acme / images: 1 event(s), meter not charged" in dry.err
    assert cli.ok("events", "import", events, "--json").json()["unpriced"] == [
        {"customer": "acme", "meter": "images", "reason": "meter_not_charged", "events": 1},
        {"customer": "acme", "meter": "tokens", "reason": "filtered_out", "events": 2},
    ]
    listed = cli.ok("events", "list", "--status", "unpriced", "--json").json()
    assert sorted(e["id"] for e in listed) == ["c1", "c2", "i1"]
    check = cli("golive", "check", "--json")
    kinds = {(f["kind"], f["subject"]) for f in check.json()["findings"]}
    assert {("unpriced_events", "acme / tokens"), ("unpriced_events", "acme / images")} <= kinds
