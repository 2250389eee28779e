"""`subscriptions import` against a customer archived while it runs: the customer's status is
checked again under the lock that stores the import, as `subscriptions create` does, so a customer
archived between the import's check and its save gets no subscription; its row is listed as refused
with the reason, and the other rows are added. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ratecard.services import subscriptions as imports
from ratecard.services.resources import customers
from ratecard.store.catalogs import load_version

from ..e2e.harness import run_in_process
from .scenario import CATALOG, workspace

NOW = datetime(2026, 2, 10, 12, tzinfo=UTC)
WITH_BETA = CATALOG.replace("subscriptions:\n", '  - {reference: beta, name: Beta BV, country: NL, currency: EUR, '
                                                 'tax_rate: "21"}\nsubscriptions:\n', 1)
ROWS = ("reference,customer,plan,start,currency\n"
        "beta-main,beta,pro,2026-03-01,EUR\n"
        "newco-main,newco,pro,2026-03-01,EUR\n")


def _archive_after_the_first_plan(monkeypatch: pytest.MonkeyPatch, store) -> list[int]:  # noqa: ANN001
    """The import reads beta as ACTIVE; another writer archives it before the import is stored."""
    planned = imports.plan_import
    calls: list[int] = []

    def plan_then_archive(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        result = planned(*args, **kwargs)
        if not calls:
            customers.change_status(store, "live", NOW, "beta", "ARCHIVED", ("DRAFT", "ACTIVE", "DEPRECATED"))
        calls.append(1)
        return result

    monkeypatch.setattr(imports, "plan_import", plan_then_archive)
    return calls


def test_a_customer_archived_while_the_import_runs_gets_no_subscription(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = workspace(db_url, WITH_BETA)
    try:
        path = tmp_path / "subs.csv"
        path.write_text(ROWS)
        calls = _archive_after_the_first_plan(monkeypatch, store)
        env = {**{k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"},
               "RATECARD_NOW": "2026-02-10T12:00:00Z", "NO_COLOR": "1"}
        code, out, err = run_in_process(["subscriptions", "import", str(path), "--json", "--db", db_url], env,
                                        Path.cwd())
        assert code == 1, err  # a row refused
        done = orjson.loads(out)
        assert (done["subscriptions"], done["new_customers"], done["catalog_version"]) == (1, 1, 2)
        assert len(done["refused"]) == 1
        assert done["refused"][0].startswith(f"{path}: line 2: subscription 'beta-main': customer 'beta' is ARCHIVED")
        assert len(calls) == 2  # planned again once the archive was seen under the lock
        version, document = load_version(store)
        assert version == 2
        assert sorted(s.reference for s in document.subscriptions) == ["acme-pro", "newco-main"]
    finally:
        store.dispose()
