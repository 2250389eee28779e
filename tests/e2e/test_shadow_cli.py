"""The shadow → promote → rollback → promote cycle through the real CLI, with the clock moving
from September 2026 to January 2027, plus the cutover planner and the commands' bad input."""

from __future__ import annotations

from pathlib import Path

from .harness import Cli, assert_user_error

CATALOG = """\
billing_entity: {name: Shadow Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: api_calls, aggregation: count}
plans:
  - code: api
    currency: EUR
    charges:
      - {code: base, model: flat, amount: "10.00", timing: advance}
      - {code: calls, meter: api_calls, model: per_unit, unit_amount: "0.50"}
customers:
  - {reference: pilot-a, currency: EUR, tax_rate: "0", country: NL}
  - {reference: other-b, currency: EUR, tax_rate: "0", country: NL}
  - {reference: mid-c, currency: EUR, tax_rate: "0", country: NL}
subscriptions:
  - {reference: sub-a, customer: pilot-a, plan: api, start: 2026-09-01}
  - {reference: sub-b, customer: other-b, plan: api, start: 2026-09-01}
  - {reference: sub-c, customer: mid-c, plan: api, start: 2026-09-15}
"""


def _events(customer: str, month: int, count: int) -> str:
    return "".join(f'{{"id": "{customer}-{month}-{n}", "customer": "{customer}", "meter": "api_calls", '
                   f'"timestamp": "2026-{month:02d}-10T12:00:00Z"}}\n' for n in range(count))


def _legacy(cli: Cli, month: int, calls: int) -> Path:
    start, end = f"2026-{month:02d}-01", f"2026-{month + 1:02d}-01"
    return cli.write(f"legacy-{month}.csv", "customer,code,service_start,service_end,quantity,amount\n"
                     f"pilot-a,base,{start},{end},1,10.00\n"
                     f"pilot-a,calls,{start},{end},{calls},{calls * 0.5:.2f}\n")


def _invoices(cli: Cli, customer: str) -> list[tuple[str, str, str, str]]:
    return sorted((i["issue_date"], i["mode"], i["status"], i["total"])
                  for i in cli.ok("invoices", "list", "--json").json() if i["customer"] == customer)


