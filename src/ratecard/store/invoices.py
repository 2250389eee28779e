"""Invoice rows: drafts written and refreshed by invoice runs, listed, finalized, voided.

Numbers are assigned at finalization from a per-environment sequence in the same
transaction as the status change, so numbers are gapless and an invoice gets exactly one.
Before that an invoice is called by its draft number (DRAFT-<n>), counted within its environment
and given when the invoice is first written.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from operator import attrgetter
from typing import Any

from sqlalchemy import bindparam, delete, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from ..domain.invoice import InvoiceStateError, check_transition
from .db import Store
from .schema import draft_sequences, events, invoice_lines, invoice_sequences, invoices


@dataclass
class LineRecord:
    code: str
    description: str
    kind: str
    service_start: str
    service_end: str
    service_start_ts: int
    service_end_ts: int
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal
    tiers: str | None = None  # a tiered usage line's parts as JSON (domain.tiers.parts_json)
    # a charge priced per dimension: the filter's code (None: the default price) and the group as a
    # JSON object of property -> value (None: no group_by, or no usage) (domain.dimensions)
    filter_code: str | None = None
    group_values: str | None = None

    def same_as(self, other: LineRecord) -> bool:
        return self.__dict__ == other.__dict__


@dataclass
class InvoiceRecord:
    id: int | None
    number: str | None
    customer: str
    subscription: str
    status: str
    currency: str
    timezone: str
    boundary_ts: int
    issue_date: str
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    tax_rate: Decimal
    catalog_version: int
    lines: list[LineRecord] = field(default_factory=list)
    created_at: int = 0
    updated_at: int = 0
    finalized_at: int | None = None
    mode: str = "live"  # live | shadow (computed for comparison, never finalized)
    kind: str = "invoice"  # invoice | credit_note
    revision: int = 0  # n-th correction of the cut
    corrects: int | None = None  # id of the invoice this credit note or replacement corrects
    draft_number: int | None = None  # DRAFT-<n>, counted per environment; given when first written
    archived_at: int | None = None  # archived (µs): left out of the lists
    # each line's number as stored (its `position`), in the order of `lines`: a one-off draft's line
    # keeps its number when another line is deleted; empty for an invoice not read from the store
    line_positions: list[int] = field(default_factory=list, compare=False)

    def line_number(self, index: int) -> int:
        """The stored number of the line at `index` (its index when the invoice was not read back)."""
        return self.line_positions[index] if len(self.line_positions) == len(self.lines) else index

    @property
    def is_one_off(self) -> bool:
        """A one-off invoice, written by hand for a customer: it bills no subscription's cut."""
        return self.subscription == ONE_OFF

    @property
    def display_number(self) -> str:
        """Final invoices show their number; drafts and voided drafts show their draft reference."""
        return self.number or draft_reference(self.draft_number)

    def same_content(self, other: InvoiceRecord) -> bool:
        return (
            (self.subtotal, self.tax, self.total, self.currency, self.tax_rate)
            == (other.subtotal, other.tax, other.total, other.currency, other.tax_rate)
            and len(self.lines) == len(other.lines)
            and all(a.same_as(b) for a, b in zip(self.lines, other.lines, strict=True))
        )


def draft_reference(draft_number: int | None) -> str:
    """DRAFT-<n>: how people name an invoice before it has a number (DRAFT alone before it is stored)."""
    return "DRAFT" if draft_number is None else f"DRAFT-{draft_number}"


# the subscription of a one-off invoice: none (a subscription's reference has at least one character),
# so invoice runs, which recompute the cuts of subscriptions, never touch it
ONE_OFF = ""


class InvoiceNotFound(LookupError):
    pass


class InvoiceChanged(InvoiceStateError):
    """Another process moved the invoice between reading its status and writing the new one;
    nothing was written (the transaction rolled back, its number returned to the sequence)."""


HEADER = ("customer", "subscription", "status", "currency", "timezone", "boundary_ts", "issue_date", "subtotal",
          "tax", "total", "tax_rate", "catalog_version", "mode", "kind", "revision", "corrects")


