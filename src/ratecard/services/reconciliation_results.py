"""Reconcile an uploaded legacy export and keep the result, for people to read cause by cause.

The comparison is `ratecard reconcile`'s own (services.reconcile); what this adds is the upload
(bytes from a browser, not a path) and the latest result kept per environment, so that the next
page view, and the one after, read it without comparing again.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..domain.instants import to_micros
from ..golive.reconcile import CAUSES
from ..store import Store
from ..store.reconciliations import (
    ORDERS,
    StoredDifference,
    StoredReconciliation,
    difference_page,
    latest_reconciliation,
    save_reconciliation,
)
from .errors import InvalidInput
from .reconcile import EXPLANATIONS, read_legacy_export, reconcile_legacy

# the legacy exports' column mappings shipped with ratecard; a browser never names a file on the server
UPLOAD_MAPPINGS = ("stripe",)
CAUSE_ORDERS = ("cause", "count", "amount")
LINE_ORDERS = ORDERS
MAX_FILE_NAME = 255
__all__ = ["CAUSES", "CAUSE_ORDERS", "EXPLANATIONS", "LINE_ORDERS", "UPLOAD_MAPPINGS", "CauseRow", "StoredDifference",
           "StoredReconciliation", "cause_rows", "latest", "lines_of_cause", "reconcile_upload"]


@dataclass(frozen=True)
class CauseRow:
    cause: str
    explanation: str
    count: int
    money_at_stake: dict[str, Decimal]  # currency -> amount

    @property
    def amount(self) -> Decimal:
        """For ordering only: the sum over currencies (a cause rarely spans two)."""
        return sum(self.money_at_stake.values(), Decimal(0))


def _display_name(file_name: str) -> str:
    name = file_name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "legacy export"
    return name[:MAX_FILE_NAME]


def reconcile_upload(store: Store, content: bytes, file_name: str, now: datetime, created_by: str,
                     environment: str = "live", mapping: str | None = None) -> StoredReconciliation:
    """Read the uploaded export as `ratecard reconcile` reads a file, compare, keep the result."""
    if mapping is not None and mapping not in UPLOAD_MAPPINGS:
        raise InvalidInput(f"{mapping!r} is not one of {', '.join(UPLOAD_MAPPINGS)}", field="mapping")
    if not content.strip():
        raise InvalidInput("the uploaded file is empty", field="file")
    # the lines are kept in the database, and PostgreSQL text cannot hold a NUL character
    if b"\x00" in content:
        raise InvalidInput("the uploaded file holds a NUL character: export it again as UTF-8 text", field="file")
    shown = _display_name(file_name.replace("\x00", ""))
    suffix = ".json" if shown.lower().endswith(".json") else ".csv"
    # a folder of our own, made for this upload: the file is created in it exclusively ("x"),
    # so it is never written over anything, and its name never comes from the browser
    folder = Path(tempfile.mkdtemp(prefix="ratecard-legacy-"))
    path = folder / f"legacy-export{suffix}"
    try:
        with path.open("xb") as handle:
            handle.write(content)
        try:
            legacy = read_legacy_export(path, mapping)
        except InvalidInput as exc:
            raise InvalidInput(exc.message.replace(str(path), shown), field="file") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = reconcile_legacy(store, legacy, environment)
    rows = [{"cause": d.cause, "customer": d.customer, "code": d.code, "service_start": d.service_start.isoformat(),
             "field": d.field, "ratecard": d.ratecard, "legacy": d.legacy, "delta": d.delta,
             "money_at_stake": d.money_at_stake, "currency": d.currency, "detail": d.detail}
            for d in result.differences]
    save_reconciliation(store, environment, to_micros(now), created_by, shown, result.summary(), rows)
    found = latest_reconciliation(store, environment)
    assert found is not None
    return found


def latest(store: Store, environment: str = "live") -> StoredReconciliation | None:
    """The environment's latest reconciliation from an upload, or None."""
    return latest_reconciliation(store, environment)


def cause_rows(reconciliation: StoredReconciliation | None, order: str = "cause") -> list[CauseRow]:
    """The differences by cause, with money at stake per currency: ten causes at most."""
    if order not in CAUSE_ORDERS:
        raise InvalidInput(f"{order!r} is not one of {', '.join(CAUSE_ORDERS)}", field="sort")
    if reconciliation is None:
        return []
    rows = [CauseRow(cause, EXPLANATIONS.get(cause, ""), int(bucket["count"]),
                     {currency: Decimal(amount) for currency, amount in bucket["money_at_stake"].items()})
            for cause, bucket in reconciliation.summary.get("by_cause", {}).items()]
    keys: dict[str, Any] = {
        "cause": lambda row: CAUSES.index(row.cause) if row.cause in CAUSES else len(CAUSES),
        "count": lambda row: (-row.count, row.cause),
        "amount": lambda row: (-row.amount, row.cause),
    }
    return sorted(rows, key=keys[order])


def lines_of_cause(store: Store, reconciliation: StoredReconciliation | None, cause: str, order: str = "position",
                   page: int = 1, per_page: int = 50) -> tuple[list[StoredDifference], bool]:
    """One page of one cause's differences, and whether there is another page."""
    if cause not in CAUSES:
        raise InvalidInput(f"{cause!r} is not one of {', '.join(CAUSES)}", field="cause")
    if order not in LINE_ORDERS:
        raise InvalidInput(f"{order!r} is not one of {', '.join(LINE_ORDERS)}", field="sort")
    if page < 1:
        raise InvalidInput("the page must be 1 or more", field="page")
    if reconciliation is None:
        return [], False
    rows = difference_page(store, reconciliation.id, cause, order, per_page + 1, (page - 1) * per_page)
    return rows[:per_page], len(rows) > per_page