def test_shadow_promote_rollback_promote(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    events = _events("pilot-a", 9, 4) + _events("other-b", 9, 2) + _events("pilot-a", 10, 6) + _events("pilot-a", 11, 8)
    cli.ok("events", "import", cli.write("events.jsonl", events))
    cli.ok("cohort", "create", "pilot", "--description", "first customers on ratecard")
    added = cli.ok("cohort", "add", "pilot", "pilot-a", "--json").json()
    assert added == {"cohort": "pilot", "added": ["pilot-a"]}

    cli.now = "2026-10-02T12:00:00Z"
    cli.ok("invoices", "generate", "--until", "2026-10-01")
    finalized = cli.ok("invoices", "finalize", "--due", "--json").json()["finalized"]
    assert {i["customer"] for i in finalized} == {"other-b", "mid-c"}  # the shadow customer is never finalized
    assert {(mode, status) for _, mode, status, _ in _invoices(cli, "pilot-a")} == {("shadow", "draft")}
    shadow_id = next(i["id"] for i in cli.ok("invoices", "list", "--json").json() if i["customer"] == "pilot-a")
    assert_user_error(cli("invoices", "finalize", str(shadow_id)), 2, "shadow invoice", "nothing was changed")
    september = cli.ok("cohort", "report", "pilot", _legacy(cli, 9, 4), "--json").json()
    assert (september["cycle"], september["clean"], september["summary"]["matched"]) == ("2026-09", True, 2)
    refused = cli("cohort", "promote", "pilot")
    assert_user_error(refused, 2, "1 clean cycle", "--force")

    cli.now = "2026-11-02T12:00:00Z"
    cli.ok("invoices", "generate", "--until", "2026-11-01")
    wrong = cli("cohort", "report", "pilot", _legacy(cli, 10, 5), "--json")
    assert wrong.code == 1 and wrong.json()["clean"] is False
    assert cli.ok("cohort", "report", "pilot", _legacy(cli, 10, 6), "--json").json()["clean_streak"] == 2
    (listed,) = cli.ok("cohort", "list", "--json").json()
    assert (listed["state"], listed["customers"], listed["parallel_runs"], listed["clean_streak"]) == (
        "shadow", 1, 3, 2)
    history = cli.ok("cohort", "history", "pilot").out
    assert "2026-09" in history and "2026-10" in history

    cli.now = "2026-11-20T12:00:00Z"
    promoted = cli.ok("cohort", "promote", "pilot", "--json").json()
    assert promoted["live_from"] == {"pilot-a": "2026-12-01T00:00:00Z"} and promoted["forced"] is False

    cli.now = "2026-12-01T10:00:00Z"
    cli.ok("invoices", "generate", "--until", "2026-12-01")
    december = [i for i in _invoices(cli, "pilot-a") if i[0] == "2026-12-01"]
    # November's usage (8 calls = 4.00) is the legacy system's last bill: shadow; December's fee is ratecard's
    assert december == [("2026-12-01", "live", "draft", "10.00"), ("2026-12-01", "shadow", "draft", "4.00")]
    finalized = cli.ok("invoices", "finalize", "--due", "--json").json()["finalized"]
    assert ("pilot-a", "10.00") in {(i["customer"], i["total"]) for i in finalized}

    cli.now = "2027-01-01T01:00:00Z"
    cli.ok("invoices", "generate", "--until", "2027-01-01")
    rolled = cli.ok("rollback", "--cohort", "pilot", "--json").json()
    assert len(rolled["voided_drafts"]) == 1
    assert [(i["issue_date"], i["total"]) for i in rolled["final_invoices_since_promotion"]] == [
        ("2026-12-01", "10.00")]
    assert cli.ok("cohort", "list", "--json").json()[0]["state"] == "rolled back"
    cli.ok("invoices", "generate", "--until", "2027-01-01")
    january = [i for i in _invoices(cli, "pilot-a") if i[0] == "2027-01-01"]
    assert january == [("2027-01-01", "live", "void", "10.00"), ("2027-01-01", "shadow", "draft", "10.00")]

    cli.now = "2027-01-05T09:00:00Z"
    assert_user_error(cli("cohort", "promote", "pilot"), 2, "0 clean cycle")  # earned again after a rollback
    again = cli.ok("cohort", "promote", "pilot", "--force", "--json").json()
    assert again["live_from"] == {"pilot-a": "2027-02-01T00:00:00Z"}
    assert "live" in cli.ok("cohort", "list").out


def test_cutover_plan_proposes_the_aligned_date(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    plan = cli.ok("cutover", "plan", "--date", "2026-12-10", "--json").json()
    assert (plan["subscriptions"], plan["aligned"]) == (3, 0)
    assert plan["proposal"] == {"date": "2026-12-01", "aligned": 2, "not_aligned": 1}
    rows = {row["subscription"]: row for row in plan["plan"]}
    assert rows["sub-a"]["partial_period"] == {"start": "2026-12-01", "end": "2027-01-01", "billed_by": "legacy"}
    assert rows["sub-a"]["ratecard_bills_from"] == "2027-01-01"
    table = cli.ok("cutover", "plan", "--date", "2026-12-15").out
    assert "proposed: 2026-12-01" in table
    applied = cli.ok("cutover", "apply", "--date", "2026-12-01", "--json").json()
    assert applied["applied"] is True and applied["aligned"] == 2


def test_bad_input(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    cli.ok("cohort", "create", "pilot")
    assert_user_error(cli("cohort", "create", "pilot"), 2, "already exists")
    assert_user_error(cli("cohort", "add", "pilot", "pilot-a", "nobody"), 2, "nobody")
    assert cli.ok("cohort", "list", "--json").json()[0]["customers"] == 0  # nothing half-added
    assert_user_error(cli("cohort", "add", "ghost", "pilot-a"), 2,
                      "no cohort 'ghost'; create it with `ratecard cohort create ghost`")
    # a typo elsewhere names the cohorts there are: creating one would not help a roll back
    for command in (("rollback", "--cohort", "pilt"), ("cohort", "promote", "pilt"), ("cohort", "history", "pilt")):
        refused = cli(*command)
        assert_user_error(refused, 2, "no cohort 'pilt' (the cohorts: pilot)")
        assert "cohort create" not in refused.err
    assert_user_error(cli("cohort", "report", "pilot", cli.write("empty.csv", "")), 2, "empty.csv")
    assert_user_error(cli("rollback", "--cohort", "pilot"), 2, "not promoted")
    assert_user_error(cli("cutover", "plan", "--date", "2026-13-01"), 2, "--date", "YYYY-MM-DD")