def existing_cuts(store: Store, environment: str) -> dict[tuple[str, int, str], tuple[int, str, int | None]]:
    """(subscription, boundary, mode) -> (invoice id, status, draft number) of the cut's current
    invoice: its latest revision (a corrected cut is represented by its replacement, not the
    original). Corrections issued as documents of their own stand for no cut."""
    query = (
        select(invoices.c.subscription, invoices.c.boundary_ts, invoices.c.mode, invoices.c.id, invoices.c.status,
               invoices.c.draft_number)
        .where(invoices.c.environment == environment, invoices.c.kind == "invoice",
               invoices.c.subscription != ONE_OFF,  # one-off invoices stand for no cut
               invoices.c.corrects.is_(None) | (invoices.c.revision > 0))
        .order_by(invoices.c.revision)
    )
    with store.engine.connect() as connection:
        return {(row[0], row[1], row[2]): (row[3], row[4], row[5]) for row in connection.execute(query)}


def save_drafts(store: Store, environment: str, drafts: Sequence[InvoiceRecord], now_us: int,
                then: Callable[[Connection, list[InvoiceRecord]], None] | None = None) -> tuple[int, int]:
    """Insert new drafts and refresh changed ones (only while still draft). Returns (created, updated).
    `then` writes what goes with the new drafts (their webhook deliveries), given them with their
    ids, in the same transaction.

    New drafts go in as one multi-row INSERT … RETURNING and all their lines as one
    executemany: a batch costs a few round trips, not two per invoice.
    """
    updated = 0
    new = [draft for draft in drafts if draft.id is None]
    with store.engine.begin() as connection:
        # first, so the counter's row lock is held from the start: a concurrent run of the same
        # environment waits here and then takes the numbers after these
        numbers = reserve_draft_numbers(connection, environment, len(new)) if new else []
        existing_ids = [d.id for d in drafts if d.id is not None]
        current = load_invoices(connection, existing_ids) if existing_ids else {}
        lines: list[tuple] = []  # in LINE_COLUMNS order
        ids: list[int] = []
        if new and store.is_postgres:
            lines += _copy_new_postgres(connection, environment, new, numbers, now_us, ids)
        elif new:
            lines += _insert_new_sqlite(connection, environment, new, numbers, now_us, ids)
        if then is not None and new:
            then(connection, [replace(draft, id=invoice_id, draft_number=number, status="draft")
                              for draft, invoice_id, number in zip(new, ids, numbers, strict=True)])
        for draft in drafts:
            if draft.id is None:
                continue
            stored = current.get(draft.id)
            if stored is None or stored.status != "draft" or stored.same_content(draft):
                continue
            result = connection.execute(
                update(invoices)
                .where(invoices.c.id == draft.id, invoices.c.status == "draft")
                .values(updated_at=now_us, **{name: getattr(draft, name) for name in HEADER})
            )
            if result.rowcount:
                connection.execute(delete(invoice_lines).where(invoice_lines.c.invoice_id == draft.id))
                lines += line_tuples(draft.id, draft.lines)
                updated += 1
        if lines and store.is_postgres:
            _copy_rows(connection, "invoice_lines", LINE_COLUMNS, lines)
        elif lines:
            connection.connection.driver_connection.executemany(
                _SQLITE_INSERT_LINES, [_sqlite_row(row, _LINE_MONEY) for row in lines]
            )
    return len(new), updated


# SQLite: the driver's own statements with plain tuples. Through SQLAlchemy, insertmanyvalues
# with sort_by_parameter_order inserts one invoice per statement with its full Python overhead
# (~75% of an invoice run's write time); the values bound are the ones ExactDecimal binds.
_MONEY_COLUMNS = frozenset({"subtotal", "tax", "total", "tax_rate", "quantity", "unit_amount", "amount"})
_SQLITE_INSERT_INVOICE = (f"INSERT INTO invoices (environment, created_at, updated_at, draft_number, "
                          f"{', '.join(HEADER)}) VALUES ({', '.join('?' * (4 + len(HEADER)))})")
_header_values = attrgetter(*HEADER)
_HEADER_MONEY = tuple(4 + index for index, name in enumerate(HEADER) if name in _MONEY_COLUMNS)


def _sqlite_row(values: Sequence[Any], money: Sequence[int]) -> list[Any]:
    """The values as ExactDecimal binds them on SQLite: money as plain decimal text."""
    row = list(values)
    for index in money:
        if row[index] is not None:
            row[index] = format(Decimal(row[index]), "f")
    return row


