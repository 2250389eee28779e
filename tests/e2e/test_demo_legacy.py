"""The demo's legacy export (examples/make_legacy.py): each planted difference is found with the
cause its docstring promises, and nothing else is reported."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from ratecard.clock import now
from ratecard.golive.legacy import load_mapping, read_legacy
from ratecard.golive.reconcile import reconcile
from ratecard.services.catalog import current_catalog
from ratecard.services.demo import run_demo
from ratecard.store import open_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _make_legacy():  # noqa: ANN202 - the example script as a module
    spec = importlib.util.spec_from_file_location("make_legacy", EXAMPLES / "make_legacy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_planted_difference_is_named(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    workspace = tmp_path / "examples"
    workspace.mkdir()
    (workspace / "catalog.yaml").write_bytes((EXAMPLES / "catalog.yaml").read_bytes())
    subprocess.run([sys.executable, str(EXAMPLES / "generate_events.py"), "--catalog", str(workspace / "catalog.yaml"),
                    "--out", str(workspace / "events.jsonl"), "--month", "2026-10"], check=True, capture_output=True)
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    demo_store = open_store(db)
    run_demo(demo_store, workspace, now())
    demo_store.dispose()
    module = _make_legacy()
    legacy_file = tmp_path / "legacy.csv"
    monkeypatch.setattr(sys, "argv", ["make_legacy.py", "--db", db, "--out", str(legacy_file)])
    assert module.main() == 0

    store = open_store(db)
    _, catalog = current_catalog(store)
    result = reconcile(store, catalog, read_legacy(legacy_file, load_mapping(None)))
    store.dispose()
    found = {(d.customer, d.code, d.field, d.cause) for d in result.differences}
    assert {(customer, cause) for customer, _, _, cause in found} == {
        ("ravenstone", "override"), ("kestrel", "tier_model"), ("thistle", "tax_rate"),
        ("harborlight", "rounding"), ("harborlight", "missing_in_ratecard"), ("orbitale", "missing_in_legacy"),
        ("lodestar", "unexplained"),
    }
    assert ("kestrel", "gpt4o_tokens", "amount", "tier_model") in found
    assert ("lodestar", "platform", "amount", "unexplained") in found
