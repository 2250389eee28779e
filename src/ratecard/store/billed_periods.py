"""Which service periods are billed already, and by whom: the cutover planner's evidence that a
date would bill a period twice (once by ratecard's final invoices, once by the legacy system)."""

from __future__ import annotations

from sqlalchemy import select

from .db import Store
from .schema import invoice_lines, invoices


def final_live_windows(store: Store, environment: str) -> dict[str, list[tuple[int, int]]]:
    """subscription -> service windows [start, end) in µs on final live invoices (ratecard billed them)."""
    query = (
        select(invoices.c.subscription, invoice_lines.c.service_start_ts, invoice_lines.c.service_end_ts)
        .select_from(invoice_lines.join(invoices, invoices.c.id == invoice_lines.c.invoice_id))
        .where(invoices.c.environment == environment, invoices.c.status == "final", invoices.c.mode == "live",
               invoices.c.kind == "invoice")
    )
    found: dict[str, list[tuple[int, int]]] = {}
    with store.engine.connect() as connection:
        for subscription, start, end in connection.execute(query):
            found.setdefault(subscription, []).append((start, end))
    return found


def shadow_billed_starts(store: Store, environment: str, now_us: int) -> dict[str, list[int]]:
    """subscription -> service starts (µs) on shadow invoices dated up to now: the legacy system's
    periods, which it has billed."""
    query = (
        select(invoices.c.subscription, invoice_lines.c.service_start_ts)
        .select_from(invoice_lines.join(invoices, invoices.c.id == invoice_lines.c.invoice_id))
        .where(invoices.c.environment == environment, invoices.c.mode == "shadow", invoices.c.status != "void",
               invoices.c.kind == "invoice", invoices.c.boundary_ts <= now_us)
    )
    found: dict[str, list[int]] = {}
    with store.engine.connect() as connection:
        for subscription, start in connection.execute(query):
            found.setdefault(subscription, []).append(start)
    return found
