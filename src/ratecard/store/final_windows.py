"""The service windows final documents billed, read whole, or only those of the documents
finalized since a process last read them (services.events.LateWindows keeps a cached event
validator's late windows this way: a finalization run must not make every request re-read them all).

Why reading only the newer documents is exact. A final document (an invoice or a credit note)
takes the next number of its prefix's sequence (invoices.next_number) in the very transaction
that makes it final, and the UPDATE of the sequence row holds that row's lock until the
transaction ends. So the numbers of one prefix are taken one transaction after the other: n + 1
is taken only once the transaction holding n has committed (or rolled back, handing n back).
Hence, per prefix, the committed final documents are exactly the numbers 1..last_number, and a
statement that starts after last_number was read as m sees all of 1..m (each statement of a
connection sees what was committed before it starts, and the sequence row moves in the same
commit as its document). A final document never changes. So a reader holding the windows of
numbers 1..m of each prefix needs those of m + 1..m' only, when the sequence now reads m'.

They are looked up by their exact numbers (the unique index on environment, number), never by
comparing number text: the width grows past 6 digits ("INV-1000000" sorts before "INV-999999")
and a prefix may contain '-' ("A-B-000001" also starts with "A-"). A process only ever asks for
the numbers finalized since its last read: one per final document, at most LIMIT at a time.

The read is refused (None: the caller reads everything again) when the database is not the one
the marks continue: a prefix read before is gone or its number went down, or the document that
held a grown prefix's last number read is another one now (its id or finalization instant
differ): a database restored to an earlier point and finalized again since. A restore followed
by exactly as many new final documents of every prefix leaves the fingerprint's count where it
was, and is seen by neither this read nor the full one: restart the API after a restore.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import bindparam, select

from .db import Store
from .invoices import number_text, read_final_windows
from .schema import invoice_sequences, invoices

Windows = dict[str, list[tuple[int, int]]]
# prefix -> (the last number read, (id, finalized_at) of the document holding it; None: not found)
Marks = dict[str, tuple[int, tuple[int, int] | None]]

CHUNK = 900  # numbers per IN list (SQLite caps the variables of a statement)


def final_windows_marked(store: Store, environment: str) -> tuple[Windows, Marks]:
    """Every final document's windows (store.invoices.finalized_windows) and the marks to continue
    from: the sequences are read first, so the windows read after hold at least their documents."""
    windows: Windows = defaultdict(list)
    with store.engine.connect() as connection:
        sequences = _sequences(connection, environment)
        tops = {prefix: number_text(prefix, last) for prefix, last in sequences.items() if last > 0}
        found = _documents(connection, environment, list(tops.values()))
        read_final_windows(connection, environment, windows)
    marks = {prefix: (last, found.get(tops[prefix]) if last > 0 else None) for prefix, last in sequences.items()}
    return dict(windows), marks


def final_windows_since(store: Store, environment: str, marks: Marks, limit: int) -> tuple[Windows, Marks] | None:
    """The windows of the final documents numbered after `marks`, with the marks moved on; None
    when the marks do not continue this database (read everything again) or more than `limit`
    documents are new (reading everything costs less then)."""
    windows: Windows = defaultdict(list)
    with store.engine.connect() as connection:
        sequences = _sequences(connection, environment)
        if any(sequences.get(prefix, 0) < last for prefix, (last, _) in marks.items()):
            return None  # a sequence went back (or is gone): a restored database
        held_before = {prefix: marks[prefix][0] if prefix in marks else 0 for prefix in sequences}
        grown = {prefix: (held_before[prefix], last) for prefix, last in sequences.items() if last > held_before[prefix]}
        if not grown:
            return {}, marks
        if sum(last - held for held, last in grown.values()) > limit:
            return None
        anchors = {prefix: number_text(prefix, held) for prefix, (held, _) in grown.items() if held > 0}
        tops = {prefix: number_text(prefix, last) for prefix, (_, last) in grown.items()}
        found = _documents(connection, environment, [*anchors.values(), *tops.values()])
        if any(found.get(number) != marks[prefix][1] for prefix, number in anchors.items()):
            return None  # the last document read is another one now: a restored database
        numbers = [number_text(prefix, number) for prefix, (held, last) in grown.items()
                   for number in range(held + 1, last + 1)]
        for start in range(0, len(numbers), CHUNK):
            read_final_windows(connection, environment, windows, numbers[start:start + CHUNK])
    moved = dict(marks)
    for prefix, (_, last) in grown.items():
        moved[prefix] = (last, found.get(tops[prefix]))
    return dict(windows), moved


# built once (building a statement per call costs more than running it on a small table)
_SEQUENCES = select(invoice_sequences.c.prefix, invoice_sequences.c.last_number).where(
    invoice_sequences.c.environment == bindparam("env"))
_DOCUMENTS = select(invoices.c.number, invoices.c.id, invoices.c.finalized_at).where(
    invoices.c.environment == bindparam("env"), invoices.c.number.in_(bindparam("numbers", expanding=True)))


def _sequences(connection: Any, environment: str) -> dict[str, int]:
    return {prefix: int(last) for prefix, last in connection.execute(_SEQUENCES, {"env": environment})}


def _documents(connection: Any, environment: str, numbers: list[str]) -> dict[str, tuple[int, int]]:
    """number -> (id, finalized_at) of the documents with these numbers."""
    found: dict[str, tuple[int, int]] = {}
    for start in range(0, len(numbers), CHUNK):
        rows = connection.execute(_DOCUMENTS, {"env": environment, "numbers": numbers[start:start + CHUNK]})
        for number, invoice_id, finalized_at in rows:
            found[number] = (int(invoice_id), int(finalized_at or 0))
    return found