def _insert_new_sqlite(connection: Any, environment: str, new: Sequence[InvoiceRecord], numbers: Sequence[int],
                       now_us: int, ids: list[int]) -> list[tuple]:
    """SQLite: each new invoice by the driver's prepared INSERT (its id from lastrowid, appended to
    `ids`); their lines."""
    cursor = connection.connection.driver_connection.cursor()
    lines: list[tuple] = []
    try:
        for draft, number in zip(new, numbers, strict=True):
            cursor.execute(_SQLITE_INSERT_INVOICE, _sqlite_row(
                (environment, now_us, now_us, number, *_header_values(draft)), _HEADER_MONEY))
            ids.append(cursor.lastrowid)
            lines += line_tuples(cursor.lastrowid, draft.lines)
    finally:
        cursor.close()
    return lines


def billed_line_keys(store: Store, ids: Sequence[int]) -> dict[int, frozenset[tuple[str, int]]]:
    """invoice id -> the (code, service_start µs) of its lines."""
    found: dict[int, set[tuple[str, int]]] = defaultdict(set)
    with store.engine.connect() as connection:
        for start in range(0, len(ids), 900):
            query = select(invoice_lines.c.invoice_id, invoice_lines.c.code, invoice_lines.c.service_start_ts).where(
                invoice_lines.c.invoice_id.in_(ids[start:start + 900]))
            for invoice_id, code, start_ts in connection.execute(query):
                found[invoice_id].add((code, start_ts))
    return {invoice_id: frozenset(keys) for invoice_id, keys in found.items()}


def delete_drafts(store: Store, environment: str, ids: Sequence[int]) -> int:
    """Remove drafts that have no lines any more (never numbered, never sent); returns how many."""
    with store.engine.begin() as connection:
        return delete_drafts_on(connection, environment, ids)


def delete_drafts_on(connection: Any, environment: str, ids: Sequence[int]) -> int:
    """`delete_drafts` in the caller's transaction: those of `ids` that are still drafts."""
    removed = 0
    for start in range(0, len(ids), 900):
        chunk = [invoice_id for invoice_id in connection.execute(
            select(invoices.c.id).where(invoices.c.environment == environment, invoices.c.status == "draft",
                                        invoices.c.id.in_(ids[start:start + 900]))).scalars()]
        connection.execute(delete(invoice_lines).where(invoice_lines.c.invoice_id.in_(chunk)))
        removed += connection.execute(delete(invoices).where(invoices.c.id.in_(chunk))).rowcount
    return removed


LINE_COLUMNS = ("invoice_id", "position", *LineRecord.__dataclass_fields__)
_SQLITE_INSERT_LINES = (f"INSERT INTO invoice_lines ({', '.join(LINE_COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(LINE_COLUMNS))})")
_LINE_MONEY = tuple(index for index, name in enumerate(LINE_COLUMNS) if name in _MONEY_COLUMNS)
INVOICE_COLUMNS = ("id", "environment", "created_at", "updated_at", "draft_number", *HEADER)


def reserve_draft_numbers(connection: Any, environment: str, count: int) -> list[int]:
    """The environment's next `count` draft numbers, taken under its counter row's lock until the
    caller's transaction ends: two writers of one environment never get the same number, and the
    other environments' counters are untouched.

    The row is seeded (ON CONFLICT DO NOTHING) from the highest number already given, so a database
    whose counter row is missing continues after its invoices instead of colliding with them."""
    condition = draft_sequences.c.environment == environment
    dialect_insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    highest = select(literal(environment), func.coalesce(func.max(invoices.c.draft_number), 0)).where(
        invoices.c.environment == environment)
    connection.execute(dialect_insert(draft_sequences).from_select(["environment", "last_number"], highest)
                       .on_conflict_do_nothing())
    connection.execute(update(draft_sequences).where(condition)
                       .values(last_number=draft_sequences.c.last_number + count))
    last = connection.execute(select(draft_sequences.c.last_number).where(condition)).scalar_one()
    return list(range(last - count + 1, last + 1))


