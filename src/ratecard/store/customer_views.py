"""What the console's customer pages read: customers of the current catalog version searched and
paged inside the database, the invoice figures of a page of customers, and a customer's events
per day and meter.

Customers live in the catalog document (catalog_versions.document, JSON text). Reading them with
the database's JSON functions (SQLite's json_each, PostgreSQL's jsonb_array_elements) lets the
search, the order and LIMIT/OFFSET run in SQL: a page of 50 never builds 10,000 customer objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from .db import Store

DAY_US = 86_400_000_000
_LATEST = "(SELECT MAX(version) FROM catalog_versions WHERE environment = :env)"


@dataclass(frozen=True)
class CustomerRow:
    reference: str
    name: str | None
    currency: str | None  # the customer's own; None: its plans' currency applies


@dataclass(frozen=True)
class InvoiceFigures:
    open_drafts: int
    last_total: Decimal | None  # the latest final invoice's total
    last_currency: str | None
    last_number: str | None


def _like(search: str) -> str:
    """A LIKE pattern matching `search` anywhere, case-insensitively, its wildcards taken literally."""
    escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def page_customers(store: Store, environment: str, search: str, limit: int, offset: int) -> list[CustomerRow]:
    """Customers of the environment's current catalog whose reference or name holds `search`
    (case-insensitive; '' matches all), ordered by reference: `limit` of them from `offset`."""
    params: dict[str, Any] = {"env": environment, "limit": limit, "offset": offset}
    where = f"v.environment = :env AND v.version = {_LATEST}"
    if search:
        params["pattern"] = _like(search)
        where += (" AND (LOWER(c_reference) LIKE :pattern ESCAPE '\\' "
                  "OR LOWER(COALESCE(c_name, '')) LIKE :pattern ESCAPE '\\')")
    if store.is_postgres:
        # json, not jsonb: the text is parsed once, without building the binary form of every subscription
        sql = ("SELECT c_reference, c_name, c_currency FROM catalog_versions v CROSS JOIN LATERAL "
               "json_array_elements(CAST(v.document AS json) -> 'customers') AS c(value) CROSS JOIN LATERAL "
               "(SELECT c.value ->> 'reference' AS c_reference, c.value ->> 'name' AS c_name, "
               "c.value ->> 'currency' AS c_currency) AS f "
               f"WHERE {where} ORDER BY c_reference COLLATE \"C\" LIMIT :limit OFFSET :offset")
    else:
        sql = (f"SELECT json_extract(c.value, '$.reference') AS c_reference, json_extract(c.value, '$.name') AS c_name, "
               f"json_extract(c.value, '$.currency') AS c_currency FROM catalog_versions v, "
               f"json_each(v.document, '$.customers') AS c WHERE {where} "
               "ORDER BY c_reference LIMIT :limit OFFSET :offset")
    with store.engine.connect() as connection:
        return [CustomerRow(*row) for row in connection.execute(text(sql), params)]


def invoice_figures(store: Store, environment: str, customers: Sequence[str]) -> dict[str, InvoiceFigures]:
    """Per customer: its open (live) drafts and its latest final invoice, in two indexed queries."""
    if not customers:
        return {}
    params: dict[str, Any] = {"env": environment, **{f"c{i}": name for i, name in enumerate(customers)}}
    slots = ", ".join(f":c{i}" for i in range(len(customers)))
    drafts_sql = ("SELECT customer, COUNT(*) FROM invoices WHERE environment = :env AND status = 'draft' "
                  f"AND mode = 'live' AND customer IN ({slots}) GROUP BY customer")
    last_sql = ("SELECT customer, total, currency, number FROM (SELECT customer, total, currency, number, "
                "ROW_NUMBER() OVER (PARTITION BY customer ORDER BY finalized_at DESC, id DESC) AS position "
                "FROM invoices WHERE environment = :env AND status = 'final' AND kind = 'invoice' "
                f"AND customer IN ({slots})) AS ranked WHERE position = 1")
    with store.engine.connect() as connection:
        drafts = dict(connection.execute(text(drafts_sql), params).all())
        last = {row[0]: row[1:] for row in connection.execute(text(last_sql), params)}
    figures = {}
    for customer in customers:
        total, currency, number = last.get(customer, (None, None, None))
        figures[customer] = InvoiceFigures(int(drafts.get(customer, 0)),
                                           Decimal(str(total)) if total is not None else None, currency, number)
    return figures


def daily_events(store: Store, environment: str, customer: str, start_us: int, end_us: int) -> list[tuple[int, str, int]]:
    """(day since `start_us`, event meter, matched events) of one customer in [start_us, end_us):
    one range of the usage index, grouped by day and meter."""
    # SQLite: the unary + keeps the planner off the status index (every matched event of the
    # environment) and on the usage index's range for this customer
    status = "status" if store.is_postgres else "+status"
    sql = ("SELECT (ts - :start) / :day AS day, meter, COUNT(*) FROM events "
           "WHERE environment = :env AND customer = :customer AND ts >= :start AND ts < :end "
           f"AND {status} = 'matched' AND deleted_at IS NULL GROUP BY (ts - :start) / :day, meter ORDER BY 1, 2")
    params = {"env": environment, "customer": customer, "start": start_us, "end": end_us, "day": DAY_US}
    with store.engine.connect() as connection:
        return [(int(day), meter, int(count)) for day, meter, count in connection.execute(text(sql), params)]
