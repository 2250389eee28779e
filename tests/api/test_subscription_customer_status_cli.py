"""The CLI's `subscriptions create` and `subscriptions import` refuse a customer that is not ACTIVE
the way the Solvimon API's create does (one rule, services.resources.customers), on SQLite and
PostgreSQL: create exits 2 with one line naming --customer and the customer's status, storing
nothing; import leaves that row out with its reason, adds the others and exits 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ratecard.cli import main

from ..solvimon_sdk import m, sv
from .test_solvimon_sdk import Live, V, create_customer
from .test_solvimon_subscription_atomic import CREATE, seen
from .test_solvimon_subscriptions import pin, plans_and_customer, server

__all__ = ["server"]


def _customers(server: Live) -> None:
    """acme ACTIVE, gone ARCHIVED (active once), later still DRAFT (never activated)."""
    plans_and_customer(server)
    customers = server.api(sv.CustomersApi)
    for reference in ("gone", "later"):
        create_customer(customers, m.CustomerCreateRequest(
            type="ORGANIZATION", reference=reference, organization=m.OrganizationCreateRequest(legal_name=reference)))
    customers.post_customers_by_resource_id_or_reference_activate(V, "gone")
    assert server.http("POST", "/v1/customers/gone/archive").status_code == 200


def test_create_refuses_a_customer_that_is_not_active_as_the_api_does(
        server: Live, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    _customers(server)
    before = seen(server)
    api = server.http("POST", "/v1/pricing-plan-subscriptions", json={**CREATE, "customer_reference": "gone"})
    assert (api.status_code, api.json()["code"], api.json()["field"]) == (400, "INVALID_OPERATION", "customer_id"), api.text
    for customer, status in (("gone", "ARCHIVED"), ("later", "DRAFT")):
        for dry in ([], ["--dry-run"]):
            capsys.readouterr()
            code = main(["subscriptions", "create", f"{customer}-main", "--customer", customer, "--plan", "basic",
                         "--start", "2026-05-01", *dry, "--db", server.db_url])
            err = capsys.readouterr().err.strip()
            assert code == 2, (customer, dry, err)
            assert err.count("\n") == 0 and err.startswith(f"error: --customer: customer '{customer}' is {status}")
    assert seen(server) == before  # nothing stored
    # the ACTIVE customer is subscribed as before
    assert main(["subscriptions", "create", "acme-main", "--customer", "acme", "--plan", "basic",
                 "--start", "2026-05-01", "--db", server.db_url]) == 0
    assert [s["reference"] for s in server.http("GET", "/v1/subscriptions").json()["data"]] == ["acme-main"]


def test_import_refuses_the_rows_of_customers_that_are_not_active_and_keeps_the_others(
        server: Live, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    _customers(server)
    version = server.http("GET", "/v1/catalog").json()["version"]
    rows = tmp_path / "subs.csv"
    rows.write_text("reference,customer,plan,start,currency\n"
                    "acme-main,acme,basic,2026-05-01,EUR\n"
                    "gone-main,gone,basic,2026-05-01,EUR\n"
                    "later-main,later,basic,2026-05-01,EUR\n"
                    "newco-main,newco,basic,2026-05-01,EUR\n")
    capsys.readouterr()
    assert main(["subscriptions", "import", str(rows), "--dry-run", "--json", "--db", server.db_url]) == 1
    dry = json.loads(capsys.readouterr().out)
    assert (dry["subscriptions"], dry["new_customers"], dry["catalog_version"]) == (2, 1, version)
    assert main(["subscriptions", "import", str(rows), "--db", server.db_url]) == 1
    said = capsys.readouterr()
    refused = said.err.strip().splitlines()
    assert len(refused) == 2
    assert refused[0].startswith(f"refused: {rows}: line 3: subscription 'gone-main': customer 'gone' is ARCHIVED")
    assert refused[1].startswith(f"refused: {rows}: line 4: subscription 'later-main': customer 'later' is DRAFT")
    assert f"added (catalog version {version + 1}) 2 subscription(s) and 1 new customer(s); 2 row(s) refused" \
        in said.out
    listed = sorted(s["reference"] for s in server.http("GET", "/v1/subscriptions").json()["data"])
    assert listed == ["acme-main", "newco-main"]
    # nothing to add: every row refused (or there already); no new catalog version
    only = tmp_path / "only.csv"
    only.write_text("reference,customer,plan,start\ngone-2,gone,basic,2026-05-01\n")
    assert main(["subscriptions", "import", str(only), "--json", "--db", server.db_url]) == 1
    assert json.loads(capsys.readouterr().out)["catalog_version"] == version + 1
    assert server.http("GET", "/v1/catalog").json()["version"] == version + 1
