"""Cohorts, customer billing modes, the cutover record and parallel-run reports: rows only.

The rules (who may join, when promotion takes effect) live in golive/cohorts.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, update

from .db import Store
from .schema import cohorts, customer_modes, cutovers, parallel_runs


@dataclass
class CohortRow:
    name: str
    description: str | None
    created_at: int
    promoted_at: int | None
    rolled_back_at: int | None
    members: dict[str, int | None]  # customer -> live_from (None: shadow)


@dataclass
class ParallelRun:
    id: int
    cohort: str
    cycle: str
    legacy_file: str
    created_at: int
    lines_compared: int
    differences: int
    clean: bool
    summary: dict[str, Any]


class CohortExists(ValueError):
    pass


def create_cohort(store: Store, environment: str, name: str, description: str | None, now_us: int) -> None:
    with store.engine.begin() as connection:
        found = connection.execute(select(cohorts.c.name).where(
            cohorts.c.environment == environment, cohorts.c.name == name)).first()
        if found:
            raise CohortExists(f"cohort {name!r} already exists")
        connection.execute(insert(cohorts).values(environment=environment, name=name, description=description,
                                                  created_at=now_us))


def load_cohorts(store: Store, environment: str, name: str | None = None) -> list[CohortRow]:
    query = select(cohorts).where(cohorts.c.environment == environment).order_by(cohorts.c.created_at, cohorts.c.name)
    members = select(customer_modes.c.cohort, customer_modes.c.customer, customer_modes.c.live_from).where(
        customer_modes.c.environment == environment, customer_modes.c.cohort.is_not(None))
    if name is not None:
        query = query.where(cohorts.c.name == name)
        members = members.where(customer_modes.c.cohort == name)
    with store.engine.connect() as connection:
        rows = {row.name: CohortRow(row.name, row.description, row.created_at, row.promoted_at,
                                    row.rolled_back_at, {}) for row in connection.execute(query)}
        for cohort, customer, live_from in connection.execute(members.order_by(customer_modes.c.customer)):
            if cohort in rows:
                rows[cohort].members[customer] = live_from
    return list(rows.values())


def cohort_of(store: Store, environment: str, customers: Iterable[str]) -> dict[str, str | None]:
    """customer -> the cohort it belongs to (None: has a mode row without a cohort)."""
    wanted = list(customers)
    found: dict[str, str | None] = {}
    with store.engine.connect() as connection:
        held = connection.execute(select(func.count()).select_from(customer_modes)
                                  .where(customer_modes.c.environment == environment)).scalar() or 0
        if held <= len(wanted):  # asked about every customer (the cutover plan): the few mode rows, read once
            asked = set(wanted)
            rows = connection.execute(select(customer_modes.c.customer, customer_modes.c.cohort)
                                      .where(customer_modes.c.environment == environment))
            return {customer: cohort for customer, cohort in rows if customer in asked}
        for start in range(0, len(wanted), 900):
            chunk = wanted[start:start + 900]
            query = select(customer_modes.c.customer, customer_modes.c.cohort).where(
                customer_modes.c.environment == environment, customer_modes.c.customer.in_(chunk))
            found.update({customer: cohort for customer, cohort in connection.execute(query)})
    return found


def set_members(store: Store, environment: str, cohort: str, live_from: Mapping[str, int | None], now_us: int,
                *, promoted_at: int | None = None, rolled_back_at: int | None = None) -> None:
    """Insert or update the members' modes in one transaction; stamps the cohort when asked."""
    with store.engine.begin() as connection:
        customers = list(live_from)
        for start in range(0, len(customers), 900):
            connection.execute(delete(customer_modes).where(
                customer_modes.c.environment == environment,
                customer_modes.c.customer.in_(customers[start:start + 900])))
        if customers:
            connection.execute(insert(customer_modes), [
                {"environment": environment, "customer": customer, "cohort": cohort, "live_from": start_us,
                 "updated_at": now_us} for customer, start_us in live_from.items()])
        stamps: dict[str, Any] = {}
        if promoted_at is not None:
            stamps["promoted_at"] = promoted_at
            stamps["rolled_back_at"] = None
        if rolled_back_at is not None:
            stamps["rolled_back_at"] = rolled_back_at
        if stamps:
            connection.execute(update(cohorts).where(cohorts.c.environment == environment, cohorts.c.name == cohort)
                               .values(**stamps))


def record_cutover(store: Store, environment: str, day: str, live_from_utc: int, now_us: int) -> None:
    """Record (or move) the cutover. `applied_at` stays the first recording: ratecard has billed by
    a cutover since then, and a rollback lists the final invoices issued since (re-recording the
    same date a week later must not hide that week's invoices)."""
    with store.engine.begin() as connection:
        first = connection.execute(
            select(cutovers.c.applied_at).where(cutovers.c.environment == environment)).scalar()
        connection.execute(delete(cutovers).where(cutovers.c.environment == environment))
        connection.execute(insert(cutovers).values(environment=environment, date=day, live_from=live_from_utc,
                                                   applied_at=now_us if first is None else min(first, now_us)))


def cutover_applied_at(store: Store, environment: str) -> int | None:
    """When the environment's cutover was first recorded (µs), or None."""
    with store.engine.connect() as connection:
        return connection.execute(
            select(cutovers.c.applied_at).where(cutovers.c.environment == environment)).scalar()


def save_parallel_run(store: Store, environment: str, cohort: str, cycle: str, legacy_file: str, now_us: int,
                      lines_compared: int, differences: int, summary: dict, report: dict) -> int:
    with store.engine.begin() as connection:
        return connection.execute(insert(parallel_runs).returning(parallel_runs.c.id).values(
            environment=environment, cohort=cohort, cycle=cycle, legacy_file=legacy_file, created_at=now_us,
            lines_compared=lines_compared, differences=differences, clean=differences == 0,
            summary=orjson.dumps(summary).decode(), report=orjson.dumps(report).decode(),
        )).scalar_one()


def parallel_runs_of(store: Store, environment: str, cohort: str) -> list[ParallelRun]:
    query = (select(parallel_runs).where(parallel_runs.c.environment == environment, parallel_runs.c.cohort == cohort)
             .order_by(parallel_runs.c.id))
    with store.engine.connect() as connection:
        return [ParallelRun(row.id, row.cohort, row.cycle, row.legacy_file, row.created_at, row.lines_compared,
                            row.differences, row.clean, orjson.loads(row.summary))
                for row in connection.execute(query)]
