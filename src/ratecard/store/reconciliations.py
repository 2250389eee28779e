"""The latest reconciliation per environment and its differences: rows only.

The comparison and the causes are golive/reconcile.py's; this keeps its result for the next
page view, one cause's lines at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Float, cast, delete, insert, select

from .db import Store
from .schema import reconciliation_differences, reconciliations

differences = reconciliation_differences
# a fixed set of orders, each ending on the report's own order so that pages never overlap
_ORDERS: dict[str, tuple[Any, ...]] = {
    "position": (differences.c.position,),
    "customer": (differences.c.customer, differences.c.position),
    "code": (differences.c.code, differences.c.position),
    "service_start": (differences.c.service_start, differences.c.position),
}
ORDERS = (*_ORDERS, "money")


@dataclass(frozen=True)
class StoredReconciliation:
    id: int
    created_at: int  # µs
    created_by: str
    legacy_file: str
    summary: dict[str, Any]


@dataclass(frozen=True)
class StoredDifference:
    position: int
    cause: str
    customer: str
    code: str
    service_start: str
    field: str
    ratecard: Decimal | None
    legacy: Decimal | None
    delta: Decimal | None
    money_at_stake: Decimal
    currency: str | None
    detail: dict[str, Any]


def save_reconciliation(store: Store, environment: str, now_us: int, created_by: str, legacy_file: str,
                        summary: dict[str, Any], rows: Sequence[dict[str, Any]]) -> int:
    """Keep this result as the environment's latest; the previous one goes (one transaction)."""
    with store.engine.begin() as connection:
        previous = [row.id for row in connection.execute(
            select(reconciliations.c.id).where(reconciliations.c.environment == environment))]
        if previous:
            connection.execute(delete(differences).where(differences.c.reconciliation_id.in_(previous)))
            connection.execute(delete(reconciliations).where(reconciliations.c.id.in_(previous)))
        new_id = connection.execute(insert(reconciliations).returning(reconciliations.c.id).values(
            environment=environment, created_at=now_us, created_by=created_by, legacy_file=legacy_file,
            summary=orjson.dumps(summary).decode())).scalar_one()
        if rows:
            connection.execute(insert(differences), [
                {**row, "reconciliation_id": new_id, "position": position,
                 "detail": orjson.dumps(row.get("detail") or {}).decode()}
                for position, row in enumerate(rows)])
    return new_id


def latest_reconciliation(store: Store, environment: str) -> StoredReconciliation | None:
    query = (select(reconciliations).where(reconciliations.c.environment == environment)
             .order_by(reconciliations.c.id.desc()).limit(1))
    with store.engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    return StoredReconciliation(row.id, row.created_at, row.created_by, row.legacy_file, orjson.loads(row.summary))


def difference_page(store: Store, reconciliation_id: int, cause: str, order: str, limit: int,
                    offset: int) -> list[StoredDifference]:
    """One cause's differences, `limit` from `offset`, in one of ORDERS ("money": largest first)."""
    if order == "money":
        # TEXT on SQLite: compared as a number for the order only, the value read stays exact
        amount = cast(differences.c.money_at_stake, Float) if not store.is_postgres else differences.c.money_at_stake
        columns: tuple[Any, ...] = (amount.desc(), differences.c.position)
    else:
        columns = _ORDERS[order]
    query = (select(differences).where(differences.c.reconciliation_id == reconciliation_id,
                                       differences.c.cause == cause)
             .order_by(*columns).limit(limit).offset(offset))
    with store.engine.connect() as connection:
        return [StoredDifference(row.position, row.cause, row.customer, row.code, row.service_start, row.field,
                                 row.ratecard, row.legacy, row.delta, row.money_at_stake, row.currency,
                                 orjson.loads(row.detail))
                for row in connection.execute(query)]