def _copy_new_postgres(connection: Any, environment: str, new: Sequence[InvoiceRecord], numbers: Sequence[int],
                       now_us: int, ids: list[int]) -> list[tuple]:
    """PostgreSQL: ids drawn from the sequence in one query (appended to `ids`), then invoices
    written with COPY.

    A multi-row INSERT of a few thousand invoices spends most of its time building and
    parsing the statement; COPY streams the rows.
    """
    ids += connection.execute(
        text("SELECT nextval(pg_get_serial_sequence('invoices', 'id')) FROM generate_series(1, :n)"),
        {"n": len(new)},
    ).scalars().all()
    rows = [(invoice_id, environment, now_us, now_us, number, *_header_values(draft))
            for invoice_id, draft, number in zip(ids, new, numbers, strict=True)]
    _copy_rows(connection, "invoices", INVOICE_COLUMNS, rows)
    lines: list[tuple] = []
    for invoice_id, draft in zip(ids, new, strict=True):
        lines += line_tuples(invoice_id, draft.lines)
    return lines


def _copy_rows(connection: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


_line_fields = attrgetter(*LineRecord.__dataclass_fields__)


def line_tuples(invoice_id: int, lines: Sequence[LineRecord]) -> list[tuple]:
    """line_rows as tuples in LINE_COLUMNS order (what a run's writes bind)."""
    return [(invoice_id, index, *_line_fields(line)) for index, line in enumerate(lines)]


def line_rows(invoice_id: int, lines: Sequence[LineRecord], positions: Sequence[int] | None = None
              ) -> list[dict[str, Any]]:
    """The invoice_lines rows of one invoice's lines, in their order (shared with corrections),
    numbered 0, 1, 2... or by `positions` (increasing, one per line: a one-off draft's kept numbers)."""
    numbers = range(len(lines)) if positions is None else positions
    return [{"invoice_id": invoice_id, "position": number, **line.__dict__}
            for number, line in zip(numbers, lines, strict=True)]


def load_invoices(connection: Any, ids: Iterable[int] | None, environment: str | None = None,
                  status: str | None = None) -> dict[int, InvoiceRecord]:
    """Invoices with their lines, read on the caller's connection (inside its transaction), by id
    and/or environment and status, ordered by cut, customer and id."""
    query = select(invoices)
    if ids is not None:
        query = query.where(invoices.c.id.in_(list(ids)))
    if environment is not None:
        query = query.where(invoices.c.environment == environment)
    if status is not None:
        query = query.where(invoices.c.status == status)
    query = query.order_by(invoices.c.boundary_ts, invoices.c.customer, invoices.c.id)
    records: dict[int, InvoiceRecord] = {}
    for row in connection.execute(query):
        data = row._mapping
        records[data["id"]] = InvoiceRecord(
            id=data["id"], number=data["number"], lines=[], draft_number=data["draft_number"],
            created_at=data["created_at"], updated_at=data["updated_at"], finalized_at=data["finalized_at"],
            archived_at=data["archived_at"], **{name: data[name] for name in HEADER},
        )
    if not records:
        return records
    lines: dict[int, list[LineRecord]] = defaultdict(list)
    positions: dict[int, list[int]] = defaultdict(list)
    keys = list(records)
    for start in range(0, len(keys), 900):
        chunk = keys[start : start + 900]
        line_query = (
            select(invoice_lines).where(invoice_lines.c.invoice_id.in_(chunk))
            .order_by(invoice_lines.c.invoice_id, invoice_lines.c.position)
        )
        for row in connection.execute(line_query):
            data = row._mapping
            lines[data["invoice_id"]].append(LineRecord(**{
                name: data[name] for name in LineRecord.__dataclass_fields__
            }))
            positions[data["invoice_id"]].append(data["position"])
    for invoice_id, record in records.items():
        record.lines = lines.get(invoice_id, [])
        record.line_positions = positions.get(invoice_id, [])
    return records


def list_invoices(store: Store, environment: str = "live", status: str | None = None) -> list[InvoiceRecord]:
    with store.engine.connect() as connection:
        return list(load_invoices(connection, None, environment, status).values())


MAX_KEY = 2**31 - 1  # ids and draft numbers are INTEGER columns: PostgreSQL refuses a larger parameter


def _small_number(digits: str) -> bool:
    """ASCII digits that fit an id or a draft number ("²".isdigit() is True, but int("²") fails)."""
    return digits.isascii() and digits.isdigit() and len(digits) <= 18 and int(digits) <= MAX_KEY


def get_invoice(store: Store, reference: str, environment: str = "live") -> InvoiceRecord:
    """By number (RC-000001), draft reference (DRAFT-12, the environment's own) or plain id (12)."""
    text = reference.strip()
    query = select(invoices.c.id).where(invoices.c.environment == environment)
    if text.upper().startswith("DRAFT-") and _small_number(text[6:]):
        query = query.where(invoices.c.draft_number == int(text[6:]))
    elif _small_number(text):
        query = query.where(invoices.c.id == int(text))
    else:
        query = query.where(invoices.c.number == text)
    with store.engine.connect() as connection:
        found = connection.execute(query).scalar()
        if found is None:
            raise InvoiceNotFound(f"no invoice {reference!r}")
        return load_invoices(connection, [found])[found]


# a final invoice's numbering prefix: one for all, or the prefix of the entity that bills a customer
Prefix = str | Callable[[str], str]


def change_status(store: Store, invoice_id: int, target: str, now_us: int, prefix: Prefix,
                  environment: str = "live", attempts: int = 1,
                  then: Callable[[Connection, InvoiceRecord], None] | None = None) -> InvoiceRecord:
    """draft -> final (with the next gapless number) or draft -> void; illegal moves raise.
    `then` writes what goes with the move (its webhook deliveries) in the same transaction.

    With `attempts` > 1 a transaction that SQLite refuses (a read snapshot taken before another
    writer committed cannot be upgraded to a write) starts again on a fresh snapshot."""
    for attempt in range(attempts):
        try:
            return _change_status_once(store, invoice_id, target, now_us, prefix, environment, then)
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise ValueError("attempts must be at least 1")


def _change_status_once(store: Store, invoice_id: int, target: str, now_us: int, prefix: Prefix,
                        environment: str, then: Callable[[Connection, InvoiceRecord], None] | None) -> InvoiceRecord:
    with store.engine.begin() as connection:
        found = connection.execute(
            select(invoices.c.status, invoices.c.mode, invoices.c.draft_number, invoices.c.updated_at,
                   invoices.c.customer)
            .where(invoices.c.id == invoice_id, invoices.c.environment == environment)
        ).first()
        if found is None:
            raise InvoiceNotFound(f"no invoice {invoice_id}")
        current, mode, draft_number, computed_at, customer = found
        check_transition(current, target)
        if target == "final" and mode == "shadow":
            raise InvoiceStateError(f"{draft_reference(draft_number)} is a shadow invoice (the legacy system bills "
                                    "this period): it is kept for comparison and never finalized")
        values: dict[str, Any] = {"status": target, "updated_at": now_us}
        if target == "final":
            values["number"] = next_number(connection, environment, prefix if isinstance(prefix, str) else
                                           prefix(customer))
            values["finalized_at"] = now_us
        result = connection.execute(
            update(invoices).where(invoices.c.id == invoice_id, invoices.c.status == current).values(**values)
        )
        if result.rowcount != 1:
            # another process moved it first; rolling back returns the number to the sequence
            raise InvoiceChanged(f"{draft_reference(draft_number)} changed while being updated; nothing was done")
        record = load_invoices(connection, [invoice_id])[invoice_id]
        if target == "final":
            _flag_unbilled_as_late(connection, environment, record, computed_at)
        if then is not None:
            then(connection, record)
    return record


def _flag_unbilled_as_late(connection: Any, environment: str, record: InvoiceRecord, computed_at: int) -> None:
    """Events stored after the draft was last computed and inside the periods it bills in arrears
    are not on it: flagged late, like events that arrive after finalization, so the next invoice
    run corrects the final invoice with them instead of never billing them."""
    # usage billed inside its period (threshold, usage_advance) is billed in arrears up to its cut
    spans = [(line.service_start_ts, line.service_end_ts) for line in record.lines
             if line.kind in ("usage", "arrears", "threshold", "usage_advance")]
    if not spans:
        return
    connection.execute(
        update(events).where(
            events.c.environment == environment, events.c.customer == record.customer,
            events.c.ts >= min(start for start, _ in spans), events.c.ts < max(end for _, end in spans),
            events.c.received_at > computed_at, events.c.status == "matched", events.c.late.is_(False),
        ).values(late=True)
    )


def next_number(connection: Any, environment: str, prefix: str) -> str:
    """The next number of the prefix's sequence (invoices and credit notes each have theirs),
    taken under the sequence row's lock until commit.

    The row is seeded with INSERT … ON CONFLICT DO NOTHING, so two first finalizations at once
    do not collide; the UPDATE then serialises them.
    """
    condition = (invoice_sequences.c.environment == environment) & (invoice_sequences.c.prefix == prefix)
    dialect_insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(
        dialect_insert(invoice_sequences).values(environment=environment, prefix=prefix, last_number=0)
        .on_conflict_do_nothing()
    )
    connection.execute(
        update(invoice_sequences).where(condition).values(last_number=invoice_sequences.c.last_number + 1)
    )
    number = connection.execute(select(invoice_sequences.c.last_number).where(condition)).scalar_one()
    return number_text(prefix, number)


def number_text(prefix: str, number: int) -> str:
    """A final document's number as written: the prefix, '-', the number on at least 6 digits."""
    return f"{prefix}-{number:06d}"


def finalized_windows(store: Store, environment: str = "live") -> dict[str, list[tuple[int, int]]]:
    """customer -> the service windows [start, end) in µs already billed by a final invoice.

    Only the lines billed in arrears count (usage, arrears flat fees, minimum: the period the
    invoice closes); an advance line covers a period whose usage is still to be invoiced.
    An event of a matched customer inside one of these windows is late: stored, never billed
    on the final invoice.
    """
    windows: dict[str, list[tuple[int, int]]] = defaultdict(list)
    with store.engine.connect() as connection:
        read_final_windows(connection, environment, windows)
    return dict(windows)


def _final_windows_query(of_numbers: bool) -> Any:
    query = (
        select(invoices.c.customer, invoice_lines.c.service_start_ts, invoice_lines.c.service_end_ts)
        .select_from(invoice_lines.join(invoices, invoices.c.id == invoice_lines.c.invoice_id))
        .where(invoices.c.environment == bindparam("env"), invoices.c.status == "final",
               invoice_lines.c.kind != "advance", invoices.c.subscription != ONE_OFF)  # a one-off bills no usage
        .group_by(invoices.c.customer, invoice_lines.c.service_start_ts, invoice_lines.c.service_end_ts)
    )
    return query.where(invoices.c.number.in_(bindparam("numbers", expanding=True))) if of_numbers else query


# built once: a refresh after one new final runs the second with one number
_FINAL_WINDOWS = _final_windows_query(False)
_FINAL_WINDOWS_OF = _final_windows_query(True)


def read_final_windows(connection: Any, environment: str, windows: dict[str, list[tuple[int, int]]],
                       numbers: Sequence[str] | None = None) -> None:
    """`finalized_windows`' rows added to `windows`: of every final document, or (`numbers`) of the
    final documents with these numbers only."""
    if numbers is None:
        rows = connection.execute(_FINAL_WINDOWS, {"env": environment})
    else:
        rows = connection.execute(_FINAL_WINDOWS_OF, {"env": environment, "numbers": list(numbers)})
    for customer, start, end in rows:
        windows[customer].append((start, end))


def billed_lines(store: Store, environment: str = "live") -> list[tuple]:
    """Every line of every draft or final invoice with its invoice's fields, as plain tuples:
    (customer, code, service_start, service_end, quantity, amount, kind, subscription,
    draft number, invoice number, currency, tax_rate, service_start_ts, service_end_ts, filter_code,
    group_values).
    One query, no objects per line: reconciliation reads hundreds of thousands of them.
    A corrected cut is read as its latest revision only (credit notes and the invoices they
    credit are left out), so what is compared is what the customer is billed now."""
    newer = invoices.alias("newer")
    superseded = select(newer.c.id).where(
        newer.c.environment == invoices.c.environment, newer.c.subscription == invoices.c.subscription,
        newer.c.boundary_ts == invoices.c.boundary_ts, newer.c.mode == invoices.c.mode,
        newer.c.kind == "invoice", newer.c.revision > invoices.c.revision).exists()
    query = (
        select(invoices.c.customer, invoice_lines.c.code, invoice_lines.c.service_start, invoice_lines.c.service_end,
               invoice_lines.c.quantity, invoice_lines.c.amount, invoice_lines.c.kind, invoices.c.subscription,
               invoices.c.draft_number, invoices.c.number, invoices.c.currency, invoices.c.tax_rate,
               invoice_lines.c.service_start_ts, invoice_lines.c.service_end_ts, invoice_lines.c.filter_code,
               invoice_lines.c.group_values)
        .select_from(invoice_lines.join(invoices, invoices.c.id == invoice_lines.c.invoice_id))
        .where(invoices.c.environment == environment, invoices.c.status != "void", invoices.c.kind == "invoice",
               ~superseded)
    )
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]
