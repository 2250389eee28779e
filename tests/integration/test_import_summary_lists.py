"""`ratecard events import` lists at most 20 customers without a subscription and 20 unpriced
(customer, meter) pairs on stderr, and says how many more there are rather than stopping silently.
`cutover apply`'s refusal names at most 20 subscriptions and counts the rest. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ratecard.golive.cutover import CutoverRefused

from ..e2e.harness import run_in_process
from ..migrated import at_head

CUSTOMERS = [f"c{n:02d}" for n in range(1, 24)]  # 23: three past the 20 shown
CATALOG = """
billing_entity: {name: Acme Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
  - {code: other_calls, aggregation: count}
plans:
  - code: pro
    currency: EUR
    interval: month
    charges:
      - {code: base, model: flat, amount: "10.00"}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.01"}
customers:
""" + "".join(f"  - {{reference: {c}, name: {c}, country: NL, tax_rate: '0'}}\n" for c in CUSTOMERS) + \
    "subscriptions:\n" + "".join(f"  - {{reference: {c}-pro, customer: {c}, plan: pro, start: 2026-10-01}}\n"
                                 for c in CUSTOMERS)


def _cli(url: str, folder: Path, *args: str) -> tuple[int, str, str]:
    env = {**{k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"},
           "RATECARD_NOW": "2026-12-02T09:00:00Z", "NO_COLOR": "1"}
    return run_in_process([*args, "--db", url], env, folder)


def test_import_says_how_many_customers_and_pairs_it_did_not_list(db_url: str, tmp_path: Path) -> None:
    url = at_head(db_url)
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    assert _cli(url, tmp_path, "catalog", "apply", "catalog.yaml")[0] == 0
    events = []
    for c in CUSTOMERS:
        # before the subscription's start: no subscription takes it
        events.append({"id": f"{c}-early", "customer": c, "meter": "api_calls", "timestamp": "2026-09-15T00:00:00Z"})
        # taken by the subscription, counted by no charge: unpriced
        events.append({"id": f"{c}-other", "customer": c, "meter": "other_calls", "timestamp": "2026-10-15T00:00:00Z"})
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")

    code, _, err = _cli(url, tmp_path, "events", "import", "events.jsonl")
    assert code == 0
    lines = err.splitlines()
    assert sum(line.startswith("no subscription: ") for line in lines) == 20
    assert "… and 3 more customers without a subscription for some events (use --json)" in lines
    assert sum(line.startswith("unpriced: ") for line in lines) == 20
    assert any(line.startswith("… and 3 more unpriced (customer, meter) pairs") for line in lines)

    code, out, _ = _cli(url, tmp_path, "events", "import", "events.jsonl", "--dry-run", "--json")
    report = json.loads(out)
    assert len(report["outside_subscriptions"]) == 23 and len(report["unpriced"]) == 23


def test_cutover_refusal_counts_the_subscriptions_it_does_not_name() -> None:
    risks = [f"s{n:02d}: 1 period(s) before 2026-12-01 are already on final ratecard invoices" for n in range(25)]
    message = str(CutoverRefused(risks))
    assert message.count("are already on final ratecard invoices") == 20
    assert "… and 5 more (`ratecard cutover plan` lists them all)" in message
    assert "s19:" in message and "s20:" not in message
    assert "… and" not in str(CutoverRefused(risks[:20]))
