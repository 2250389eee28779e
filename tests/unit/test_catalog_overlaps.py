"""Two subscriptions of one customer alive at once on one meter would both bill an event: the
catalog refuses that, unless `requires_reference` tells them apart (then it is a warning)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from typer.testing import CliRunner

from ratecard.catalog import check_document
from ratecard.catalog.load import parse_text
from ratecard.cli import app

CATALOG = """
billing_entity: {timezone: UTC}
meters:
  - {code: calls, aggregation: count}
  - {code: gb, aggregation: max, field: gb}
  - {code: big_calls, aggregation: count, source: calls, filters: {size: [big]}}
plans:
  - {code: api, currency: EUR, charges: [{code: calls, meter: calls, model: per_unit, unit_amount: "0.10"}]}
  - {code: api_b, currency: EUR, charges: [{code: calls, meter: calls, model: per_unit, unit_amount: "0.20"}]}
  - {code: storage, currency: EUR, charges: [{code: gb, meter: gb, model: per_unit, unit_amount: "1"}]}
  - {code: big, currency: EUR, charges: [{code: big, meter: big_calls, model: per_unit, unit_amount: "1"}]}
  - {code: base, currency: EUR, charges: [{code: fee, model: flat, amount: "10.00"}]}
customers:
  - {reference: acme, currency: EUR%s}
  - {reference: globex, currency: EUR}
