"""The CPU a cached validator's late-windows refresh costs when one final invoice arrives and
N are already read (what each ingest request of every API process paid during a finalization run).

    .venv/bin/python -m bench.late_windows_refresh                     # both stores, N = 20,000
    .venv/bin/python -m bench.late_windows_refresh --stores sqlite --finals 20000 --rounds 20

Per store, in a fresh database: N final invoices (RC-000001..), two per customer, each with a usage
line (its month, billed in arrears) and an advance line, written directly (the refresh reads only
these rows). Then, ROUNDS times, one more final invoice is written and the refresh measured in this
process (time.process_time; the database server's own CPU is not counted):
  - before: the full read every refresh did (store.invoices.finalized_windows) and set_finalized;
  - after: services.events.LateWindows.refresh, warmed once beforehand: it reads the sequences,
    looks up the new number and adds its windows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, update

from ratecard.ingest.validate import EventValidator
from ratecard.services.events import LateWindows
from ratecard.store import Store, open_store
from ratecard.store.catalog_state import fingerprint
from ratecard.store.invoices import finalized_windows
from ratecard.store.schema import invoice_lines, invoice_sequences, invoices

from .stores import postgres_database, postgres_unavailable, sqlite_database

ENV = "live"
MONTH_US = 30 * 86_400_000_000
JAN = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000


def _invoice(number: int) -> tuple[dict, list[dict]]:
    customer = f"c{(number - 1) // 2:05d}"
    start = JAN + ((number - 1) % 2) * MONTH_US
    header = {"id": number, "environment": ENV, "number": f"RC-{number:06d}", "customer": customer,
              "subscription": f"s-{customer}", "status": "final", "currency": "EUR", "timezone": "UTC",
              "boundary_ts": start + MONTH_US, "issue_date": "2026-02-01", "subtotal": Decimal("10"),
              "tax": Decimal("0"), "total": Decimal("10"), "tax_rate": Decimal("0"), "catalog_version": 1,
              "created_at": 1, "updated_at": 1, "finalized_at": number, "draft_number": number}
    lines = [{"invoice_id": number, "position": position, "code": code, "description": code, "kind": kind,
              "service_start": "2026-01-01", "service_end": "2026-02-01", "service_start_ts": begin,
              "service_end_ts": begin + MONTH_US, "quantity": Decimal("1"), "unit_amount": Decimal("5"),
              "amount": Decimal("5")}
             for position, (code, kind, begin) in enumerate((("calls", "usage", start),
                                                             ("base", "advance", start + MONTH_US)))]
    return header, lines


def _write(store: Store, first: int, last: int) -> None:
    with store.engine.begin() as connection:
        for chunk in range(first, last + 1, 2000):
            made = [_invoice(number) for number in range(chunk, min(chunk + 2000, last + 1))]
            connection.execute(insert(invoices), [header for header, _ in made])
            connection.execute(insert(invoice_lines), [line for _, lines in made for line in lines])
        if first == 1:
            connection.execute(insert(invoice_sequences).values(environment=ENV, prefix="RC", last_number=last))
        else:
            connection.execute(update(invoice_sequences).where(invoice_sequences.c.environment == ENV)
                               .values(last_number=last))


def bench_store(kind: str, url: str, finals: int, rounds: int) -> list[dict]:
    store = open_store(url)
    try:
        _write(store, 1, finals)
        now = datetime(2026, 6, 1, tzinfo=UTC)
        full, kept = EventValidator(None, now), EventValidator(None, now)
        late = LateWindows()
        late.refresh(store, ENV, kept, fingerprint(store, ENV).finals)
        before, after = [], []
        for number in range(finals + 1, finals + rounds + 1):
            _write(store, number, number)
            stamp = fingerprint(store, ENV).finals
            started = time.process_time()
            full.set_finalized(finalized_windows(store, ENV))
            before.append((time.process_time() - started) * 1000)
            started = time.process_time()
            late.refresh(store, ENV, kept, stamp)
            after.append((time.process_time() - started) * 1000)
            assert kept.finalized == full.finalized
        assert late.full_reads == 1
    finally:
        store.dispose()
    return [{"store": kind, "finals": finals, "rounds": rounds,
             "before_ms": round(statistics.median(before), 2), "after_ms": round(statistics.median(after), 3)}]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.late_windows_refresh", description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--finals", type=int, default=20_000, help="final invoices already read")
    parser.add_argument("--rounds", type=int, default=20, help="one new final each; the median is shown")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if "postgresql" in stores and (reason := postgres_unavailable()) is not None:
        raise SystemExit(f"PostgreSQL is unreachable ({reason}); run with --stores sqlite to skip it")
    with tempfile.TemporaryDirectory() as folder:
        for kind in stores:
            database = sqlite_database(Path(folder)) if kind == "sqlite" else postgres_database("ratecard_bench_windows")
            with database as url:
                for row in bench_store(kind, url, args.finals, args.rounds):
                    print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
