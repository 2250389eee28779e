"""Bring existing subscriptions (and their customers) over from another system's export."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..domain.instants import to_micros
from ..golive.subscriptions_import import SubscriptionImportError, plan_import
from ..golive.subscriptions_import import load_mapping as load_columns
from ..store import Store
from ..store.catalogs import load_version, save_version
from .errors import InvalidInput, NoCatalog
from .reconcile import mapping_path


def import_subscriptions(store: Store, path: Path, now: datetime, environment: str = "live", *,
                         mapping: str | None = None, bill_from: date | None = None,
                         dry_run: bool = False) -> dict[str, Any]:
    """Add the file's subscriptions to the applied catalog as a new version, with bill_from so periods the
    previous system billed are never billed again. All or nothing; a dry run stores nothing."""
    loaded = load_version(store, environment)
    if loaded is None:
        raise NoCatalog("no catalog has been applied yet; apply one with the plans first (`ratecard catalog apply`)")
    try:
        plan = plan_import(loaded[1], path, load_columns(mapping_path(mapping)), bill_from)
    except SubscriptionImportError as exc:
        raise InvalidInput(str(exc)) from None
    if plan.problems:
        raise InvalidInput(f"{path}: {len(plan.problems)} problem(s); nothing was imported", details=plan.problems)
    version, _ = (loaded[0], False) if dry_run else save_version(store, plan.document, to_micros(now), environment)
    return {"file": str(path), "subscriptions": plan.subscriptions, "new_customers": plan.customers,
            "dry_run": dry_run, "catalog_version": version}
