"""Property: splitting a period's events into two imports never changes the invoice."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from ratecard.billing.run import generate_invoices
from ratecard.ingest.importer import import_file
from ratecard.store.invoices import list_invoices

from ..migrated import release
from .scenario import NOW, current, workspace, write_jsonl

METERS = st.sampled_from([("tokens", "tokens"), ("gb", "gb"), ("seats", "delta"), ("api_calls", None)])
VALUES = st.decimals(min_value=-50, max_value=5000, places=3, allow_nan=False, allow_infinity=False)
EVENT = st.tuples(METERS, VALUES, st.integers(min_value=0, max_value=16 * 24 * 3600 - 1),
                  st.sampled_from(["gpt-4o", "mini"]))


def _events(drawn: list) -> list[dict]:
    events = []
    for index, ((meter, field), value, offset, model) in enumerate(drawn):
        day, seconds = divmod(offset, 24 * 3600)
        timestamp = f"2026-01-{15 + day:02d}T{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}+01:00"
        if meter in ("tokens", "gb"):
            value = abs(value)
        properties = {field: str(value), "model": model} if field else {"model": model}
        events.append({"id": f"p{index}", "customer": "acme", "meter": meter, "timestamp": timestamp,
                       "properties": properties})
    return events


def _invoice_after(url: str, folder: Path, batches: list[list[dict]]) -> list[tuple]:
    store, _ = workspace(url)
    _, catalog = current(store)
    for number, batch in enumerate(batches):
        import_file(store, catalog, write_jsonl(folder / f"{uuid.uuid4().hex}-{number}.jsonl", batch), NOW)
    version, catalog = current(store)
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    result = [(i.issue_date, i.subtotal, i.tax, i.total, [(x.code, x.quantity, x.amount) for x in i.lines])
              for i in list_invoices(store)]
    store.dispose()
    return result


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.lists(EVENT, min_size=1, max_size=25), split=st.integers(min_value=0, max_value=25),
       data=st.data())
def test_splitting_events_into_two_imports_gives_the_same_invoice(db_url: str, drawn, split, data) -> None:
    events = _events(drawn)
    order = data.draw(st.permutations(events))
    with (tempfile.TemporaryDirectory() as folder, _fresh_for_one_example(db_url, folder, "a") as a,
          _fresh_for_one_example(db_url, folder, "b") as b):
        whole = _invoice_after(a, Path(folder), [events])
        parts = _invoice_after(b, Path(folder), [order[:split], order[split:]])
    assert whole == parts


def _fresh(url: str, folder: str, name: str) -> str:
    """A separate database per run: a new SQLite file, or a new schema on PostgreSQL."""
    if url.startswith("sqlite"):
        return f"sqlite:///{folder}/{name}-{uuid.uuid4().hex}.db"
    base, _, options = url.partition("?options=-csearch_path%3D")
    schema = f"{options}_{name}{uuid.uuid4().hex[:6]}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{base}?options=-csearch_path%3D{schema}"


@contextmanager
def _fresh_for_one_example(url: str, folder: str, name: str) -> Iterator[str]:
    """`_fresh`, whose PostgreSQL schema goes when the example ends (back to tests/migrated.py's
    pool of copies at head when it can) rather than with the test's, after every example."""
    fresh = _fresh(url, folder, name)
    try:
        yield fresh
    finally:
        if not url.startswith("sqlite"):
            base, _, schema = fresh.partition("?options=-csearch_path%3D")
            engine = create_engine(base, isolation_level="AUTOCOMMIT")
            release(engine, base, schema)
            engine.dispose()