subscriptions:
"""


def check(*subscriptions: str, zone: str = "") -> tuple[list, list]:
    """(problems, warnings) of the catalog with these subscription lines."""
    text = CATALOG % zone + "".join(f"  - {line}\n" for line in subscriptions)
    warnings: list = []
    _, problems = check_document(parse_text(text, "catalog.yaml"), warnings)
    return [(p.path, p.message) for p in problems], [(w.path, w.message) for w in warnings]


OLD = "{reference: acme-old, customer: acme, plan: api, start: 2026-01-01, end: 2026-01-20%s}"
NEW = "{reference: acme-new, customer: acme, plan: api_b, start: 2026-01-10%s}"
REQUIRED = ", requires_reference: true"


def test_overlapping_subscriptions_on_one_meter_are_refused_at_the_later_ones_path() -> None:
    problems, warnings = check(OLD % "", NEW % "")
    assert warnings == []
    assert len(problems) == 1
    path, message = problems[0]
    assert path == "subscriptions[1]"
    for part in ("'acme-new'", "'acme-old'", "subscriptions[0]", "'calls'", "from 2026-01-10 to 2026-01-20",
                 "requires_reference"):
        assert part in message, part


def test_requires_reference_on_one_of_them_makes_it_a_warning_naming_who_takes_unnamed_events() -> None:
    problems, warnings = check(OLD % "", NEW % REQUIRED)
    assert problems == []
    assert [path for path, _ in warnings] == ["subscriptions[1]"]
    assert "'acme-old'" in warnings[0][1].split("neither")[1]  # unnamed events go to the one without it
    assert "from 2026-01-10 to 2026-01-20" in warnings[0][1]
    # on both: still a warning, and an event naming neither is billed by neither
    problems, warnings = check(OLD % REQUIRED, NEW % REQUIRED)
    assert problems == [] and len(warnings) == 1 and "billed by neither" in warnings[0][1]


def test_no_overlap_when_one_ends_where_the_next_starts_or_on_other_meters_or_customers() -> None:
    touching = "{reference: acme-next, customer: acme, plan: api, start: 2026-01-20}"
    assert check(OLD % "", touching) == ([], [])  # [start, end): the end is not part of a lifetime
    storage = "{reference: acme-storage, customer: acme, plan: storage, start: 2026-01-01}"
    flat = "{reference: acme-base, customer: acme, plan: base, start: 2026-01-01}"
    other = "{reference: globex-api, customer: globex, plan: api, start: 2026-01-01}"
    assert check(OLD % "", storage, flat, other) == ([], [])


def test_meters_reading_the_same_events_overlap_even_with_other_codes() -> None:
    big = "{reference: acme-big, customer: acme, plan: big, start: 2026-01-15}"
    problems, _ = check(OLD % "", big)
    assert problems[0][0] == "subscriptions[1]"
    assert "'calls' and 'big_calls'" in problems[0][1] and "from 2026-01-15 to 2026-01-20" in problems[0][1]


def test_lifetimes_are_taken_in_the_customers_timezone() -> None:
    # acme-old ends at midnight in Berlin, 23:00 UTC the day before: a start at 23:30 UTC is after it
    late_start = "{reference: acme-new, customer: acme, plan: api, start: \"2026-01-19T23:30:00Z\"}"
    assert check(OLD % "", late_start, zone=", timezone: Europe/Berlin") == ([], [])
    problems, _ = check(OLD % "", late_start)  # in UTC acme-old ends later, at 2026-01-20T00:00Z
    assert [path for path, _ in problems] == ["subscriptions[1]"]
    assert "from 2026-01-19T23:30:00+00:00 to 2026-01-20" in problems[0][1]


def test_every_later_subscription_is_reported_once_and_a_chain_of_warnings_hides_no_refusal() -> None:
    # a long one requiring references, two without it inside it: the two clash with each other
    long_one = "{reference: a-long, customer: acme, plan: api, start: 2026-01-01, requires_reference: true}"
    first = "{reference: a-1, customer: acme, plan: api, start: 2026-02-01, end: 2026-04-01}"
    second = "{reference: a-2, customer: acme, plan: api, start: 2026-03-01}"
    problems, warnings = check(long_one, first, second)
    assert [path for path, _ in problems] == ["subscriptions[2]"] and "'a-1'" in problems[0][1]
    assert [path for path, _ in warnings] == ["subscriptions[1]"]


def test_many_subscriptions_all_overlapping_are_checked_in_one_sweep() -> None:
    """5,000 subscriptions of one customer all alive at once: one refusal each but the first
    (a pairwise check would compare 12.5 million pairs)."""
    count = 5_000
    document = parse_text(CATALOG % "", "catalog.yaml")
    start = date(2026, 1, 1)
    document["subscriptions"] = [{"reference": f"s{i}", "customer": "acme", "plan": "api",
                                  "start": (start + timedelta(days=i % 300)).isoformat()} for i in range(count)]
    _, problems = check_document(document)
    assert len(problems) == count - 1
    assert {p.path for p in problems} == {f"subscriptions[{i}]" for i in range(1, count)}


def test_catalog_check_shows_warnings_in_its_table_and_json(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG % "" + f"  - {OLD % ''}\n  - {NEW % REQUIRED}\n", encoding="utf-8")
    runner = CliRunner()
    shown = runner.invoke(app, ["catalog", "check", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "1 warning(s)" in shown.output and "subscriptions[1]" in shown.output
    document = json.loads(runner.invoke(app, ["catalog", "check", str(path), "--json"]).output)
    assert document["valid"] is True and document["problems"] == []
    assert [w["path"] for w in document["warnings"]] == ["subscriptions[1]"]
    path.write_text(CATALOG % "" + f"  - {OLD % ''}\n  - {NEW % ''}\n", encoding="utf-8")
    refused = runner.invoke(app, ["catalog", "check", str(path), "--json"])
    assert refused.exit_code == 1
    assert [p["path"] for p in json.loads(refused.output)["problems"]] == ["subscriptions[1]"]


def test_same_start_with_and_without_an_end() -> None:
    ended = "{reference: a-1, customer: acme, plan: api, start: 2026-01-01, end: 2026-02-01}"
    open_ended = "{reference: a-2, customer: acme, plan: api, start: 2026-01-01}"
    problems, _ = check(ended, open_ended)
    assert [path for path, _ in problems] == ["subscriptions[1]"]
    assert "from 2026-01-01 to 2026-02-01" in problems[0][1]
